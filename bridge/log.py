"""Logging: one line per event, journal-friendly, secrets never written.

Secrets reach log lines in two ways: frames (a CALL that sets AuthorizationKey,
a GetDiagnostics or UpdateFirmware location with `user:password@`) and
configuration values. `redact_frame` handles the first; configuration objects
keep secrets out of their repr for the second.

The frames go to their own logger, `ocpp.frames`. Stderr (the journal) shows
them only with --log-frames; the bridge's own frame file (bridge/diagnostics/
logfiles.py) may want them all the same: `keep_frames` turns the logger on
without letting them through to stderr.

The RPC layer hands its frames to `log_frame`, not to the logger: the frame
file takes them through a sink (`set_frame_sink`) with no LogRecord, masking
and formatting them on its own thread (a boot of 5,000 charge points sends
and receives 30,000 frames); a LogRecord is made only when stderr shows
frames (--log-frames) or, without a sink, when the logger is enabled.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

SECRET_KEYS = frozenset({"authorizationkey"})
MASK = "***"
FRAMES_LOGGER = "ocpp.frames"
STDERR_EVERY = 0.05  # seconds a line may wait for its batch before it is written to stderr
STDERR_MAX_WAITING = 20_000  # lines held for a stderr that cannot keep up; beyond, dropped and counted
TAKEN = "frame_taken"  # a frame record's attribute: a frame sink has it already

# (connection name, "->" or "<-", the frame's text as on the wire: not masked yet)
FrameSink = Callable[[str, str, str], None]

# `scheme://user:password@` in a frame's text, its slashes maybe JSON-escaped (`ftp:\/\/`), found
# from its `://`: the scheme is read back from there (at most 32 characters: a longer one is taken
# by its tail, still masked), the user and the password forward. Each part is scanned once.
_SEPARATOR = re.compile(r":(?:\\?/){2}")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*\Z")
_SCHEME_MAX = 32
_USER = re.compile(r'[^\s"/@:\\]*:')
# The text a password may span: no blank or quote; a backslash escapes the next character.
_RUN = re.compile(r'[^\s"\\]*(?:\\.[^\s"\\]*)*')


def mask_url_passwords(text: str) -> str:
    """`text` with the password of every `scheme://user:password@` in it replaced by ***.

    The password runs to the last '@' of its run (a password may hold an unencoded '@' or '/').
    Linear in the text: one regex with backtracking took quadratic time on a long run of letters or
    of `a://b:` in a frame that also held an '@' (75 s for 120 KB; frames may be 4 MiB).
    """
    if "@" not in text:
        return text
    parts: list[str] = []
    kept = pos = 0
    while (separator := _SEPARATOR.search(text, pos)) is not None:
        colon = separator.start()
        pos = separator.end()
        if _SCHEME.search(text, max(kept, colon - _SCHEME_MAX), colon) is None:
            continue
        user = _USER.match(text, pos)
        if user is None:
            continue
        start = user.end()
        run = _RUN.match(text, start)
        end = run.end() if run is not None else start
        at = text.rfind("@", start, end)
        if at < 0:  # no '@' in this run: no `scheme://user:` inside it finds one either
            pos = max(pos, end)
            continue
        parts += (text[kept:start], MASK)
        kept = pos = at
    if not parts:
        return text
    parts.append(text[kept:])
    return "".join(parts)


def _redact(value: Any) -> Any:
    if isinstance(value, dict):
        key = value.get("key")
        if isinstance(key, str) and key.lower() in SECRET_KEYS and "value" in value:
            return {**value, "value": MASK}
        return {k: _redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return value


def _redact_decoded(value: Any) -> Any:
    """`_redact` on a decoded frame whose strings had JSON escapes: URL passwords masked in each."""
    if isinstance(value, str):
        return mask_url_passwords(value)
    if isinstance(value, dict):
        key = value.get("key")
        if isinstance(key, str) and key.lower() in SECRET_KEYS and "value" in value:
            value = {**value, "value": MASK}
        return {mask_url_passwords(k): _redact_decoded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_decoded(v) for v in value]
    return value


def redact_frame(text: str) -> str:
    """An OCPP frame fit for a log: values of secret configuration keys and URL passwords masked.

    A frame with `\\u` escapes may spell a secret's key or a URL's `//`, `@` with them
    (`Authorization\\u004bey`, `ftp:\\u002f\\u002f`): it is decoded, masked string by string and
    written again (its escapes then undone)."""
    if "\\u" in text:
        try:
            decoded = json.loads(text)
        except ValueError:
            return "<frame withheld: has \\u escapes and is not valid JSON>"
        return json.dumps(_redact_decoded(decoded), separators=(",", ":"), ensure_ascii=False)
    text = mask_url_passwords(text)
    if "authorizationkey" not in text.lower():
        return text
    try:
        return json.dumps(_redact(json.loads(text)), separators=(",", ":"))
    except ValueError:
        return "<frame withheld: mentions a secret and is not valid JSON>"


class _JournalFormatter(logging.Formatter):
    """Prefixes syslog priorities (<3>..<7>) so journald files each line correctly."""

    _PRIORITY = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6, logging.DEBUG: 7}

    def format(self, record: logging.LogRecord) -> str:
        # journald files each line on its own: a traceback's lines carry the priority too, or
        # `journalctl -p warning` would show the error and hide its traceback.
        priority = self._PRIORITY.get(record.levelno, 6)
        return "\n".join(f"<{priority}>{line}" for line in super().format(record).splitlines())


def stderr_is_journal() -> bool:
    """systemd sets JOURNAL_STREAM to "<device>:<inode>" of the stream it connected to the journal;
    only when stderr is that very stream do lines need priority prefixes (a redirected stderr under
    systemd, or a shell that inherited the variable, gets plain lines)."""
    value = os.environ.get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    try:
        st = os.fstat(sys.stderr.fileno())
        return (int(device), int(inode)) == (st.st_dev, st.st_ino)
    except (ValueError, OSError, AttributeError):
        return False


class LocalTimeFormatter(logging.Formatter):
    """logging.Formatter's lines, its local time's text made once a second, not once a line."""

    def __init__(self, fmt: str) -> None:
        super().__init__(fmt)
        self._second = -1
        self._text = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        if second != self._second:
            self._text = time.strftime(self.default_time_format, self.converter(record.created))
            self._second = second
        return f"{self._text},{int(record.msecs):03d}"  # as default_msec_format makes it


class BatchedStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Lines made on the caller's thread, written to stderr a batch at a time by a thread of its own.

    Why: stderr is line buffered, so a StreamHandler makes one write() per line; at 20,000 lines in a
    boot of 5,000 charge points those writes (and the GIL handed over at each) cost the event loop
    ~0.5 s. Here a line waits at most STDERR_EVERY seconds; the thread sleeps while nothing is
    logged. `flush()` writes what waits at once: logging.shutdown() at exit, the excepthook (so a
    crash's traceback follows the lines before it) and a firmware exec call it. A hard kill
    (SIGKILL, a power cut) loses the lines of the last STDERR_EVERY seconds at most.
    """

    def __init__(self, every: float = STDERR_EVERY, max_waiting: int = STDERR_MAX_WAITING) -> None:
        super().__init__(sys.stderr)
        self.every = every
        self.max_waiting = max_waiting
        self.batches = 0
        self.dropped = 0  # lines a stderr that could not keep up never got (said at the next write)
        self._lines: list[str] = []
        self._due = threading.Event()
        self._writing = threading.Lock()
        self._thread: threading.Thread | None = None

    def emit(self, record: logging.LogRecord) -> None:  # called with self.lock held
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        if len(self._lines) >= self.max_waiting:  # stderr stalls (the journal behind): memory is bounded
            self.dropped += 1
            return
        self._lines.append(line)
        if len(self._lines) == 1:  # the first of a batch wakes the writer
            if self._thread is None:
                self._thread = threading.Thread(target=self._write_batches, name="stderr", daemon=True)
                self._thread.start()
            self._due.set()

    def _write_batches(self) -> None:
        while True:
            self._due.wait()
            time.sleep(self.every)  # a batch gathers
            self._due.clear()  # before taking the lines: a line after them sets it again
            self.flush()

    def flush(self) -> None:
        # The lines are taken under the handler's lock, written under a lock of the writers only: a
        # slow stderr (the journal behind) holds up the next batch, never the caller of a log line.
        with self._writing:
            with self.lock:  # type: ignore[union-attr]
                lines, self._lines = self._lines, []
                dropped, self.dropped = self.dropped, 0
            if dropped:
                lines.append(f"({dropped} log lines dropped here: stderr could not keep up)")
            if not lines:
                return
            lines.append("")
            try:
                self.stream.write("\n".join(lines))
                self.stream.flush()
                self.batches += 1
            except (OSError, ValueError):  # a closed or broken stderr: nothing else can say so
                pass


