"""A Phoenix Contact EV-CC (Wallbe) over Modbus TCP through the whole bridge: the real daemon, the strict
central system (tests/csms.py) and the box's emulator (tests/emulators/phoenix.py) on a real socket.

- a whole session started remotely and stopped remotely, with the energy register of the box's meter
  on the wire (Wallbe's firmware: the 64-bit holding 2980..2983, its 904 holding only 16 bits), and
  energy switched by coil 400;
- a current limit from a charging profile reaching the box in its units: 0.1 A on Wallbe's firmware
  (register 528);
- the box falling silent mid-transaction: Faulted, then Charging again, one transaction throughout.

The box's energy flows 100 times faster than real time, so that a session takes seconds.
"""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from ocpp.v16 import call

from adapters.chargers import phoenix_api as api
from bridge.daemon import Daemon
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.emulators.phoenix import PhoenixBox, PhoenixEmulator, phoenix
from tests.helpers.device_outage import charging_again, faulted_while_silent

CP = "CP-1"
ENERGY = "Energy.Active.Import.Register"
OCPP = {"MeterValueSampleInterval": 1, "MeterValuesSampledData": [ENERGY]}
CONNECTOR = {"poll_interval_s": 0.2, "faulted_after_failed_polls": 2}
READ_HOLDING, WRITE_COIL, WRITE_REGISTER = 3, 5, 6


@pytest.fixture
async def emu() -> AsyncIterator[PhoenixEmulator]:
    async with phoenix(PhoenixBox(wallbe=True, time_scale=100)) as emulator:
        yield emulator


def config(emu: PhoenixEmulator, csms: StrictCentralSystem, tmp_path: Any) -> Any:
    charger = {"type": "phoenix", "modbus": emu.url, "timeout_s": 0.5, "meter": True, "max_current_a": 16}
    return make_config(csms.url, tmp_path, ocpp=OCPP, charger=charger, connector_fields=CONNECTOR)


def sampled(payload: dict[str, Any]) -> float:
    (value,) = [v for mv in payload["meterValue"] for v in mv["sampledValue"] if v.get("measurand") == ENERGY]
    return float(value["value"])


async def first_reading(csms: StrictCentralSystem, daemon: Daemon) -> None:
    await csms.wait_for_call(
        CP, "StatusNotification", lambda p: (p["connectorId"], p["status"]) == (1, "Available")
    )
    await csms.wait_until(lambda: daemon.charge_points[CP].connectors[1].reading, what="a first reading")


async def remote_start(emu: PhoenixEmulator, csms: StrictCentralSystem, daemon: Daemon) -> dict[str, Any]:
    await first_reading(csms, daemon)
    emu.box.plug()
    await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Preparing")
    assert not emu.box.charging()  # the bridge took the decision over: coil 400 off until a transaction
    answer = await csms.call(CP, call.RemoteStartTransaction(id_tag="REMOTE-1", connector_id=1))
    assert answer.status == "Accepted"
    start = await csms.wait_for_call(CP, "StartTransaction")
    await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Charging", timeout=10)
    assert emu.box.charging()
    return start


async def remote_stop(csms: StrictCentralSystem) -> dict[str, Any]:
    answer = await csms.call(CP, call.RemoteStopTransaction(transaction_id=csms.last_transaction_id))
    assert answer.status == "Accepted"
    stop = await csms.wait_for_call(CP, "StopTransaction", timeout=10)
    await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Finishing")
    return stop


def check_energy(
    emu: PhoenixEmulator, csms: StrictCentralSystem, start: dict[str, Any], stop: dict[str, Any]
) -> None:
    """Every sample is a value the box's register showed, in order, between meterStart and meterStop."""
    reported = {int(wh) for wh in emu.box.reported_energy_wh}
    energies = [sampled(p) for p in csms.calls(CP, "MeterValues")]
    assert energies and all(int(wh) in reported for wh in energies) and energies == sorted(energies)
    assert start["meterStart"] in reported and stop["meterStop"] in reported
    assert start["meterStart"] <= energies[0] and energies[-1] <= stop["meterStop"]
    assert stop["meterStop"] > start["meterStart"]


async def test_a_whole_session(emu: PhoenixEmulator, csms: StrictCentralSystem, tmp_path: Any) -> None:
    async with running(config(emu, csms, tmp_path)) as daemon:
        start = await remote_start(emu, csms, daemon)
        await csms.wait_for_call(CP, "MeterValues", lambda p: sampled(p) > start["meterStart"], timeout=10)
        stop = await remote_stop(csms)
        assert not emu.box.charging() and not emu.box.enabled
    assert (start["idTag"], stop["transactionId"], stop["reason"]) == (
        "REMOTE-1", csms.last_transaction_id, "Remote",
    )  # fmt: skip
    check_energy(emu, csms, start, stop)
    assert start["meterStart"] > 0xFFFF  # more than Wallbe's 16-bit 904 holds
    read = {a.register for a in emu.box.accesses if a.function_code == READ_HOLDING}
    assert api.WALLBE_REG_ENERGY in read and api.EV_CC_REG_ENERGY not in read
    assert emu.box.writes(WRITE_COIL, api.COIL_ENABLE) == [0, 1, 0]  # taken over, the transaction, its end


