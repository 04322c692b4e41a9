"""A charger that speaks OCPP 1.6J itself (`type: ocpp`) through the whole bridge: the real daemon,
the strict central system upstream (tests/csms.py) and a charge point on the `ocpp` library
(tests/helpers/ocpp_charger.py) connected to the bridge's local endpoint.

- a whole session: plug, a card at the charger (its Authorize waits for the bridge's transaction),
  its own StartTransaction with a local id, MeterValues upstream with the central system's id, a
  charging profile upstream reaching it in A, a remote stop upstream reaching it;
- a wrong password: 401 at the endpoint.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from adapters.chargers.ocpp_device import OcppDeviceCharger
from adapters.chargers.ocpp_device_options import OcppDeviceOptions
from adapters.transports.pool import Transports
from bridge.daemon import Daemon
from bridge.probe import probe_connector
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.helpers.generic import profile as charging_profile
from tests.helpers.ocpp_charger import endpoint_listening, ocpp_charger
from tests.processes import free_port

CP = "CP-1"
WALLBOX = "WB-1"
PASSWORD = "s3cret-for-the-wallbox"
ENERGY = "Energy.Active.Import.Register"
OCPP = {"MeterValueSampleInterval": 1, "MeterValuesSampledData": [ENERGY, "Power.Active.Import"]}


def config(csms: StrictCentralSystem, tmp_path: Path, port: int) -> Any:
    charger = {
        "type": "ocpp", "listen": f"127.0.0.1:{port}", "identity": WALLBOX, "password": PASSWORD,
        "card_wait_s": 5, "call_timeout_s": 3,
    }  # fmt: skip
    return make_config(csms.url, tmp_path, ocpp=OCPP, charger=charger)


def wallbox_driver(daemon: Daemon) -> OcppDeviceCharger:
    driver = daemon.charge_points[CP].connectors[1].charger
    assert isinstance(driver, OcppDeviceCharger)
    return driver


def sampled(payload: dict[str, Any], measurand: str) -> float:
    (value,) = [
        v for mv in payload["meterValue"] for v in mv["sampledValue"] if v.get("measurand") == measurand
    ]
    return float(value["value"])


def limit_of(profile: dict[str, Any]) -> float:
    return float(profile["charging_schedule"]["charging_schedule_period"][0]["limit"])


async def test_a_whole_session_of_an_ocpp_charger(csms: StrictCentralSystem, tmp_path: Path) -> None:
    port = free_port()
    async with running(config(csms, tmp_path, port)) as daemon:
        async with ocpp_charger(f"ws://127.0.0.1:{port}/ocpp", WALLBOX, PASSWORD) as wallbox:
            # Its register, asked for after its boot, is known to the bridge before any session.
            connector = daemon.charge_points[CP].connectors[1]
            await csms.wait_until(lambda: connector.reading and connector.reading.energy_wh == 1000)
            await wallbox.status("Available")
            await csms.wait_for_call(
                CP, "StatusNotification", lambda p: p["status"] == "Available", timeout=10
            )
            await wallbox.status("Preparing")
            await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Preparing")

            authorized = await wallbox.send(call.Authorize(id_tag="CARD-1"))
            assert authorized.id_tag_info["status"] == "Accepted"  # after the bridge's transaction
            start = await csms.wait_for_call(CP, "StartTransaction")
            assert start["idTag"] == "CARD-1"
            local = await wallbox.begin("CARD-1")
            assert local.id_tag_info["status"] == "Accepted"
            upstream_id = csms.last_transaction_id
            assert local.transaction_id != upstream_id  # the link's ids are its own
            await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Charging")

            for _ in range(3):
                await wallbox.meter(7400)
                await asyncio.sleep(0.3)
            sample = await csms.wait_for_call(
                CP, "MeterValues", lambda p: sampled(p, ENERGY) >= 1200, timeout=5
            )
            assert sample["transactionId"] == upstream_id
            assert sampled(sample, "Power.Active.Import") == 7400

            answer = await csms.call(
                CP,
                call.SetChargingProfile(
                    connector_id=1,
                    cs_charging_profiles=charging_profile(7, "TxProfile", 10, transactionId=upstream_id),
                ),
            )
            assert answer.status == "Accepted"
            await csms.wait_until(lambda: 10 in wallbox.limits(), what="10 A at the charger")
            profile = next(p for a, p in wallbox.received if a == "SetChargingProfile" and limit_of(p) == 10)
            assert profile["charging_profile_purpose"] == "TxDefaultProfile"
            assert profile["charging_schedule"]["charging_rate_unit"] == "A"

            answer = await csms.call(CP, call.RemoteStopTransaction(transaction_id=upstream_id))
            assert answer.status == "Accepted"
            stop = await csms.wait_for_call(CP, "StopTransaction", timeout=10)
            assert ("RemoteStopTransaction", {"transaction_id": local.transaction_id}) in wallbox.received
            assert stop["transactionId"] == upstream_id
            assert stop["meterStop"] >= 1300
            # The card's Authorize let the charger start on its own: it was never asked to.
            assert "RemoteStartTransaction" not in [action for action, _ in wallbox.received]
        assert wallbox_driver(daemon).deviations == []
    assert len(csms.calls(CP, "StartTransaction")) == 1
    assert start["meterStart"] == 1000  # the register its trigger's MeterValues gave, before the card


async def test_a_wrong_password_is_refused_with_401(csms: StrictCentralSystem, tmp_path: Path) -> None:
    port = free_port()
    async with running(config(csms, tmp_path, port)):
        await endpoint_listening(port)
        url = f"ws://127.0.0.1:{port}/ocpp/{WALLBOX}"
        bad = {"Authorization": "Basic " + base64.b64encode(f"{WALLBOX}:wrong".encode()).decode()}
        for headers in (bad, {}):
            with pytest.raises(InvalidStatus) as refused:
                async with connect(url, subprotocols=["ocpp1.6"], additional_headers=headers):  # type: ignore[list-item]
                    pass
            assert refused.value.response.status_code == 401
        with pytest.raises(InvalidStatus) as unknown:
            async with connect(f"ws://127.0.0.1:{port}/ocpp/NOBODY", subprotocols=["ocpp1.6"]):  # type: ignore[list-item]
                pass
        assert unknown.value.response.status_code == 404


async def test_probe_waits_for_the_charger_and_lists_its_deviations() -> None:
    """`probe` (no listener: the bridge does not operate it) waits for the charger to connect; the
    driver's probe_lines name what it did wrong (here a Heartbeat before its BootNotification)."""
    port = free_port()
    options = OcppDeviceOptions(listen=f"127.0.0.1:{port}", identity=WALLBOX, password=PASSWORD)
    pool = Transports()
    driver = OcppDeviceCharger(options, pool)

    async def charger() -> None:
        early = call.Heartbeat()
        async with ocpp_charger(
            f"ws://127.0.0.1:{port}/ocpp", WALLBOX, PASSWORD, before_boot=early
        ) as wallbox:
            # The probe reads and closes the link once it is told, maybe before this answer is sent.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wallbox.status("Preparing"), 0.5)

    try:
        plugged_in = asyncio.create_task(charger())
        verdict = await probe_connector(driver, timeout_s=10)
        await plugged_in
    finally:
        await pool.close()
    assert verdict.ok, verdict.lines
    assert verdict.lines[0].startswith("plugged: yes")
    # What probe prints: the driver's lines as it read the charger, before it closed the link.
    assert "connected: yes; booted: True" in verdict.lines and verdict.lines[-1] == "OK"
    assert any(
        line.endswith("Heartbeat before its BootNotification on this connection") for line in verdict.lines
    )
    lines = driver.probe_lines()
    assert lines[0] == "connected: no; booted: True"  # closed by the probe
    assert len(lines) == 2 and lines[1].endswith("Heartbeat before its BootNotification on this connection")


