"""A KEBA P30 over Modbus TCP through the whole bridge: the real daemon, the strict central system
(tests/csms.py) and the box's emulator (tests/emulators/keba_modbus.py) on a real socket.

- a whole session started by a card at the box's reader, stopped by RemoteStopTransaction, with the
  energy register and power of the box's meter on the wire;
- a current limit from a charging profile reaching the box in mA (register 5004);
- the box falling silent mid-transaction: Faulted, then Charging again, one transaction throughout.

The box paces at a tenth of the guide's gaps (and the driver with it), and its energy flows 100 times
faster than real time, so that a session takes seconds. It answers on unit 255, as the guides say.
"""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call

from adapters.chargers import keba_modbus_api as api
from bridge.daemon import Daemon
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.emulators.keba_modbus import KebaBox, KebaModbusEmulator, keba_modbus
from tests.helpers.device_outage import charging_again, faulted_while_silent

CP = "CP-1"
ENERGY = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"
OCPP = {"MeterValueSampleInterval": 1, "MeterValuesSampledData": [ENERGY, POWER]}
CONNECTOR = {"poll_interval_s": 0.2, "faulted_after_failed_polls": 2}
CARD = 3570234960  # the first four UID bytes D4CD7650


@pytest.fixture
async def emu() -> AsyncIterator[KebaModbusEmulator]:
    box = KebaBox(read_gap_s=0.05, write_gap_s=0.5, time_scale=100)
    async with keba_modbus(box) as emulator:
        yield emulator


def config(emu: KebaModbusEmulator, csms: StrictCentralSystem, tmp_path: Path) -> Any:
    charger = {
        "type": "keba-modbus", "modbus": emu.url, "timeout_s": 0.5,
        "read_interval_s": 0.05, "write_interval_s": 0.5,
    }  # fmt: skip
    return make_config(csms.url, tmp_path, ocpp=OCPP, charger=charger, connector_fields=CONNECTOR)


def sampled(payload: dict[str, Any], measurand: str) -> float:
    (value,) = [
        v for mv in payload["meterValue"] for v in mv["sampledValue"] if v.get("measurand") == measurand
    ]
    return float(value["value"])


async def first_reading(csms: StrictCentralSystem, daemon: Daemon) -> None:
    await csms.wait_for_call(
        CP, "StatusNotification", lambda p: (p["connectorId"], p["status"]) == (1, "Available")
    )
    await csms.wait_until(lambda: daemon.charge_points[CP].connectors[1].reading, what="a first reading")


async def remote_start(emu: KebaModbusEmulator, csms: StrictCentralSystem, daemon: Daemon) -> dict[str, Any]:
    await first_reading(csms, daemon)
    emu.box.plug()
    answer = await csms.call(CP, call.RemoteStartTransaction(id_tag="REMOTE-1", connector_id=1))
    assert answer.status == "Accepted"
    start = await csms.wait_for_call(CP, "StartTransaction")
    await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Charging", timeout=10)
    return start


async def remote_stop(csms: StrictCentralSystem) -> dict[str, Any]:
    answer = await csms.call(CP, call.RemoteStopTransaction(transaction_id=csms.last_transaction_id))
    assert answer.status == "Accepted"
    stop = await csms.wait_for_call(CP, "StopTransaction", timeout=10)
    await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Finishing")
    return stop


def check_energy(
    emu: KebaModbusEmulator, csms: StrictCentralSystem, start: dict[str, Any], stop: dict[str, Any]
) -> None:
    """Every sample is a value the box's register showed, in order, between meterStart and meterStop."""
    reported = {int(wh) for wh in emu.box.reported_energy_wh}  # the bridge sends whole Wh
    energies = [sampled(p, ENERGY) for p in csms.calls(CP, "MeterValues")]
    assert energies and all(int(wh) in reported for wh in energies) and energies == sorted(energies)
    assert start["meterStart"] in reported and stop["meterStop"] in reported
    assert start["meterStart"] <= energies[0] and energies[-1] <= stop["meterStop"]
    assert stop["meterStop"] > start["meterStart"]
    powers = [sampled(p, POWER) for p in csms.calls(CP, "MeterValues")]
    assert all(w in emu.box.reported_power_w for w in powers) and max(powers) == 11040


