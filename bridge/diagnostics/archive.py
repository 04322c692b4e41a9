"""One diagnostics archive (GetDiagnostics, `ocpp-bridge diagnostics`): a tar.gz built with bounded
memory.

Members, in this order: `status.json`, `versions.json`, `config.yaml` (secrets masked),
`store.json`, `devices.json`, `bridge.log` and `frames.log` (the lines of the window). A tar header
needs its member's size before the data, so each log window is first written to an unnamed
temporary file beside the archive, a line at a time, then copied into the archive in blocks: memory
stays at a few buffers whatever the size of the logs (disk: at most one window at a time).

The archive is written as `<dest>.partial` and renamed when complete, so a reader (an upload, an
installer) never sees half of one. Building blocks on file I/O and compression: the daemon runs it
in a thread (`asyncio.to_thread`).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tarfile
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from bridge.diagnostics.logfiles import BRIDGE_LOG, FRAMES_LOG, rotated_files
from bridge.diagnostics.redact import mask_line, redact_value, redacted_config
from bridge.diagnostics.versions import versions
from bridge.diagnostics.window import lines_between

COMPRESS_LEVEL = 6  # 9 costs about twice the time for a few per cent on log text
MEMBER_MODE = 0o644


@dataclass(frozen=True)
class ArchiveParts:
    """What goes into an archive, filled in by the daemon (or the CLI). The dicts must be
    JSON-serialisable (anything else is written with str()); secret fields in them are masked."""

    logs_dir: Path | None  # <state_dir>/logs; None: no log members have lines
    start: datetime | None = None  # the window, both ends inclusive and time-zone aware; None: open
    stop: datetime | None = None
    config_text: str | None = None  # the configuration file as read; None: not available
    status: Mapping[str, Any] = field(default_factory=dict)  # the status snapshot
    store: Mapping[str, Any] = field(default_factory=dict)  # schema version, counts, oldest queued
    devices: Mapping[str, Any] = field(default_factory=dict)  # the last probe of each device


def build_archive(dest: Path, parts: ArchiveParts) -> Path:
    """Writes the archive to `dest` (replacing it) and returns `dest`; OSError if it cannot be written
    (nothing is left behind then), ValueError for a window that is not one."""
    partial = dest.with_name(dest.name + ".partial")
    try:
        with (
            partial.open("wb") as raw,
            tarfile.open(fileobj=raw, mode="w:gz", compresslevel=COMPRESS_LEVEL) as tar,
        ):
            _add_json(tar, "status.json", parts.status)
            _add_json(tar, "versions.json", versions())
            _add_bytes(tar, "config.yaml", _config_member(parts.config_text).encode())
            _add_json(tar, "store.json", parts.store)
            _add_json(tar, "devices.json", parts.devices)
            for name in (BRIDGE_LOG, FRAMES_LOG):
                files = rotated_files(parts.logs_dir / name) if parts.logs_dir is not None else []
                _add_lines(tar, name, lines_between(files, parts.start, parts.stop), dest.parent)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(partial, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
    return dest


def _config_member(text: str | None) -> str:
    if text is None:
        return "# the configuration file could not be read\n"
    return redacted_config(text)


def _info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, int(time.time()), MEMBER_MODE
    info.uname = info.gname = "ocpp-bridge"
    return info


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    tar.addfile(_info(name, len(data)), io.BytesIO(data))


def _add_json(tar: tarfile.TarFile, name: str, value: Mapping[str, Any]) -> None:
    text = json.dumps(redact_value(dict(value)), indent=2, ensure_ascii=False, default=str)
    _add_bytes(tar, name, (text + "\n").encode())


def _add_lines(tar: tarfile.TarFile, name: str, lines: Iterable[bytes], where: Path) -> None:
    with tempfile.TemporaryFile(dir=where, prefix=".diagnostics-") as spool:
        _write_lines(spool, lines)
        size = spool.tell()
        spool.seek(0)
        tar.addfile(_info(name, size), spool)


def _write_lines(spool: IO[bytes], lines: Iterable[bytes]) -> None:
    batch: list[bytes] = []
    for line in lines:  # in batches: one write per line costs more than the selection itself
        batch.append(mask_line(line))
        if len(batch) == 1024:
            spool.writelines(batch)
            batch.clear()
    spool.writelines(batch)
