"""The lines of the bridge's log files that fall in a window of time (GetDiagnostics' startTime and
stopTime), streamed: never a whole file in memory.

Every line the log files hold starts with its UTC time in one fixed form (logfiles.py), so the time
of a line is compared as 24 bytes, without parsing a date. A line without that prefix (a traceback,
a message of several lines) belongs to the timed line before it. Both ends of the window are
inclusive, to the millisecond; an end that is None is open.

The lines are not assumed to be in order (a Pi without a clock battery boots in the past and jumps
when NTP answers), so every file is read to its end. The files are all opened before the first is
read: a rotation while the window is read renames files, and an open file keeps its contents.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

_STAMP = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ")
STAMP_BYTES = 24  # 2025-01-31T02:59:59.123Z


def stamp(moment: datetime) -> bytes:
    """The form a line's time takes in the log files, for comparing with it as bytes."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"a window's end must carry its time zone: {moment.isoformat()} has none")
    utc = moment.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z".encode()


def lines_between(files: Sequence[Path], start: datetime | None, stop: datetime | None) -> Iterator[bytes]:
    """The lines of `files` (read in the order given: oldest first, as `rotated_files` lists them)
    whose time is within [start, stop], each with its continuation lines; a file that has gone
    (rotated away) is skipped."""
    low = stamp(start) if start is not None else None
    high = stamp(stop) if stop is not None else None
    if low is not None and high is not None and low > high:
        raise ValueError(f"the window starts ({start}) after it stops ({stop})")
    with contextlib.ExitStack() as stack:
        opened = []
        for path in files:
            with contextlib.suppress(FileNotFoundError):
                opened.append(stack.enter_context(path.open("rb")))
        keep = low is None  # lines before the first timed one: older than anything, so kept only then
        match = _STAMP.match
        for stream in opened:
            for line in stream:
                if match(line):
                    when = line[:STAMP_BYTES]
                    keep = (low is None or when >= low) and (high is None or when <= high)
                if keep:
                    yield line if line.endswith(b"\n") else line + b"\n"
