"""One HTTP request to a device over the shared session: its status and its body decoded, or
DeviceUnreachable in words that name the device. What an answer means is each driver's.

A device's answer is at most MAX_ANSWER bytes (a status page is a few KiB): a bigger one is refused
before it is all read, so that a broken or hostile device cannot fill the daemon's memory.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

from adapters.base import DeviceRefused, DeviceUnreachable

if TYPE_CHECKING:
    import aiohttp
    import yarl

MAX_ANSWER = 1024 * 1024  # bytes of a device's answer


def basic_auth(user: str, password: str) -> str:
    """The value of an Authorization header for HTTP Basic authentication (RFC 7617, UTF-8)."""
    pair = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return f"Basic {pair}"


async def _body(response: aiohttp.ClientResponse, where: str) -> bytes:
    """The answer's body, read no further than one byte past MAX_ANSWER."""
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_ANSWER:
        chunk = await response.content.read(MAX_ANSWER + 1 - size)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
    raise DeviceRefused(f"{where}: answer larger than 1 MiB")


async def request(
    session: aiohttp.ClientSession,
    method: str,
    url: str | yarl.URL,
    *,
    where: str,
    timeout_s: float,
    **kwargs: Any,
) -> tuple[int, Any]:
    """(HTTP status, the body's JSON, or its text when it is not JSON or nested too deeply to parse:
    the caller names what it expected, the text is kept for its message); DeviceUnreachable for no
    answer or a late one, DeviceRefused for an answer larger than MAX_ANSWER."""
    import aiohttp

    try:
        async with session.request(
            method, url, timeout=aiohttp.ClientTimeout(total=timeout_s), **kwargs
        ) as response:
            status, raw = response.status, await _body(response, where)
    except TimeoutError as exc:
        raise DeviceUnreachable(f"no answer from {where} within {timeout_s:g} s") from exc
    except aiohttp.ClientError as exc:
        raise DeviceUnreachable(f"{where}: {str(exc) or type(exc).__name__}") from exc
    text = raw.decode("utf-8", "replace")
    try:
        return status, json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: `[` nested 100000 deep
        return status, text
