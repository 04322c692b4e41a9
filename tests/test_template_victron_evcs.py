"""The Victron EVCS template (adapters/templates/victron-evcs.yaml): the emulator against Victron's
published register list, then the station through the bridge against the strict central system: a
whole session, a charging profile's limit reaching SetCurrent in amperes, a fault the station reports,
and an outage carried through by one transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call
from pymodbus.client import AsyncModbusTcpClient

from bridge.probe import probe
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.emulators.victron_evcs import (
    REG_ENERGY_FORWARD,
    REG_SET_CURRENT,
    REG_START_STOP,
    REG_STATUS,
    Station,
    VictronEvcsEmulator,
    victron_evcs,
)
from tests.helpers.flow import ready

CP = "CP-1"
ENERGY = "Energy.Active.Import.Register"
OCPP = {"MeterValueSampleInterval": 1, "MeterValuesSampledData": [ENERGY]}
CONNECTOR = {"poll_interval_s": 0.2, "faulted_after_failed_polls": 2}


@pytest.fixture
async def emu() -> AsyncIterator[VictronEvcsEmulator]:
    async with victron_evcs(Station(time_scale=20.0)) as emulator:
        yield emulator


async def test_the_emulator_speaks_the_published_register_list(emu: VictronEvcsEmulator) -> None:
    station = emu.station
    client = AsyncModbusTcpClient("127.0.0.1", port=emu.port)
    await client.connect()
    try:
        energy = await client.read_holding_registers(REG_ENERGY_FORWARD, count=2, device_id=100)
        assert (energy.registers[0] << 16 | energy.registers[1]) == 234_567  # kWh x 100, high word first
        station.plug()
        status = await client.read_holding_registers(REG_STATUS, count=1, device_id=100)
        assert status.registers == [6]  # waiting for start (manual mode, StartStop 0)
        assert not (await client.write_register(REG_SET_CURRENT, 10, device_id=100)).isError()
        assert not (await client.write_register(REG_START_STOP, 1, device_id=100)).isError()
        block = await client.read_holding_registers(3818, count=8, device_id=100)
        assert block.registers == [2300, 2300, 2300, 6900, 0, 10, 2, 10]  # L1..L3, P, time, I, status, set
        refused = await client.write_register(REG_STATUS, 1, device_id=100)  # a read-only row
        assert refused.isError() and refused.exception_code == 2
        too_much = await client.write_register(REG_SET_CURRENT, 40, device_id=100)  # above MaxCurrent 32
        assert too_much.isError() and too_much.exception_code == 3
        other_unit = await client.read_holding_registers(REG_STATUS, count=1, device_id=7)
        assert other_unit.isError() and other_unit.exception_code == 10
    finally:
        client.close()
    assert station.writes == [(REG_SET_CURRENT, 10), (REG_START_STOP, 1)]


def config_for(csms: StrictCentralSystem, emu: VictronEvcsEmulator, tmp_path: Path) -> Any:
    charger = {"type": "generic", "template": "victron-evcs", "params": {"url": emu.url}, "max_current_a": 16}
    return make_config(csms.url, tmp_path, ocpp=OCPP, charger=charger, connector_fields=CONNECTOR)


def energy_of(payload: dict[str, Any]) -> float:
    (value,) = [v for mv in payload["meterValue"] for v in mv["sampledValue"] if v.get("measurand") == ENERGY]
    return float(value["value"])


def statuses(csms: StrictCentralSystem) -> list[str]:
    return [p["status"] for p in csms.calls(CP, "StatusNotification") if p["connectorId"] == 1]


async def begin(csms: StrictCentralSystem, station: Station) -> dict[str, Any]:
    await ready(csms)
    station.plug()
    await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Preparing")
    answer = await csms.call(CP, call.RemoteStartTransaction(id_tag="REMOTE-1", connector_id=1))
    assert answer.status == "Accepted"
    start = await csms.wait_for_call(CP, "StartTransaction")
    await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Charging")
    return start


async def test_a_whole_session_and_a_profile_limit_in_amperes(
    csms: StrictCentralSystem, emu: VictronEvcsEmulator, tmp_path: Path
) -> None:
    station = emu.station
    async with running(config_for(csms, emu, tmp_path)):
        start = await begin(csms, station)
        assert station.start and station.set_current == 16  # max_current_a without a profile
        profile = {
            "chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Relative",
            "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [
                {"startPeriod": 0, "limit": 10.6}]},
        }  # fmt: skip
        answer = await csms.call(CP, call.SetChargingProfile(connector_id=0, cs_charging_profiles=profile))
        assert answer.status == "Accepted"
        # Whole amperes (current_step_a 1), never above what the profile allows.
        await csms.wait_until(lambda: station.set_current == 10, what="SetCurrent 10 A")
        rising = await csms.wait_for_call(
            CP, "MeterValues", lambda p: energy_of(p) > start["meterStart"], timeout=10
        )
        answer = await csms.call(CP, call.RemoteStopTransaction(transaction_id=csms.last_transaction_id))
        assert answer.status == "Accepted"
        stop = await csms.wait_for_call(CP, "StopTransaction")
        await csms.wait_until(lambda: statuses(csms)[-1:] == ["Finishing"], what="Finishing")
        assert not station.start and station.status() == 6  # stopped, the car still plugged
    assert start["meterStart"] == 2_345_670  # 3836 = 234567 (kWh x 100) in Wh
    assert energy_of(rising) in station.reported_energy_wh and stop["meterStop"] in station.reported_energy_wh
    assert (stop["transactionId"], stop["reason"]) == (rising["transactionId"], "Remote")
    assert (REG_START_STOP, 1) in station.writes and (REG_START_STOP, 0) == station.writes[-1]
    assert station.refused == []  # every write within the list's rows and ranges


async def test_a_fault_the_station_reports_is_faulted(
    csms: StrictCentralSystem, emu: VictronEvcsEmulator, tmp_path: Path
) -> None:
    async with running(config_for(csms, emu, tmp_path)):
        await ready(csms)
        emu.station.fault = 11  # residual current detected
        faulted = await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Faulted")
        emu.station.fault = 0
        await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Available", count=2)
    assert (faulted["errorCode"], faulted["vendorErrorCode"]) == ("OtherError", "error 11 residual current")


async def test_an_outage_is_faulted_and_back_within_one_transaction(
    csms: StrictCentralSystem, emu: VictronEvcsEmulator, tmp_path: Path
) -> None:
    station = emu.station
    async with running(config_for(csms, emu, tmp_path)):
        start = await begin(csms, station)
        await emu.stop()  # connection refused
        faulted = await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Faulted")
        await emu.start()
        await csms.wait_for_call(
            CP, "StatusNotification", lambda p: p["status"] == "Charging", count=2, timeout=10
        )
        assert station.charging()  # the outage did not stop the energy
        answer = await csms.call(CP, call.RemoteStopTransaction(transaction_id=csms.last_transaction_id))
        assert answer.status == "Accepted"
        stop = await csms.wait_for_call(CP, "StopTransaction")
    assert faulted["errorCode"] == "OtherError"
    assert len(csms.calls(CP, "StartTransaction")) == 1 and len(csms.calls(CP, "StopTransaction")) == 1
    assert stop["transactionId"] == csms.last_transaction_id and stop["meterStop"] > start["meterStart"]


async def test_probe_reads_the_station_and_writes_nothing(
    csms: StrictCentralSystem, emu: VictronEvcsEmulator, tmp_path: Path
) -> None:
    emu.station.plug()
    lines: list[str] = []
    assert await probe(config_for(csms, emu, tmp_path), lines.append, timeout_s=5) == 0
    assert lines[0] == f"CP-1 connector 1: Victron EVCS #100 at {emu.url}"
    assert lines[1] == "  plugged: yes; vehicle asks for energy: no; energy allowed: no"
    assert lines[2].startswith("  energy register: 2345670 Wh; power: 0 W")
    assert emu.station.writes == []
