"""The local HTTP API in-process, over a real socket, with aiohttp's client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

import adapters.registry
from adapters.base import Charger, ChargerCapabilities, ChargerReading
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.emulators.eastron import EmulatedMeter, eastron_tcp
from tests.processes import free_port


@dataclass(frozen=True)
class FixedOptions:
    """Options of a driver that is not simulated (a real driver's stand-in for the 409 case)."""

    type: str = "fixed"


class FixedCharger(Charger):
    Options = FixedOptions

    def __init__(self, options: FixedOptions, transports: object = None) -> None:
        super().__init__()

    @property
    def capabilities(self) -> ChargerCapabilities:
        return ChargerCapabilities(False, False, True, False, False, True, False, 1, 6, 16, 1)

    @property
    def description(self) -> str:
        return "fixed test charger"

    async def read(self) -> ChargerReading:
        return ChargerReading(plugged=False, ev_requesting=False, energy_allowed=False, energy_wh=42.0)

    async def set_enabled(self, enabled: bool) -> None:
        pass

    async def set_current(self, amps: float) -> None:
        pass


async def test_status_and_sim_control(csms: StrictCentralSystem, tmp_path: Any) -> None:
    port = free_port()
    config = make_config(csms.url, tmp_path, api=f"127.0.0.1:{port}", charger={"initial_energy_wh": 777})
    base = f"http://127.0.0.1:{port}/api/v1"
    async with running(config), aiohttp.ClientSession() as http:
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)
        async with http.get(f"{base}/status") as r:
            assert r.status == 200
            body = await r.json()
        cp = body["charge_points"][0]
        assert (cp["id"], cp["connected"], cp["accepted"], cp["last_error"]) == ("CP-1", True, True, None)
        assert cp["connectors"][0] | {"power_w": None} == {
            "id": 1,
            "status": "Available",
            "error_code": "NoError",
            "transaction_id": None,
            "energy_wh": 777.0,
            "current_limit_a": 16.0,  # no charging profile: the charger's maximum
            "power_w": None,
            "id_tag": None,
            "device": {
                "description": "simulated charger",
                "started": True,
                "answers": True,
                "failed_reads": 0,
                "problem": None,
                "notes": [],
            },
        }
        # The connection facts an installer asks first (after the go-e charger's own OCPP keys).
        assert cp["enabled"] is True and cp["boot_state"] == "Accepted"
        assert cp["started_at"] is not None and cp["accepted_since"] is not None
        assert (cp["heartbeat_interval_s"], cp["meter_value_sample_interval_s"]) == (300, 60)
        assert cp["clock_aligned_data_interval_s"] == 0

        sim = f"{base}/charge_points/CP-1/connectors/1/sim"
        async with http.post(
            sim, json={"action": "fault", "error_code": "GroundFailure", "info": "RCD"}
        ) as r:
            assert r.status == 200
        fault = await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Faulted")
        assert (fault["errorCode"], fault["info"]) == ("GroundFailure", "RCD")
        async with http.post(sim, json={"action": "clear_fault"}) as r:
            assert r.status == 200
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Available", count=3)

        for body_, status in [
            ({"action": "jump"}, 400),
            ({"action": "tap"}, 400),
            ({"action": "tap", "id_tag": "X" * 21}, 400),
            (["plug"], 400),
        ]:
            async with http.post(sim, json=body_) as r:
                assert r.status == status, body_
        async with http.post(sim, data=b"not json") as r:  # no JSON content type: refused as such
            assert r.status == 415
        async with http.post(sim, data=b"not json", headers={"Content-Type": "application/json"}) as r:
            assert r.status == 400
        async with http.post(f"{base}/charge_points/NOPE/connectors/1/sim", json={"action": "plug"}) as r:
            assert r.status == 404
        async with http.post(f"{base}/charge_points/CP-1/connectors/9/sim", json={"action": "plug"}) as r:
            assert r.status == 404


async def test_a_charger_that_is_not_simulated_answers_409(
    csms: StrictCentralSystem, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(adapters.registry.CHARGER_TYPES, "fixed", "tests.test_api:FixedCharger")
    port = free_port()
    config = make_config(csms.url, tmp_path, api=f"127.0.0.1:{port}", charger={"type": "fixed"})
    async with running(config), aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{port}/api/v1/charge_points/CP-1/connectors/1/sim"
        async with http.post(url, json={"action": "plug"}) as r:
            assert r.status == 409
            assert "fixed test charger" in (await r.json())["error"]


async def test_the_sim_actions_drive_the_simulated_charger_of_a_charger_with_a_meter_of_record(
    csms: StrictCentralSystem, tmp_path: Any
) -> None:
    """A simulated charger composed with a real meter (testing a meter installation before the charger
    is wired) is still simulated: plug and tap reach it, and the session is billed on the meter."""
    meter = EmulatedMeter("sdm630")
    meter.set(energy_kwh=42.0)
    port = free_port()
    async with eastron_tcp(meter) as emu:
        config = make_config(
            csms.url, tmp_path, api=f"127.0.0.1:{port}",
            meter={"type": "sdm630", "modbus": emu.url, "device_id": 1},
        )  # fmt: skip
        async with running(config), aiohttp.ClientSession() as http:
            await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)
            url = f"http://127.0.0.1:{port}/api/v1/charge_points/CP-1/connectors/1/sim"
            async with http.post(url, json={"action": "plug"}) as r:
                assert (r.status, await r.json()) == (200, {"ok": True, "action": "plug"})
            await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Preparing")
            async with http.post(url, json={"action": "tap", "id_tag": "TAG-1"}) as r:
                assert r.status == 200
            start = await csms.wait_for_call("CP-1", "StartTransaction")
            async with http.post(url, json={"action": "unplug"}) as r:
                assert r.status == 200
            stop = await csms.wait_for_call("CP-1", "StopTransaction")
    assert (start["idTag"], start["meterStart"]) == ("TAG-1", 42000)  # the meter's register
    assert stop["reason"] == "EVDisconnected"


async def test_a_token_guards_every_request(csms: StrictCentralSystem, tmp_path: Any) -> None:
    port = free_port()
    config = make_config(csms.url, tmp_path)
    config = type(config)(
        config.state_dir,
        type(config.api)(("127.0.0.1", port), "t0ken-t0ken"),
        config.charge_points,
        config.source,
    )
    async with running(config), aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{port}/api/v1/status"
        async with http.get(url) as r:
            assert r.status == 401
        async with http.get(url, headers={"Authorization": "Bearer wrong"}) as r:
            assert r.status == 401
        async with http.get(url, headers={"Authorization": "Bearer t0ken-t0ken"}) as r:
            assert r.status == 200
