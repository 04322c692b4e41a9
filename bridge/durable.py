"""Making a rename durable: what the files written atomically (a temporary file, fsync, os.replace)
need after the rename."""

from __future__ import annotations

import os
from pathlib import Path


def sync_directory(directory: Path) -> None:
    """A rename is durable only once its directory is: fsync the directory (blocking: in a thread)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
