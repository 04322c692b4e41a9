"""Smart charging on the wire and at the device: profiles from the strict central system reach the
simulated charger and the go-e emulator as currents; a limit below the minimum pauses charging."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from ocpp.v16 import call

from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.emulators.goe import GoeEmulator
from tests.helpers.flow import ready

SAMPLED = {
    "MeterValueSampleInterval": 1,
    "MeterValuesSampledData": "Energy.Active.Import.Register,Current.Offered",
}


def stamp(epoch_s: float) -> str:
    return datetime.fromtimestamp(int(epoch_s), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def profile(
    pid: int,
    purpose: str = "TxDefaultProfile",
    periods: tuple[tuple[int, float], ...] = ((0, 10),),
    stack: int = 0,
    kind: str = "Absolute",
    start: float | None = None,
    unit: str = "A",
) -> dict[str, Any]:
    schedule: dict[str, Any] = {
        "chargingRateUnit": unit,
        "chargingSchedulePeriod": [{"startPeriod": s, "limit": limit} for s, limit in periods],
    }
    if kind != "Relative":
        schedule["startSchedule"] = stamp(time.time() - 1 if start is None else start)
    return {
        "chargingProfileId": pid,
        "stackLevel": stack,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": kind,
        "chargingSchedule": schedule,
    }


async def set_profile(cs: StrictCentralSystem, connector: int, body: dict[str, Any]) -> str:
    answer = await cs.call("CP-1", call.SetChargingProfile(connector_id=connector, cs_charging_profiles=body))
    return str(answer.status)


def sim(daemon: Any, connector: int = 1) -> Any:
    return daemon.charge_points["CP-1"].connectors[connector].charger


async def status(cs: StrictCentralSystem, wanted: str, count: int = 1) -> None:
    await cs.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == wanted, count=count)


def offered(cs: StrictCentralSystem) -> list[float]:
    return [
        float(v["value"])
        for mv in cs.calls("CP-1", "MeterValues")
        for sample in mv["meterValue"]
        for v in sample["sampledValue"]
        if v.get("measurand") == "Current.Offered"
    ]


async def test_a_default_profile_reaches_the_charger_and_a_low_limit_pauses_it(
    csms: StrictCentralSystem, tmp_path: Any
) -> None:
    async with running(make_config(csms.url, tmp_path, ocpp=SAMPLED)) as daemon:
        await ready(csms)
        charger = sim(daemon)
        assert await set_profile(csms, 0, profile(1, periods=((0, 10),))) == "Accepted"
        await csms.wait_until(lambda: charger.state().current_a == 10, what="10 A at the charger")
        charger.plug()
        charger.tap("TAG")
        await status(csms, "Charging")
        await csms.wait_until(lambda: 10.0 in offered(csms), what="Current.Offered 10 A in MeterValues")
        tx_id = (await csms.wait_for_call("CP-1", "StartTransaction")) and csms.last_transaction_id

        # A TxProfile of 5 A for this transaction: below the charger's 6 A minimum -> paused.
        assert (
            await set_profile(csms, 1, profile(2, "TxProfile", ((0, 5),), stack=1) | {"transactionId": tx_id})
            == "Accepted"
        )
        await status(csms, "SuspendedEVSE")
        assert charger.state().enabled is False
        api = daemon.charge_points["CP-1"].smart
        assert api.current_limit_a(1) == 0.0

        # The limit rises again: the same transaction resumes at 10 A.
        cleared = await csms.call("CP-1", call.ClearChargingProfile(id=2))
        assert cleared.status == "Accepted"
        await status(csms, "Charging", count=2)
        assert charger.state().enabled is True and charger.state().current_a == 10
        composite = await csms.call("CP-1", call.GetCompositeSchedule(connector_id=1, duration=300))
        charger.tap("TAG")
        stop = await csms.wait_for_call("CP-1", "StopTransaction")
    assert composite.status == "Accepted"
    assert composite.connector_id == 1
    assert composite.charging_schedule["charging_rate_unit"] == "A"
    assert composite.charging_schedule["duration"] == 300
    assert "start_schedule" not in composite.charging_schedule  # ERRATA 3.57
    assert composite.charging_schedule["charging_schedule_period"] == [{"start_period": 0, "limit": 10}]
    assert len(csms.calls("CP-1", "StartTransaction")) == 1  # paused, never stopped
    assert stop["transactionId"] == tx_id and stop["reason"] == "Local"


async def test_a_period_boundary_reaches_the_device_by_itself(
    csms: StrictCentralSystem, tmp_path: Any
) -> None:
    async with running(make_config(csms.url, tmp_path)) as daemon:
        await ready(csms)
        charger = sim(daemon)
        now = int(time.time())
        body = profile(1, periods=((0, 12), (3, 8)), start=now)
        assert await set_profile(csms, 1, body) == "Accepted"
        await csms.wait_until(lambda: charger.state().current_a == 12, what="12 A first")
        await csms.wait_until(
            lambda: charger.state().current_a == 8, timeout=5, what="8 A from the next period"
        )
        assert time.time() >= now + 3


@pytest.fixture
async def goe() -> AsyncIterator[GoeEmulator]:
    emu = GoeEmulator()
    await emu.start_http()
    yield emu
    await emu.close()


async def test_a_default_profile_reaches_a_go_e_as_its_amp_key(
    csms: StrictCentralSystem, goe: GoeEmulator, tmp_path: Any
) -> None:
    config = make_config(csms.url, tmp_path, charger={"type": "goe", "url": goe.url, "timeout_s": 2})
    async with running(config):
        await ready(csms)
        await csms.wait_until(lambda: ("amp", "16") in goe.received, what="the maximum without a profile")
        assert await set_profile(csms, 0, profile(1, periods=((0, 6900),), unit="W")) == "Accepted"
        # 6900 W / (230 V x 3 phases) = 10 A
        await csms.wait_until(lambda: goe.keys["amp"] == 10, what="amp=10 at the go-e")
        assert await set_profile(csms, 0, profile(1, periods=((0, 4),))) == "Accepted"  # replaces id 1
        goe.plug()
        await status(csms, "Preparing")
        goe.tap(1)
        await status(csms, "SuspendedEVSE")  # 4 A is below the go-e's 6 A: the transaction waits
        assert goe.keys["frc"] == 1
        assert await set_profile(csms, 0, profile(1, periods=((0, 7.5),))) == "Accepted"
        await status(csms, "Charging")
        assert goe.keys["amp"] == 7 and goe.keys["frc"] == 2  # rounded down to the 1 A step


async def test_what_cannot_be_installed_and_what_is_not_a_profile(
    csms: StrictCentralSystem, tmp_path: Any
) -> None:
    async with running(make_config(csms.url, tmp_path)):
        await ready(csms)
        key = await csms.call("CP-1", call.GetConfiguration(key=["ConnectorSwitch3to1PhaseSupported"]))
        assert key.configuration_key[0] == {"key": "ConnectorSwitch3to1PhaseSupported", "readonly": True,
                                            "value": "false"}  # the simulated charger cannot  # fmt: skip
        # OCTT TC_058_1: a TxProfile without a transaction.
        assert await set_profile(csms, 1, profile(1, "TxProfile")) == "Rejected"
        assert await set_profile(csms, 1, profile(2, "ChargePointMaxProfile")) == "Rejected"
        assert await set_profile(csms, 1, profile(3, stack=11)) == "Rejected"  # ChargeProfileMaxStackLevel 10
        bad = {
            "c1": ('{"connectorId":5,"csChargingProfiles":%s}', profile(4)),
            "c2": ('{"connectorId":1,"csChargingProfiles":%s}', profile(4, unit="kW")),
            "c3": ('{"connectorId":1,"csChargingProfiles":%s}', profile(4, periods=((5, 10),))),
        }
        import json

        for uid, (template, body) in bad.items():
            await csms.send_raw("CP-1", f'[2,"{uid}","SetChargingProfile",{template % json.dumps(body)}]')
        await csms.send_raw("CP-1", '[2,"g1","GetCompositeSchedule",{"connectorId":3,"duration":60}]')
        await csms.send_raw(
            "CP-1", '[2,"g2","GetCompositeSchedule",{"connectorId":1,"duration":60,"chargingRateUnit":"kW"}]'
        )
        answers = {uid: await csms.answer_of("CP-1", uid) for uid in ("c1", "c2", "c3", "g1", "g2")}
        unknown = await csms.call("CP-1", call.ClearChargingProfile(id=99))
        empty = await csms.call("CP-1", call.GetCompositeSchedule(connector_id=1, duration=60))
    # An unknown connector in GetCompositeSchedule is Rejected (§5.7); everything else a CALLERROR.
    assert answers.pop("g1") == [3, "g1", {"status": "Rejected"}]
    for uid, answer in answers.items():
        assert answer[0] == 4 and answer[2] == "PropertyConstraintViolation", (uid, answer)
    assert "connectorId 5" in answers["c1"][3]
    assert "first startPeriod must be 0" in answers["c3"][3]
    assert unknown.status == "Unknown"
    # Nothing installed: the composite is the charger's own maximum (the local limit).
    assert empty.charging_schedule["charging_schedule_period"] == [{"start_period": 0, "limit": 16}]


async def test_profiles_survive_a_restart(csms: StrictCentralSystem, tmp_path: Any) -> None:
    config = make_config(csms.url, tmp_path)
    async with running(config):
        await ready(csms)
        assert await set_profile(csms, 0, profile(1, "ChargePointMaxProfile", ((0, 8),))) == "Accepted"
    async with running(config) as daemon:
        await csms.wait_for_call("CP-1", "BootNotification", count=2)
        await csms.wait_until(lambda: sim(daemon).state().current_a == 8, what="8 A after the restart")
        composite = await csms.call(
            "CP-1", call.GetCompositeSchedule(connector_id=0, duration=60, charging_rate_unit="W")
        )
    # 8 A x 230 V x 3 phases, on connector 0 (the whole charge point).
    assert composite.charging_schedule["charging_schedule_period"] == [{"start_period": 0, "limit": 5520}]


async def test_remote_start_with_a_tx_profile(csms: StrictCentralSystem, tmp_path: Any) -> None:
    """OCTT TC_059: the TxProfile of RemoteStartTransaction governs that transaction, and goes with it."""
    async with running(make_config(csms.url, tmp_path)) as daemon:
        await ready(csms)
        charger = sim(daemon)
        wrong = await csms.call(
            "CP-1", call.RemoteStartTransaction(id_tag="R", connector_id=1, charging_profile=profile(1))
        )
        assert wrong.status == "Rejected"  # a TxDefaultProfile cannot come with a RemoteStart
        charger.plug()
        tx_profile = profile(7, "TxProfile", ((0, 7), (600, 9)), kind="Relative")
        answer = await csms.call(
            "CP-1", call.RemoteStartTransaction(id_tag="R", connector_id=1, charging_profile=tx_profile)
        )
        assert answer.status == "Accepted"
        await status(csms, "Charging")
        assert charger.state().current_a == 7  # set before energy was allowed
        during = await csms.call("CP-1", call.GetCompositeSchedule(connector_id=1, duration=900))
        await csms.call("CP-1", call.RemoteStopTransaction(transaction_id=csms.last_transaction_id))
        await csms.wait_for_call("CP-1", "StopTransaction")
        await csms.wait_until(
            lambda: charger.state().current_a == 16, what="the maximum again after the transaction"
        )
        after = await csms.call("CP-1", call.GetCompositeSchedule(connector_id=1, duration=900))
    periods = during.charging_schedule["charging_schedule_period"]
    assert [p["limit"] for p in periods] == [7, 9]
    assert 595 <= periods[1]["start_period"] <= 600  # relative to the transaction's start
    assert after.charging_schedule["charging_schedule_period"] == [{"start_period": 0, "limit": 16}]


async def test_number_phases_switches_a_go_e_and_back(
    csms: StrictCentralSystem, goe: GoeEmulator, tmp_path: Any
) -> None:
    config = make_config(csms.url, tmp_path, charger={"type": "goe", "url": goe.url, "timeout_s": 2})
    async with running(config):
        await ready(csms)
        one_phase = profile(1, periods=((0, 16),))
        one_phase["chargingSchedule"]["chargingSchedulePeriod"][0]["numberPhases"] = 1
        assert await set_profile(csms, 1, one_phase) == "Accepted"
        await csms.wait_until(lambda: goe.keys["psm"] == 1, what="psm=1 (force 1 phase)")
        assert goe.phases_in_use() == 1
        assert (await csms.call("CP-1", call.ClearChargingProfile())).status == "Accepted"
        await csms.wait_until(lambda: goe.keys["psm"] == 2, what="psm=2: back to 3 phases")
        key = await csms.call("CP-1", call.GetConfiguration(key=["ConnectorSwitch3to1PhaseSupported"]))
    assert key.configuration_key[0]["value"] == "true"  # learnt from the go-e's probe (psm exists)
    assert ("psm", "1") in goe.received


async def test_a_composite_far_into_the_future_is_bounded(csms: StrictCentralSystem, tmp_path: Any) -> None:
    async with running(make_config(csms.url, tmp_path)):
        await ready(csms)
        daily = profile(1, periods=tuple((i * 900, 6 + i % 10) for i in range(96)), kind="Recurring")
        daily["recurrencyKind"] = "Daily"
        assert await set_profile(csms, 1, daily) == "Accepted"
        started = time.perf_counter()
        answer = await csms.call("CP-1", call.GetCompositeSchedule(connector_id=1, duration=10**9))
        took = time.perf_counter() - started
        assert (await csms.call("CP-1", call.GetConfiguration(key=["HeartbeatInterval"]))).configuration_key
    schedule = answer.charging_schedule
    assert schedule["duration"] == 31 * 86400
    assert len(schedule["charging_schedule_period"]) > 31 * 90  # every 15-minute period, every day
    assert took < 2.0


async def test_a_tx_profile_stays_with_its_transaction_across_a_graceful_restart(
    csms: StrictCentralSystem, tmp_path: Any
) -> None:
    config = make_config(csms.url, tmp_path)
    async with running(config) as daemon:
        await ready(csms)
        charger = sim(daemon)
        charger.plug()
        charger.tap("TAG")
        await status(csms, "Charging")
        await csms.wait_until(lambda: daemon.charge_points["CP-1"].snapshot().connectors[0].transaction_id)
        assert await set_profile(csms, 1, profile(3, "TxProfile", ((0, 8),), stack=1)) == "Accepted"
        await csms.wait_until(lambda: charger.state().current_a == 8, what="8 A from the TxProfile")
    again = make_config(csms.url, tmp_path, charger={"plugged": True})
    async with running(again) as daemon:
        await csms.wait_for_call("CP-1", "BootNotification", count=2)
        await csms.wait_until(lambda: sim(daemon).state().current_a == 8, what="still 8 A after the restart")
        composite = await csms.call("CP-1", call.GetCompositeSchedule(connector_id=1, duration=60))
    assert composite.charging_schedule["charging_schedule_period"] == [{"start_period": 0, "limit": 8}]


async def test_a_limit_the_charger_refuses_pauses_charging_until_it_takes_one(
    csms: StrictCentralSystem, goe: GoeEmulator, tmp_path: Any
) -> None:
    """Fail safe: the go-e's own maximum (ama) was lowered to 8 A on the box, so amp=10 is refused;
    energy at an unknown current could exceed the 10 A limit, so the transaction waits."""
    goe.keys["ama"] = 8
    config = make_config(csms.url, tmp_path, charger={"type": "goe", "url": goe.url, "timeout_s": 2})
    async with running(config) as daemon:
        await ready(csms)
        assert await set_profile(csms, 0, profile(1, periods=((0, 10),))) == "Accepted"
        goe.plug()
        await status(csms, "Preparing")
        goe.tap(1)
        await status(csms, "SuspendedEVSE")
        assert goe.keys["frc"] == 1 and daemon.charge_points["CP-1"].smart.current_limit_a(1) == 0.0
        assert await set_profile(csms, 0, profile(1, periods=((0, 7),))) == "Accepted"  # within ama
        await status(csms, "Charging")
    assert goe.keys["amp"] == 7 and goe.keys["frc"] == 2
