"""The commands that act on connectors (bridge.runtime.commands): what accepted answers promise.

Real: Commands, the connector cores and connector 0's core, the store (SQLite in tmp_path: where
ChangeAvailability is kept), the configuration keys, the authorizer, the status reporter and
metering it delegates to, and for each connector a real coordinator over a simulated charger (the
unlock and the reset reach the box). Stand-ins: applying a connector's effects and authorizing a tag
are recorded in a journal (the charge point hands them to the effect runner and the authorizer,
tested in test_effects and test_authorizer); the link (`Link` of tests/helpers/parts.py) notes when
it was asked to let the transaction messages go and to restart. The handlers that answer the
central system before these run are exercised over the real link in test_remote_control and
test_core_cases.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from typing import Any

import pytest
from ocpp.v16 import call

from adapters.base import ChargerReading
from adapters.chargers.simulated import SimulatedCharger, SimulatedOptions
from bridge.core.charge_point import ChargePointCore
from bridge.core.connector import Effect, SetEnergy, StartTransaction, StopTransaction
from bridge.outbox import TransactionMessages
from bridge.runtime.authorizer import Authorizer
from bridge.runtime.commands import Commands
from bridge.runtime.connector import ConnectorRuntime
from bridge.runtime.metering import Metering
from bridge.runtime.status_reporter import StatusReporter
from bridge.store import Store
from tests.helpers.clock import ManualClock
from tests.helpers.parts import CP_ID, Link, Tasks, configuration, connector, turns


class Box:
    """A charge point with two connectors, its commands, and a journal of what they asked for."""

    def __init__(
        self, store: Store, tasks: Tasks, options: SimulatedOptions | None = None, **keys: str | int | bool
    ) -> None:
        self.clock = ManualClock()
        self.store = store
        self.journal: list[Any] = []
        self.cfg = configuration(2, **keys)
        self.link = Link(journal=self.journal)
        self.connectors: dict[int, ConnectorRuntime] = {}
        self.sims: dict[int, SimulatedCharger] = {}
        for cid in (1, 2):
            self.connectors[cid], self.sims[cid] = connector(cid, self.clock, tasks, options=options)
        self.whole = ChargePointCore((1, 2))
        self.authorizer = Authorizer(CP_ID, self.cfg, self.clock, store, self.link)
        self.statuses = StatusReporter(CP_ID, (1, 2), self.current, self.link, self.cfg, self.clock)
        messages = TransactionMessages(CP_ID, store, self.link, 1000, lambda *a: None, lambda *a: None)
        self.messages = messages
        metering = Metering(
            CP_ID, self.connectors, self.cfg, self.clock, self.link, messages, self.refresh, tasks
        )
        self.commands = Commands(
            CP_ID, self.connectors, self.whole, clock=self.clock, configuration=self.cfg,
            session=self.link, store=store, apply=self.apply, authorize=self.authorize,
            cs_id=messages.cs_id, authorizer=self.authorizer, statuses=self.statuses, metering=metering,
        )  # fmt: skip

    def current(self, cid: int) -> Any:
        return self.whole.status() if cid == 0 else self.connectors[cid].core.status()

    async def refresh(self, cid: int) -> ChargerReading | None:
        return await self.connectors[cid].device.refresh()

    def apply(self, cid: int, effects: Iterable[Effect]) -> asyncio.Future[None]:
        # What the box had done by then: a stop must come before the unlock and the reset.
        sims = {c: (s.unlock_count, s.reset_count) for c, s in self.sims.items()}
        self.journal.append(("apply", cid, list(effects), sims))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    def authorize(self, cid: int, id_tag: str) -> None:
        self.journal.append(("authorize", cid, id_tag))

    async def read(self) -> None:
        for rt in self.connectors.values():
            await rt.device.refresh()

    async def charging(self, cid: int, tag: str = "TAG") -> None:
        """A transaction runs on connector `cid` (its effects are not the point here)."""
        self.sims[cid].plug()
        await self.connectors[cid].device.refresh()
        self.connectors[cid].core.on_authorized(tag, True, self.clock.now(), 60)
        assert self.connectors[cid].core.transaction is not None

    def applied(self) -> list[tuple[int, list[Effect]]]:
        return [(entry[1], entry[2]) for entry in self.journal if entry[0] == "apply"]


def stop_reasons(effects: list[Effect]) -> list[str]:
    return [str(e.reason) for e in effects if isinstance(e, StopTransaction)]


# -- RemoteStartTransaction ------------------------------------------------------------------------
async def test_a_remote_start_goes_where_a_car_waits_else_to_a_free_connector(
    store: Store, tasks: Tasks
) -> None:
    box = Box(store, tasks)
    await box.read()
    assert box.commands.remote_start_target(None) == 1  # both free: the first
    box.sims[2].plug()
    await box.read()
    assert box.commands.remote_start_target(None) == 2  # a car waits there (Preparing)
    assert box.commands.remote_start_target(1) == 1
    await box.charging(2)
    assert box.commands.remote_start_target(2) is None  # a transaction runs there
    assert box.commands.remote_start_target(None) == 1
    box.sims[1].fault("GroundFailure")
    await box.read()
    assert box.commands.remote_start_target(1) is None and box.commands.remote_start_target(None) is None
    assert box.commands.remote_start_target(3) is None  # no such connector


async def test_a_remote_start_is_authorized_first_when_AuthorizeRemoteTxRequests(
    store: Store, tasks: Tasks
) -> None:
    box = Box(store, tasks, AuthorizeRemoteTxRequests=True)
    await box.read()
    await box.commands.remote_start(1, "TAG")
    assert box.journal == [("authorize", 1, "TAG")]


async def test_a_remote_start_without_AuthorizeRemoteTxRequests_starts_at_once(
    store: Store, tasks: Tasks
) -> None:
    box = Box(store, tasks, AuthorizeRemoteTxRequests=False)
    box.sims[1].plug()
    await box.read()
    await box.commands.remote_start(1, "TAG")
    [(cid, effects)] = box.applied()
    assert cid == 1 and isinstance(effects[0], StartTransaction) and effects[1:] == [SetEnergy(True)]
    assert effects[0].transaction.id_tag == "TAG"
    await box.commands.remote_start(2, "OTHER")  # no car yet: the tag waits for the cable
    assert box.applied()[1] == (2, []) and box.connectors[2].core.waiting_tag == "OTHER"


async def test_remote_stop_and_the_connector_of_a_transaction(store: Store, tasks: Tasks) -> None:
    box = Box(store, tasks)
    await box.read()
    await box.charging(2)
    tx = box.connectors[2].core.transaction
    assert tx is not None
    assert box.commands.connector_of_transaction(77) is None  # before the central system's answer
    box.messages.ids.answered(tx.local_id, 77)  # the outbox keeps the central system's id
    assert box.commands.connector_of_transaction(77) == 2
    await box.commands.remote_stop(2)
    [(cid, effects)] = box.applied()
    assert cid == 2 and stop_reasons(effects) == ["Remote"]


# -- ChangeAvailability ----------------------------------------------------------------------------
async def test_change_availability_is_stored_before_it_is_answered(store: Store, tasks: Tasks) -> None:
    box = Box(store, tasks)
    await box.read()
    busy = threading.Event()
    store.submit(busy.wait)  # the store thread is held up: nothing can be written yet
    try:
        answering = asyncio.create_task(box.commands.change_availability(1, False))
        await turns()
        assert not answering.done()  # no answer before the write
    finally:
        busy.set()
    assert await asyncio.wait_for(answering, 1) == "Accepted"
    assert await store.run(store.availability, CP_ID) == {1: False}
    assert not box.connectors[1].core.operative


async def test_change_availability_during_a_transaction_is_scheduled(store: Store, tasks: Tasks) -> None:
    box = Box(store, tasks)
    await box.read()
    await box.charging(1)
    assert await box.commands.change_availability(1, False) == "Scheduled"
    assert await store.run(store.availability, CP_ID) == {1: False}  # what is wanted, kept at once
    assert box.connectors[1].core.operative  # until its transaction ends
    assert await box.commands.change_availability(0, False) == "Scheduled"  # 1 still runs
    assert await store.run(store.availability, CP_ID) == {0: False, 1: False, 2: False}
    assert not box.connectors[2].core.operative and not box.whole.operative


async def test_change_availability_of_an_unknown_connector_is_rejected(store: Store, tasks: Tasks) -> None:
    box = Box(store, tasks)
    assert await box.commands.change_availability(3, False) == "Rejected"
    assert await store.run(store.availability, CP_ID) == {}


# -- UnlockConnector -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "options",
    [SimulatedOptions(has_lock=False), SimulatedOptions(fixed_cable=True)],
    ids=["no lock", "fixed cable"],
)
async def test_unlock_is_not_supported_without_a_lock(
    store: Store, tasks: Tasks, options: SimulatedOptions
) -> None:
    box = Box(store, tasks, options=options)
    await box.read()
    await box.charging(1)
    assert await box.commands.unlock(1) == "NotSupported"
    assert box.journal == [] and box.sims[1].unlock_count == 0  # and the transaction goes on


async def test_unlock_stops_the_transaction_first_then_unlocks(store: Store, tasks: Tasks) -> None:
    box = Box(store, tasks)
    await box.read()
    assert await box.commands.unlock(9) == "NotSupported"  # no such connector
    await box.charging(1)
    assert await box.commands.unlock(1) == "Unlocked"
    [(what, cid, effects, before)] = box.journal
    assert (what, cid, stop_reasons(effects)) == ("apply", 1, ["UnlockCommand"])
    assert before[1] == (0, 0)  # stopped, then unlocked
    assert box.sims[1].unlock_count == 1
    box.sims[2].silence()
    assert await box.commands.unlock(2) == "UnlockFailed"


# -- Reset -----------------------------------------------------------------------------------------
async def test_a_soft_reset_stops_the_transactions_lets_them_go_out_and_restarts(
    store: Store, tasks: Tasks
) -> None:
    box = Box(store, tasks, MessageTimeout=7)
    await box.read()
    await box.charging(2)
    await box.commands.reset(hard=False)
    assert [(e[0], e[1], stop_reasons(e[2])) if e[0] == "apply" else e for e in box.journal] == [
        ("apply", 2, ["SoftReset"]), "transactional_sent(7)", "restart"
    ]  # fmt: skip
    assert [s.reset_count for s in box.sims.values()] == [0, 0]  # the devices are not reset


async def test_a_hard_reset_also_resets_the_devices_before_the_restart(store: Store, tasks: Tasks) -> None:
    box = Box(store, tasks, ResetRetries=2)
    await box.read()
    await box.charging(1)
    box.sims[2].silence()  # one device does not answer: tried 1 + ResetRetries times, then given up
    restart_saw: list[int] = []
    box.link.restart = lambda: _note(restart_saw, box.sims[1].reset_count)  # type: ignore[method-assign]
    await box.commands.reset(hard=True)
    what, cid, effects, before = box.journal[0]
    assert (what, cid, stop_reasons(effects)) == ("apply", 1, ["HardReset"])
    assert before[1] == (0, 0)
    assert box.journal[1:] == ["transactional_sent(30)"]
    assert restart_saw == [1]  # the device was reset before the session started again


async def _note(seen: list[int], value: int) -> None:
    seen.append(value)


# -- ClearCache and the triggers -------------------------------------------------------------------
async def test_clear_cache_empties_the_authorizers_cache(store: Store, tasks: Tasks) -> None:
    box = Box(store, tasks)
    box.authorizer.remember("TAG", {"status": "Accepted"})
    await box.commands.clear_cache()
    assert len(box.authorizer.cache) == 0 and await store.run(store.cache_entries, CP_ID) == []


async def test_triggered_messages(store: Store, tasks: Tasks) -> None:
    box = Box(store, tasks)
    assert box.commands.connector_ids == (1, 2)
    assert box.commands.has_connector(2) and not box.commands.has_connector(3)
    assert box.commands.meter_values_message(1) is None  # no reading yet
    await box.read()
    meter_values = box.commands.meter_values_message(1)
    assert isinstance(meter_values, call.MeterValues) and meter_values.connector_id == 1
    box.sims[1].plug()
    await box.read()
    status = box.commands.status_message(1)
    assert (status.connector_id, status.status) == (1, "Preparing")
    box.commands.report_statuses()
    assert [m.connector_id for m in box.link.send()] == [0, 2]  # 1 was told by the trigger
    assert await box.commands.send_now(status) is None  # no connection: nothing sent
