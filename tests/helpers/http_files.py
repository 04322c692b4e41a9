"""An aiohttp file server for transfer tests, on 127.0.0.1 (HTTP, or HTTPS with a given context).

GET /files/<name> serves `root/<name>`; on request it misbehaves:
GET /cut/<name> announces the whole length, sends half and closes the connection;
GET /slow/<name> sends the first 64 KiB and then stalls until the server stops.
PUT /upload/<name> and a multipart POST /upload (every file field) save into `uploads`.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import BodyPartReader, web

from tests.processes import free_port


@dataclass
class HttpSite:
    base: str  # http(s)://127.0.0.1:<port>
    uploads: Path
    posted_fields: list[str] = field(default_factory=list)  # the form field names of POSTed files


@asynccontextmanager
async def http_files(
    root: Path, uploads: Path, *, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[HttpSite]:
    stop = asyncio.Event()
    site_info = HttpSite("", uploads)

    def file_of(request: web.Request) -> Path:
        path = root / request.match_info["name"]
        if not path.is_file():
            raise web.HTTPNotFound()
        return path

    async def serve(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(file_of(request))

    async def cut(request: web.Request) -> web.StreamResponse:
        data = file_of(request).read_bytes()
        response = web.StreamResponse()
        response.content_length = len(data)
        await response.prepare(request)
        await response.write(data[: len(data) // 2])
        assert request.transport is not None
        request.transport.close()
        return response

    async def slow(request: web.Request) -> web.StreamResponse:
        data = file_of(request).read_bytes()
        response = web.StreamResponse()
        response.content_length = len(data)
        await response.prepare(request)
        await response.write(data[: 64 * 1024])
        await stop.wait()
        return response

    async def put(request: web.Request) -> web.Response:
        with (uploads / request.match_info["name"]).open("wb") as out:
            async for chunk in request.content.iter_chunked(64 * 1024):
                out.write(chunk)
        return web.Response(status=201)

    async def post(request: web.Request) -> web.Response:
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader) or not part.filename:
                continue
            site_info.posted_fields.append(part.name or "")
            with (uploads / Path(part.filename).name).open("wb") as out:
                while chunk := await part.read_chunk(64 * 1024):
                    out.write(chunk)
        return web.Response(status=201)

    app = web.Application()
    app.router.add_get("/files/{name}", serve)
    app.router.add_get("/cut/{name}", cut)
    app.router.add_get("/slow/{name}", slow)
    app.router.add_put("/upload/{name}", put)
    app.router.add_post("/upload", post)
    app.router.add_post("/upload/", post)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=ssl_context).start()
    site_info.base = f"{'https' if ssl_context else 'http'}://127.0.0.1:{port}"
    try:
        yield site_info
    finally:
        stop.set()  # stalled answers end, so the runner's cleanup does not wait for them
        await runner.cleanup()
