"""Downloading a file (a firmware image) from an OCPP location to a path, streamed."""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass
from pathlib import Path

from bridge.transfer import ftp_client, http_client
from bridge.transfer.errors import Reason, TransferError
from bridge.transfer.files import PartFile
from bridge.transfer.urls import parse

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DownloadResult:
    path: Path
    size: int  # bytes
    sha256: str  # hex digest of what was written


async def download(
    url: str,
    dest: Path,
    *,
    timeout_s: float,
    max_bytes: int | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> DownloadResult:
    """Fetches `url` (http, https, ftp, ftps) into `dest`, which appears only once complete.

    `timeout_s` bounds connecting and each wait for data (not the whole transfer); `max_bytes`
    bounds the file (announced or received); `ssl_context` replaces the system's CA store (a
    configured CA). Raises TransferError; nothing is left at `dest` or beside it then.
    """
    location = parse(url)
    if not dest.parent.is_dir():
        raise TransferError(Reason.LOCAL_FILE, f"no directory {dest.parent} for {dest.name}")
    part = await asyncio.to_thread(PartFile, dest, max_bytes)
    log.info("downloading %s to %s", location.display, dest)
    try:
        if location.is_ftp:
            await ftp_client.retrieve(location, part, timeout_s=timeout_s, context=ssl_context)
        else:
            await http_client.fetch(location, url, part, timeout_s=timeout_s, context=ssl_context)
        await asyncio.to_thread(part.commit)
    except BaseException:
        part.discard()  # quick (close, unlink), and must happen even when cancelled
        raise
    log.info("downloaded %s: %d bytes, sha256 %s", location.display, part.size, part.sha256)
    return DownloadResult(dest, part.size, part.sha256)
