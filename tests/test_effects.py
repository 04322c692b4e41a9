"""The effect runner (bridge.runtime.effects): a connector's decisions carried out in the order taken.

Real: the runner, and the effects themselves, decided by a real connector core. Stand-in: what
carrying out an effect does (`execute`) is a recorder here, with a gate where a test needs a slow
store write; in the charge point it persists transactions, talks to the device and the link, which
the end-to-end tests cover (test_session_flow, test_persistence).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import pytest

from adapters.base import ChargerReading
from bridge.core.connector import (
    Connector,
    Effect,
    SetEnergy,
    StartTransaction,
    StopReason,
    StopTransaction,
)
from bridge.runtime.effects import EffectRunner
from tests.helpers.parts import Tasks, turns

NOW = datetime(2026, 1, 1, tzinfo=UTC)
PLUGGED = ChargerReading(plugged=True, ev_requesting=True, energy_allowed=False, energy_wh=1000.0)


class Carrier:
    """`execute` and `after_batch` of a runner: what was carried out, in order; a gate holds an
    effect of one type until it is opened (a slow store write)."""

    def __init__(self) -> None:
        self.done: list[Effect | str] = []
        self.gates: dict[type, asyncio.Event] = {}
        self.fail: type | None = None
        self.lock_held_after_batch: list[bool] = []
        self.runner: EffectRunner | None = None

    async def execute(self, effect: Effect) -> None:
        gate = self.gates.get(type(effect))
        if gate is not None:
            await gate.wait()
        if self.fail is not None and isinstance(effect, self.fail):
            raise OSError("disk full")
        self.done.append(effect)

    def after_batch(self) -> None:
        self.done.append("after batch")
        assert self.runner is not None
        self.lock_held_after_batch.append(self.runner.lock.locked())


def runner(carrier: Carrier, tasks: Tasks) -> EffectRunner:
    r = EffectRunner("CP-1/1", carrier.execute, carrier.after_batch, tasks)
    carrier.runner = r
    return r


def plugged_connector() -> Connector:
    core = Connector(1)
    core.on_reading(PLUGGED, NOW, False)
    return core


async def test_effects_are_carried_out_in_the_order_decided_even_from_two_tasks(tasks: Tasks) -> None:
    """A start decided in one task, whose persisting is slow, and a stop decided in another meanwhile:
    the stop is carried out after the start, never before (a stop persisted before its start)."""
    carrier = Carrier()
    effects = runner(carrier, tasks)
    carrier.gates[StartTransaction] = asyncio.Event()
    core = plugged_connector()

    async def start() -> None:
        await effects.apply(core.on_authorized("TAG", True, NOW, 60))

    async def stop() -> None:
        await effects.apply(core.stop(StopReason.REMOTE, NOW, None))

    starting = asyncio.create_task(start())
    await turns()  # the start's write is under way (held at the gate)
    stopping = asyncio.create_task(stop())
    await turns()
    assert carrier.done == [] and not stopping.done()
    carrier.gates[StartTransaction].set()
    await asyncio.wait_for(asyncio.gather(starting, stopping), 1)
    kinds = [type(e).__name__ if not isinstance(e, str) else e for e in carrier.done]
    assert kinds == [
        "StartTransaction", "SetEnergy", "after batch", "SetEnergy", "StopTransaction", "after batch"
    ]  # fmt: skip
    assert carrier.done[1] == SetEnergy(True) and carrier.done[3] == SetEnergy(False, session_ends=True)


async def test_the_order_is_the_order_of_apply_not_of_who_awaits_first(tasks: Tasks) -> None:
    carrier = Carrier()
    effects = runner(carrier, tasks)
    first = effects.apply([SetEnergy(True)])
    second = effects.apply([SetEnergy(False)])
    await asyncio.wait_for(second, 1)  # waiting for the later batch waits for the earlier one too
    assert first.done()
    assert carrier.done == [SetEnergy(True), "after batch", SetEnergy(False), "after batch"]


async def test_a_failing_effect_ends_its_batch_but_not_the_next(
    tasks: Tasks, caplog: pytest.LogCaptureFixture
) -> None:
    """A start that could not be persisted allows no energy; the batch after it is carried out."""
    carrier = Carrier()
    effects = runner(carrier, tasks)
    carrier.fail = StartTransaction
    core = plugged_connector()
    with caplog.at_level(logging.ERROR, logger="bridge.chargepoint"):
        failed = effects.apply(core.on_authorized("TAG", True, NOW, 60))
        later = effects.apply([SetEnergy(False)])
        await asyncio.wait_for(asyncio.gather(failed, later), 1)
    assert failed.result() is None  # the caller is not failed: the error is logged
    assert SetEnergy(True) not in carrier.done
    assert carrier.done == [SetEnergy(False), "after batch"]
    assert "carrying out" in caplog.text and "disk full" in caplog.text


async def test_the_after_batch_hook_runs_after_every_batch_under_the_lock(tasks: Tasks) -> None:
    carrier = Carrier()
    effects = runner(carrier, tasks)
    await asyncio.wait_for(effects.apply([]), 1)  # an empty batch still reports (a device gone silent)
    core = plugged_connector()
    await asyncio.wait_for(effects.apply(core.on_authorized("TAG", True, NOW, 60)), 1)
    assert carrier.done[0] == "after batch" and carrier.done[-1] == "after batch"
    assert carrier.done.count("after batch") == 2
    assert carrier.lock_held_after_batch == [True, True]


async def test_a_writer_under_the_lock_waits_for_the_batch_under_way(tasks: Tasks) -> None:
    """The meter sampler writes under the runner's lock: its write never lands between a stop's
    decision and its persisting."""
    carrier = Carrier()
    effects = runner(carrier, tasks)
    carrier.gates[StopTransaction] = asyncio.Event()
    core = plugged_connector()
    await effects.apply(core.on_authorized("TAG", True, NOW, 60))
    stopped = effects.apply(core.stop(StopReason.LOCAL, NOW, "TAG"))
    await turns()

    async def sampler_write() -> None:
        async with effects.lock:
            carrier.done.append("meter values")

    writing = asyncio.create_task(sampler_write())
    await turns()
    assert not writing.done()
    carrier.gates[StopTransaction].set()
    await asyncio.wait_for(asyncio.gather(stopped, writing), 1)
    assert carrier.done[-3:] == [carrier.done[-3], "after batch", "meter values"]
    assert isinstance(carrier.done[-3], StopTransaction)


async def test_the_worker_comes_back_for_batches_after_it_finished(tasks: Tasks) -> None:
    carrier = Carrier()
    effects = runner(carrier, tasks)
    await asyncio.wait_for(effects.apply([SetEnergy(True)]), 1)
    await turns()
    assert all(t.done() for t in tasks.tasks)
    await asyncio.wait_for(effects.apply([SetEnergy(False)]), 1)
    assert carrier.done == [SetEnergy(True), "after batch", SetEnergy(False), "after batch"]


async def test_a_graceful_stop_waits_for_a_decided_stop_to_be_carried_out(tasks: Tasks) -> None:
    """drain(): what was decided is carried out before the charge point's tasks are cancelled, within
    the bound; a stop decided but not yet persisted is not lost to the cancel."""
    carrier = Carrier()
    effects = runner(carrier, tasks)
    carrier.gates[StopTransaction] = asyncio.Event()
    core = plugged_connector()
    effects.apply(core.on_authorized("TAG", True, NOW, 60))
    effects.apply(core.stop(StopReason.LOCAL, NOW, None))
    await turns()
    assert not await effects.drain(0.05)  # held at the gate: not drained within the bound
    asyncio.get_running_loop().call_later(0.05, carrier.gates[StopTransaction].set)
    assert await effects.drain(1.0)
    assert any(isinstance(e, StopTransaction) for e in carrier.done)
    assert await effects.drain(0.0)  # nothing pending: at once