def _flush_then(hook: Callable[..., Any]) -> Callable[..., Any]:
    """sys.excepthook that first writes the lines waiting for stderr: they precede the traceback."""

    def excepthook(*exc_info: Any) -> None:
        for handler in logging.getLogger().handlers:
            handler.flush()
        hook(*exc_info)

    excepthook.flushes_first = True  # type: ignore[attr-defined]
    return excepthook


class _FrameGate(logging.Filter):
    """Frames reach stderr only when asked for (--log-frames), whatever level their logger has."""

    def __init__(self) -> None:
        super().__init__()
        self.show = False  # --log-frames
        self.kept = False  # a frame file wants them (keep_frames)

    def filter(self, record: logging.LogRecord) -> bool:
        return self.show or record.levelno >= logging.WARNING or not record.name.startswith(FRAMES_LOGGER)

    def apply(self) -> None:
        on = self.show or self.kept
        logging.getLogger(FRAMES_LOGGER).setLevel(logging.DEBUG if on else logging.WARNING)


_gate = _FrameGate()


_frames = logging.getLogger(FRAMES_LOGGER)
_frame_sink: FrameSink | None = None
_TAKEN_EXTRA = {TAKEN: True}


def set_frame_sink(sink: FrameSink | None) -> None:
    """Frames go to `sink` (it must mask them: `redact_frame`), or no longer (None)."""
    global _frame_sink
    _frame_sink = sink


