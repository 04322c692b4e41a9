"""One HTTP request to a device over the shared session: its status and its body decoded, or
DeviceUnreachable in words that name the device. What an answer means is each driver's."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from adapters.base import DeviceUnreachable

if TYPE_CHECKING:
    import aiohttp
    import yarl


async def request(
    session: aiohttp.ClientSession,
    method: str,
    url: str | yarl.URL,
    *,
    where: str,
    timeout_s: float,
    **kwargs: Any,
) -> tuple[int, Any]:
    """(HTTP status, the body's JSON, or its text when it is not JSON: the caller names what it
    expected, the text is kept for its message); DeviceUnreachable for no answer or a late one."""
    import aiohttp

    try:
        async with session.request(
            method, url, timeout=aiohttp.ClientTimeout(total=timeout_s), **kwargs
        ) as response:
            status, raw = response.status, await response.read()
    except TimeoutError as exc:
        raise DeviceUnreachable(f"no answer from {where} within {timeout_s:g} s") from exc
    except aiohttp.ClientError as exc:
        raise DeviceUnreachable(f"{where}: {str(exc) or type(exc).__name__}") from exc
    text = raw.decode("utf-8", "replace")
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text
