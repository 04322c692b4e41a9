"""The local HTTP API (a contract: other tools rely on these paths and names).

GET  /api/v1/status
GET  /metrics                                            (Prometheus text format)
POST /api/v1/charge_points/{cp}/connectors/{n}/sim   {"action": ..., "id_tag"?, "error_code"?}

When `api.token` is set, every request needs `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import hmac
import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bridge.clock import iso

if TYPE_CHECKING:
    from bridge.chargepoint import ChargePoint
    from bridge.daemon import Daemon

SIM_ACTIONS = (
    "plug", "unplug", "tap", "ev_suspend", "ev_resume", "fault", "clear_fault", "silence", "answer",
)  # fmt: skip
DAEMON: web.AppKey[Daemon] = web.AppKey("daemon")


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _device(cp: ChargePoint, cid: int) -> dict[str, Any]:
    """The device's health, as an installer asks it: does it answer, since when not, why."""
    rt = cp.connectors[cid]
    fault = rt.core.unreachable
    return {
        "description": rt.charger.description,
        "started": rt.started,  # its probe at start succeeded
        "answers": rt.started and fault is None,
        "failed_reads": rt.failed_reads,  # in a row
        "problem": fault.info if fault is not None else None,
    }


def charge_point_status(cp: ChargePoint) -> dict[str, Any]:
    link = cp.session.link
    config = cp.configuration
    connectors = []
    for cid, rt in cp.connectors.items():
        tx = rt.core.transaction
        reading = rt.reading
        report = rt.core.status()
        connectors.append(
            {
                "id": cid,
                "status": str(report.status),
                "error_code": report.error_code,
                "transaction_id": tx.transaction_id if tx else None,
                "energy_wh": reading.energy_wh if reading else None,
                "current_limit_a": cp.smart.current_limit_a(cid),  # what the device was set to; 0 = paused
                "power_w": reading.power_w if reading else None,
                "id_tag": tx.id_tag if tx else None,
                "device": _device(cp, cid),
            }
        )
    return {
        "id": cp.cfg.id,
        "enabled": True,
        "csms_url": cp.cfg.csms_url,
        "started_at": iso(cp.started_at) if cp.started_at else None,
        "boot_state": str(cp.session.boot.state),
        "connected": link.connected,
        "accepted": cp.session.online,  # connected, and BootNotification Accepted in this run
        "connected_since": iso(link.connected_since) if link.connected_since else None,
        "accepted_since": iso(link.accepted_since) if link.accepted_since else None,
        "last_error": link.last_error,
        "last_error_at": iso(link.last_error_at) if link.last_error_at else None,
        "queued_transaction_messages": cp.session.pending_transactional(),
        "heartbeat_interval_s": config.get_int("HeartbeatInterval"),
        "meter_value_sample_interval_s": config.get_int("MeterValueSampleInterval"),
        "clock_aligned_data_interval_s": config.get_int("ClockAlignedDataInterval"),
        "connectors": connectors,
    }


async def status(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON]
    return web.json_response(
        {"charge_points": [charge_point_status(cp) for cp in daemon.charge_points.values()]}
    )


async def metrics(request: web.Request) -> web.Response:
    from bridge.metrics import render

    return web.Response(text=render(request.app[DAEMON]), content_type="text/plain", charset="utf-8",
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


def _token_guard(token: str) -> Any:
    @web.middleware
    async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return _error(401, "missing or wrong token")
        response: web.StreamResponse = await handler(request)
        return response

    return guard


async def start_api(daemon: Daemon, host: str, port: int) -> tuple[web.AppRunner, tuple[str, int]]:
    token = daemon.config.api.token
    app = web.Application(middlewares=[_token_guard(token)] if token else [])
    app[DAEMON] = daemon
    app.router.add_get("/api/v1/status", status)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/api/v1/charge_points/{cp}/connectors/{n}/sim", sim)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0] if runner.addresses else (host, port)
    return runner, (str(bound[0]), int(bound[1]))
