"""What the API's handler modules share: the daemon they serve, errors as JSON, path lookups."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from bridge.chargepoint import ChargePoint
    from bridge.daemon import Daemon
    from bridge.runtime.connector import ConnectorRuntime

DAEMON: web.AppKey[Daemon] = web.AppKey("daemon")


class NotFound(Exception):
    """A path names a charge point or connector the daemon does not have (answered 404)."""


def error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def charge_point_of(request: web.Request) -> ChargePoint:
    cp = request.app[DAEMON].charge_points.get(request.match_info["cp"])
    if cp is None:
        raise NotFound(f"unknown charge point {request.match_info['cp']!r}")
    return cp


def connector_of(request: web.Request) -> tuple[ChargePoint, int, ConnectorRuntime]:
    cp = charge_point_of(request)
    try:
        n = int(request.match_info["n"])
        return cp, n, cp.connectors[n]
    except (KeyError, ValueError):
        raise NotFound(f"charge point {cp.cfg.id} has no connector {request.match_info['n']!r}") from None


@web.middleware
async def not_found(request: web.Request, handler: object) -> web.StreamResponse:
    """NotFound raised by a handler → 404 with its message."""
    try:
        return await handler(request)  # type: ignore[operator,no-any-return]
    except NotFound as exc:
        return error(404, str(exc))