async def test_a_whole_session_started_by_the_boxs_card_reader(
    emu: KebaModbusEmulator, csms: StrictCentralSystem, tmp_path: Path
) -> None:
    async with running(config(emu, csms, tmp_path)) as daemon:
        await first_reading(csms, daemon)
        emu.box.plug()
        await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Preparing")
        assert not emu.box.charging()  # the bridge took the decision over: suspended until a transaction
        emu.box.tap(CARD)
        authorize = await csms.wait_for_call(CP, "Authorize")
        start = await csms.wait_for_call(CP, "StartTransaction")
        await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Charging", timeout=10)
        assert emu.box.charging()
        await csms.wait_for_call(
            CP, "MeterValues", lambda p: sampled(p, ENERGY) > start["meterStart"], timeout=10
        )
        stop = await remote_stop(csms)
        assert not emu.box.charging()

    assert authorize["idTag"] == start["idTag"] == "D4CD7650"
    assert (stop["transactionId"], stop["reason"]) == (csms.last_transaction_id, "Remote")
    check_energy(emu, csms, start, stop)
    assert emu.box.writes(api.REG_ENABLE) == [0, 1, 0]  # taken over, the transaction, its end
    assert emu.box.writes(api.REG_SET_FAILSAFE_TIMEOUT)[:1] == [30] and emu.box.failsafe_persisted
    assert emu.box.pacing_violations == []


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


async def test_a_charging_profiles_limit_reaches_the_box_in_milliamperes(
    emu: KebaModbusEmulator, csms: StrictCentralSystem, tmp_path: Path
) -> None:
    async with running(config(emu, csms, tmp_path)) as daemon:
        await first_reading(csms, daemon)
        body = profile(1, "TxDefaultProfile", 10)
        answer = await csms.call(CP, call.SetChargingProfile(connector_id=0, cs_charging_profiles=body))
        assert answer.status == "Accepted"
        start = await remote_start(emu, csms, daemon)
        await csms.wait_until(lambda: emu.box.current_ma == 10000, what="10 A at the box", timeout=10)
        body = profile(2, "TxProfile", 7.5, transactionId=csms.last_transaction_id)
        answer = await csms.call(CP, call.SetChargingProfile(connector_id=1, cs_charging_profiles=body))
        assert answer.status == "Accepted"
        await csms.wait_until(lambda: emu.box.current_ma == 7500, what="7.5 A at the box", timeout=10)
        assert emu.box.currents_ma() == [7500, 7500, 7500] and emu.box.charging()
        await remote_stop(csms)
    assert start["idTag"] == "REMOTE-1"
    assert set(emu.box.writes(api.REG_SET_CURRENT)) <= {16000, 10000, 7500}
    assert emu.box.writes(api.REG_SET_CURRENT)[-1] == 7500
    assert emu.box.pacing_violations == []


async def test_the_box_falls_silent_mid_transaction(
    emu: KebaModbusEmulator, csms: StrictCentralSystem, tmp_path: Path
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
    assert faulted["info"].startswith("KEBA at 127.0.0.1")
    assert len(csms.calls(CP, "StartTransaction")) == 1 and len(csms.calls(CP, "StopTransaction")) == 1
    assert stop["transactionId"] == transaction_id
    check_energy(emu, csms, start, stop)
    # SuspendedEV may flash by: a reading of the box taken as energy was being allowed
    statuses = [
        p["status"]
        for p in csms.calls(CP, "StatusNotification")
        if p["connectorId"] == 1 and p["status"] != "SuspendedEV"
    ]
    assert statuses == ["Available", "Preparing", "Charging", "Faulted", "Charging", "Finishing"]
