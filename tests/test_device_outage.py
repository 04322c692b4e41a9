"""A real device that stops answering in the middle of a transaction: Faulted, then recovered,
the transaction kept (the Eastron meter of record on a Modbus TCP emulator)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ocpp.v16 import call

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


async def test_a_stop_the_device_did_not_hear_switches_it_off_when_it_answers(
    csms: StrictCentralSystem, tmp_path: Any
) -> None:
    """RemoteStop while the charger is silent: the transaction ends (the stop is the central system's
    word), the charger keeps its energy on; when it answers, the bridge sees energy it has not allowed
    and switches it off."""
    config = make_config(
        csms.url, tmp_path, connector_fields={"poll_interval_s": 0.2, "faulted_after_failed_polls": 2}
    )
    async with running(config) as daemon:
        sim = daemon.charge_points["CP-1"].connectors[1].charger
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)
        sim.plug()
        sim.tap("TAG")
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Charging")
        sim.silence()
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Faulted")
        stopped = await csms.call("CP-1", call.RemoteStopTransaction(transaction_id=csms.last_transaction_id))
        assert stopped.status == "Accepted"
        await csms.wait_for_call("CP-1", "StopTransaction")
        assert sim.state().enabled is True  # it did not hear the stop
        sim.answer()
        await csms.wait_until(
            lambda: sim.state().enabled is False, what="energy switched off once it answers"
        )
