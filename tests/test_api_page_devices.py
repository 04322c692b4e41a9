"""The page's device checks, configuration view and chart data against a running daemon: probe
through the daemon's own coordinator, the configuration file redacted and checked, the readings."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.chargers.simulated import SimulatedCharger
from bridge.config import load_config
from tests.conftest import FAST_OCPP, make_config, running
from tests.csms import StrictCentralSystem
from tests.helpers.api_page import TOKEN, with_api
from tests.processes import free_port

BEARER = {"Authorization": f"Bearer {TOKEN}"}


async def test_probe_of_a_simulated_connector_and_its_readings(
    csms: StrictCentralSystem, tmp_path: Any
) -> None:
    port = free_port()
    config = with_api(make_config(csms.url, tmp_path, charger={"initial_energy_wh": 777}), port)
    base = f"http://127.0.0.1:{port}/api/v1/charge_points/CP-1/connectors"
    async with running(config), aiohttp.ClientSession(headers=BEARER) as http:
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)
        async with http.post(f"{base}/1/probe") as r:
            assert r.status == 200
            probe = await r.json()
        assert probe["ok"] is True and probe["error"] is None and probe["description"] == "simulated charger"
        assert probe["lines"][0] == "plugged: no; vehicle asks for energy: no; energy allowed: no"
        assert probe["lines"][-2].startswith("can: plug sensing yes") and probe["lines"][-1] == "OK"
        assert probe["reading"]["energy_wh"] == 777.0 and probe["reading"]["plugged"] is False
        assert (
            probe["capabilities"]["max_current_a"] == 16 and probe["capabilities"]["can_sense_plug"] is True
        )
        async with http.post(f"{base}/1/sim", json={"action": "fault", "error_code": "GroundFailure"}) as r:
            assert r.status == 200
        async with http.post(f"{base}/1/probe") as r:
            faulted = await r.json()
        assert faulted["ok"] is False and faulted["lines"][-1] == "FAILED: the device reports a fault"
        assert faulted["reading"]["fault"]["error_code"] == "GroundFailure"
        for path in ("9/probe", "x/probe"):
            async with http.post(f"{base}/{path}") as r:
                assert r.status == 404 and "no connector" in (await r.json())["error"]
        async with http.get(f"{base}/1/readings") as r:
            points = (await r.json())["points"]
        assert points and points[0]["energy_wh"] == 777.0 and points[0]["at"].endswith("Z")
        async with http.get(f"{base}/2/readings") as r:
            assert r.status == 404


async def test_probe_of_a_device_that_does_not_answer(csms: StrictCentralSystem, tmp_path: Any) -> None:
    port = free_port()
    config = with_api(
        make_config(csms.url, tmp_path, connector_fields={"faulted_after_failed_polls": 1}), port
    )
    base = f"http://127.0.0.1:{port}/api/v1/charge_points/CP-1/connectors/1"
    async with running(config), aiohttp.ClientSession(headers=BEARER) as http:
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)
        async with http.post(f"{base}/sim", json={"action": "silence"}) as r:
            assert r.status == 200
        async with asyncio.timeout(8):
            async with http.post(f"{base}/probe") as r:
                probe = await r.json()
        assert probe["ok"] is False and probe["reading"] is None and probe["error"]
        assert probe["lines"][-1] == f"FAILED: {probe['error']}"


def _write(path: Path, csms_url: str, port: int, extra: str = "") -> None:
    ocpp = ", ".join(f"{k}: {v}" for k, v in FAST_OCPP.items())
    path.write_text(
        f"state_dir: {path.parent / 'state'}\n"  # 1
        "api:\n"  # 2
        f"  listen: 127.0.0.1:{port}\n"  # 3
        f"  token: {TOKEN}\n"  # 4
        "charge_points:\n"  # 5
        "  - id: CP-1\n"  # 6
        f"    csms_url: {csms_url}\n"  # 7
        f"    ocpp: {{{ocpp}}}\n"  # 8
        "    connectors: [{id: 1, charger: {type: simulated}}]\n" + extra  # 9
    )


async def test_the_configuration_redacted_and_checked(csms: StrictCentralSystem, tmp_path: Path) -> None:
    port = free_port()
    path = tmp_path / "config.yaml"
    _write(path, csms.url, port)
    async with running(load_config(path)), aiohttp.ClientSession(headers=BEARER) as http:
        url = f"http://127.0.0.1:{port}/api/v1/config"
        async with http.get(url) as r:
            assert r.status == 200
            raw = await r.text()
            body = await r.json()
        assert TOKEN not in raw and "  token: '***'\n" in body["text"]
        assert body["path"] == str(path) and body["check"] == {"ok": True, "problems": [], "warnings": []}
        # The file changed on disk since: checked now, each problem with its line, a secret never echoed.
        _write(path, csms.url, port, extra="    bogus: 1\n")
        path.write_text(path.read_text().replace(f"token: {TOKEN}", "token: 987654321"))
        async with http.get(url) as r:
            raw = await r.text()
            check = (await r.json())["check"]
        assert "987654321" not in raw
        assert check["ok"] is False
        assert [(p["line"], p["path"]) for p in check["problems"]] == [
            (4, "api.token"),
            (10, "charge_points[0].bogus"),
        ]
        assert check["problems"][0]["message"] == "expected a string or null, got the number ***"
        _write(path, csms.url, port)
        path.write_text(path.read_text().replace(f"token: {TOKEN}", "token: short-token"))
        async with http.get(url) as r:
            short = await r.json()
        assert short["check"] == {
            "ok": True, "problems": [],
            "warnings": ["api.token has 11 characters: use at least 16 (openssl rand -hex 16)"],
        }  # fmt: skip
        assert "short-token" not in short["text"]
        path.unlink()
        async with http.get(url) as r:
            gone = await r.json()
        assert gone["text"] is None and gone["check"]["ok"] is False
        assert gone["check"]["problems"][0]["message"].startswith(f"cannot read {path}")


async def test_probes_clicked_at_once_share_one_read(
    csms: StrictCentralSystem, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ten probes of one connector at once: one device read under its lock, not ten in a queue."""
    read = SimulatedCharger.read

    async def slow_read(self: SimulatedCharger) -> Any:
        await asyncio.sleep(0.2)  # a slow device
        return await read(self)

    port = free_port()
    base = f"http://127.0.0.1:{port}/api/v1/charge_points/CP-1/connectors"
    async with (
        running(with_api(make_config(csms.url, tmp_path), port)),
        aiohttp.ClientSession(headers=BEARER) as http,
    ):
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)
        monkeypatch.setattr(SimulatedCharger, "read", slow_read)

        async def probe() -> bool:
            async with http.post(f"{base}/1/probe") as r:
                return bool((await r.json())["ok"])

        started = time.monotonic()
        assert await asyncio.gather(*(probe() for _ in range(10))) == [True] * 10
        took = time.monotonic() - started
    assert took < 1.0, took  # ten reads in a queue: 2 s
