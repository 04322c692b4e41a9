"""Stand-ins and wiring for the unit tests of a charge point's parts (bridge/runtime/).

What is real in those tests and what stands in, and why:
- The connector core, the configuration keys, the store (SQLite in tmp_path), the device coordinator
  and the simulated charger behind it are the real ones: they run here as fast as a stand-in would.
- The link (bridge.ocpp.session.Session) is `Link`: it keeps what a part submitted and sends it
  (builds it, as the session does at send time) when the test says so. A running websocket and a
  central system would make each test a timing test; the end-to-end tests (test_session_flow,
  test_offline, test_persistence, ...) run the parts over the real link.
- Time is a `SteeredClock`: a ManualClock that also moves the event loop's timers, so that a part
  that waits on an asyncio timer armed from the injected clock (a MinimumStatusDuration hold, the
  meter sampler, the clock-aligned timer) wakes when the test moves the clock, not in real time.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from adapters.base import ChargerReading
from adapters.chargers.simulated import SimulatedCharger, SimulatedOptions
from bridge.core.config_keys import IMPLEMENTED_FEATURES, Configuration
from bridge.core.connector import Connector, Effect
from bridge.metrics import Metrics
from bridge.ocpp.errors import NotConnected
from bridge.runtime.connector import ConnectorRuntime
from bridge.runtime.coordinator import DeviceCoordinator
from bridge.runtime.effects import EffectRunner
from tests.helpers.clock import ManualClock

CP_ID = "CP-1"


class SteeredClock(ManualClock):
    """A ManualClock whose `advance` also brings the running event loop's timers nearer by as much.

    The parts work out how long to wait from the injected clock, then wait on asyncio timers
    (`call_later`, `wait_for`, `asyncio.timeout`), which read the loop's own clock (`loop.time()`).
    Here the loop's clock is real time plus every `advance` so far: a 30 s wait fires when the test
    advances 30 s, while real time still passes for everything else. Make it inside the test's loop;
    `release` gives the loop its own clock back.
    """

    def __init__(self, start: datetime = datetime(2026, 1, 1, tzinfo=UTC)) -> None:
        super().__init__(start)
        self._loop = asyncio.get_running_loop()
        self._skew = 0.0
        real = self._loop.time
        self._loop.time = lambda: real() + self._skew  # type: ignore[method-assign]

    def advance(self, seconds: float) -> None:
        super().advance(seconds)
        self._skew += seconds

    def release(self) -> None:
        del self._loop.time  # the class's method again


async def until(predicate: Callable[[], bool], what: str, timeout_s: float = 1.0) -> None:
    """Wait (in real time, at most `timeout_s`) until `predicate()` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.002)


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 1.0) -> None:
    """Wait (in real time, at most `timeout_s`) until `await check()` holds (e.g. a store read)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.002)


async def turns(n: int = 20) -> None:
    """Let the loop run `n` times round: whatever was ready has run."""
    for _ in range(n):
        await asyncio.sleep(0)


@dataclass
class Submitted:
    build: Callable[[], Any]
    drop_when_offline: bool
    future: asyncio.Future[Any] | None


class Link:
    """The session as the parts use it (`online`, `boot_generation`, `submit`, `attach`, ...), with no
    connection behind it. `send` sends what is pending as the session's sender would: each message is
    built at send time, in the order it was submitted; `drop` loses the connection."""

    def __init__(self, online: bool = True, journal: list[str] | None = None) -> None:
        self.online = online
        self.boot_generation = 1 if online else 0  # counts Accepted BootNotifications
        self.pending: list[Submitted] = []
        self.sent: list[Any] = []  # the payloads built, in order: what went on the wire
        self.outbox: Any = None  # the durable queue attached (the tests read the store instead)
        self.endpoint: Any = None  # no connection: triggered messages cannot be sent directly
        self.journal = journal if journal is not None else []  # transactional_sent, restart, in order

    def submit(
        self,
        build: Callable[[], Any],
        *,
        on_result: Callable[[Any], None] | None = None,
        drop_when_offline: bool = False,
        want_result: bool = False,
    ) -> asyncio.Future[Any] | None:
        future = asyncio.get_running_loop().create_future() if want_result else None
        self.pending.append(Submitted(build, drop_when_offline, future))
        return future

    def attach(self, durable: Any) -> None:
        self.outbox = durable

    def send(self) -> list[Any]:
        """Send everything pending; returns the payloads (a build that gives None sends nothing)."""
        out = []
        while self.pending:
            payload = self.pending.pop(0).build()
            if payload is not None:
                out.append(payload)
        self.sent += out
        return out

    async def answer_next(self, answer: Any) -> Any:
        """The central system answers the oldest message of the attached outbox, as the session's
        sender would have it (bridge.ocpp.session.DurableQueue): built, answered, settled. Returns
        what was sent."""
        head = self.outbox.head()
        assert head is not None, "nothing queued in the outbox"
        payload = head.build()
        if head.on_result is not None:
            head.on_result(answer)
        await self.outbox.settle(head.seq, True)
        return payload

    def drop(self) -> None:
        """The connection is lost: what must not wait for the next one is dropped, and whoever waits
        for its answer gets NotConnected (as bridge.ocpp.session does)."""
        self.online = False
        kept = []
        for item in self.pending:
            if not item.drop_when_offline:
                kept.append(item)
            elif item.future is not None and not item.future.done():
                item.future.set_exception(NotConnected("connection lost before sending"))
        self.pending = kept

    async def transactional_sent(self, timeout: float) -> bool:
        self.journal.append(f"transactional_sent({timeout:g})")
        return True

    async def restart(self) -> None:
        self.journal.append("restart")


class Tasks:
    """The charge point's spawn: background tasks kept until done. `close` cancels what still runs
    and fails the test if one of them failed (the charge point would only log it)."""

    def __init__(self) -> None:
        self.tasks: list[asyncio.Task[None]] = []

    def __call__(self, coro: Coroutine[Any, Any, None], what: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro, name=what)
        self.tasks.append(task)
        return task

    def named(self, part: str) -> list[asyncio.Task[None]]:
        return [t for t in self.tasks if part in t.get_name()]

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        results = await asyncio.gather(*self.tasks, return_exceptions=True)
        failed = [r for r in results if isinstance(r, Exception)]
        assert not failed, f"background tasks failed: {failed}"


def configuration(connectors: int = 1, **initial: str | int | bool) -> Configuration:
    """A charge point's configuration keys as bridge.chargepoint makes them, with the file's `ocpp:`
    values `initial`."""
    return Configuration(
        features=IMPLEMENTED_FEATURES,
        fixed={
            "NumberOfConnectors": str(connectors),
            "SupportedFeatureProfiles": "Core,SmartCharging,RemoteTrigger",
            "ConnectorSwitch3to1PhaseSupported": "false",
        },
        initial={k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in initial.items()},
    )


async def _nothing(effect: Effect) -> None:
    return None


def connector(
    cid: int,
    clock: ManualClock,
    spawn: Tasks,
    *,
    options: SimulatedOptions | None = None,
    execute: Callable[[Effect], Awaitable[None]] = _nothing,
    after_batch: Callable[[], None] = lambda: None,
    new_id: Callable[[], int] | None = None,
) -> tuple[ConnectorRuntime, SimulatedCharger]:
    """One connector at run time: a real core, a real coordinator over a real simulated charger (its
    energy register runs on `clock`), an effect runner carrying out with `execute`. A reading goes
    where bridge.chargepoint sends it for these parts: into the core (its effects are the test's
    business) and into the clock-aligned interval; a device given up on makes the core Faulted."""
    sim = SimulatedCharger(options or SimulatedOptions(), clock=clock.monotonic)
    device = DeviceCoordinator(
        sim, name=f"{CP_ID}/{cid}", clock=clock, poll_interval_s=1.0, faulted_after=3,
        metrics=Metrics(), labels={"charge_point": CP_ID, "connector": cid},
    )  # fmt: skip
    device.started = True  # as after its probe: a simulated charger without a state file has none
    core = Connector(cid, new_id=new_id or itertools.count(1).__next__)
    rt = ConnectorRuntime(core, device, EffectRunner(f"{CP_ID}/{cid}", execute, after_batch, spawn))

    async def taken(reading: ChargerReading) -> None:
        rt.aligned.add(reading, clock.monotonic())
        core.on_reading(reading, clock.now(), False)

    device.on_reading = taken
    device.on_fault = core.on_device_silent
    return rt, sim
