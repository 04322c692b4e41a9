"""The bridge's own log files in `<state_dir>/logs/`: the log and the OCPP frames, each bounded.

Why: the service runs as a systemd DynamicUser that cannot read the journal, so a diagnostics archive
can only hold what the bridge kept itself.

How: the handler on the root logger does on the caller's thread (the event loop's) only what must
be done there: the message is made (its arguments may change later) and appended, as a small tuple,
to a deque. The RPC layer's frames skip logging altogether (bridge.log.log_frame): a frame's text
is appended to a deque of its own, masked (redact_frame) and made a line on the writer's thread.
A writer thread wakes every WRITE_EVERY seconds (sooner when many lines wait, and when the files
are removed), makes the lines and writes each file's lines at once (logwriter.py): one
write, one flush per file and batch, the renames of a rotation (slow on an SD card) included. When
the disk falls so far behind that QUEUE_RECORDS lines wait, lines are dropped rather than blocking
the loop or growing memory, and the next line taken says how many were lost.

Each file holds at most `max_bytes`, with `backups` rotated files beside it (`bridge.log.1` the
newest): a log takes at most `max_bytes * (backups + 1)` on disk. Every line starts with its time,
ISO 8601 in UTC to the millisecond (`2025-01-31T02:59:59.123Z`), so a window of time is a range
of byte strings (see window.py); continuation lines (tracebacks) carry no time.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from bridge.diagnostics.logwriter import Entry, LineMaker, RotatingFile
from bridge.log import FRAMES_LOGGER, TAKEN, keep_frames, redact_frame, set_frame_sink

LOGS_DIR = "logs"
BRIDGE_LOG = "bridge.log"
FRAMES_LOG = "frames.log"
DEFAULT_MAX_BYTES = 5 * 1024 * 1024
DEFAULT_BACKUPS = 4
QUEUE_RECORDS = 10_000  # lines waiting for the writer thread before new ones are dropped
WAKE_RECORDS = 1_000  # lines waiting that wake the writer before its time
WRITE_EVERY = 0.2  # seconds between the writer's batches

_FRAMES_CHILD = FRAMES_LOGGER + "."

# A frame handed over by log_frame: when it was taken, the connection's name, "->" or "<-", the text.
RawFrame = tuple[float, str, str, str]
_TRACEBACKS = logging.Formatter()  # formatException and formatStack as every handler has them


def is_frame(name: str) -> bool:
    """A record of the frame logger (or of one of its children)."""
    return name == FRAMES_LOGGER or name.startswith(_FRAMES_CHILD)


class UtcFormatter(logging.Formatter):
    """`2025-01-31T02:59:59.123Z WARNING bridge.x: message`: sortable, comparable as bytes. The lines
    the writer makes (logwriter.LineMaker) are these, byte for byte."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return f"{stamp}.{int(record.msecs):03d}Z"


class Taker(logging.Handler):
    """Takes a record's line on the caller's thread: its message made now, appended to `pending`.

    Never blocks: no lock (a deque's append is thread-safe; the drop count, rarely touched, may
    miss a line when two threads drop at once), no formatting beyond the message, no filters.
    """

    def __init__(
        self, bound: int = QUEUE_RECORDS, wake_at: int = WAKE_RECORDS, *, frames: bool = True
    ) -> None:
        super().__init__()
        self.pending: deque[Entry] = deque()
        self.frames_pending: deque[RawFrame] = deque()  # from take_frame, not masked yet
        self.wake = threading.Event()
        self.asleep = False  # the writer waits for a first line
        self.bound, self.wake_at, self.frames = bound, wake_at, frames
        self.dropped = 0

    def handle(self, record: logging.LogRecord) -> bool:
        name = record.name
        if (not self.frames and is_frame(name)) or TAKEN in record.__dict__:
            return True  # no frame file: frames are not kept; or take_frame has this frame already
        message = record.getMessage()
        if record.exc_info or record.exc_text or record.stack_info:
            message = _with_traceback(record, message)
        pending = self.pending
        if len(pending) >= self.bound:
            self.dropped += 1
            return True
        if self.dropped:
            self._say_dropped()
        pending.append((record.created, int(record.msecs), record.levelname, name, message))
        # A line wakes the writer when it sleeps for want of lines (an idle daemon costs it nothing;
        # it sets `asleep` before it looks at `pending`, this looks after appending: one of the two
        # sees the other), and many lines wake it early from gathering a batch.
        if (self.asleep or len(pending) >= self.wake_at) and not self.wake.is_set():
            self.wake.set()
        return True

    def emit(self, record: logging.LogRecord) -> None:
        self.handle(record)

    def take_frame(self, name: str, arrow: str, text: str) -> None:
        """A frame from log_frame (the frame sink): no record, no masking here (the writer masks)."""
        pending = self.frames_pending
        if len(pending) + len(self.pending) >= self.bound:
            self.dropped += 1
            return
        if self.dropped:
            self._say_dropped()
        pending.append((time.time(), name, arrow, text))
        if (self.asleep or len(pending) >= self.wake_at) and not self.wake.is_set():
            self.wake.set()

    def _say_dropped(self) -> None:
        dropped, self.dropped = self.dropped, 0
        now = time.time()
        note = f"{dropped} log lines were dropped: the log files fell behind"
        self.pending.append((now, int((now - int(now)) * 1000), "WARNING", __name__, note))


