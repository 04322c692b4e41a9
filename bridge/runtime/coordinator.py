"""One connector's device, and the only code that talks to it (Home Assistant's coordinator is the model).

It owns, for its device:
- the driver's start (probe), tried again every DEVICE_START_RETRY_S while it fails;
- the driver's background jobs (`Charger.background`: a listener, a watchdog), run from its start until
  the loop stops, each started again BACKGROUND_RETRY_S after it ended or failed;
- polling: a read every `poll_interval_s`, and at once when the driver pushes a StateChanged; tags the
  driver pushes are handed on in order with the reads (a tap after a plug is seen after the plug). A
  driver that reports its changes (`Charger.reports_changes`) and has no `poll_interval_s` of its own
  is read only on its reports, while energy flows (every FLOWING_READ_S: the register and
  the power are never reported), while it fails (every RETRY_READ_S, until it answers), and when the
  owner or the guard below needs a reading at a time (`reading_due_in`): an idle connector then costs
  a parked task and no timer. Periodic reads follow the daemon's shared timer of that period
  (`runtime/ticker.py`), not a timer per connector;
- the one lock for reads and writes, so a poll, the reading at a stop, a limit and an energy switch
  never talk to the device at once;
- its health: failed reads in a row, and at `faulted_after` the fault (bridge.core.device_errors);
- the "energy only with a transaction" guard's timing (`energy_unwanted`);
- a frozen `DeviceSnapshot` for everyone who only looks.

What a reading means for the connector is its owner's business (the hooks): the coordinator knows
nothing of OCPP, transactions or the status.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from adapters.base import (
    BackgroundJob,
    Charger,
    ChargerCapabilities,
    ChargerReading,
    DeviceError,
    DeviceFault,
    DeviceRefused,
    NotSupportedByDevice,
    StateChanged,
    TagPresented,
)
from bridge.clock import Clock
from bridge.core import device_errors, reading_checks
from bridge.core.read_schedule import ReadSchedule, read_schedule
from bridge.flag import Flag
from bridge.metrics import Metrics
from bridge.runtime.ticker import ticker_for

log = logging.getLogger("bridge.chargepoint")

DEVICE_START_RETRY_S = 30.0  # a device that could not be started is tried again this often
UNWANTED_ENERGY_S = 10.0  # energy the bridge did not allow, seen this long, is switched off (again)
DEFAULT_POLL_INTERVAL_S = 1.0  # a device that does not report its changes is read this often
# A device that reports its changes, while energy flows: what flows (register, power) is read this often
# for the status, and at each meter-value instant by the sampler. Every second at 5,000 charging
# connectors was half of the event loop's time.
FLOWING_READ_S = 5.0
RETRY_READ_S = 1.0  # a device read only on its reports is read this often while it fails or is needed
BACKGROUND_RETRY_S = 5.0  # a driver's background job that ended or failed is started again after this


def poll_interval_for(charger: Charger, configured: float | None) -> float | None:
    """The configured interval; without one, a device that reports its changes is read on them (None)."""
    if configured is not None:
        return configured
    return None if charger.reports_changes else DEFAULT_POLL_INTERVAL_S


@dataclass(frozen=True)
class DeviceSnapshot:
    """What the outside may know of a device at one instant."""

    description: str
    capabilities: ChargerCapabilities
    started: bool  # its probe succeeded
    reading: ChargerReading | None  # the latest, None before the first
    failed_reads: int  # in a row
    fault: DeviceFault | None  # set once it counts as silent; None while it answers
    polled_at: float | None  # monotonic time the poll loop last went round
    due_at: float | None  # monotonic time by which the loop reads anyway; None: only on a report
    notes: tuple[str, ...] = ()  # the driver's probe_lines: e.g. an OCPP charger's deviations

    @property
    def answering(self) -> bool:
        return self.started and self.fault is None


async def _nothing(*_: object) -> None:
    return None


class DeviceCoordinator:
    def __init__(
        self,
        charger: Charger,
        *,
        name: str,
        clock: Clock,
        poll_interval_s: float | None,  # None: read on the driver's reports (it must report changes)
        faulted_after: int,
        metrics: Metrics,
        labels: dict[str, str | int],
    ) -> None:
        self.charger = charger
        self._name = name  # "CP-1/1" in logs
        self._clock = clock
        if poll_interval_s is None and not charger.reports_changes:
            raise ValueError(f"{charger.description} does not report its changes: it needs a poll interval")
        self.poll_interval_s = poll_interval_s
        self._faulted_after = faulted_after
        self._metrics = metrics
        self._labels = labels
        self._lock = asyncio.Lock()
        # What the driver pushed, not yet handled; a list and a Flag, not an asyncio.Queue (three deques).
        self._events: list[StateChanged | TagPresented] = []
        self._arrived = Flag()
        self._period: float | None = None  # the shared ticker this loop follows, if any
        self._ticked = False
        self.started = False
        self._start_tried_at: float | None = None
        self.reading: ChargerReading | None = None
        self.failed_reads = 0
        self.fault: DeviceFault | None = None
        self.polled_at: float | None = None
        self.due_at: float | None = None
        self.first_read = True  # no reading yet in this run, or since the device answers again
        self._unwanted_since: float | None = None
        self._jobs: list[asyncio.Task[None]] = []  # the driver's background jobs, once it started
        # Hooks of the owner (the charge point); they default to doing nothing.
        self.on_reading: Callable[[ChargerReading], Awaitable[None]] = _nothing
        self.on_tag: Callable[[str], Awaitable[None]] = _nothing
        self.on_fault: Callable[[DeviceFault], None] = lambda fault: None
        self.on_back: Callable[[], None] = lambda: None
        self.on_started: Callable[[], None] = lambda: None
        self.offered_fallback: Callable[[], float | None] = lambda: None  # the limit applied, if any
        # For a device read on its reports: within how many seconds the owner needs a reading (a
        # ConnectionTimeOut falls due); None: not before the device reports.
        self.reading_due_in: Callable[[], float | None] = lambda: None

    @property
    def description(self) -> str:
        return self.charger.description

    @property
    def capabilities(self) -> ChargerCapabilities:
        return self.charger.capabilities

    def snapshot(self) -> DeviceSnapshot:
        return DeviceSnapshot(
            self.charger.description, self.charger.capabilities, self.started, self.reading,
            self.failed_reads, self.fault, self.polled_at, self.due_at, tuple(self.charger.probe_lines()),
        )  # fmt: skip

    # -- the loop ----------------------------------------------------------------------------
    def listen(self) -> None:
        """From now on what the driver pushes (tags, state changes) is queued for the loop."""
        self.charger.set_listener(self._push)

    def _push(self, event: StateChanged | TagPresented) -> None:
        self._events.append(event)
        self._arrived.set()

    async def run(self) -> None:
        """Start the device, then read it on its schedule and hand on what it pushes, strictly in order.

        A tag is handled against the state as of the events before it: "plug, then tap" reads the plug
        first; "tap, then unplug" stops with the tap before the read sees the unplug.
        """
        try:
            await self._start()
            await self.refresh()
            while True:
                await self._pass()
        finally:
            self._follow(None)
            await self._stop_background()

    async def _pass(self) -> None:
        """One turn of the loop: wait for a push, a tick of the period or the deadline; then act."""
        self.polled_at = self._clock.monotonic()
        schedule = self._schedule()
        wait = schedule.wait_s
        self.due_at = None if wait is None else self.polled_at + wait
        self._follow(schedule.period_s)
        if not self._events and not self._ticked:
            self._arrived.clear()
            # A timeout, not wait_for: on Python 3.11 wait_for can lose a cancellation that arrives
            # with an event, and a stopping daemon would go on polling.
            await self._arrived.wait_at_most(schedule.deadline_s)
        self._ticked = False
        event = self._events.pop(0) if self._events else None
        if not self.started:
            await self._start()
        if isinstance(event, TagPresented):
            log.info("%s: tag %s presented", self._name, event.id_tag)
            await self.on_tag(event.id_tag)
        else:
            await self.refresh()

    def _schedule(self) -> ReadSchedule:
        """When to read next (bridge.core.read_schedule): the period of a shared ticker, a deadline."""
        # What flows with the energy (register, power) is never reported: read while it flows.
        flowing = self.reading is not None and (self.reading.power_w or 0.0) > 0.0
        answering = self.started and not self.failed_reads
        asks = answering and self.poll_interval_s is None  # a polled device is read anyway
        due = (self.reading_due_in(), self._unwanted_due_in()) if asks else ()
        return read_schedule(
            poll_interval_s=self.poll_interval_s, answering=answering, flowing=flowing, due_in_s=due,
            retry_s=RETRY_READ_S, flowing_s=FLOWING_READ_S,
        )  # fmt: skip

    def next_wait_s(self) -> float | None:
        """How long the loop may wait for the device's next report before it reads anyway."""
        return self._schedule().wait_s

    def _follow(self, period: float | None) -> None:
        """Be woken every `period` by the shared ticker of that period (None: by none)."""
        if period == self._period:
            return
        if self._period is not None:
            ticker_for(self._period).leave(self._tick)
        self._period = period
        if period is not None:
            ticker_for(period).join(self._tick)

    def _tick(self) -> None:
        self._ticked = True
        self._arrived.set()

    def _unwanted_due_in(self) -> float | None:
        if self._unwanted_since is None:
            return None
        return self._unwanted_since + UNWANTED_ENERGY_S - self._clock.monotonic()

    def read_soon(self) -> None:
        """Read the device at the next turn of the loop (after a command changed its state)."""
        self._push(StateChanged())

    async def _start(self) -> None:
        """The driver's probe; a device that refuses (or is away) is Faulted and tried again every
        DEVICE_START_RETRY_S, so fixing the device brings the connector up."""
        now = self._clock.monotonic()
        if self._start_tried_at is not None and now - self._start_tried_at < DEVICE_START_RETRY_S:
            return
        self._start_tried_at = now
        try:
            await self.charger.start()
        except DeviceError as exc:
            log.error("%s: %s cannot be used: %s", self._name, self.description, exc)
            self._failed(exc, at_once=True)
            return
        except Exception as exc:  # a driver's bug: tried again like a device that refused
            log.error("%s: %s cannot be used: its driver failed (a bug)", self._name, self.description,
                      exc_info=True)  # fmt: skip
            self._failed(DeviceRefused(f"driver error {type(exc).__name__}"), at_once=True)
            return
        self.started = True
        self._jobs = [
            asyncio.create_task(self._keep(job), name=f"{self._name} background")
            for job in self.charger.background()
        ]
        self.on_started()

    async def _keep(self, job: BackgroundJob) -> None:
        """Run one of the driver's background jobs for as long as the loop runs."""
        while True:
            try:
                await job()
                log.warning("%s: %s's background work ended; started again in %g s",
                            self._name, self.description, BACKGROUND_RETRY_S)  # fmt: skip
            except Exception as exc:  # DeviceError, or a driver's bug: it must not end the connector
                log.error("%s: %s's background work failed (%s); started again in %g s", self._name,
                          self.description, exc or type(exc).__name__, BACKGROUND_RETRY_S)  # fmt: skip
            await asyncio.sleep(BACKGROUND_RETRY_S)

    async def _stop_background(self) -> None:
        """Cancel the background jobs; they have ended when this returns (the driver is closed next)."""
        jobs, self._jobs = self._jobs, []
        for task in jobs:
            task.cancel()
        if jobs:
            await asyncio.wait(jobs)

    def _failed(self, exc: DeviceError, at_once: bool = False) -> None:
        """Count a failed read; at the threshold the device counts as silent (its fault)."""
        self.failed_reads += 1
        if at_once or self.failed_reads >= self._faulted_after:
            if self.fault is None:
                log.error("%s: %s is Faulted: %s", self._name, self.description, exc)
            self.fault = device_errors.silent_fault(self.description, exc)
            self.on_fault(self.fault)

    async def _read_checked(self) -> ChargerReading:
        """The driver's reading; DeviceRefused for one no device can have measured (NaN, a negative
        register: bridge/core/reading_checks.py), which must not reach a transaction: a failed read,
        the last good reading stays."""
        reading = await self.charger.read()
        problem = reading_checks.impossible(reading)
        if problem is not None:
            raise DeviceRefused(f"impossible reading: {problem}")
        return reading

    async def refresh(self) -> ChargerReading | None:
        """Read the device now and hand the reading to the owner (None when it did not answer)."""
        if not self.started:
            return None
        try:
            async with self._lock:
                began = self._clock.monotonic()
                reading = await self._read_checked()
                self._metrics.observe(
                    "ocpp_bridge_device_poll_duration_seconds", self._labels, self._clock.monotonic() - began
                )
        except DeviceError as exc:
            log.warning("%s: %s did not answer: %s", self._name, self.description, exc)
            self._metrics.inc("ocpp_bridge_device_poll_errors_total", self._labels)
            self._failed(exc)
            return None
        except Exception as exc:  # a driver's bug (data it did not expect): this connector pays, not all
            log.error("%s: %s: its driver failed (a bug): %r", self._name, self.description, exc,
                      exc_info=not self.failed_reads)  # the traceback once, not at every poll  # fmt: skip
            self._metrics.inc("ocpp_bridge_device_poll_errors_total", self._labels)
            self._failed(DeviceRefused(f"driver error {type(exc).__name__}"))
            return None
        if self.fault is not None:
            log.info("%s: %s answers again", self._name, self.description)
            self.fault = None
            self.first_read = True  # its state is as unknown as at start: checked at once
            self.on_back()  # it may have restarted: it is told its limit again
        self.failed_reads = 0
        if reading.current_offered_a is None and (limit := self.offered_fallback()) is not None:
            reading = dataclasses.replace(reading, current_offered_a=limit)  # Current.Offered: the limit
        self.reading = reading
        await self.on_reading(reading)
        self.first_read = False
        return reading

    def energy_unwanted(self, reading: ChargerReading, allowed: bool) -> bool:
        """Whether energy the bridge has not allowed must be switched off now.

        Left on by the last run (a crash, a power cut of the Pi alone), a stop the device did not hear,
        a hand on the relay: switched off at the first reading; later only once it has lasted
        UNWANTED_ENERGY_S (a device reporting through MQTT shows a command a moment late), then every
        as long. Never for a report-only device (it decides when energy flows, the bridge reports).
        """
        if not reading.energy_allowed or allowed or not self.capabilities.can_switch_energy:
            self._unwanted_since = None
            return False
        now = self._clock.monotonic()
        if self._unwanted_since is None:
            self._unwanted_since = now
        if self.first_read or now - self._unwanted_since >= UNWANTED_ENERGY_S:
            log.warning("%s: %s allows energy the bridge has not allowed: switching it off",
                        self._name, self.description)  # fmt: skip
            self._unwanted_since = now
            return True
        return False

    # -- commands --------------------------------------------------------------------------------
    async def read_now(self, timeout_s: float) -> ChargerReading | None:
        """One more reading within `timeout_s`, handed to no one (the reading at a stop); None when the
        device does not answer or is known to be silent."""
        if not self.started or self.fault is not None:
            return None  # known silent: nothing is held up for it
        try:
            async with asyncio.timeout(timeout_s), self._lock:
                return await self._read_checked()
        except Exception as exc:  # DeviceError, TimeoutError, or a driver's bug: never costs the caller
            log.warning("%s: %s gave no reading (%s)", self._name, self.description,
                        exc or f"no answer within {timeout_s:g} s")  # fmt: skip
            return None

    async def set_energy(self, allowed: bool, *, session_ends: bool = False) -> None:
        """Allow or stop energy (`session_ends`: stopped because the bridge's session ended, not a
        pause); a refusal is logged (the next reading shows what the device does)."""
        if not self.capabilities.can_switch_energy:
            return  # report only: the core asks nothing of it; nothing to log every reading either
        try:
            async with self._lock:
                if allowed or not session_ends:
                    await self.charger.set_enabled(allowed)
                else:
                    await self.charger.end_session()
        except DeviceError as exc:
            log.error("%s: %s refused to %s energy: %s", self._name, self.description,
                      "allow" if allowed else "stop", exc)  # fmt: skip
        self.read_soon()

    async def set_limit(self, phases: int | None, current_a: float | None) -> DeviceError | None:
        """Phases and current, under the device lock; the error the device answered, if any."""
        try:
            async with self._lock:
                if phases is not None:
                    await self.charger.set_phases(phases)
                if current_a is not None:
                    await self.charger.set_current(current_a)
        except DeviceError as exc:
            return exc
        return None

    async def unlock(self, timeout_s: float) -> tuple[str, BaseException | None]:
        """UnlockConnector's answer, and what went wrong (None when it worked)."""
        error: BaseException | None = None
        try:
            async with asyncio.timeout(timeout_s), self._lock:
                await self.charger.unlock()
        except (DeviceError, TimeoutError) as exc:
            error = exc
        return device_errors.unlock_status(error), error

    async def reset(self, attempts: int) -> None:
        """A hard reset reaches the device where it can be reset; a failure is tried `attempts` times."""
        for attempt in range(1, attempts + 1):
            try:
                async with self._lock:
                    await self.charger.reset(hard=True)
                return
            except NotSupportedByDevice:
                return
            except DeviceError as exc:
                log.error("%s: %s could not be reset (attempt %d of %d): %s",
                          self._name, self.description, attempt, attempts, exc)  # fmt: skip
