"""The installer page (bridge/api/static) in headless Chromium against a running bridge and the strict
central system: the overview follows a session, the live log shows its frames with the secrets masked,
probe, login, CSRF, render time on a throttled CPU and the page's size over the wire."""

from __future__ import annotations

import asyncio
import gzip
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from ocpp.v16 import call

from tests.conftest import running
from tests.csms import StrictCentralSystem
from tests.helpers.page import (
    IMAGES,
    PHONE,
    STATIC,
    chromium,
    config_file,
    foreign_site,
    frame_rows,
    page_config,
    prefix_proxy,
)
from tests.processes import free_port, vmrss_mib

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),  # one browser for the module, in the module's loop
    pytest.mark.alone,  # a browser under CPU throttling: timed, and heavy on the CPU (pyproject.toml)
]
# Never skipped: make test installs Debian's chromium and the playwright package, and a browser test
# that silently did not run would pass a page nobody looked at. Without them: one clear failure each.

UPDATE_S = 2.0  # the overview follows the bridge within this (it polls every second)
CONNECTOR = '[data-cp="CP-1"] [data-connector="1"]'


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Any]:
    async with chromium() as b:
        yield b


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Any) -> AsyncIterator[Any]:
    context = await browser.new_context(viewport=PHONE, device_scale_factor=1)
    p = await context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    yield p
    await context.close()
    assert not errors, f"the page's scripts failed: {errors}"


async def _text_within(page: Any, selector: str, wanted: str, seconds: float) -> float:
    """Waits until `selector`'s text contains `wanted`; returns how long it took."""
    t0 = time.monotonic()
    await page.wait_for_function(
        "([s, w]) => { const e = document.querySelector(s); return e && e.textContent.includes(w); }",
        arg=[selector, wanted],
        timeout=seconds * 1000,
    )
    return time.monotonic() - t0


