"""HTTP and HTTPS transfers with aiohttp: a GET streamed to a file, a PUT or a multipart POST
streamed from one (aiohttp reads a file body in its executor)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

import aiohttp

from bridge.transfer.errors import Reason, TransferError
from bridge.transfer.files import PartFile
from bridge.transfer.urls import Location, scrub

MIB = 1024 * 1024
# aiohttp's read buffer for the body: it stops reading the socket above twice this (64 KiB by
# default: a pause and a resume of the socket at nearly every read at loopback speed).
READ_BUFFER = MIB
BATCH = MIB  # bytes handed to the writer thread at once: few thread hops, bounded memory


class _Writer:
    """Writes batches of chunks to `part` in a worker thread, one batch in flight while the next
    is read. At most two batches are held: the one being written and the one being gathered."""

    def __init__(self, part: PartFile) -> None:
        self._part = part
        self._writing: asyncio.Task[None] | None = None

    async def submit(self, chunks: list[bytes]) -> None:
        await self.drain()  # the previous batch first: the order of the bytes, and the memory bound
        self._writing = asyncio.ensure_future(asyncio.to_thread(self._part.write_chunks, chunks))

    async def drain(self) -> None:
        """Waits for the batch in flight; raises its error."""
        if self._writing is not None:
            # Shielded: cancelling the download must not let go of a thread still writing the file.
            await asyncio.shield(self._writing)
            self._writing = None

    async def settle(self) -> None:
        """After a failure or a cancellation: lets the thread finish with the file before the caller
        removes it. The write's own error, if any, is dropped: the first failure is the one raised."""
        if self._writing is not None:
            await asyncio.wait([self._writing])
            if not self._writing.cancelled():
                self._writing.exception()  # retrieved: no "exception was never retrieved" warning
            self._writing = None


@asynccontextmanager
async def _session(location: Location, timeout_s: float) -> AsyncIterator[aiohttp.ClientSession]:
    # timeout_s bounds the connection and each wait for data, not the whole transfer: a large
    # image on a slow but live link still arrives. No decompression: the bytes are the file.
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout_s, sock_read=timeout_s)
    try:
        async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as session:
            yield session
    except TransferError:
        raise
    except TimeoutError:  # aiohttp's connect and read timeouts are TimeoutErrors too
        raise TransferError(
            Reason.TIMEOUT, f"{location.display}: no answer or data within {timeout_s} s"
        ) from None
    except (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError, ssl.SSLError) as exc:
        raise TransferError(Reason.TLS, f"{location.display}: {scrub(str(exc), location)}") from None
    except aiohttp.ClientConnectorError as exc:
        reason = "connection refused" if isinstance(exc.os_error, ConnectionRefusedError) else exc.strerror
        raise TransferError(Reason.REFUSED, f"{location.display}: {scrub(str(reason), location)}") from None
    except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
        raise TransferError(Reason.CUT_OFF, f"{location.display}: {scrub(str(exc), location)}") from None
    except aiohttp.ClientError as exc:
        raise TransferError(Reason.SERVER_ERROR, f"{location.display}: {scrub(str(exc), location)}") from None


_STATUS_REASONS = {
    404: Reason.NOT_FOUND,
    401: Reason.LOGIN_REFUSED,
    403: Reason.LOGIN_REFUSED,
    413: Reason.TOO_LARGE,
}


def _check_status(location: Location, status: int, action: str) -> None:
    if 200 <= status < 300:
        return
    raise TransferError(
        _STATUS_REASONS.get(status, Reason.SERVER_ERROR), f"{action} {location.display}: HTTP {status}"
    )


def _ssl(context: ssl.SSLContext | None) -> ssl.SSLContext | bool:
    return context if context is not None else True  # True: verified against the system's CA store


async def fetch(
    location: Location, url: str, part: PartFile, *, timeout_s: float, context: ssl.SSLContext | None
) -> None:
    """GET `url` into `part` (not committed)."""
    async with (
        _session(location, timeout_s) as session,
        session.get(
            url,
            ssl=_ssl(context),
            headers={"Accept-Encoding": "identity"},
            read_bufsize=READ_BUFFER,
        ) as response,
    ):
        _check_status(location, response.status, "GET")
        announced = response.content_length
        if announced is not None:
            part.check_limit(announced)
        writer = _Writer(part)
        try:
            batch: list[bytes] = []
            batched = received = 0
            # The chunks as aiohttp received them (up to 256 KiB each): no re-chunking, no copy.
            async for chunk, _ in response.content.iter_chunks():
                received += len(chunk)
                part.check_limit(received)  # before it is kept: memory stays bounded too
                batch.append(chunk)
                batched += len(chunk)
                if batched >= BATCH:
                    await writer.submit(batch)
                    batch, batched = [], 0
            if batch:
                await writer.submit(batch)
            await writer.drain()
        except BaseException:
            await writer.settle()
            raise
        if announced is not None and part.size != announced:
            raise TransferError(Reason.CUT_OFF, f"{location.display}: {part.size} of {announced} bytes")


async def send(
    location: Location,
    url: str,
    path: Path,
    *,
    method: Literal["PUT", "POST"],
    field: str,
    timeout_s: float,
    context: ssl.SSLContext | None,
) -> None:
    """PUT the file at `url`, or POST it to `url` as the multipart form field `field`."""
    source = await asyncio.to_thread(path.open, "rb")
    try:
        data: aiohttp.FormData | object = source
        if method == "POST":
            # Unquoted: the file name as it is (RFC 7578), not percent-encoded as aiohttp does by default.
            form = aiohttp.FormData(quote_fields=False)
            form.add_field(field, source, filename=path.name, content_type="application/octet-stream")
            data = form
        async with (
            _session(location, timeout_s) as session,
            session.request(method, url, data=data, ssl=_ssl(context)) as response,
        ):
            _check_status(location, response.status, method)
    finally:
        await asyncio.to_thread(source.close)
