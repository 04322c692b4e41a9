"""The page's device checks, configuration view and chart data (docs/api.md).

The probe reads the RUNNING daemon's device through its coordinator (`read_now`: one reading under
its lock, never a second connection) and words it as `ocpp-bridge probe` does (bridge/probe.py).
The configuration is read, redacted and checked in a thread (YAML parsing takes a while on a Pi).
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from pathlib import Path
from typing import Any

from aiohttp import web

from adapters.base import ChargerReading
from bridge.api.common import DAEMON, connector_of
from bridge.config import ConfigError, parse_config
from bridge.config.rules_tls import tls_report
from bridge.config.rules_top_level import api_warnings
from bridge.core.device_errors import ocpp_fault
from bridge.diagnostics.redact import is_secret_name, mask_text, redacted_config
from bridge.probe import FAULT_REPORTED, describe_capabilities, verdict_of
from bridge.runtime.frame_ring import iso_epoch
from bridge.runtime.readings_ring import Point

PROBE_TIMEOUT_S = 5.0
# The read in flight for each device (by id, removed when done): repeated clicks share it rather than
# queueing one PROBE_TIMEOUT_S read after another under the device's lock.
_PROBING: dict[int, asyncio.Task[ChargerReading | None]] = {}


async def _shared_read(device: Any) -> ChargerReading | None:
    key = id(device)
    task = _PROBING.get(key)
    if task is None:
        task = asyncio.ensure_future(device.read_now(PROBE_TIMEOUT_S))
        _PROBING[key] = task
        task.add_done_callback(lambda _: _PROBING.pop(key, None))
    return await asyncio.shield(task)  # a client that goes away does not cancel the others' read


# What a checker's message quotes of a value: `got the number 123`, `got the string 'abc'`, `'abc'`.
_VALUE = re.compile(r"""(?<=the number )[^\s;,)]+|'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*\"""")


def _problem(line: int | None, path: str, message: str) -> dict[str, Any]:
    """A problem as JSON; one of a secret field never quotes its value (`got the string '...'`)."""
    last = re.split(r"[.\[]", path)[-1] if path else ""
    if last and is_secret_name(last):
        message = _VALUE.sub("***", message)
    return {"line": line, "path": path, "message": mask_text(message)}


def reading_json(r: ChargerReading) -> dict[str, Any]:
    fault = None
    if r.fault is not None:
        f = ocpp_fault(r.fault)  # as the central system would see it
        fault = {"error_code": f.error_code, "info": f.info, "vendor_error_code": f.vendor_error_code}
    return {"plugged": r.plugged, "ev_requesting": r.ev_requesting, "energy_allowed": r.energy_allowed,
            "energy_wh": r.energy_wh, "power_w": r.power_w, "current_a": r.current_a,
            "voltage_v": r.voltage_v, "frequency_hz": r.frequency_hz, "fault": fault}  # fmt: skip


async def probe(request: web.Request) -> web.Response:
    _, n, rt = connector_of(request)
    device = rt.device
    capabilities = device.charger.capabilities
    reading = await _shared_read(device)
    caps_line = describe_capabilities(capabilities)
    error: str | None
    if reading is None:
        if not device.started:
            why = "the device has not started: it did not answer its start-up probe"
        elif device.fault is not None:
            why = f"the device does not answer: {device.fault.info}"
        else:
            why = f"the device gave no reading within {PROBE_TIMEOUT_S:g} s"
        lines, error = [caps_line, f"FAILED: {why}"], why
    else:
        verdict = verdict_of(reading, capabilities, device.charger.probe_lines())
        lines, error = verdict.lines, None if verdict.ok else FAULT_REPORTED
    return web.json_response({
        "ok": error is None, "connector": n, "description": device.description, "lines": lines,
        "reading": reading_json(reading) if reading is not None else None,
        "capabilities": dataclasses.asdict(capabilities), "error": error,
    })  # fmt: skip


def check_file(path: str) -> dict[str, Any]:
    """What GET /api/v1/config answers: the file redacted and what `check` says of it (blocking)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        problem = _problem(None, "", f"cannot read {path}: {why}")
        return {"path": path, "text": None, "check": {"ok": False, "problems": [problem], "warnings": []}}
    problems: list[dict[str, Any]] = []
    warnings: list[str] = []
    try:
        config = parse_config(text, path)
    except ConfigError as exc:
        problems = [_problem(p.line, p.path, p.message) for p in exc.problems]
    else:
        tls_problems, warnings = tls_report(config)
        warnings += api_warnings(config)
        problems = [_problem(None, "", line) for line in tls_problems]
    return {"path": path, "text": redacted_config(text),
            "check": {"ok": not problems, "problems": problems, "warnings": warnings}}  # fmt: skip


async def config(request: web.Request) -> web.Response:
    path = request.app[DAEMON].config.source
    return web.json_response(await asyncio.to_thread(check_file, path))


def _point(p: Point) -> dict[str, Any]:
    return {"at": iso_epoch(p.at), "power_w": p.power_w, "energy_wh": p.energy_wh}


async def readings(request: web.Request) -> web.Response:
    cp, n, _ = connector_of(request)
    points = cp.readings[n].points(cp.clock.now().timestamp())
    return web.json_response({"points": [_point(p) for p in points]})