async def test_the_overview_follows_a_session_and_the_live_log_shows_its_frames_masked(
    page: Any, tmp_path: Any
) -> None:
    port = free_port()
    key = secrets.token_hex(20)
    async with StrictCentralSystem() as csms, running(page_config(csms.url, tmp_path, port)):
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)
        await page.goto(f"http://127.0.0.1:{port}/")
        await _text_within(page, f"{CONNECTOR} .conn-status", "Available", 5)
        await _text_within(page, '[data-cp="CP-1"] .link', "accepted", UPDATE_S)
        assert csms.url in await page.text_content('[data-cp="CP-1"] .url')
        assert await page.text_content('[data-cp="CP-1"] .hb') == "every 300 s"

        # The simulated charger's buttons drive the session (POSTs with the page's CSRF token); each
        # step shows in the overview within 2 s of the bridge acting on it.
        await page.click(f"{CONNECTOR} [data-act=plug]")
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Preparing")
        assert await _text_within(page, f"{CONNECTOR} .conn-status", "Preparing", UPDATE_S) < UPDATE_S
        await page.fill(f"{CONNECTOR} input[name=id_tag]", "TAG-42")
        await page.evaluate("window.notReloaded = true")
        await page.press(f"{CONNECTOR} input[name=id_tag]", "Enter")  # submits no form: no reload
        await asyncio.sleep(0.3)
        assert await page.evaluate("window.notReloaded === true") and "id_tag" not in page.url
        await page.click(f"{CONNECTOR} [data-act=tap]")
        start = await csms.wait_for_call("CP-1", "StartTransaction")
        assert start["idTag"] == "TAG-42"
        tx = await csms.wait_until(lambda: csms.last_transaction_id, what="StartTransaction's answer")
        await _text_within(page, f"{CONNECTOR} .tx", f"#{tx}, tag TAG-42", UPDATE_S)
        await _text_within(page, f"{CONNECTOR} .conn-status", "Charging", UPDATE_S)
        # The session's chart: the bridge keeps a reading every 5 s, the page draws from the second.
        await page.wait_for_selector(f"{CONNECTOR} .chart:not([hidden]) polyline.p", timeout=8000)
        assert "kW" in await page.text_content(f"{CONNECTOR} .chart svg")
        await page.locator("#overview").screenshot(path=str(IMAGES / "page-overview.png"))

        await page.click(f"{CONNECTOR} [data-act=unplug]")
        await csms.wait_for_call("CP-1", "StopTransaction")
        assert await _text_within(page, f"{CONNECTOR} .tx", "none", UPDATE_S) < UPDATE_S
        await _text_within(page, f"{CONNECTOR} .conn-status", "Available", UPDATE_S)

        rows = await frame_rows(page)
        seqs = [int(r["seq"]) for r in rows]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), seqs
        calls = [r["action"] for r in rows if r["dir"] == "out" and "✓" not in r["action"]]
        session = [a for a in calls if a in ("Authorize", "StartTransaction", "StopTransaction")]
        assert session[-2:] == ["StartTransaction", "StopTransaction"], calls
        started = next(i for i, r in enumerate(rows) if r["action"] == "StartTransaction")
        answered = next(i for i, r in enumerate(rows) if r["action"] == "StartTransaction ✓")
        assert started < answered and f"transactionId={tx}" in rows[answered]["fields"]
        preparing = next(i for i, r in enumerate(rows) if "status=Preparing" in r["fields"])
        assert preparing < started
        assert "idTag=TAG-42" in rows[started]["fields"]

        # Filter by action, then pause: a paused log holds new frames back until resumed.
        await page.select_option("#log-filter", "StartTransaction")
        visible = await page.eval_on_selector_all("#log-table tbody tr:not([hidden])", "t => t.length")
        assert visible == 2
        await page.select_option("#log-filter", "")
        await page.click("#log-pause")
        shown = len(await frame_rows(page))
        await csms.call("CP-1", call.GetConfiguration(key=["HeartbeatInterval"]))
        await _text_within(page, "#log-state", "new frame(s) waiting", UPDATE_S)
        assert len(await frame_rows(page)) == shown
        await page.click("#log-pause")
        await _text_within(page, "#log-table tbody", "GetConfiguration ✓", UPDATE_S)

        # A secret crosses the wire: the log shows the frame, its value masked.
        await csms.call("CP-1", call.ChangeConfiguration(key="AuthorizationKey", value=key))
        await _text_within(page, "#log-table tbody", "key=AuthorizationKey value=***", UPDATE_S)
        await _text_within(page, "#log-table tbody", "ChangeConfiguration ✓", UPDATE_S)
        assert key not in await page.content() and key.upper() not in await page.content()

        download = await page.get_attribute("#log-download", "href")
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/{download}") as r:
            assert r.status == 200 and r.content_type == "application/x-ndjson"
            body = await r.text()
        assert '"AuthorizationKey"' in body and key not in body
        await page.locator("#log-table tr[data-action=StartTransaction]").first.evaluate(
            "tr => tr.parentElement.closest('.scroll').scrollTop = tr.offsetTop - 120"
        )
        await page.locator("#log").screenshot(path=str(IMAGES / "page-live-log.png"))

        # Every control has a name a screen reader can say.
        unnamed = await page.eval_on_selector_all(
            "input, select, button",
            "es => es.filter(e => !e.labels?.length && !e.getAttribute('aria-label')"
            " && !e.textContent.trim()).map(e => e.outerHTML)",
        )
        assert unnamed == []

        # The central system goes away: the link shows offline and why, in words.
        await csms.stop()
        await _text_within(page, '[data-cp="CP-1"] .link', "offline", UPDATE_S)
        await _text_within(page, '[data-cp="CP-1"] .error', "is the central system running?", UPDATE_S)
    csms.assert_clean()