def log_frame(name: str, arrow: str, text: str) -> None:
    """A frame sent (`->`) or received (`<-`) on connection `name`, to whoever wants frames."""
    sink = _frame_sink
    if sink is not None:
        sink(name, arrow, text)
        if _gate.show:  # stderr wants them too: a record, which the sink's handler passes over
            _frames.debug("%s %s %s", name, arrow, redact_frame(text), extra=_TAKEN_EXTRA)
    elif _frames.isEnabledFor(logging.DEBUG):
        _frames.debug("%s %s %s", name, arrow, redact_frame(text))


def keep_frames(on: bool) -> None:
    """Log every frame (the frame file wants them) without showing them on stderr unless asked."""
    _gate.kept = on
    _gate.apply()


def setup_logging(level: str = "INFO", frames: bool = False) -> None:
    """Configure the root logger for a terminal or, under systemd, the journal."""
    handler = BatchedStderr()
    handler.addFilter(_gate)
    if stderr_is_journal():
        handler.setFormatter(_JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(LocalTimeFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    for old in logging.getLogger().handlers:
        old.flush()  # a handler replaced writes what waits in it first
    logging.getLogger().handlers[:] = [handler]
    if not getattr(sys.excepthook, "flushes_first", False):
        sys.excepthook = _flush_then(sys.excepthook)
    # No line shows the calling function, thread or process: a record need not look them up (the
    # logging HOWTO's "Optimization"; at 5,000 charge points a boot makes ~55,000 records).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    apply_levels(level, frames)


def apply_levels(level: str, frames: bool) -> None:
    """The level policy: ours as asked; libraries that would log frames or secrets kept quiet."""
    logging.getLogger().setLevel(level.upper())
    _gate.show = frames
    _gate.apply()
    # websockets logs every frame at DEBUG (unredacted) and every handshake failure with a
    # traceback; our own lines say the same, redacted and once.
    logging.getLogger("websockets").setLevel(logging.WARNING)
    # The ocpp library logs whole messages at INFO: our RPC layer does not use its loop, but be safe.
    logging.getLogger("ocpp").setLevel(logging.WARNING)
