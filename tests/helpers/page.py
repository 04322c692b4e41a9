"""The installer page's browser tests' parts: Debian's Chromium driven by Playwright (never a browser
download), a bridge with its local API on a free port, and a page on another origin."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from bridge.config import Config, parse_config
from tests.conftest import FAST_OCPP, make_config
from tests.processes import free_port

CHROMIUM = "/usr/bin/chromium"
STATIC = Path(__file__).resolve().parents[2] / "bridge" / "api" / "static"
# The screenshots the tests take: into docs/images (shown in the README) with UPDATE_SCREENSHOTS=1, else
# into a directory of their own, so that `make test` leaves the work tree as it found it.
DOC_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
IMAGES = DOC_IMAGES if os.environ.get("UPDATE_SCREENSHOTS") == "1" else Path(tempfile.mkdtemp(prefix="page-"))
PHONE = {"width": 412, "height": 915}  # a common phone's CSS viewport


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None ("make test" installs both on Debian)."""
    if shutil.which("chromium") is None and not Path(CHROMIUM).exists():
        return "Debian's chromium is not installed (scripts/system-deps.sh test installs it)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e .[test])"
    return None


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """A headless Chromium of the system's package, closed on exit."""
    missing = chromium_missing()
    if missing is not None:
        pytest.fail(f"the browser tests need it: {missing}")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            await browser.close()


def page_config(csms_url: str, tmp_path: Any, port: int, token: str | None = None, **fields: Any) -> Config:
    """A bridge with one simulated charger and its API on 127.0.0.1:`port` (with `token`, if given)."""
    config = make_config(csms_url, tmp_path, api=f"127.0.0.1:{port}", **fields)
    if token is None:
        return config
    return dataclasses.replace(config, api=dataclasses.replace(config.api, token=token))


def config_file(csms_url: str, tmp_path: Path, port: int, password: str) -> Config:
    """A bridge loaded from a configuration FILE (what the page's Configuration section shows), with a
    secret in it: the charge point's HTTP Basic password."""
    doc = {
        "state_dir": str(tmp_path / "state"),
        "api": {"listen": f"127.0.0.1:{port}"},
        "charge_points": [{
            "id": "CP-1", "csms_url": csms_url, "password": password,
            "reconnect": {"initial_s": 0.2, "max_s": 1.0}, "ocpp": FAST_OCPP,
            "connectors": [{"id": 1, "charger": {"type": "simulated"}}],
        }],
    }  # fmt: skip
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return parse_config(path.read_text(encoding="utf-8"), str(path))


@contextlib.asynccontextmanager
async def foreign_site(html: str, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """A web server on another port (another origin) serving `html` at /, as a hostile site would;
    yields its base URL."""
    app = web.Application()

    async def index(request: web.Request) -> web.Response:
        return web.Response(text=html, content_type="text/html")

    app.router.add_get("/", index)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://{host}:{port}/"
    finally:
        await runner.cleanup()


async def frame_rows(page: Any) -> list[dict[str, str]]:
    """The live log's rows as the page shows them, top to bottom."""
    rows: list[dict[str, str]] = await page.eval_on_selector_all(
        "#log-table tbody tr",
        """trs => trs.map(tr => ({seq: tr.dataset.seq, dir: tr.className, action: tr.cells[2].textContent,
                                  fields: tr.cells[3].textContent}))""",
    )
    return rows


_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "upgrade", "host"}


@contextlib.asynccontextmanager
async def prefix_proxy(upstream_port: int, prefix: str = "/bridge") -> AsyncIterator[str]:
    """A reverse proxy serving the bridge under `prefix`, as the nginx example in
    docs/installer-page.md does: the prefix stripped, the browser's Host kept, X-Forwarded-Prefix
    set, answers streamed (the live log) and passed on as they are (gzip too). Yields the page's URL."""
    import aiohttp

    client = aiohttp.ClientSession(auto_decompress=False, timeout=aiohttp.ClientTimeout(total=None))

    async def forward(request: web.Request) -> web.StreamResponse:
        url = f"http://127.0.0.1:{upstream_port}/{request.match_info['tail']}"
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        headers["Host"] = request.host
        headers["X-Forwarded-Prefix"] = prefix
        async with client.request(
            request.method, url, params=request.query, headers=headers, data=await request.read(),
            allow_redirects=False,
        ) as upstream:  # fmt: skip
            answer = web.StreamResponse(status=upstream.status)
            for name, value in upstream.headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    answer.headers.add(name, value)
            await answer.prepare(request)
            async for chunk in upstream.content.iter_any():
                await answer.write(chunk)
            await answer.write_eof()
            return answer

    app = web.Application()
    app.router.add_route("*", prefix + "/{tail:.*}", forward)
    # An open event stream would hold the shutdown for aiohttp's default 60 s: it is cut at once.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}{prefix}/"
    finally:
        await runner.cleanup()
        await client.close()
