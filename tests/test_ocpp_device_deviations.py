"""A `type: ocpp` charger that gets OCPP wrong, through the whole bridge: the strict central system
upstream (tests/csms.py) fails the test on any frame the bridge sends wrongly, so none of the charger's
deviations may pass up; the driver records each of them (`deviations`, `probe_lines`).

The charger (tests/helpers/ocpp_charger.py) sends a StatusNotification before its BootNotification,
Charging with no transaction, MeterValues of a transaction the bridge never gave, a StartTransaction
of a session begun an hour before it connected and a StopTransaction of an unknown transaction; then,
in a session the central system started, it loses power and resumes its transaction instead of
ending it. The status API lists what the charger did wrong with its device (`notes`).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from ocpp.v16 import call

from adapters.chargers.ocpp_device import OcppDeviceCharger
from bridge.daemon import Daemon
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.helpers.ocpp_charger import iso, ocpp_charger
from tests.processes import free_port

CP = "CP-1"
WALLBOX = "WB-7"
PASSWORD = "another-wallbox-secret"
OCPP = {"MeterValueSampleInterval": 1, "MeterValuesSampledData": ["Energy.Active.Import.Register"]}


def config(csms: StrictCentralSystem, tmp_path: Path, port: int) -> Any:
    charger = {
        "type": "ocpp", "listen": f"127.0.0.1:{port}", "identity": WALLBOX, "password": PASSWORD,
        "card_wait_s": 2, "call_timeout_s": 3,
    }  # fmt: skip
    return make_config(csms.url, tmp_path, ocpp=OCPP, charger=charger, api=f"127.0.0.1:{free_port()}")


def energy_of(payload: dict[str, Any]) -> float:
    return float(payload["meterValue"][0]["sampledValue"][0]["value"])


def wallbox_driver(daemon: Daemon) -> OcppDeviceCharger:
    driver = daemon.charge_points[CP].connectors[1].charger
    assert isinstance(driver, OcppDeviceCharger)
    return driver


async def test_deviations_are_recorded_and_do_not_pass_upstream(
    csms: StrictCentralSystem, tmp_path: Path
) -> None:
    port = free_port()
    url = f"ws://127.0.0.1:{port}/ocpp"
    early = call.StatusNotification(connector_id=1, error_code="NoError", status="Available")
    async with running(config(csms, tmp_path, port)) as daemon:
        driver = wallbox_driver(daemon)
        async with ocpp_charger(url, WALLBOX, PASSWORD, before_boot=early) as wallbox:
            await wallbox.status("Available")
            await csms.wait_for_call(
                CP, "StatusNotification", lambda p: p["status"] == "Available", timeout=10
            )
            await wallbox.status("Preparing")
            await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Preparing")
            await wallbox.status("Charging")  # no transaction
            await wallbox.meter(3000, transaction_id=4242)  # never given
            stale = await wallbox.begin("OLD-CARD", timestamp=iso(datetime.now(UTC) - timedelta(hours=1)))
            assert stale.id_tag_info["status"] == "Invalid"  # so it ends that session
            await wallbox.send(
                call.StopTransaction(meter_stop=1500, timestamp=iso(), transaction_id=999, reason="PowerLoss")
            )
            await wallbox.status("Preparing")
            await asyncio.sleep(0.3)
            assert not csms.calls(CP, "StartTransaction") and not csms.calls(CP, "Authorize")
            assert all("transactionId" not in p for p in csms.calls(CP, "MeterValues"))

            answer = await csms.call(CP, call.RemoteStartTransaction(id_tag="REMOTE-1", connector_id=1))
            assert answer.status == "Accepted"
            start = await csms.wait_for_call(CP, "StartTransaction", timeout=10)
            await csms.wait_for_call(
                CP, "StatusNotification", lambda p: p["status"] == "Charging", timeout=10
            )
            upstream_id = csms.last_transaction_id
            (remote_start,) = [p for a, p in wallbox.received if a == "RemoteStartTransaction"]
            assert remote_start["connector_id"] == 1
            local_id, energy = wallbox.transaction_id, wallbox.energy_wh
            assert local_id is not None
        # A power cut at the charger: it comes back and goes on with its transaction.
        async with ocpp_charger(url, WALLBOX, PASSWORD) as wallbox:
            wallbox.transaction_id, wallbox.energy_wh = local_id, energy
            await wallbox.status("Charging")
            await wallbox.meter(7000)
            sample = await csms.wait_for_call(
                CP, "MeterValues", lambda p: energy_of(p) >= energy + 100, timeout=10
            )
            assert sample["transactionId"] == upstream_id
            answer = await csms.call(CP, call.RemoteStopTransaction(transaction_id=upstream_id))
            assert answer.status == "Accepted"
            stop = await csms.wait_for_call(CP, "StopTransaction", timeout=10)
            assert ("RemoteStopTransaction", {"transaction_id": local_id}) in wallbox.received
        deviations = driver.deviations
        lines = driver.probe_lines()
        assert daemon.api_address is not None
        host, api_port = daemon.api_address
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://{host}:{api_port}/api/v1/status") as response:
                assert response.status == 200
                body = await response.json()

    assert stop["transactionId"] == upstream_id and start["idTag"] == "REMOTE-1"
    assert len(csms.calls(CP, "StartTransaction")) == 1
    assert {p.get("transactionId") for p in csms.calls(CP, "MeterValues")} <= {None, upstream_id}
    expected = [
        "StatusNotification before its BootNotification",
        "StatusNotification Charging on connector 1 without a transaction",
        "MeterValues for transaction 4242, not its transaction",
        "StartTransaction of a session begun at",
        "StopTransaction of transaction 999, which this bridge never gave",
        f"resumed transaction {local_id} after it booted again, instead of ending it",
    ]
    for text in expected:
        assert any(text in d for d in deviations), (text, deviations)
        assert any(line.startswith("deviation from OCPP: ") and text in line for line in lines)
    assert len(deviations) == len(expected)
    # The status API shows the same lines with the charger's device, as probe does.
    [shown] = [cp for cp in body["charge_points"] if cp["id"] == CP]
    notes = shown["connectors"][0]["device"]["notes"]
    # The link line first (the charger may or may not be seen gone yet), then the same deviations.
    assert notes[0].startswith("connected: ") and notes[1:] == lines[1:]
    for text in expected:
        assert any(text in note for note in notes), (text, notes)
