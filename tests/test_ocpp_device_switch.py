"""The energy switch of a `type: ocpp` charger (adapters/chargers/ocpp_device_switch.py) with its calls
answered by a script and its clock passed in: the paths the wire tests cannot reach in a few seconds
(a pause the charger does not honour shows only at the bridge's guard, 10 s on) and the refusals in
each mode. The same behaviour on the wire: test_ocpp_device_switching.py."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from ocpp.exceptions import NotImplementedError as CallNotImplemented
from ocpp.v16 import call

from adapters.base import DeviceRefused
from adapters.chargers.ocpp_device_link import ChargerState, Decisions
from adapters.chargers.ocpp_device_options import OcppDeviceOptions
from adapters.chargers.ocpp_device_support import Support
from adapters.chargers.ocpp_device_switch import PAUSE_HELD_S, START_PENDING_S, EnergySwitch

SMART = Support(smart_charging=True)


class Charger:
    """Answers the switch's calls as `answers` say (action -> status, or an exception) and keeps them."""

    def __init__(self, **answers: Any) -> None:
        self.answers = answers
        self.sent: list[Any] = []

    async def send(self, payload: Any) -> Any:
        self.sent.append(payload)
        answer = self.answers.get(type(payload).__name__, "Accepted")
        if isinstance(answer, Exception):
            raise DeviceRefused(f"{type(payload).__name__} failed") from answer
        return SimpleNamespace(status=answer)

    def actions(self) -> list[str]:
        return [type(p).__name__ for p in self.sent]


def switch(
    charger: Charger, support: Support, mode: str = "auto", now: Callable[[], float] = lambda: 0.0
) -> EnergySwitch:
    options = OcppDeviceOptions(identity="WB-1", password="pw", energy_switch=mode)
    state = ChargerState(connector_id=1, status="Charging", plugged=True, transaction_id=41)
    s = EnergySwitch(options, state, Decisions(), charger.send, "OCPP charger WB-1", clock=now)
    s.support = support
    return s


async def test_a_pause_is_sent_once_and_cleared_by_energy_on() -> None:
    charger = Charger()
    s = switch(charger, SMART)
    await s.set_enabled(False)  # paused by the limit
    [pause] = charger.sent
    assert isinstance(pause, call.SetChargingProfile)
    profile = pause.cs_charging_profiles
    assert (profile["chargingProfilePurpose"], profile["transactionId"]) == ("TxProfile", 41)
    s.state.status = "SuspendedEVSE"
    await s.set_enabled(False)  # off again within the session (an invalid card): still paused
    assert charger.actions() == ["SetChargingProfile"]
    await s.set_enabled(True)
    assert charger.actions() == ["SetChargingProfile", "ClearChargingProfile"] and s.paused is None


async def test_the_end_of_the_bridges_session_stops_its_transaction_paused_or_not() -> None:
    charger = Charger()
    s = switch(charger, SMART)
    await s.set_enabled(False)
    s.state.status = "SuspendedEVSE"
    await s.set_enabled(False, session_ends=True)  # the vehicle still plugged: no pause outlives it
    assert charger.actions() == ["SetChargingProfile", "RemoteStopTransaction"]
    assert charger.sent[1].transaction_id == 41
    running = Charger()
    await switch(running, SMART).set_enabled(False, session_ends=True)  # not paused: stopped at once
    assert running.actions() == ["RemoteStopTransaction"]


async def test_a_pause_it_does_not_honour_is_given_up_for_remote_stop() -> None:
    now = [100.0]
    charger = Charger()
    s = switch(charger, SMART, now=lambda: now[0])
    await s.set_enabled(False)
    now[0] += PAUSE_HELD_S - 1
    await s.set_enabled(False)  # too soon to tell: it may not have said SuspendedEVSE yet
    assert charger.actions() == ["SetChargingProfile"]
    now[0] += 2
    await s.set_enabled(False)  # still Charging: the guard switches energy off again
    assert charger.actions() == ["SetChargingProfile", "RemoteStopTransaction"]
    assert s.support.pause_refused == "energy still flowed at 0"
    assert "a 0 A pause failed: energy still flowed at 0" in s.lines()[1]


