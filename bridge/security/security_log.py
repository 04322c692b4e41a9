"""A charge point's security log: every security event and change of security settings, one line each,
in a rolling file under `state_dir/security/` (white paper A04/N01; GetLog(SecurityLog) uploads it).

Lines are written by a thread, never on the event loop: `write` queues the line and the first line
queued schedules one job that writes what every charge point queued meanwhile (5,000 charge points
starting write 5,000 StartupOfTheDevice lines in one job). A write and a flush to the page cache, no
fsync: what must not be lost, the critical events, is also in the outbox. `flush()` writes what waits
at once (the stop). Secrets never reach it: callers write what changed, never a key's value.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from bridge.clock import iso
from bridge.diagnostics.logwriter import RotatingFile

log = logging.getLogger("bridge.security")

MAX_BYTES = 256 * 1024  # per file; with BACKUPS rotated files beside it, ~1 MiB per charge point at most
BACKUPS = 3

_lock = threading.Lock()  # guards _waiting and _scheduled (held for moments: the loop takes it)
_file_lock = threading.Lock()  # guards the files, while they are written
_waiting: dict[SecurityLog, list[str]] = {}
_scheduled = False


def security_log_path(state_dir: Path, cp_id: str) -> Path:
    return state_dir / "security" / f"{quote(cp_id, safe='')}.log"


class SecurityLog:
    def __init__(self, path: Path, max_bytes: int = MAX_BYTES, backups: int = BACKUPS) -> None:
        self.path = path
        self._max_bytes, self._backups = max_bytes, backups
        self._file: RotatingFile | None = None

    def write(self, when: datetime, what: str, detail: str | None = None) -> None:
        """Queue one line, `<time> <what>[: <detail>]`, for the writer thread."""
        global _scheduled
        text = f"{iso(when)} {what}" + (f": {detail}" if detail else "")
        line = text.replace("\r", " ").replace("\n", " ") + "\n"
        with _lock:
            _waiting.setdefault(self, []).append(line)
            if _scheduled:
                return
            _scheduled = True
        try:
            asyncio.get_running_loop().run_in_executor(None, _write_waiting)
        except RuntimeError:  # no loop (a tool, a test): write now
            _write_waiting()

    def files(self) -> list[Path]:
        """The log's files that exist, oldest first (the rotated ones, then the current one); what
        waits is written first."""
        flush()
        rotated = [Path(f"{self.path}.{n}") for n in range(self._backups, 0, -1)]
        return [p for p in (*rotated, self.path) if p.exists()]

    def close(self) -> None:
        flush()
        with _file_lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def _put(self, lines: list[str]) -> None:
        """On the writer thread, under the file lock. A failure is logged, never raised: a full disk must
        not stop an event from being sent."""
        try:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = RotatingFile(self.path, self._max_bytes, self._backups)
            self._file.write(lines)
        except OSError as exc:
            log.error("security log %s not written: %s", self.path, exc)


def _write_waiting() -> None:
    global _scheduled
    with _file_lock:  # one writer at a time: lines keep their order
        with _lock:
            batch = list(_waiting.items())
            _waiting.clear()
            _scheduled = False
        for security_log, lines in batch:
            security_log._put(lines)


def flush() -> None:
    """Write every line that waits, now (blocking: at a stop, or before the files are read)."""
    _write_waiting()
