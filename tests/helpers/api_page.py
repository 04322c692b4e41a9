"""What the page backend's API tests share: a configuration whose API has a token, a login."""

from __future__ import annotations

import dataclasses
from typing import Any

import aiohttp

from bridge.config import Config

TOKEN = "t0ken-for-the-page"


def with_api(config: Config, port: int, token: str | None = TOKEN) -> Config:
    """`config` with its API on 127.0.0.1:`port`, guarded by `token` (None: open to loopback)."""
    return dataclasses.replace(
        config, api=dataclasses.replace(config.api, listen=("127.0.0.1", port), token=token)
    )


async def login(http: aiohttp.ClientSession, base: str, token: str = TOKEN) -> str:
    """Logs `http` in (its cookie jar keeps the cookie); the session's CSRF token."""
    async with http.post(f"{base}/api/v1/login", json={"token": token}) as r:
        assert r.status == 200, await r.text()
        body: dict[str, Any] = await r.json()
    return str(body["csrf"])


def cookie_session() -> aiohttp.ClientSession:
    """A client that keeps cookies of 127.0.0.1 (aiohttp's default jar refuses those of an IP)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
