"""The local HTTP API (a contract: other tools rely on these paths and names; docs/api.md).

GET  /api/v1/status
GET  /metrics                                            (Prometheus text format)
POST /api/v1/charge_points/{cp}/connectors/{n}/sim   {"action": ..., "id_tag"?, "error_code"?}
and the installer's page: GET / and /static/<file> (static_files.py), the login (auth.py), the live
OCPP log (frames.py), probe, configuration and chart data (page_data.py).

When `api.token` is set, every request needs `Authorization: Bearer <token>` or a login's cookie.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bridge.api import auth, frames, page_data, static_files
from bridge.api.common import DAEMON, error, not_found
from bridge.runtime.snapshot import status_json

if TYPE_CHECKING:
    from bridge.chargepoint import ChargePoint
    from bridge.daemon import Daemon

__all__ = ["DAEMON", "charge_point_status", "start_api"]

SIM_ACTIONS = (
    "plug", "unplug", "tap", "ev_suspend", "ev_resume", "fault", "clear_fault", "silence", "answer",
)  # fmt: skip
_error = error


def charge_point_status(cp: ChargePoint) -> dict[str, Any]:
    """GET /api/v1/status for one charge point: its snapshot as JSON (bridge.runtime.snapshot)."""
    return status_json(cp.snapshot())


async def status(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    return web.json_response(
        {"charge_points": [charge_point_status(cp) for cp in daemon.charge_points.values()]}
    )


async def metrics(request: web.Request) -> web.Response:
    from bridge.api.metrics_page import metric_samples
    from bridge.metrics import render

    # Read on the loop; written out in a thread: at 5,000 charge points the text is 170,000 lines
    # (~0.6 s), which would hold every connection's loop as long.
    samples = metric_samples(request.app[DAEMON].charge_points)
    text = await asyncio.to_thread(render, samples)
    return web.Response(text=text, content_type="text/plain", charset="utf-8",
                        headers={"X-Content-Type-Options": "nosniff"})  # fmt: skip


async def sim(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    cp = daemon.charge_points.get(request.match_info["cp"])
    if cp is None:
        return _error(404, f"unknown charge point {request.match_info['cp']!r}")
    try:
        rt = cp.connectors[int(request.match_info["n"])]
    except (KeyError, ValueError):
        return _error(404, f"charge point {cp.cfg.id} has no connector {request.match_info['n']!r}")
    charger = rt.charger.simulator  # also the simulated charger of one with a meter of record
    if charger is None:
        return _error(
            409, f"connector {request.match_info['n']} is a {rt.charger.description}, not simulated"
        )
    try:
        body = await request.json()
    except json.JSONDecodeError:
        return _error(400, "the body must be a JSON object")
    if not isinstance(body, dict):
        return _error(400, "the body must be a JSON object")
    action = body.get("action")
    if action not in SIM_ACTIONS:
        return _error(400, f"action must be one of {', '.join(SIM_ACTIONS)}")
    if action == "tap":
        id_tag = body.get("id_tag")
        if not isinstance(id_tag, str) or not 0 < len(id_tag) <= 20:
            return _error(400, "tap needs id_tag: a string of 1 to 20 characters")
        charger.tap(id_tag)
    elif action == "fault":
        code = body.get("error_code", "OtherError")
        if not isinstance(code, str):
            return _error(400, "error_code must be a string")
        charger.fault(code, body.get("info") if isinstance(body.get("info"), str) else None)
    else:
        getattr(charger, action)()
    return web.json_response({"ok": True, "action": action})


def build_app(daemon: Daemon) -> web.Application:
    """The API's application: its routes, the token and session guard, the page's files."""
    app = web.Application(middlewares=[auth.guard, not_found])
    app[DAEMON] = daemon
    app[auth.AUTH] = auth.new_auth(daemon.config.api.token)
    app[static_files.STATIC] = static_files.load_static()
    app[frames.STREAMS] = set()
    app.on_shutdown.append(frames.end_streams)
    add = app.router
    add.add_get("/", static_files.index)
    add.add_get("/static/{name:.+}", static_files.static_file)
    add.add_get("/api/v1/session", auth.session)
    add.add_post("/api/v1/login", auth.login)
    add.add_post("/api/v1/logout", auth.logout)
    add.add_get("/api/v1/status", status)
    add.add_get("/api/v1/config", page_data.config)
    add.add_get("/metrics", metrics)
    connector = "/api/v1/charge_points/{cp}/connectors/{n}"
    add.add_post(f"{connector}/sim", sim)
    add.add_post(f"{connector}/probe", page_data.probe)
    add.add_get(f"{connector}/readings", page_data.readings)
    add.add_get("/api/v1/charge_points/{cp}/frames", frames.frames)
    add.add_get("/api/v1/charge_points/{cp}/frames/stream", frames.stream)
    return app


async def start_api(daemon: Daemon, host: str, port: int) -> tuple[web.AppRunner, tuple[str, int]]:
    app = build_app(daemon)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0] if runner.addresses else (host, port)
    return runner, (str(bound[0]), int(bound[1]))
