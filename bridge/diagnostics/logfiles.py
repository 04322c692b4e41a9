"""The bridge's own log files in `<state_dir>/logs/`: the log and the OCPP frames, each bounded.

Why: the service runs as a systemd DynamicUser that cannot read the journal, so a diagnostics archive
can only hold what the bridge kept itself.

How: one `QueueHandler` on the root logger; a `QueueListener` thread writes the records to two
`RotatingFileHandler`s, `bridge.log` (everything but the frames) and `frames.log` (the `ocpp.frames`
logger only, already masked by `bridge.log.redact_frame` where they are logged). The event loop only
formats the message and puts it on a bounded queue; the writes, the flushes and the renames of a
rotation (slow on an SD card) happen in the thread. When the disk falls so far behind that the queue
is full, records are dropped rather than blocking the loop or growing memory, and the next line
written says how many were lost.

Each file holds at most `max_bytes`, with `backups` rotated files beside it (`bridge.log.1` the
newest): a log takes at most `max_bytes * (backups + 1)` on disk. Every line starts with its time,
ISO 8601 in UTC to the millisecond (`2025-01-31T02:59:59.123Z`), so a window of time is a range
of byte strings (see window.py); continuation lines (tracebacks) carry no time.
"""

from __future__ import annotations

import logging
import logging.handlers
import queue
import time
from dataclasses import dataclass, field
from pathlib import Path

from bridge.log import FRAMES_LOGGER, keep_frames

LOGS_DIR = "logs"
BRIDGE_LOG = "bridge.log"
FRAMES_LOG = "frames.log"
DEFAULT_MAX_BYTES = 5 * 1024 * 1024
DEFAULT_BACKUPS = 4
QUEUE_RECORDS = 10_000  # records waiting for the writer thread before new ones are dropped


class UtcFormatter(logging.Formatter):
    """`2025-01-31T02:59:59.123Z WARNING bridge.x: message`: sortable, comparable as bytes."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return f"{stamp}.{int(record.msecs):03d}Z"


class _DroppingQueueHandler(logging.handlers.QueueHandler):
    """Never blocks the caller: a full queue drops the record and counts it."""

    def __init__(self, records: queue.Queue[logging.LogRecord]) -> None:
        super().__init__(records)
        self.dropped = 0

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            if self.dropped:
                note = f"{self.dropped} log lines were dropped: the log files fell behind"
                fields = {"name": __name__, "msg": note, "levelno": logging.WARNING, "levelname": "WARNING"}
                self.queue.put_nowait(logging.makeLogRecord(fields))
                self.dropped = 0
            self.queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1


class _Only(logging.Filter):
    """Records of one logger (and its children), or all but those."""

    def __init__(self, name: str, keep: bool) -> None:
        super().__init__()
        self.prefix, self.keep = name, keep

    def filter(self, record: logging.LogRecord) -> bool:
        ours = record.name == self.prefix or record.name.startswith(self.prefix + ".")
        return ours == self.keep


@dataclass
class LogFiles:
    """The installed files; `remove()` writes what is queued and takes them off the root logger."""

    directory: Path
    frames: bool
    _handler: _DroppingQueueHandler = field(repr=False)
    _listener: logging.handlers.QueueListener = field(repr=False)
    _files: tuple[logging.Handler, ...] = field(repr=False)

    def bridge_files(self) -> list[Path]:
        return rotated_files(self.directory / BRIDGE_LOG)

    def frame_files(self) -> list[Path]:
        return rotated_files(self.directory / FRAMES_LOG)

    @property
    def dropped(self) -> int:
        return self._handler.dropped

    def remove(self) -> None:
        """Idempotent: the daemon's stop and its error paths may both call it."""
        if self._handler not in logging.getLogger().handlers:
            return
        logging.getLogger().removeHandler(self._handler)
        if self.frames:
            keep_frames(False)
        self._listener.stop()  # writes every record still queued, then joins the thread
        for handler in self._files:
            handler.close()


def install_log_files(
    state_dir: Path,
    max_bytes: int = DEFAULT_MAX_BYTES,
    backups: int = DEFAULT_BACKUPS,
    *,
    frames: bool = True,
) -> LogFiles:
    """Starts writing `<state_dir>/logs/bridge.log` (and `frames.log` unless `frames` is false).

    Raises ValueError for bounds that make no sense and OSError when the directory cannot be made.
    """
    if max_bytes < 4096:
        raise ValueError(f"max_bytes must be at least 4096, not {max_bytes}")
    if backups < 1:
        raise ValueError(f"backups must be at least 1, not {backups}")
    directory = state_dir / LOGS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    files: list[logging.Handler] = []
    for name, only_frames in ((BRIDGE_LOG, False), (FRAMES_LOG, True)):
        if only_frames and not frames:
            continue
        handler = logging.handlers.RotatingFileHandler(
            directory / name,
            maxBytes=max_bytes,
            backupCount=backups,
            encoding="utf-8",
            errors="backslashreplace",
        )
        handler.setFormatter(UtcFormatter())
        handler.addFilter(_Only(FRAMES_LOGGER, keep=only_frames))
        files.append(handler)
    records: queue.Queue[logging.LogRecord] = queue.Queue(QUEUE_RECORDS)
    queue_handler = _DroppingQueueHandler(records)
    listener = logging.handlers.QueueListener(records, *files, respect_handler_level=True)
    listener.start()
    logging.getLogger().addHandler(queue_handler)
    if frames:
        keep_frames(True)
    return LogFiles(directory, frames, queue_handler, listener, tuple(files))


def rotated_files(current: Path) -> list[Path]:
    """`current` and its rotated files that exist, oldest first (`bridge.log.4` ... `bridge.log`)."""
    rotated = []
    for path in current.parent.glob(current.name + ".*"):
        suffix = path.name[len(current.name) + 1 :]
        if suffix.isdigit():
            rotated.append((int(suffix), path))
    ordered = [path for _, path in sorted(rotated, reverse=True)]
    return [*ordered, current] if current.exists() else ordered
