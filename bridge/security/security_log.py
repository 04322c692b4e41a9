"""A charge point's security log: every security event and change of security settings, one line each,
in a rolling file under `state_dir/security/` (white paper A04/N01; GetLog(SecurityLog) uploads it).

Lines are small and rare, so they are written at once (a write and a flush to the page cache, no
fsync): what must not be lost, the critical events, is also in the outbox. Secrets never reach it: the
callers write what changed, never a key's value.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from bridge.clock import iso
from bridge.diagnostics.logwriter import RotatingFile

log = logging.getLogger("bridge.security")

MAX_BYTES = 256 * 1024  # per file; with BACKUPS rotated files beside it, ~1 MiB per charge point at most
BACKUPS = 3


def security_log_path(state_dir: Path, cp_id: str) -> Path:
    return state_dir / "security" / f"{quote(cp_id, safe='')}.log"


class SecurityLog:
    def __init__(self, path: Path, max_bytes: int = MAX_BYTES, backups: int = BACKUPS) -> None:
        self.path = path
        self._max_bytes, self._backups = max_bytes, backups
        self._file: RotatingFile | None = None

    def write(self, when: datetime, what: str, detail: str | None = None) -> None:
        """One line: `<time> <what>[: <detail>]`. A failure to write is logged, never raised: a full
        disk must not stop the event from being sent."""
        text = f"{iso(when)} {what}" + (f": {detail}" if detail else "")
        line = text.replace("\r", " ").replace("\n", " ") + "\n"
        try:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = RotatingFile(self.path, self._max_bytes, self._backups)
            self._file.write([line])
        except OSError as exc:
            log.error("security log %s not written: %s", self.path, exc)

    def files(self) -> list[Path]:
        """The log's files that exist, oldest first (the rotated ones, then the current one)."""
        rotated = [Path(f"{self.path}.{n}") for n in range(self._backups, 0, -1)]
        return [p for p in (*rotated, self.path) if p.exists()]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
