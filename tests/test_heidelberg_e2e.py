"""A Heidelberg Energy Control over Modbus RTU through the whole bridge: the real daemon, the strict central
system (tests/csms.py) and the box's emulator (tests/emulators/heidelberg.py) on a socat pseudo-terminal
pair.

- a whole session started and stopped by the central system, with the box's energy register and power
  on the wire and the box switched by its current command (261: 0 vs the limit);
- a current limit from a charging profile reaching the box in 0.1 A (register 261);
- the box falling silent mid-transaction: Faulted, its watchdog falling back to the failsafe current,
  then Charging again at the limit once it answers, one transaction throughout.

The box's energy flows 100 times faster than real time, so that a session takes seconds.
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

from bridge.daemon import Daemon
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.emulators.heidelberg import HeidelbergBox, HeidelbergBus, heidelberg_rtu
from tests.helpers.device_outage import charging_again, faulted_while_silent

CP = "CP-1"
ENERGY = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"
OCPP = {"MeterValueSampleInterval": 1, "MeterValuesSampledData": [ENERGY, POWER]}
CONNECTOR = {"poll_interval_s": 0.2, "faulted_after_failed_polls": 2}
CURRENT = 261


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[HeidelbergBus]:
    async with heidelberg_rtu(tmp_path, HeidelbergBox(time_scale=100)) as emulated:
        yield emulated


def config(bus: HeidelbergBus, csms: StrictCentralSystem, tmp_path: Path) -> Any:
    charger = {"type": "heidelberg", "modbus": bus.url, "timeout_s": 0.2, "watchdog_timeout_s": 1.2}
    return make_config(csms.url, tmp_path, ocpp=OCPP, charger=charger, connector_fields=CONNECTOR)


def sampled(payload: dict[str, Any], measurand: str) -> float:
    (value,) = [
        v for mv in payload["meterValue"] for v in mv["sampledValue"] if v.get("measurand") == measurand
    ]
    return float(value["value"])


async def remote_start(bus: HeidelbergBus, csms: StrictCentralSystem, daemon: Daemon) -> dict[str, Any]:
    await csms.wait_for_call(
        CP, "StatusNotification", lambda p: (p["connectorId"], p["status"]) == (1, "Available")
    )
    await csms.wait_until(lambda: daemon.charge_points[CP].connectors[1].reading, what="a first reading")
    bus.box().plug()
    await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Preparing")
    assert not bus.box().charging()  # the bridge took the box over: 261 = 0 until a transaction
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
    bus: HeidelbergBus, csms: StrictCentralSystem, start: dict[str, Any], stop: dict[str, Any]
) -> None:
    """Every sample is a value the box's register showed (VAh), in order, between meterStart and meterStop."""
    reported = {int(wh) for wh in bus.box().reported_energy_wh}
    energies = [sampled(p, ENERGY) for p in csms.calls(CP, "MeterValues")]
    assert energies and all(int(wh) in reported for wh in energies) and energies == sorted(energies)
    assert start["meterStart"] in reported and stop["meterStop"] in reported
    assert start["meterStart"] <= energies[0] and energies[-1] <= stop["meterStop"]
    assert stop["meterStop"] > start["meterStart"]
    powers = [sampled(p, POWER) for p in csms.calls(CP, "MeterValues")]
    assert all(w in bus.box().reported_power_w for w in powers) and max(powers) > 0


async def test_a_whole_session(bus: HeidelbergBus, csms: StrictCentralSystem, tmp_path: Path) -> None:
    box = bus.box()
    async with running(config(bus, csms, tmp_path)) as daemon:
        start = await remote_start(bus, csms, daemon)
        assert box.charging() and box.current_da == 160
        await csms.wait_for_call(
            CP, "MeterValues", lambda p: sampled(p, ENERGY) > start["meterStart"], timeout=10
        )
        stop = await remote_stop(csms)
        assert not box.charging() and box.current_da == 0
    assert (stop["transactionId"], stop["reason"]) == (csms.last_transaction_id, "Remote")
    check_energy(bus, csms, start, stop)
    assert box.writes(CURRENT) == [0, 160, 0]  # taken over, the transaction, its end
    assert box.writes(257)[:1] == [1200]  # the watchdog in ms
    assert box.writes(258) and set(box.writes(258)) == {4}  # standby disabled
    assert box.fallbacks == [] and bus.pacing_violations == []


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
    bus: HeidelbergBus, csms: StrictCentralSystem, tmp_path: Path
) -> None:
    box = bus.box()
    async with running(config(bus, csms, tmp_path)) as daemon:
        await csms.wait_for_call(CP, "StatusNotification", lambda p: p["connectorId"] == 1)
        body = profile(1, "TxDefaultProfile", 10)
        answer = await csms.call(CP, call.SetChargingProfile(connector_id=0, cs_charging_profiles=body))
        assert answer.status == "Accepted"
        await remote_start(bus, csms, daemon)
        await csms.wait_until(lambda: box.current_da == 100, what="10 A at the box", timeout=10)
        body = profile(2, "TxProfile", 7.5, transactionId=csms.last_transaction_id)
        answer = await csms.call(CP, call.SetChargingProfile(connector_id=1, cs_charging_profiles=body))
        assert answer.status == "Accepted"
        await csms.wait_until(lambda: box.current_da == 75, what="7.5 A at the box", timeout=10)
        assert box.currents_da() == [75, 75, 75] and box.charging()
        await remote_stop(csms)
    assert set(box.writes(CURRENT)) <= {0, 160, 100, 75}
    assert box.writes(CURRENT)[-2:] == [75, 0]
    assert bus.pacing_violations == []


async def test_the_box_falls_silent_mid_transaction(
    bus: HeidelbergBus, csms: StrictCentralSystem, tmp_path: Path
) -> None:
    box = bus.box()
    async with running(config(bus, csms, tmp_path)) as daemon:
        start = await remote_start(bus, csms, daemon)
        silence = functools.partial(setattr, box, "silent")
        faulted = await faulted_while_silent(csms, CP, silence)
        await csms.wait_until(lambda: box.current_da == 0, what="the watchdog's fallback", timeout=5)
        assert not box.charging() and len(box.fallbacks) == 1  # the failsafe: 0 A
        await charging_again(csms, CP, silence)
        assert box.charging() and box.current_da == 160  # the bridge wrote its current again
        transaction_id = csms.last_transaction_id
        stop = await remote_stop(csms)

    assert (faulted["connectorId"], faulted["errorCode"], faulted["vendorErrorCode"]) == (
        1, "OtherError", "DeviceUnreachable",
    )  # fmt: skip
    assert faulted["info"].startswith("Heidelberg #1 on rtu://")
    assert len(csms.calls(CP, "StartTransaction")) == 1 and len(csms.calls(CP, "StopTransaction")) == 1
    assert stop["transactionId"] == transaction_id
    check_energy(bus, csms, start, stop)
    # Suspended statuses may flash by: a reading taken while the box was falling back or coming back.
    statuses = [
        p["status"]
        for p in csms.calls(CP, "StatusNotification")
        if p["connectorId"] == 1 and not p["status"].startswith("Suspended")
    ]
    assert statuses == ["Available", "Preparing", "Charging", "Faulted", "Charging", "Finishing"]
