"""The security log: every security event and change of security settings, one line each (white
paper A04/N01; GetLog(SecurityLog) uploads a charge point's lines).

One rolling file for the daemon, `state_dir/security/security.log`, each line
`<time> <charge point id> <what>[: <detail>]`: a file per charge point meant 5,000 files created at
the first start of a big daemon (3 s on an ordinary disk, and the boot waited for it). A charge point
sees its own lines through a `ChargePointLog` (ids have no spaces: the second field names it).

Lines are written by a thread, never on the event loop: `write` queues the line and the first line
queued schedules one job that writes what every charge point queued meanwhile. A write and a flush to
the page cache, no fsync: what must not be lost, the critical events, is also in the outbox. Secrets
never reach it: callers write what changed, never a key's value.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import datetime
from pathlib import Path

from bridge.clock import iso
from bridge.diagnostics.logwriter import RotatingFile

log = logging.getLogger("bridge.security")

# 5 MiB in all: with 5,000 charge points a start writes ~0.5 MiB (their StartupOfTheDevice), so the
# last ten starts' lines stay; a single charge point keeps years of them.
MAX_BYTES = 1024 * 1024
BACKUPS = 4
FILE_NAME = "security.log"

_lock = threading.Lock()  # guards _waiting, _scheduled and _logs (held for moments: the loop takes it)
_file_lock = threading.Lock()  # guards the files, while they are written
_waiting: dict[SecurityLog, list[str]] = {}
_scheduled = False
_logs: dict[Path, SecurityLog] = {}


def security_log_path(state_dir: Path) -> Path:
    return state_dir / "security" / FILE_NAME


class SecurityLog:
    """The daemon's security log file (`at` gives the one of a state directory)."""

    def __init__(self, path: Path, max_bytes: int = MAX_BYTES, backups: int = BACKUPS) -> None:
        self.path = path
        self._max_bytes, self._backups = max_bytes, backups
        self._file: RotatingFile | None = None

    @classmethod
    def at(cls, state_dir: Path) -> SecurityLog:
        """The one log of `state_dir`, shared by its charge points."""
        with _lock:
            found = _logs.get(state_dir)
            if found is None:
                found = _logs[state_dir] = cls(security_log_path(state_dir))
            return found

    def for_charge_point(self, cp_id: str) -> ChargePointLog:
        return ChargePointLog(self, cp_id)

    def write_line(self, line: str) -> None:
        """Queue one line (ending in a newline) for the writer thread."""
        global _scheduled
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
        waits is written first (blocking: in a thread)."""
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


class ChargePointLog:
    """One charge point's lines of the security log."""

    def __init__(self, shared: SecurityLog, cp_id: str) -> None:
        self.shared = shared
        self.cp_id = cp_id
        self._field = f" {cp_id} ".encode()

    def write(self, when: datetime, what: str, detail: str | None = None) -> None:
        """Queue one line: `<time> <id> <what>[: <detail>]`."""
        text = f"{iso(when)} {self.cp_id} {what}" + (f": {detail}" if detail else "")
        self.shared.write_line(text.replace("\r", " ").replace("\n", " ") + "\n")

    def owns(self, line: bytes) -> bool:
        """Whether a line of the log's files is this charge point's (its second field is the id)."""
        space = line.find(b" ")
        return space >= 0 and line.startswith(self._field, space)

    def files(self) -> list[Path]:
        return self.shared.files()

    def close(self) -> None:
        self.shared.close()


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
