"""The page's files as the daemon serves them: gzip-compressed when the client accepts it, the
version in index.html for cache busting, nothing outside bridge/api/static/, open without a token."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import aiohttp
from yarl import URL

from bridge import __version__
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.helpers.api_page import with_api
from tests.processes import free_port

STATIC = Path(__file__).resolve().parents[1] / "bridge" / "api" / "static"


async def test_the_page_and_its_files(csms: StrictCentralSystem, tmp_path: Any) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    names = sorted(p.relative_to(STATIC).as_posix() for p in STATIC.rglob("*") if p.is_file())
    async with (
        running(with_api(make_config(csms.url, tmp_path), port)),
        aiohttp.ClientSession(auto_decompress=False) as http,
    ):
        async with http.get(f"{base}/", headers={"Accept-Encoding": "gzip"}) as r:
            assert r.status == 200 and r.headers["Content-Encoding"] == "gzip"  # open: the login form
            assert (
                r.headers["Cache-Control"] == "no-cache"
                and "default-src 'self'" in r.headers["Content-Security-Policy"]
            )
            page = gzip.decompress(await r.read())
        assert page == (STATIC / "index.html").read_bytes().replace(b"{{version}}", __version__.encode())
        over_the_wire = len(page)
        for name in names:
            if name == "index.html":
                continue
            async with http.get(
                f"{base}/static/{name}?v={__version__}", headers={"Accept-Encoding": "br, gzip"}
            ) as r:
                assert r.status == 200 and r.headers["Content-Encoding"] == "gzip", name
                assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
                body = await r.read()
                assert gzip.decompress(body) == (STATIC / name).read_bytes()
                over_the_wire += len(body)
            async with http.get(f"{base}/static/{name}", headers={"Accept-Encoding": "identity"}) as r:
                assert "Content-Encoding" not in r.headers and r.headers["Cache-Control"] == "no-cache"
                assert await r.read() == (STATIC / name).read_bytes()
        assert over_the_wire < 100 * 1024  # the budget for the page with all its assets
        async with http.get(f"{base}/static/app.js", headers={"Accept-Encoding": "gzip;q=0"}) as r:
            assert "Content-Encoding" not in r.headers
        # Sent as written (encoded=True): aiohttp's client would resolve the `..` before sending.
        for path in (
            "/static/../server.py", "/static/%2e%2e/server.py", "/static/..%2fserver.py",
            "/static/%2e%2e%2fserver.py", "/static/nothing.js", "/static/",
        ):  # fmt: skip
            async with http.get(URL(base + path, encoded=True)) as r:
                # 404 from the static handler itself (outside /static/ the answer would be 401).
                assert r.status == 404, path
                assert b"import" not in await r.read()
