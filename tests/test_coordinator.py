"""The device coordinator (bridge.runtime.coordinator): health, the guard's timing, the one lock.

The device here is a scripted driver: these tests are about the coordinator's own rules, with time
moved by hand. The real drivers and emulators are exercised end to end elsewhere
(test_device_outage, test_setups_e2e).
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from adapters.base import (
    BackgroundJob,
    Charger,
    ChargerCapabilities,
    ChargerReading,
    DeviceFault,
    DeviceRefused,
    DeviceUnreachable,
    NotSupportedByDevice,
)
from adapters.chargers.simulated import SimulatedCharger, SimulatedOptions
from bridge.metrics import Metrics
from bridge.runtime import coordinator as coordinator_module
from bridge.runtime.coordinator import UNWANTED_ENERGY_S, DeviceCoordinator
from bridge.runtime.ticker import ticker_for
from tests.helpers.clock import ManualClock
from tests.helpers.parts import Tasks, until

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


@pytest.mark.parametrize(
    "nonsense",
    [
        {"energy_wh": float("nan")},
        {"energy_wh": 1e308},
        {"energy_wh": -5000.0},
        {"power_w": float("inf")},
        {"voltage_v": (230.0, float("nan"), 230.0)},
        {"soc_percent": 140.0},
    ],
)
async def test_an_impossible_reading_is_a_failed_read_and_the_last_good_one_stays(
    nonsense: dict[str, object],
) -> None:
    """A register of NaN or 1e308 would make a meterStop no store or frame can hold (the
    StopTransaction lost): refused as a whole, counted towards the fault, never handed on."""
    charger, clock = ScriptedCharger(), ManualClock()
    device = coordinator(charger, clock, faulted_after=3)
    faults: list[DeviceFault] = []
    device.on_fault = faults.append
    handed: list[ChargerReading] = []

    async def on_reading(reading: ChargerReading) -> None:
        handed.append(reading)

    device.on_reading = on_reading
    bad = dataclasses.replace(PLUGGED_ON, **nonsense)  # type: ignore[arg-type]
    charger.script = [PLUGGED_ON, bad, bad, bad, bad]
    assert await device.refresh() == PLUGGED_ON
    assert await device.refresh() is None and device.reading == PLUGGED_ON and faults == []
    assert await device.read_now(1.0) is None  # the reading at a stop: none rather than nonsense
    assert await device.refresh() is None and faults == []
    assert await device.refresh() is None
    assert [f.vendor_error_code for f in faults] == ["DeviceRefused"]
    assert faults[0].info is not None and "impossible reading" in faults[0].info
    assert handed == [PLUGGED_ON] and charger.script == []


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


# -- a device that reports its changes (the simulated charger) -------------------------------------
def reporting(sim: SimulatedCharger, clock: ManualClock) -> tuple[DeviceCoordinator, list[ChargerReading]]:
    device = DeviceCoordinator(
        sim, name="CP-1/1", clock=clock, poll_interval_s=None, faulted_after=3,
        metrics=Metrics(), labels={"charge_point": "CP-1", "connector": 1},
    )  # fmt: skip
    readings: list[ChargerReading] = []

    async def taken(reading: ChargerReading) -> None:
        readings.append(reading)

    device.on_reading = taken
    device.listen()
    return device, readings


async def test_a_device_that_reports_its_changes_is_read_only_on_its_reports(tasks: Tasks) -> None:
    sim, clock = SimulatedCharger(SimulatedOptions()), ManualClock()
    device, readings = reporting(sim, clock)
    tasks(device.run(), "poll")
    await until(lambda: len(readings) == 1, "the first reading")  # the first reading, at start
    await asyncio.sleep(0.3)  # idle: nothing read, no timer
    assert len(readings) == 1 and device.snapshot().due_at is None
    sim.plug()
    await until(lambda: len(readings) == 2, "the plug read")
    assert readings[-1].plugged is True and device.snapshot().due_at is None
    device.read_soon()  # after a command
    await until(lambda: len(readings) == 3, "the read asked for")


async def test_a_silent_reporting_device_is_read_until_it_answers(
    tasks: Tasks, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(coordinator_module, "RETRY_READ_S", 0.05)
    sim, clock = SimulatedCharger(SimulatedOptions()), ManualClock()
    device, readings = reporting(sim, clock)
    faults: list[DeviceFault] = []
    device.on_fault = faults.append
    tasks(device.run(), "poll")
    await until(lambda: len(readings) == 1, "the first reading")
    sim.silence()  # announced, as a last will: read, and read again while it fails
    await until(lambda: bool(faults), "the fault")
    assert device.failed_reads >= 3
    snap = device.snapshot()
    assert snap.due_at is not None and snap.polled_at is not None
    assert snap.due_at - snap.polled_at == pytest.approx(0.05)
    sim.answer()
    await until(lambda: device.fault is None and device.snapshot().due_at is None, "back")
    assert len(readings) == 2


async def test_a_reporting_device_is_read_when_its_owner_needs_a_reading(tasks: Tasks) -> None:
    sim, clock = SimulatedCharger(SimulatedOptions()), ManualClock()
    device, readings = reporting(sim, clock)
    due: list[float | None] = [None]
    device.reading_due_in = lambda: due[0]
    tasks(device.run(), "poll")
    await until(lambda: len(readings) == 1, "the first reading")
    due[0] = 0.05  # a ConnectionTimeOut falls due: read then, without a report
    device.read_soon()
    await until(lambda: len(readings) >= 3, "reads when due")
    due[0] = None
    await asyncio.sleep(0.1)
    settled = len(readings)
    await asyncio.sleep(0.2)
    assert len(readings) == settled and device.snapshot().due_at is None


async def test_unwanted_energy_on_a_reporting_device_is_looked_at_again_after_it_lasted() -> None:
    sim, clock = SimulatedCharger(SimulatedOptions()), ManualClock()
    device, _ = reporting(sim, clock)
    device.started = True
    on = ChargerReading(plugged=True, ev_requesting=True, energy_allowed=True)
    device.first_read = False
    assert not device.energy_unwanted(on, allowed=False)  # seen now: it may be a command on its way
    clock.advance(4)
    assert device.next_wait_s() == pytest.approx(UNWANTED_ENERGY_S - 4)


def test_a_device_that_does_not_report_its_changes_needs_a_poll_interval() -> None:
    with pytest.raises(ValueError, match="needs a poll interval"):
        DeviceCoordinator(
            ScriptedCharger(), name="CP-1/1", clock=ManualClock(), poll_interval_s=None, faulted_after=3,
            metrics=Metrics(), labels={},
        )  # fmt: skip


async def test_polled_devices_share_one_timer_and_leave_it_when_they_stop(tasks: Tasks) -> None:
    clock = ManualClock()
    chargers = [ScriptedCharger(), ScriptedCharger()]
    devices = [
        DeviceCoordinator(
            c, name=f"CP-1/{n}", clock=clock, poll_interval_s=0.1, faulted_after=3, metrics=Metrics(),
            labels={},
        )
        for n, c in enumerate(chargers, 1)
    ]  # fmt: skip
    running = [tasks(d.run(), f"poll {n}") for n, d in enumerate(devices)]
    await until(lambda: all(c.calls.count("read") >= 4 for c in chargers), "polled", timeout_s=2)
    assert len(ticker_for(0.1)) == 2  # one timer for both
    for task in running:
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)
    assert len(ticker_for(0.1)) == 0


class ChargerWithBackground(ScriptedCharger):
    """A driver with background work (adapters/base.py `background`): a job that fails at its first run
    and then works until it is cancelled, and a start that may refuse."""

    def __init__(self) -> None:
        super().__init__()
        self.runs = 0
        self.cancelled = 0
        self.refuse_start = False

    async def start(self) -> None:
        if self.refuse_start:
            raise DeviceUnreachable("port busy")

    def background(self) -> tuple[BackgroundJob, ...]:
        return (self._listen,)

    async def _listen(self) -> None:
        self.runs += 1
        if self.runs == 1:
            raise DeviceRefused("socket closed")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise


async def test_background_jobs_run_from_the_start_are_restarted_and_end_with_the_loop(
    tasks: Tasks, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(coordinator_module, "BACKGROUND_RETRY_S", 0.05)
    charger, clock = ChargerWithBackground(), ManualClock()
    charger.refuse_start = True
    device = DeviceCoordinator(
        charger, name="CP-1/1", clock=clock, poll_interval_s=1.0, faulted_after=3,
        metrics=Metrics(), labels={"charge_point": "CP-1", "connector": 1},
    )  # fmt: skip
    loop = tasks(device.run(), "poll")
    await asyncio.sleep(0.2)
    assert charger.runs == 0  # a driver that did not start does no background work
    charger.refuse_start = False
    clock.advance(coordinator_module.DEVICE_START_RETRY_S)
    await until(lambda: charger.runs == 2, "the job, failed once, started again")
    assert device.started and charger.cancelled == 0
    loop.cancel()
    await asyncio.gather(loop, return_exceptions=True)
    assert charger.cancelled == 1  # ended with the loop, before the driver may be closed


async def test_a_drivers_bug_faults_its_connector_and_the_loop_goes_on(
    tasks: Tasks, caplog: pytest.LogCaptureFixture
) -> None:
    """An exception outside the contract (a driver's bug on data it did not expect) counts as a failed
    read: the connector is Faulted and recovers; it never ends the loop, nor the charge point with it."""
    charger, clock = ScriptedCharger(), ManualClock()
    device = coordinator(charger, clock, faulted_after=2)
    faults: list[DeviceFault] = []
    device.on_fault = faults.append
    charger.script = [ValueError("unexpected answer"), OverflowError("huge"), PLUGGED_ON]
    assert await device.refresh() is None and await device.refresh() is None
    bug = DeviceFault("OtherError", "ScriptedCharger: driver error OverflowError", "DeviceRefused")
    assert faults[-1] == bug
    assert await device.refresh() == PLUGGED_ON and device.fault is None
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1 and "a bug" in tracebacks[0].getMessage()  # once, not at every poll
