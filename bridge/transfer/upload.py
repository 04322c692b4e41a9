"""Uploading a file (a diagnostics archive) to an OCPP location (D6): FTP/FTPS STOR into the URL's
directory; HTTP(S) PUT to the URL plus the file's name, or a multipart POST to the URL."""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path
from typing import Literal
from urllib.parse import quote, urlsplit, urlunsplit

from bridge.transfer import ftp_client, http_client
from bridge.transfer.errors import Reason, TransferError
from bridge.transfer.urls import parse

log = logging.getLogger(__name__)


async def upload(
    path: Path,
    url: str,
    *,
    method: Literal["PUT", "POST"] = "PUT",
    timeout_s: float,
    field: str = "file",
    ssl_context: ssl.SSLContext | None = None,
) -> None:
    """Sends the file at `path` to the location `url` under its own name; raises TransferError.

    `method` and `field` (the multipart form field) apply to HTTP(S) only; `timeout_s` bounds
    connecting and each wait for the server; `ssl_context` replaces the system's CA store.
    """
    location = parse(url)
    if method not in ("PUT", "POST"):
        raise TransferError(Reason.UNSUPPORTED, f"upload method {method!r}: PUT or POST")
    name = path.name
    if not name or any(ord(c) < 32 for c in name):
        raise TransferError(Reason.LOCAL_FILE, f"{path!r} is not a file name to send")
    if not await asyncio.to_thread(path.is_file):
        raise TransferError(Reason.LOCAL_FILE, f"no file {path} to upload")
    log.info("uploading %s to %s", path, location.display)
    if location.is_ftp:
        await ftp_client.store(location, path, name, timeout_s=timeout_s, context=ssl_context)
    else:
        target = url if method == "POST" else _join(url, name)
        await http_client.send(
            location, target, path, method=method, field=field, timeout_s=timeout_s, context=ssl_context
        )
    log.info("uploaded %s to %s", name, location.display)


def _join(url: str, name: str) -> str:
    """The URL of `name` inside the directory `url` (its query kept)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/" + quote(name)))
