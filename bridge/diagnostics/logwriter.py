"""The writing half of the log files: lines made from taken records, a batch at a time, into a file
that rotates by its own count of bytes.

Why a count of its own: `RotatingFileHandler` formats every record twice (to decide on a rollover,
then to write it), asks the file where it is and flushes it, for every line. Here a batch of lines
is joined, encoded and written at once, and the file's size is known without asking it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

# What the handler takes from a record on the caller's thread: its time (seconds since the epoch, and
# milliseconds as the record counted them), level name, logger name and message (with its traceback).
Entry = tuple[float, int, str, str, str]

ENCODING = "utf-8"
ERRORS = "backslashreplace"  # a lone surrogate in a message must not lose the line


class LineMaker:
    """`2025-01-31T02:59:59.123Z WARNING bridge.x: message\\n`, the seconds' text made once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def line(self, entry: Entry) -> str:
        created, msecs, level, name, message = entry
        second = int(created)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
        return f"{self._prefix}.{msecs:03d}Z {level:<7} {name}: {message}\n"


class RotatingFile:
    """A log file of at most `max_bytes` (a single longer line gets a file of its own), with `backups`
    rotated files beside it: `name.1` the newest, renamed as `RotatingFileHandler` does."""

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self.path, self.max_bytes, self.backups = path, max_bytes, backups
        self._stream: BinaryIO = path.open("ab")
        self.size = os.fstat(self._stream.fileno()).st_size
        self.rotations = 0
        self.writes = 0  # write calls: one per batch, one more per rotation within it

    def write(self, lines: list[str]) -> None:
        """Writes the lines, rotating before the one that would not fit; flushed when it returns."""
        text = "".join(lines)
        data = text.encode(ENCODING, ERRORS)
        if self.size + len(data) <= self.max_bytes:  # the usual batch: one write
            self._put(data)
        else:
            self._put_rotating(lines)
        self._stream.flush()

    def _put(self, data: bytes) -> None:
        if data:
            self._stream.write(data)
            self.size += len(data)
            self.writes += 1

    def _put_rotating(self, lines: Iterable[str]) -> None:
        chunk: list[bytes] = []
        chunk_size = 0
        for line in lines:
            data = line.encode(ENCODING, ERRORS)
            if self.size + chunk_size + len(data) > self.max_bytes and self.size + chunk_size > 0:
                self._put(b"".join(chunk))
                chunk, chunk_size = [], 0
                self._rotate()
            chunk.append(data)
            chunk_size += len(data)
        self._put(b"".join(chunk))

    def _rotate(self) -> None:
        self._stream.close()
        base = str(self.path)
        try:
            for n in range(self.backups - 1, 0, -1):
                older = f"{base}.{n}"
                if os.path.exists(older):
                    os.replace(older, f"{base}.{n + 1}")
            os.replace(base, f"{base}.1")
            self.rotations += 1
        finally:  # a rename that failed leaves the file where it was: go on writing to it
            self._stream = self.path.open("ab")
            self.size = os.fstat(self._stream.fileno()).st_size

    def close(self) -> None:
        self._stream.close()
