"""Log files as the bridge writes them (bridge/diagnostics/logfiles.py), made by hand with known times."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bridge.diagnostics.logwriter import Entry

T0 = datetime(2025, 1, 31, 2, 0, tzinfo=UTC)


def stamped(at: datetime, message: str, level: str = "INFO", name: str = "bridge.test") -> str:
    """One line in the files' format: `2025-01-31T02:00:00.000Z INFO    bridge.test: message`."""
    utc = at.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z {level:<7} {name}: {message}\n"


def entry(at: datetime, message: str, level: str = "INFO", name: str = "bridge.test") -> Entry:
    """What the log files' handler takes from a record logged at `at` (the writer makes its line)."""
    return (at.timestamp(), at.microsecond // 1000, level, name, message)


def minute(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def write_lines(path: Path, lines: Iterable[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        out.writelines(lines)
    return path