async def test_probe_and_the_configuration_appear(page: Any, tmp_path: Any) -> None:
    port = free_port()
    password = "pw-" + secrets.token_urlsafe(12)
    async with StrictCentralSystem(password=password) as csms:
        config = config_file(csms.url, tmp_path, port, password)
        async with running(config):
            await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)
            await page.goto(f"http://127.0.0.1:{port}/")
            probe = '#probes [data-cp="CP-1"][data-connector="1"]'
            await page.click(f"{probe} button")
            await _text_within(page, f"{probe} .verdict", "OK", 5)
            lines = await page.text_content(f"{probe} pre")
            assert "plugged: no" in lines and "energy register: 0 Wh" in lines, lines
            # A device that stops answering (a cut cable): FAILED, and why.
            sim = f"http://127.0.0.1:{port}/api/v1/charge_points/CP-1/connectors/1/sim"
            async with aiohttp.ClientSession() as http, http.post(sim, json={"action": "silence"}) as r:
                assert r.status == 200
            await page.click(f"{probe} button")
            await _text_within(page, f"{probe} .verdict", "FAILED", 10)
            assert "no reading" in await page.text_content(f"{probe} .probe-error")

            await page.click("#config-load")
            await _text_within(page, "#config-out", "check: OK", 5)
            text = await page.text_content("#config-out pre")
            assert "id: CP-1" in text and "password: '***'" in text, text
            assert password not in await page.content()


async def test_a_login_is_required_with_a_token_and_a_wrong_token_is_refused(
    page: Any, tmp_path: Any
) -> None:
    port = free_port()
    token = secrets.token_urlsafe(16)
    async with StrictCentralSystem() as csms, running(page_config(csms.url, tmp_path, port, token=token)):
        await page.goto(f"http://127.0.0.1:{port}/")
        await page.wait_for_selector("#login:not([hidden])")
        assert await page.is_hidden("#app")
        assert await page.evaluate("fetch('api/v1/status').then(r => r.status)") == 401

        await page.fill("#token", "not-the-token")
        await page.click("#login-form button")
        await _text_within(page, "#login-error", "Wrong token", 5)
        assert await page.is_hidden("#app")

        await page.fill("#token", token)
        await page.click("#login-form button")
        await _text_within(page, f"{CONNECTOR} .conn-status", "Available", 5)
        cookies = await page.context.cookies()
        session = next(c for c in cookies if c["name"] == "ocpp_bridge_session")
        assert session["httpOnly"] and session["sameSite"] == "Strict" and token not in session["value"]
        assert "ocpp_bridge_session" not in await page.evaluate("document.cookie")
        assert token not in await page.content()

        # The login lost (its cookie gone): the form; logged in again, the live log streams again.
        await page.context.clear_cookies()
        await page.wait_for_selector("#login:not([hidden])", timeout=10_000)
        await page.fill("#token", token)
        await page.click("#login-form button")
        await _text_within(page, f"{CONNECTOR} .conn-status", "Available", 5)
        await page.click(f"{CONNECTOR} [data-act=plug]")
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Preparing")
        await page.wait_for_function(
            "() => document.querySelector('#log-table tbody').textContent.includes('Preparing')", timeout=5000
        )

        # Logged out, the session is gone: the login form again.
        await page.click("#logout")
        await page.wait_for_selector("#login:not([hidden])")
        assert await page.evaluate("fetch('api/v1/status').then(r => r.status)") == 401


async def test_the_page_works_behind_a_reverse_proxy_under_a_prefix(page: Any, tmp_path: Any) -> None:
    port = free_port()
    token = secrets.token_urlsafe(16)
    async with (
        StrictCentralSystem() as csms,
        running(page_config(csms.url, tmp_path, port, token=token)),
        prefix_proxy(port, "/bridge") as url,
    ):
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)
        await page.goto(url)
        await page.fill("#token", token)
        await page.click("#login-form button")
        await _text_within(page, f"{CONNECTOR} .conn-status", "Available", 5)
        session = next(c for c in await page.context.cookies() if c["name"] == "ocpp_bridge_session")
        assert session["path"] == "/bridge/"
        # A POST through the proxy (CSRF token, the proxy's Origin) and the live log's stream through it.
        await page.click(f"{CONNECTOR} [data-act=plug]")
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Preparing")
        await _text_within(page, f"{CONNECTOR} .conn-status", "Preparing", UPDATE_S)
        await _text_within(page, "#log-table tbody", "status=Preparing", UPDATE_S)
        download = await page.get_attribute("#log-download", "href")
        assert download == "api/v1/charge_points/CP-1/frames?limit=500"  # relative: under the prefix