async def test_a_refused_pause_stops_its_transaction() -> None:
    charger = Charger(SetChargingProfile="Rejected")
    s = switch(charger, SMART)
    await s.set_enabled(False)
    assert charger.actions() == ["SetChargingProfile", "RemoteStopTransaction"]
    assert s.support.pause_refused == "OCPP charger WB-1 refused a pause at 0 (Rejected)"


async def test_unplugged_or_core_only_or_remote_is_a_remote_stop() -> None:
    for support, mode, plugged in (
        (SMART, "auto", False),
        (Support(), "auto", True),
        (SMART, "remote", True),
    ):
        charger = Charger()
        s = switch(charger, support, mode)
        s.state.plugged = plugged
        await s.set_enabled(False)
        assert charger.actions() == ["RemoteStopTransaction"], (support, mode, plugged)


async def test_a_refused_remote_start_is_remembered_in_auto_only() -> None:
    charger = Charger(RemoteStartTransaction=CallNotImplemented())
    s = switch(charger, Support())
    s.state.transaction_id = None
    with pytest.raises(DeviceRefused, match=r"refused RemoteStartTransaction \(CALLERROR NotImplemented\)"):
        await s.set_enabled(True)
    assert s.support.remote_start_refused == "CALLERROR NotImplemented"
    await s.set_enabled(False)
    await s.set_enabled(True)  # not asked again: its own StartTransaction starts a session
    assert charger.actions() == ["RemoteStartTransaction"] and s.decisions.enabled

    charger = Charger(RemoteStartTransaction="Rejected")
    s = switch(charger, Support(), mode="remote")
    s.state.transaction_id = None
    for _ in range(2):  # `remote`: a refused command each time
        with pytest.raises(DeviceRefused, match=r"\(Rejected\)"):
            await s.set_enabled(True)
    assert charger.actions() == ["RemoteStartTransaction"] * 2 and s.support.remote_start_refused is None


async def test_other_callerrors_of_remote_start_are_refusals_not_remembered() -> None:
    charger = Charger(RemoteStartTransaction=ValueError("an answer that breaks its schema"))
    s = switch(charger, Support())
    s.state.transaction_id = None
    with pytest.raises(DeviceRefused):
        await s.set_enabled(True)
    assert s.support.remote_start_refused is None


async def test_the_set_point_in_w_with_its_voltage() -> None:
    charger = Charger()
    s = switch(charger, Support(smart_charging=True, rate_units=("W",)))
    s.state.voltage_v = (240.0, 240.0, 240.0)
    await s.set_current(10, connected=True)
    [setpoint] = charger.sent
    schedule = setpoint.cs_charging_profiles["chargingSchedule"]
    assert schedule["chargingRateUnit"] == "W" and schedule["chargingSchedulePeriod"][0]["limit"] == 7200.0
    await s.set_current(12, connected=False)  # kept, sent after its boot
    assert len(charger.sent) == 1 and s.current_a == 12


