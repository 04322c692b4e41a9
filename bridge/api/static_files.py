"""The page's files (bridge/api/static/, shipped in the package): read and gzip-compressed once, at
start, then answered from memory. `{{version}}` in index.html becomes the bridge's version, so its
assets are asked for as `static/app.js?v=<version>` and may be cached for good: a new release asks
for new URLs."""

from __future__ import annotations

import gzip
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from bridge import __version__

STATIC_DIR = Path(__file__).parent / "static"
INDEX = "index.html"
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_TEXT_KINDS = ("application/javascript", "image/svg+xml", "application/json")
_IMMUTABLE = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class StaticFile:
    content_type: str
    body: bytes
    gzipped: bytes


def load_static(folder: Path = STATIC_DIR) -> dict[str, StaticFile]:
    """Every file under `folder` by its relative path ("app.js", "vendor/x.js"), compressed once."""
    files: dict[str, StaticFile] = {}
    if not folder.is_dir():
        return files
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        name = path.relative_to(folder).as_posix()
        body = path.read_bytes()
        if name == INDEX:
            body = body.replace(b"{{version}}", __version__.encode())
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if kind.startswith("text/") or kind in _TEXT_KINDS:
            kind += "; charset=utf-8"
        files[name] = StaticFile(kind, body, gzip.compress(body, compresslevel=9, mtime=0))
    return files


STATIC: web.AppKey[dict[str, StaticFile]] = web.AppKey("static")


def accepts_gzip(request: web.Request) -> bool:
    for item in request.headers.get("Accept-Encoding", "").split(","):
        name, _, params = item.strip().partition(";")
        if name.strip().lower() in ("gzip", "*"):
            return params.replace(" ", "").lower() not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def _answer(request: web.Request, file: StaticFile, cache: str) -> web.Response:
    headers = {"Cache-Control": cache, "Vary": "Accept-Encoding", "X-Content-Type-Options": "nosniff",
               "Content-Security-Policy": CSP, "Referrer-Policy": "same-origin"}  # fmt: skip
    body = file.body
    if accepts_gzip(request):
        body, headers["Content-Encoding"] = file.gzipped, "gzip"
    headers["Content-Type"] = file.content_type
    return web.Response(body=body, headers=headers)


async def index(request: web.Request) -> web.Response:
    file = request.app[STATIC].get(INDEX)
    if file is None:
        return web.json_response({"error": "the page is not installed (api/static/index.html)"}, status=404)
    return _answer(request, file, "no-cache")


async def static_file(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    file = request.app[STATIC].get(name)
    if file is None:
        return web.json_response({"error": f"no file {name!r}"}, status=404)
    return _answer(request, file, _IMMUTABLE if request.query.get("v") == __version__ else "no-cache")
