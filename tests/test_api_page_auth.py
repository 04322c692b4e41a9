"""The page's login and CSRF rules against a running daemon, over a real socket (docs/api.md,
"Authentication"): a token set even on loopback means every API call needs it or a login's cookie."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

import bridge.api.auth as auth_module
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.helpers.api_page import TOKEN, cookie_session, login, with_api
from tests.processes import free_port

PLUG = {"action": "plug"}


async def test_login_is_required_and_a_wrong_token_is_refused(
    csms: StrictCentralSystem, tmp_path: Any
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with running(with_api(make_config(csms.url, tmp_path), port)), cookie_session() as http:
        for path in ("/api/v1/status", "/api/v1/config", "/api/v1/charge_points/CP-1/frames", "/metrics"):
            async with http.get(base + path) as r:
                assert r.status == 401, path
        async with http.get(f"{base}/api/v1/session") as r:  # open: the page decides to show the login
            assert await r.json() | {"version": None} == {
                "authenticated": False, "login_required": True, "csrf": None, "version": None,
            }  # fmt: skip
        async with http.post(f"{base}/api/v1/login", json={"token": "wrong"}) as r:
            assert (r.status, await r.json()) == (401, {"error": "wrong token"})
            assert "Set-Cookie" not in r.headers
        async with http.post(f"{base}/api/v1/login", data="not json") as r:
            assert r.status == 415  # text/plain
        async with http.post(
            f"{base}/api/v1/login", data="not json", headers={"Content-Type": "application/json"}
        ) as r:
            assert r.status == 400
        async with http.post(f"{base}/api/v1/login", json={"token": TOKEN}) as r:
            assert r.status == 200
            cookie = r.headers["Set-Cookie"]
            csrf = (await r.json())["csrf"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
        assert TOKEN not in cookie and csrf and TOKEN not in csrf  # an opaque id, never the token
        async with http.get(f"{base}/api/v1/status") as r:
            assert r.status == 200
        async with http.get(f"{base}/api/v1/session") as r:
            assert (await r.json())["authenticated"] is True and (await r.json())["csrf"] == csrf
        async with http.post(f"{base}/api/v1/logout", headers={"X-CSRF-Token": csrf, "Origin": base}) as r:
            assert r.status == 200
        async with http.get(f"{base}/api/v1/status") as r:
            assert r.status == 401  # the session is gone, even for a cookie kept elsewhere


async def test_a_cookie_request_needs_the_csrf_token_and_the_pages_origin(
    csms: StrictCentralSystem, tmp_path: Any
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    sim = f"{base}/api/v1/charge_points/CP-1/connectors/1/sim"
    async with running(with_api(make_config(csms.url, tmp_path), port)), cookie_session() as http:
        csrf = await login(http, base)
        refused = [
            {},  # no CSRF token, no origin
            {"X-CSRF-Token": "wrong", "Origin": base},
            {"X-CSRF-Token": csrf},  # no Origin nor Referer: a browser always sends one
            {"X-CSRF-Token": csrf, "Origin": "http://evil.example:8080"},
            {"X-CSRF-Token": csrf, "Origin": "null"},
            {"X-CSRF-Token": csrf, "Referer": "http://evil.example/page"},
        ]
        for headers in refused:
            async with http.post(sim, json=PLUG, headers=headers) as r:
                assert (r.status, await r.json()) == (403, {"error": "cross-site request refused"}), headers
        assert not csms.calls("CP-1", "StartTransaction")
        async with http.post(
            sim, json={"action": "unplug"}, headers={"X-CSRF-Token": csrf, "Origin": base}
        ) as r:
            assert r.status == 200
        async with http.post(sim, json={"action": "unplug"},
                             headers={"X-CSRF-Token": csrf, "Referer": f"{base}/#log"}) as r:  # fmt: skip
            assert r.status == 200
        # A foreign page cannot log in either (login CSRF), even with the right token.
        async with http.post(
            f"{base}/api/v1/login", json={"token": TOKEN}, headers={"Origin": "http://evil"}
        ) as r:
            assert r.status == 403
    # Tools with the Bearer token are unaffected: no CSRF token, no Origin.
    async with running(with_api(make_config(csms.url, tmp_path), port)), aiohttp.ClientSession() as tool:
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        async with tool.post(sim, json={"action": "unplug"}, headers=bearer) as r:
            assert r.status == 200
        async with tool.get(f"{base}/api/v1/session", headers=bearer) as r:
            assert (await r.json())["authenticated"] is True


async def test_without_a_token_loopback_is_open_but_a_foreign_origin_is_not(
    csms: StrictCentralSystem, tmp_path: Any
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    sim = f"{base}/api/v1/charge_points/CP-1/connectors/1/sim"
    async with running(with_api(make_config(csms.url, tmp_path), port, token=None)), cookie_session() as http:
        async with http.get(f"{base}/api/v1/session") as r:
            session = await r.json()
        assert session["authenticated"] is True and session["login_required"] is False and session["csrf"]
        async with http.post(sim, json={"action": "unplug"}, headers={"Origin": "http://evil.example"}) as r:
            assert r.status == 403  # a web page elsewhere must not drive the charger through the browser
        async with http.post(sim, json={"action": "unplug"}) as r:
            assert r.status == 200  # curl, scripts
        async with http.post(sim, json={"action": "unplug"}, headers={"Origin": base}) as r:
            assert r.status == 200
        async with http.post(f"{base}/api/v1/login", json={"token": "anything"}) as r:
            assert r.status == 200 and "Set-Cookie" not in r.headers
        # DNS rebinding: another site's name resolved to 127.0.0.1 is same-origin to itself; not its Host.
        rebound = {"Host": "evil.example:80", "Origin": "http://evil.example:80"}
        async with http.post(sim, json={"action": "unplug"}, headers=rebound) as r:
            assert r.status == 403
        for host in ("evil.example", "127.0.0.1.nip.io", "localhost.evil"):
            async with http.get(f"{base}/api/v1/status", headers={"Host": host}) as r:
                assert r.status == 403, host
        for host in (f"localhost:{port}", f"[::1]:{port}", "127.0.0.2"):
            async with http.get(f"{base}/api/v1/status", headers={"Host": host}) as r:
                assert r.status == 200, host


async def test_the_cookie_path_follows_the_proxys_prefix(csms: StrictCentralSystem, tmp_path: Any) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with running(with_api(make_config(csms.url, tmp_path), port)), aiohttp.ClientSession() as http:
        headers = {"X-Forwarded-Prefix": "/bridge/", "X-Forwarded-Proto": "https"}
        async with http.post(f"{base}/api/v1/login", json={"token": TOKEN}, headers=headers) as r:
            cookie = r.headers["Set-Cookie"]
        assert "Path=/bridge/" in cookie and "Secure" in cookie


async def test_the_browsers_fetch_site_and_a_json_body_are_required(
    csms: StrictCentralSystem, tmp_path: Any
) -> None:
    """Sec-Fetch-Site from another site (or another origin of this one) is refused for every method,
    Bearer token or not; a POST body must be application/json (a form cannot send it)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    sim = f"{base}/api/v1/charge_points/CP-1/connectors/1/sim"
    async with running(with_api(make_config(csms.url, tmp_path), port, token=None)), cookie_session() as http:
        for site in ("cross-site", "same-site"):
            async with http.get(f"{base}/api/v1/status", headers={"Sec-Fetch-Site": site}) as r:
                assert (r.status, await r.json()) == (
                    403,
                    {"error": "cross-site request refused (Sec-Fetch-Site)"},
                )
            async with http.post(sim, json={"action": "unplug"}, headers={"Sec-Fetch-Site": site}) as r:
                assert r.status == 403, site
            async with http.get(
                f"{base}/api/v1/status", headers={"Sec-Fetch-Site": site, "Authorization": f"Bearer {TOKEN}"}
            ) as r:
                assert r.status == 403, site
        for site in ("same-origin", "none"):
            async with http.get(f"{base}/api/v1/status", headers={"Sec-Fetch-Site": site}) as r:
                assert r.status == 200, site
        link = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}
        async with http.get(f"{base}/", headers=link) as r:
            assert r.status == 200  # a link followed to the page itself
        async with http.get(f"{base}/api/v1/status", headers=link) as r:
            assert r.status == 403
        for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
            async with http.post(
                sim, data='{"action":"unplug"}', headers={"Content-Type": content_type}
            ) as r:
                assert r.status == 415, content_type
        async with http.post(sim, json={"action": "unplug"}) as r:
            assert r.status == 200


async def test_wrong_tokens_sent_in_parallel_wait_in_line(
    csms: StrictCentralSystem, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each wrong token, at the login or as a Bearer, costs WRONG_TOKEN_DELAY_S, one after another
    daemon-wide: 5 guesses sent at once take 5 delays, not one."""
    monkeypatch.setattr(auth_module, "WRONG_TOKEN_DELAY_S", 0.1)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with running(with_api(make_config(csms.url, tmp_path), port)), aiohttp.ClientSession() as http:

        async def guess_login(n: int) -> int:
            async with http.post(f"{base}/api/v1/login", json={"token": f"guess-{n}"}) as r:
                return r.status

        async def guess_bearer(n: int) -> int:
            async with http.get(f"{base}/api/v1/status", headers={"Authorization": f"Bearer guess-{n}"}) as r:
                return r.status

        for guess in (guess_login, guess_bearer):
            started = time.monotonic()
            assert await asyncio.gather(*(guess(n) for n in range(5))) == [401] * 5
            assert time.monotonic() - started >= 0.5, guess.__name__