async def test_a_pause_it_will_not_clear_ends_by_the_set_point_in_its_place() -> None:
    charger = Charger(ClearChargingProfile=CallNotImplemented())
    s = switch(charger, SMART)
    await s.set_current(10, connected=True)
    await s.set_enabled(False)
    await s.set_enabled(True)
    assert charger.actions() == ["SetChargingProfile"] * 2 + ["ClearChargingProfile", "SetChargingProfile"]
    profile = charger.sent[-1].cs_charging_profiles
    assert (profile["chargingProfileId"], profile["chargingProfilePurpose"]) == (2, "TxProfile")
    assert profile["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == 10
    assert s.paused is None


def limits(charger: Charger) -> list[tuple[str, float]]:
    """The profiles sent: (purpose, limit), in order."""
    return [
        (
            p.cs_charging_profiles["chargingProfilePurpose"],
            p.cs_charging_profiles["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"],
        )
        for p in charger.sent
        if isinstance(p, call.SetChargingProfile)
    ]


async def test_after_a_pause_it_would_not_clear_every_set_point_reaches_its_tx_profile() -> None:
    """The TxProfile with the set-point overrules the TxDefaultProfile for the rest of its transaction:
    a lower limit (load management, 16 A -> 6 A) goes to both, or the charger would go on at 16 A."""
    charger = Charger(ClearChargingProfile=CallNotImplemented())
    s = switch(charger, SMART)
    await s.set_current(16, connected=True)
    await s.set_enabled(False)
    await s.set_enabled(True)  # the TxProfile of 16 A in the pause's place
    charger.sent.clear()
    await s.set_current(6, connected=True)
    assert limits(charger) == [("TxProfile", 6), ("TxDefaultProfile", 6)]
    assert charger.sent[0].cs_charging_profiles["transactionId"] == 41

    # Paused again: the 0 holds, a new set-point does not lift it; the end of the pause takes the latest.
    await s.set_enabled(False)
    charger.sent.clear()
    await s.set_current(8, connected=True)
    assert limits(charger) == [("TxDefaultProfile", 8)]
    await s.set_enabled(True)
    assert limits(charger)[-1] == ("TxProfile", 8)

    # Its transaction ends; the next one runs on the TxDefaultProfile alone.
    s.state.transaction_id = None
    charger.sent.clear()
    await s.set_current(10, connected=True)
    s.state.transaction_id = 42
    await s.set_current(12, connected=True)
    assert limits(charger) == [("TxDefaultProfile", 10), ("TxDefaultProfile", 12)]


async def test_a_cleared_pause_leaves_the_set_point_to_the_default_profile() -> None:
    charger = Charger(ClearChargingProfile=CallNotImplemented())
    s = switch(charger, SMART)
    await s.set_current(16, connected=True)
    await s.set_enabled(False)
    await s.set_enabled(True)  # a TxProfile of 16 A
    charger.answers.pop("ClearChargingProfile")  # the next clear is taken: its TxProfile is gone
    await s.set_enabled(False)
    await s.set_enabled(True)
    charger.sent.clear()
    await s.set_current(6, connected=True)
    assert limits(charger) == [("TxDefaultProfile", 6)]


async def test_a_charger_that_goes_on_with_its_transaction_after_a_reboot_is_resumed() -> None:
    """Paused, it reboots and goes on with its transaction (a deviation), keeping the 0 TxProfile:
    energy on clears it all the same; Unknown (it dropped it at its boot) is as good."""
    for answer in ("Accepted", "Unknown"):
        charger = Charger(ClearChargingProfile=answer)
        s = switch(charger, SMART)
        await s.set_enabled(False)
        s.state.open_at_boot = 41  # the link saw its BootNotification with transaction 41 running
        s.connected()
        s.booted()
        s.state.open_at_boot = None  # its StatusNotification SuspendedEVSE: it went on
        s.state.status = "SuspendedEVSE"
        await s.set_enabled(True)
        assert charger.actions() == ["SetChargingProfile", "ClearChargingProfile"], answer
        assert charger.sent[1].id == 2
        assert s.paused is None and s.paused_before_boot is None
        await s.set_enabled(True)  # nothing more to lift
        assert len(charger.sent) == 2


async def test_energy_off_after_such_a_reboot_sends_the_pause_again() -> None:
    charger = Charger()
    s = switch(charger, SMART)
    await s.set_enabled(False)
    s.state.open_at_boot = 41
    s.booted()
    await s.set_enabled(False)  # it may have dropped the pause: it is sent again
    assert charger.actions() == ["SetChargingProfile"] * 2


async def test_a_reboot_that_ended_its_transaction_forgets_the_pause() -> None:
    for open_at_boot, running in ((None, None), (41, None), (41, 43)):
        charger = Charger()
        s = switch(charger, SMART)
        await s.set_enabled(False)
        s.state.open_at_boot = open_at_boot
        if open_at_boot is None:  # it ended its transaction before it connected again
            s.state.transaction_id = None
        s.booted()
        s.state.open_at_boot = None  # its StopTransaction of 41 (PowerLoss), as OCPP asks
        s.state.transaction_id = running  # and a new transaction, or none
        s.start_asked = 0.0
        await s.set_enabled(True)  # a new transaction (43) or none: no clear of a pause
        assert "ClearChargingProfile" not in charger.actions(), (open_at_boot, running)
        assert s.paused_before_boot is None


async def test_a_core_only_charger_gets_no_clear_after_a_reboot() -> None:
    charger = Charger()
    s = switch(charger, Support())
    await s.set_enabled(False)  # Core only: a RemoteStop, no pause
    s.state.open_at_boot = 41
    s.booted()
    await s.set_enabled(True)
    assert charger.actions() == ["RemoteStopTransaction"]


W_ONLY = Support(smart_charging=True, rate_units=("W",))


async def test_a_w_limit_counts_the_phases_drawing_once_seen() -> None:
    """`phases: 3`, a single-phase vehicle: 6 A is 1380 W once its currents show one phase, not
    4140 W (18 A on that phase); the limit is sent again when the count changes."""
    charger = Charger()
    s = switch(charger, W_ONLY)
    await s.set_current(6, connected=True)
    assert limits(charger) == [("TxDefaultProfile", 4140.0)]  # nothing seen yet: `phases`
    s.state.current_a = (6.0, 0.3, 0.2)
    s.observe()
    assert s.phases() == 1 and s.phases_changed.is_set()
    job = asyncio.create_task(s.follow_phases())
    try:
        for _ in range(20):
            await asyncio.sleep(0)
        assert limits(charger)[-1] == ("TxDefaultProfile", 1380.0)
        s.state.current_a = (0.1, 0.0, 0.0)  # it stopped drawing: what was seen holds
        s.observe()
        assert s.phases() == 1 and not s.phases_changed.is_set()
        s.state.current_a = (6.0, 6.0, 6.0)  # it draws on three now
        s.observe()
        for _ in range(20):
            await asyncio.sleep(0)
        assert limits(charger)[-1] == ("TxDefaultProfile", 4140.0) and len(charger.sent) == 3
    finally:
        job.cancel()
    s.state.current_a = (6.0, 0.0, 0.0)
    s.observe()
    s.state.transaction_id = 42  # a new transaction: `phases` until its readings show otherwise
    assert s.phases() == 3


async def test_the_phases_drawing_never_exceed_the_option_nor_matter_in_a() -> None:
    charger = Charger()
    s = switch(charger, W_ONLY)
    s.options = OcppDeviceOptions(identity="WB-1", password="pw", phases=1)
    await s.set_current(10, connected=True)
    s.state.current_a = (10.0, 10.0, 10.0)
    s.observe()
    assert s.phases() == 1 and not s.phases_changed.is_set()
    amps = switch(Charger(), SMART)
    await amps.set_current(10, connected=True)
    amps.state.current_a = (10.0, 0.0, 0.0)
    amps.observe()
    assert amps.phases() == 1 and not amps.phases_changed.is_set()  # A: per phase already


async def test_energy_on_again_before_its_own_start_comes_asks_for_no_remote_start() -> None:
    """A card waits at its reader: energy on answers it, and the charger starts on its own; energy on
    again before its StartTransaction arrives sends no RemoteStart (it would start twice)."""
    now = [0.0]
    charger = Charger()
    s = switch(charger, Support(), now=lambda: now[0])
    s.state.transaction_id = None
    s.decisions.cards_waiting = 1
    await s.set_enabled(True)
    s.decisions.cards_waiting = 0  # its Authorize answered Accepted
    await s.set_enabled(True)
    assert charger.actions() == []
    now[0] += START_PENDING_S  # it never started: asked then
    await s.set_enabled(True)
    assert charger.actions() == ["RemoteStartTransaction"]
