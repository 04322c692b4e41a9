"""The device coordinator (bridge.runtime.coordinator): health, the guard's timing, the one lock.

The device here is a scripted driver: these tests are about the coordinator's own rules, with time
moved by hand. The real drivers and emulators are exercised end to end elsewhere
(test_device_outage, test_setups_e2e).
"""

from __future__ import annotations

import asyncio

from adapters.base import (
    Charger,
    ChargerCapabilities,
    ChargerReading,
    DeviceFault,
    DeviceRefused,
    DeviceUnreachable,
    NotSupportedByDevice,
)
from bridge.metrics import Metrics
from bridge.runtime.coordinator import UNWANTED_ENERGY_S, DeviceCoordinator
from tests.helpers.clock import ManualClock

CAPS = ChargerCapabilities(
    can_sense_plug=True, can_unlock=True, fixed_cable=False, can_switch_phases=False, can_reset=False,
    has_meter=True, has_rfid=False, phases=3, min_current_a=6, max_current_a=16, current_step_a=1,
)  # fmt: skip
PLUGGED_ON = ChargerReading(plugged=True, ev_requesting=True, energy_allowed=True, energy_wh=100.0)


class ScriptedCharger(Charger):
    """Answers reads from a script: a reading, or an error to raise."""

    def __init__(self) -> None:
        super().__init__()
        self.script: list[ChargerReading | Exception] = []
        self.calls: list[str] = []
        self.busy = 0  # how many calls are in the device at once
        self.most_busy = 0
        self.unlock_error: Exception | None = None

    @property
    def capabilities(self) -> ChargerCapabilities:
        return CAPS

    async def _enter(self, what: str) -> None:
        self.calls.append(what)
        self.busy += 1
        self.most_busy = max(self.most_busy, self.busy)
        await asyncio.sleep(0.01)
        self.busy -= 1

    async def read(self) -> ChargerReading:
        await self._enter("read")
        item = self.script.pop(0) if self.script else PLUGGED_ON
        if isinstance(item, Exception):
            raise item
        return item

    async def set_enabled(self, enabled: bool) -> None:
        await self._enter(f"enabled={enabled}")

    async def set_current(self, amps: float) -> None:
        await self._enter(f"current={amps:g}")

    async def unlock(self) -> None:
        await self._enter("unlock")
        if self.unlock_error is not None:
            raise self.unlock_error


def coordinator(charger: ScriptedCharger, clock: ManualClock, faulted_after: int = 3) -> DeviceCoordinator:
    device = DeviceCoordinator(
        charger, name="CP-1/1", clock=clock, poll_interval_s=1.0, faulted_after=faulted_after,
        metrics=Metrics(), labels={"charge_point": "CP-1", "connector": 1},
    )  # fmt: skip
    device.started = True  # as after a successful probe
    return device


async def test_the_device_is_faulted_at_the_threshold_and_answers_again_after() -> None:
    charger, clock = ScriptedCharger(), ManualClock()
    device = coordinator(charger, clock, faulted_after=3)
    faults: list[DeviceFault] = []
    back: list[bool] = []
    device.on_fault = faults.append
    device.on_back = lambda: back.append(True)
    charger.script = [DeviceUnreachable("timed out")] * 3 + [PLUGGED_ON]
    assert await device.refresh() is None and await device.refresh() is None
    assert faults == [] and device.snapshot().answering
    assert await device.refresh() is None
    assert faults == [DeviceFault("OtherError", "ScriptedCharger: timed out", "DeviceUnreachable")]
    assert not device.snapshot().answering and device.failed_reads == 3
    assert await device.refresh() == PLUGGED_ON
    assert back == [True] and device.snapshot().answering and device.failed_reads == 0


async def test_unwanted_energy_goes_off_at_the_first_reading_then_only_after_it_lasted() -> None:
    charger, clock = ScriptedCharger(), ManualClock()
    device = coordinator(charger, clock)
    decisions: list[bool] = []

    async def judge(reading: ChargerReading) -> None:
        decisions.append(device.energy_unwanted(reading, allowed=False))

    device.on_reading = judge
    await device.refresh()  # the first reading: at once
    clock.advance(1)
    await device.refresh()  # a command may not show yet
    clock.advance(UNWANTED_ENERGY_S)
    await device.refresh()  # it lasted: off again
    assert decisions == [True, False, True]
    assert not device.energy_unwanted(PLUGGED_ON, allowed=True)  # allowed: never unwanted


async def test_reads_and_commands_never_reach_the_device_at_once() -> None:
    charger, clock = ScriptedCharger(), ManualClock()
    device = coordinator(charger, clock)
    await asyncio.gather(
        device.refresh(), device.set_energy(True), device.set_limit(None, 10), device.read_now(1.0),
        device.unlock(1.0),
    )  # fmt: skip
    assert charger.most_busy == 1
    assert sorted(charger.calls) == sorted(["read", "enabled=True", "current=10", "read", "unlock"])


async def test_unlock_answers_through_the_one_mapping() -> None:
    charger, clock = ScriptedCharger(), ManualClock()
    device = coordinator(charger, clock)
    assert (await device.unlock(1.0))[0] == "Unlocked"
    charger.unlock_error = DeviceRefused("stuck")
    assert (await device.unlock(1.0))[0] == "UnlockFailed"
    charger.unlock_error = NotSupportedByDevice("no lock")
    assert (await device.unlock(1.0))[0] == "NotSupported"


async def test_a_silent_device_holds_up_no_reading_at_a_stop() -> None:
    charger, clock = ScriptedCharger(), ManualClock()
    device = coordinator(charger, clock, faulted_after=1)
    charger.script = [DeviceUnreachable("gone")]
    await device.refresh()
    assert device.fault is not None
    assert await device.read_now(5.0) is None
    assert charger.calls == ["read"]  # not asked again