HOSTILE = """<!doctype html><title>hostile</title><script>
fetch(%r, {method: "POST", mode: "no-cors", credentials: "include",
           headers: {"Content-Type": "text/plain"}, body: '{"action": "plug"}'});
</script>"""


@pytest.mark.parametrize(
    ("host", "with_token"),
    [("127.0.0.1", True), ("localhost", True), ("localhost", False)],  # same site, other port; another site
)
async def test_a_post_from_another_origin_is_refused(
    page: Any, tmp_path: Any, host: str, with_token: bool
) -> None:
    port = free_port()
    token = secrets.token_urlsafe(16) if with_token else None
    base = f"http://127.0.0.1:{port}/"
    sim = f"{base}api/v1/charge_points/CP-1/connectors/1/sim"
    async with StrictCentralSystem() as csms, running(page_config(csms.url, tmp_path, port, token=token)):
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)
        await page.goto(base)
        if token is not None:
            await page.fill("#token", token)
            await page.click("#login-form button")
        await _text_within(page, f"{CONNECTOR} .conn-status", "Available", 5)

        if token is not None:  # the same origin without the CSRF header: refused although the cookie is sent
            refused = await page.evaluate(
                """url => fetch(url, {method: "POST", body: '{"action": "plug"}',
                                      headers: {"Content-Type": "application/json"}})
                          .then(async r => [r.status, await r.text()])""",
                sim,
            )
            assert refused == [403, '{"error": "cross-site request refused"}']

        async with foreign_site(HOSTILE % sim, host) as hostile:
            other = await page.context.new_page()
            async with other.expect_response(sim) as answer:
                await other.goto(hostile)
            response = await answer.value
            # The browser marks it Sec-Fetch-Site same-site (another port of 127.0.0.1) or cross-site:
            # refused by that mark (403; its body is opaque to the test) before the body's type
            # (text/plain: 415) or the missing cookie (another site: 401) are looked at, token or not.
            assert response.status == 403
            await other.close()
        await asyncio.sleep(0.3)  # what a refused plug would have sent by now
        assert not [p for p in csms.calls("CP-1", "StatusNotification") if p["status"] == "Preparing"]

        # The page itself may: the same POST with its CSRF token and its own Origin goes through.
        await page.click(f"{CONNECTOR} [data-act=plug]")
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Preparing")


async def _render_ms(browser: Any, url: str, throttle: float) -> tuple[float, float]:
    """A first visit in a fresh context (nothing cached) at `throttle`x CPU: the browser's own clock
    from the navigation's start to both connectors' status shown (polled at every animation frame),
    and when the page's scripts had run."""
    context = await browser.new_context(viewport=PHONE)
    try:
        page = await context.new_page()
        cdp = await context.new_cdp_session(page)
        await cdp.send("Emulation.setCPUThrottlingRate", {"rate": throttle})
        await page.goto(url)
        rendered = await page.wait_for_function(
            """() => { const s = [...document.querySelectorAll('.conn-status')];
                       return s.length === 2 && s.every(e => e.textContent) && performance.now(); }""",
            timeout=5000,
        )
        scripts: float = await page.evaluate(
            "performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd"
        )
        return float(await rendered.json_value()), scripts
    finally:
        await context.close()