def _with_traceback(record: logging.LogRecord, message: str) -> str:
    """The message and its traceback (or stack) as logging.Formatter.format joins them."""
    if record.exc_info and not record.exc_text:
        record.exc_text = _TRACEBACKS.formatException(record.exc_info)
    if record.exc_text:
        message = _joined(message, record.exc_text)
    if record.stack_info:
        message = _joined(message, _TRACEBACKS.formatStack(record.stack_info))
    return message


def _joined(message: str, more: str) -> str:
    return message + more if message.endswith("\n") else f"{message}\n{more}"


class Writer(threading.Thread):
    """Drains the taker's lines in batches into bridge.log and (when kept) frames.log."""

    def __init__(self, taker: Taker, log: RotatingFile, frames: RotatingFile | None, every: float) -> None:
        super().__init__(name="log-files", daemon=True)
        self.taker, self.log, self.frames, self.every = taker, log, frames, every
        self.batches = 0
        self.wakeups = 0  # loops run: none while nothing is logged
        self._maker = LineMaker()
        self._stopping = False
        self._lost: dict[Path, int] = {}

    def run(self) -> None:
        wake = self.taker.wake
        try:
            while True:
                self.wakeups += 1
                self.taker.asleep = True
                if not self.taker.pending and not self.taker.frames_pending and not self._stopping:
                    wake.wait()  # nothing to write: asleep until a line comes (the taker wakes it)
                    wake.clear()
                self.taker.asleep = False
                if not self._stopping:
                    wake.wait(self.every)  # a batch gathers (woken early when many wait, or by stop)
                    wake.clear()
                stopping = self._stopping  # read before the drain: what was taken before stop() is written
                self.drain()
                if stopping:
                    return
        finally:
            self.log.close()
            if self.frames is not None:
                self.frames.close()

    def stop(self) -> None:
        """Writes every line taken so far, then ends the thread."""
        self._stopping = True
        self.taker.wake.set()
        self.join()

    def drain(self) -> None:
        pending, raw = self.taker.pending, self.taker.frames_pending
        count, raw_count = len(pending), len(raw)
        if not count and not raw_count:
            return
        popleft, line = pending.popleft, self._maker.line
        log_lines: list[str] = []
        frame_lines: list[str] = []
        for _ in range(count):
            entry = popleft()
            (frame_lines if is_frame(entry[3]) else log_lines).append(line(entry))
        take = raw.popleft
        for _ in range(raw_count):
            taken, name, arrow, text = take()
            msecs = int((taken - int(taken)) * 1000)  # as a LogRecord counts them
            frame_lines.append(
                line((taken, msecs, "DEBUG", FRAMES_LOGGER, f"{name} {arrow} {redact_frame(text)}"))
            )
        if log_lines:
            self._write(self.log, log_lines)
        if frame_lines and self.frames is not None:
            self._write(self.frames, frame_lines)
        self.batches += 1

    def _write(self, file: RotatingFile, lines: list[str]) -> None:
        lost, count = self._lost.get(file.path, 0), len(lines)
        if lost:
            now = time.time()
            note = f"{lost} log lines were lost: {file.path.name} could not be written"
            lines.insert(0, self._maker.line((now, int((now - int(now)) * 1000), "WARNING", __name__, note)))
        try:
            file.write(lines)
        except OSError as exc:
            if not lost:  # once per failing spell, on stderr (the journal): the file cannot say it
                print(f"{__name__}: cannot write {file.path}: {exc}", file=sys.stderr)
            self._lost[file.path] = lost + count
        else:
            self._lost.pop(file.path, None)


@dataclass
class LogFiles:
    """The installed files; `remove()` writes what is queued and takes them off the root logger."""

    directory: Path
    frames: bool
    taker: Taker = field(repr=False)
    writer: Writer = field(repr=False)

    def bridge_files(self) -> list[Path]:
        return rotated_files(self.directory / BRIDGE_LOG)

    def frame_files(self) -> list[Path]:
        return rotated_files(self.directory / FRAMES_LOG)

    @property
    def dropped(self) -> int:
        return self.taker.dropped

    def remove(self) -> None:
        """Writes every line taken, then closes the files. Idempotent: the daemon's stop and its error
        paths may both call it."""
        if self.taker not in logging.getLogger().handlers:
            return
        logging.getLogger().removeHandler(self.taker)
        if self.frames:
            set_frame_sink(None)
            keep_frames(False)
        self.writer.stop()


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
    log = RotatingFile(directory / BRIDGE_LOG, max_bytes, backups)
    try:
        frame_file = RotatingFile(directory / FRAMES_LOG, max_bytes, backups) if frames else None
    except OSError:
        log.close()
        raise
    taker = Taker(frames=frames)
    writer = Writer(taker, log, frame_file, WRITE_EVERY)
    writer.start()
    logging.getLogger().addHandler(taker)
    if frames:
        keep_frames(True)
        set_frame_sink(taker.take_frame)
    return LogFiles(directory, frames, taker, writer)


def rotated_files(current: Path) -> list[Path]:
    """`current` and its rotated files that exist, oldest first (`bridge.log.4` ... `bridge.log`)."""
    rotated = []
    for path in current.parent.glob(current.name + ".*"):
        suffix = path.name[len(current.name) + 1 :]
        if suffix.isdigit():
            rotated.append((int(suffix), path))
    ordered = [path for _, path in sorted(rotated, reverse=True)]
    return [*ordered, current] if current.exists() else ordered
