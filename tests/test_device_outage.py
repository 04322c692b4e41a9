"""A real device that stops answering in the middle of a transaction: Faulted, then recovered,
the transaction kept (the Eastron meter of record on a Modbus TCP emulator)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.emulators.eastron import EmulatedMeter, eastron_tcp


async def test_a_meter_outage_mid_transaction_faults_the_connector_and_the_session_goes_on(
    csms: StrictCentralSystem, tmp_path: Path
) -> None:
    meter = EmulatedMeter("sdm630", device_id=1)
    meter.set(energy_kwh=100.0)
    async with eastron_tcp(meter) as emu:
        config = make_config(
            csms.url,
            tmp_path,
            meter={"type": "sdm630", "modbus": emu.url, "device_id": 1, "timeout_s": 0.3},
            connector_fields={"poll_interval_s": 0.2, "faulted_after_failed_polls": 2},
        )
        async with running(config) as daemon:
            await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)
            sim: Any = daemon.charge_points["CP-1"].connectors[1].charger.charger
            sim.plug()
            sim.tap("TAG")
            await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Charging")
            meter.silent = True
            faulted = await csms.wait_for_call(
                "CP-1", "StatusNotification", lambda p: p["status"] == "Faulted", timeout=10
            )
            meter.set(energy_kwh=101.5)
            meter.silent = False
            await csms.wait_for_call(
                "CP-1", "StatusNotification", lambda p: p["status"] == "Charging", count=2, timeout=10
            )
            sim.tap("TAG")
            stop = await csms.wait_for_call("CP-1", "StopTransaction")
    assert faulted["errorCode"] == "OtherError" and faulted["vendorErrorCode"] == "DeviceUnreachable"
    assert faulted["info"].startswith("simulated charger with SDM630 #1")
    assert len(faulted["info"]) <= 50
    assert (
        len(csms.calls("CP-1", "StartTransaction")) == 1 and len(csms.calls("CP-1", "StopTransaction")) == 1
    )
    assert stop["meterStop"] == 101500 and stop["reason"] == "Local"