async def test_the_page_renders_within_a_second_on_a_throttled_cpu(browser: Any, tmp_path: Any) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    async with StrictCentralSystem() as csms, running(page_config(csms.url, tmp_path, port, connectors=2)):
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 2)
        await _render_ms(browser, url, 1)  # the browser's own start-up (fonts, V8) is not the page's
        # Chromium slowed down 4 times: a phone-class CPU. The best of three first visits: the test
        # shares its 2 cores with other workers, which a phone beside a wallbox does not.
        runs = [await _render_ms(browser, url, 4) for _ in range(3)]
    print(
        "at 4x CPU throttling, both connectors shown at "
        + ", ".join(f"{shown:.0f} ms (scripts run by {scripts:.0f} ms)" for shown, scripts in runs)
    )
    assert min(shown for shown, _ in runs) < 1000


async def test_the_bridge_grows_by_under_5_mib_with_the_page_open_and_the_log_streaming(
    page: Any, tmp_path: Any
) -> None:
    """The daemon runs in this process: its RSS before the page is opened, and after the page has
    followed a session and 300 more frames over its event stream."""
    port = free_port()
    async with StrictCentralSystem() as csms, running(page_config(csms.url, tmp_path, port)):
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/") as r:
            assert r.status == 200
        before = vmrss_mib()
        await page.goto(f"http://127.0.0.1:{port}/")
        await _text_within(page, f"{CONNECTOR} .conn-status", "Available", 5)
        await page.click(f"{CONNECTOR} [data-act=plug]")
        await page.click(f"{CONNECTOR} [data-act=tap]")
        await _text_within(page, f"{CONNECTOR} .conn-status", "Charging", 5)
        for _ in range(150):
            await csms.call("CP-1", call.GetConfiguration(key=["HeartbeatInterval"]))
        # 300 frames of GetConfiguration after the session's: the page keeps the newest 300 rows. Waited
        # for whole (the last row shows a GetConfiguration as soon as the first of them arrives).
        await page.wait_for_function(
            """() => { const r = document.querySelectorAll("#log-table tbody tr");
                return r.length === 300 && r[0].cells[2].textContent.startsWith("GetConfiguration"); }""",
            timeout=10 * UPDATE_S * 1000,
        )
        rows = await frame_rows(page)
        assert len(rows) == 300 and rows[0]["action"].startswith("GetConfiguration"), rows[:3]
        grown = vmrss_mib() - before
    print(f"the bridge's process grew by {grown:.1f} MiB with the page open and 300 frames streamed")
    assert grown < 5.0


async def test_the_page_and_its_assets_are_under_100_kib_gzip_compressed(tmp_path: Any) -> None:
    files = [p for p in STATIC.iterdir() if p.is_file()]
    assert {p.name for p in files} >= {"index.html", "app.js", "app.css"}
    on_disk = sum(len(gzip.compress(p.read_bytes(), 9)) for p in files)
    assert on_disk < 100 * 1024, on_disk
    port = free_port()
    async with StrictCentralSystem() as csms, running(page_config(csms.url, tmp_path, port)):
        headers = {"Accept-Encoding": "gzip"}
        async with aiohttp.ClientSession(auto_decompress=False) as http:
            over_wire = 0
            async with http.get(f"http://127.0.0.1:{port}/", headers=headers) as r:
                assert r.status == 200 and r.headers.get("Content-Encoding") == "gzip"
                html = gzip.decompress(await r.read()).decode()
                over_wire += int(r.headers["Content-Length"])
            assert "{{version}}" not in html
            for path in ("static/app.js", "static/app.css"):
                asset = html.split(f'"{path}', 1)[1].split('"', 1)[0]  # its ?v=<version> query
                async with http.get(f"http://127.0.0.1:{port}/{path}{asset}", headers=headers) as r:
                    assert r.status == 200 and r.headers.get("Content-Encoding") == "gzip"
                    over_wire += len(await r.read())
    print(f"page and assets: {on_disk} bytes gzip-compressed on disk, {over_wire} bytes over the wire")
    assert over_wire < 100 * 1024