def profile(pid: int, purpose: str, limit_a: float, **extra: Any) -> dict[str, Any]:
    start = datetime.fromtimestamp(int(time.time()) - 1, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "chargingProfileId": pid, "stackLevel": 1 if purpose == "TxProfile" else 0,
        "chargingProfilePurpose": purpose, "chargingProfileKind": "Absolute",
        "chargingSchedule": {
            "chargingRateUnit": "A", "startSchedule": start,
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit_a}],
        },
        **extra,
    }  # fmt: skip


async def test_a_charging_profiles_limit_reaches_the_box_in_tenths_of_an_ampere(
    emu: PhoenixEmulator, csms: StrictCentralSystem, tmp_path: Any
) -> None:
    async with running(config(emu, csms, tmp_path)) as daemon:
        await first_reading(csms, daemon)
        body = profile(1, "TxDefaultProfile", 10)
        answer = await csms.call(CP, call.SetChargingProfile(connector_id=0, cs_charging_profiles=body))
        assert answer.status == "Accepted"
        await remote_start(emu, csms, daemon)
        await csms.wait_until(lambda: emu.box.current == 100, what="10 A at the box", timeout=10)
        body = profile(2, "TxProfile", 7.5, transactionId=csms.last_transaction_id)
        answer = await csms.call(CP, call.SetChargingProfile(connector_id=1, cs_charging_profiles=body))
        assert answer.status == "Accepted"
        await csms.wait_until(lambda: emu.box.current == 75, what="7.5 A at the box", timeout=10)
        assert emu.box.currents_a() == [7.5, 7.5, 7.5] and emu.box.charging()
        await remote_stop(csms)
    written = emu.box.writes(WRITE_REGISTER, 528)
    # 16 A (the configured maximum), the default profile's 10 A, the transaction's 7.5 A; after the
    # transaction the default profile's 10 A again. Nothing else, and never the 1 A unit's 7 or 8.
    assert set(written) <= {160, 100, 75} and written[written.index(75) - 1] == 100


async def test_the_box_falls_silent_mid_transaction(
    emu: PhoenixEmulator, csms: StrictCentralSystem, tmp_path: Any
) -> None:
    async with running(config(emu, csms, tmp_path)) as daemon:
        start = await remote_start(emu, csms, daemon)
        silence = functools.partial(setattr, emu.box, "silent")
        faulted = await faulted_while_silent(csms, CP, silence)
        await charging_again(csms, CP, silence)
        assert emu.box.charging()  # the outage did not stop the energy
        transaction_id = csms.last_transaction_id
        stop = await remote_stop(csms)

    assert (faulted["connectorId"], faulted["errorCode"], faulted["vendorErrorCode"]) == (
        1, "OtherError", "DeviceUnreachable",
    )  # fmt: skip
    assert faulted["info"].startswith("Phoenix EV-CC at 127.0.0.1")
    assert len(csms.calls(CP, "StartTransaction")) == 1 and len(csms.calls(CP, "StopTransaction")) == 1
    assert stop["transactionId"] == transaction_id
    check_energy(emu, csms, start, stop)
    statuses = [
        p["status"]
        for p in csms.calls(CP, "StatusNotification")
        if p["connectorId"] == 1 and p["status"] != "SuspendedEV"
    ]
    assert statuses == ["Available", "Preparing", "Charging", "Faulted", "Charging", "Finishing"]


async def test_the_boxs_error_state_is_faulted_and_the_transaction_survives_it(
    emu: PhoenixEmulator, csms: StrictCentralSystem, tmp_path: Any
) -> None:
    async with running(config(emu, csms, tmp_path)) as daemon:
        await remote_start(emu, csms, daemon)
        emu.box.error = "F"
        faulted = await csms.wait_for_call(
            CP, "StatusNotification", lambda p: p["status"] == "Faulted", timeout=10
        )
        emu.box.error = ""
        await csms.wait_for_call(
            CP, "StatusNotification", lambda p: p["status"] == "Charging", count=2, timeout=10
        )
        await remote_stop(csms)
    assert faulted["errorCode"] == "InternalError" and faulted.get("vendorErrorCode") == "status F"
    assert len(csms.calls(CP, "StartTransaction")) == 1 and len(csms.calls(CP, "StopTransaction")) == 1
