"""The file a download writes: a temporary name beside the destination, renamed only when complete.

A download cut off midway, or a power cut during it, never leaves a file under the destination's
name: the rename comes after the data and the rename are made durable (fsync of the file, then of
the directory). Methods block; callers run them in a thread.
"""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bridge.durable import sync_directory
from bridge.transfer.errors import Reason, TransferError


class PartFile:
    """Bytes on their way to `dest`: counted, hashed, bounded by `max_bytes`."""

    def __init__(self, dest: Path, max_bytes: int | None) -> None:
        self.dest = dest
        self.max_bytes = max_bytes
        self.size = 0
        self._sha256 = hashlib.sha256()
        fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        self.tmp = Path(name)
        self._file = os.fdopen(fd, "wb")

    def write(self, data: bytes) -> None:
        self.write_chunks((data,))

    def write_chunks(self, chunks: Sequence[bytes]) -> None:
        """Writes and hashes the chunks one after the other, never joined: no copy of the data."""
        self.check_limit(self.size + sum(len(chunk) for chunk in chunks))
        for chunk in chunks:
            try:
                self._file.write(chunk)
            except OSError as exc:
                raise _disk_error(exc, self.dest) from None
            self.size += len(chunk)
            self._sha256.update(chunk)  # releases the GIL on large chunks, as the write does

    def check_limit(self, size: int) -> None:
        if self.max_bytes is not None and size > self.max_bytes:
            raise TransferError(Reason.TOO_LARGE, f"more than the {self.max_bytes} bytes allowed")

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()

    def commit(self) -> None:
        """Makes the file durable and gives it its name."""
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self.tmp, self.dest)
            sync_directory(self.dest.parent)
        except OSError as exc:
            self.discard()
            raise _disk_error(exc, self.dest) from None

    def discard(self) -> None:
        """Removes what was written (idempotent; after a commit, the committed file stays)."""
        try:
            self._file.close()
        except OSError:
            pass  # closing flushes: on a full disk that fails too; the file goes anyway
        self.tmp.unlink(missing_ok=True)


def _disk_error(exc: OSError, dest: Path) -> TransferError:
    if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return TransferError(Reason.DISK_FULL, f"writing {dest}: {exc.strerror}")
    return TransferError(Reason.LOCAL_FILE, f"writing {dest}: {exc.strerror or exc}")