async def test_a_charger_that_reboots_mid_session_is_started_again(
    csms: StrictCentralSystem, tmp_path: Path
) -> None:
    """It ends its transaction after the reboot, as OCPP asks (PowerLoss); the bridge's transaction goes
    on upstream, and the charger is asked to start again under a new local id."""
    port = free_port()
    url = f"ws://127.0.0.1:{port}/ocpp"
    async with running(config(csms, tmp_path, port)) as daemon:
        async with ocpp_charger(url, WALLBOX, PASSWORD) as wallbox:
            await wallbox.status("Preparing")
            await csms.wait_for_call(
                CP, "StatusNotification", lambda p: p["status"] == "Preparing", timeout=10
            )
            answer = await csms.call(CP, call.RemoteStartTransaction(id_tag="REMOTE-2", connector_id=1))
            assert answer.status == "Accepted"
            await csms.wait_for_call(
                CP, "StatusNotification", lambda p: p["status"] == "Charging", timeout=10
            )
            upstream_id = csms.last_transaction_id
            before, energy = wallbox.transaction_id, wallbox.energy_wh
        async with ocpp_charger(url, WALLBOX, PASSWORD) as wallbox:
            wallbox.transaction_id, wallbox.energy_wh = before, energy
            await wallbox.end(reason="PowerLoss")
            await csms.wait_until(lambda: wallbox.transaction_id not in (None, before), what="a new start")
            after = wallbox.transaction_id
            answer = await csms.call(CP, call.RemoteStopTransaction(transaction_id=upstream_id))
            assert answer.status == "Accepted"
            stop = await csms.wait_for_call(CP, "StopTransaction", timeout=10)
            assert ("RemoteStopTransaction", {"transaction_id": after}) in wallbox.received
        assert wallbox_driver(daemon).deviations == []
    assert len(csms.calls(CP, "StartTransaction")) == 1 and stop["transactionId"] == upstream_id
