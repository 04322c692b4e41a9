"""Recovery after a restart (bridge.runtime.recovery): suspended transactions resume, cut-off ones end.

Real: Recovery, the store (SQLite in tmp_path: a restart closes it and opens the file again; a crash
is a run that never suspended), the transaction messages and their outbox, Metering (its stop values
and the sampler of a resumed transaction), the configuration keys, and a connector at run time with
a real core, coordinator and simulated charger. Stand-in: the link (`Link` of tests/helpers/parts.py);
where the central system answers a StartTransaction the test answers the outbox's head as the
session's sender would. Whole restarts of the daemon over the real link are in test_persistence and
test_crash.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call_result

from adapters.base import ChargerReading
from adapters.chargers.simulated import SimulatedCharger
from bridge.core.connector import StartTransaction, StopReason, StopTransaction, Transaction
from bridge.outbox import TransactionMessages
from bridge.runtime.connector import ConnectorRuntime
from bridge.runtime.metering import Metering
from bridge.runtime.recovery import Recovery
from bridge.store import Store, TransactionRow
from tests.helpers.clock import ManualClock
from tests.helpers.parts import CP_ID, Link, Tasks, configuration, connector

REGISTER = "Energy.Active.Import.Register"


class Run:
    """One run of a charge point with `connectors` connectors over the store in `state`, wired as
    bridge.chargepoint wires its recovery."""

    def __init__(self, state: Path, clock: ManualClock, connectors: int = 1) -> None:
        self.clock = clock
        self.store = Store.open(state)
        self.tasks = Tasks()
        self.cfg = configuration(connectors, StopTxnSampledData=REGISTER, MeterValueSampleInterval=0)
        self.link = Link()
        # New local ids follow the store's: ids are never reused.
        new_id = itertools.count(self.store.next_transaction_id()).__next__
        self.connectors: dict[int, ConnectorRuntime] = {}
        self.sims: dict[int, SimulatedCharger] = {}
        for cid in range(1, connectors + 1):
            self.connectors[cid], self.sims[cid] = connector(cid, clock, self.tasks, new_id=new_id)
        self.messages = TransactionMessages(
            CP_ID, self.store, self.link, 1000, self._start_answered, lambda tag, info: None
        )
        self.metering = Metering(
            CP_ID, self.connectors, self.cfg, clock, self.link, self.messages, self.refresh, self.tasks
        )
        self.recovery = Recovery(CP_ID, self.connectors, self.store, clock, self.messages, self.metering)
        self.ended = False

    async def refresh(self, cid: int) -> ChargerReading | None:
        return await self.connectors[cid].device.refresh()

    def _start_answered(self, local_id: int, id_tag: str, answer: Any) -> None:
        for rt in self.connectors.values():
            rt.core.on_start_confirmed(local_id)

    async def charge(self, cid: int = 1, tag: str = "TAG", cs_id: int = 77) -> Transaction:
        """A transaction started on connector `cid`, answered by the central system with `cs_id`."""
        rt = self.connectors[cid]
        self.sims[cid].plug()
        await rt.device.refresh()
        [start, _] = rt.core.on_authorized(tag, True, self.clock.now(), 60)
        assert isinstance(start, StartTransaction)
        await self.metering.start(cid, start.transaction)
        answer = call_result.StartTransaction(
            transaction_id=cs_id, id_tag_info={"status": "Accepted", "parentIdTag": "GROUP"}
        )
        await self.link.answer_next(answer)
        return start.transaction

    async def rows(self) -> list[TransactionRow]:
        return await self.store.run(self.store.transactions, CP_ID)

    async def stops(self) -> list[dict[str, Any]]:
        outbox = await self.store.run(self.store.outbox, CP_ID)
        return [json.loads(r.payload) for r in outbox if r.action == "StopTransaction"]

    async def end(self) -> None:
        """The run is over (a graceful stop has suspended first; a crash has not)."""
        if not self.ended:
            self.ended = True
            await self.tasks.close()
            self.store.close()


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
async def runs() -> AsyncIterator[list[Run]]:
    """The runs a test makes; whatever is still open at its end is closed."""
    made: list[Run] = []
    yield made
    for run in made:
        await run.end()


async def test_a_suspended_transaction_resumes_with_its_state(state: Path, runs: list[Run]) -> None:
    clock = ManualClock()
    first = Run(state, clock)
    runs.append(first)
    tx = await first.charge()
    core = first.connectors[1].core
    core.on_start_confirmed(tx.local_id, "GROUP")
    # StartTransaction.conf said Invalid with StopTransactionOnInvalidId false: energy is stopped,
    # the transaction goes on with a budget (MaxEnergyOnInvalidId) used up.
    core.on_start_rejected(tx.local_id, clock.now(), stop_on_invalid_id=False, max_energy_wh=0)
    running = core.transaction
    assert running is not None and running.deauthorized
    await first.recovery.suspend()  # a graceful stop
    await first.end()

    clock.advance(30)
    second = Run(state, clock)
    runs.append(second)
    await second.recovery.restore()
    rt = second.connectors[1]
    assert rt.core.transaction == Transaction(
        tx.local_id, "TAG", tx.meter_start_wh, tx.started_at, parent_id_tag="GROUP",
        invalid_energy_limit_wh=running.invalid_energy_limit_wh, deauthorized=True,
    )  # fmt: skip
    assert rt.resume_pending  # energy as the transaction had it, at the first reading
    assert second.messages.transaction_id(tx.local_id) == 77
    assert [t.get_name() for t in second.tasks.named("meter values")] == ["1: meter values"]
    assert await second.stops() == []


async def test_the_resume_mark_is_cleared_only_once_the_charge_point_runs(
    state: Path, runs: list[Run]
) -> None:
    clock = ManualClock()
    first = Run(state, clock)
    runs.append(first)
    tx = await first.charge()
    await first.recovery.suspend()
    await first.end()

    second = Run(state, clock)  # restored, then stopped before it ran: still resumable
    runs.append(second)
    await second.recovery.restore()
    [row] = await second.rows()
    assert row.suspended_at is not None
    await second.end()

    third = Run(state, clock)
    runs.append(third)
    await third.recovery.restore()
    assert third.connectors[1].core.transaction is not None
    await third.recovery.running()
    [row] = await third.rows()
    assert row.suspended_at is None and row.suspended_state is None
    await third.end()  # a crash: no suspend

    fourth = Run(state, clock)
    runs.append(fourth)
    await fourth.recovery.restore()
    assert fourth.connectors[1].core.transaction is None
    [stop] = await fourth.stops()
    assert stop["reason"] == "PowerLoss"
    assert fourth.messages.transaction_id(tx.local_id) == 77  # what the StopTransaction will carry


async def test_a_cut_off_transaction_ends_with_PowerLoss_at_the_last_persisted_reading(
    state: Path, runs: list[Run]
) -> None:
    clock = ManualClock()
    first = Run(state, clock)
    runs.append(first)
    tx = await first.charge()
    await first.messages.reading(tx.local_id, 1234.9, "2026-01-01T00:10:00.000Z")  # the sampler's
    clock.advance(300)  # more energy flowed, but no reading of it was persisted before the crash
    await first.end()

    second = Run(state, clock)
    runs.append(second)
    await second.recovery.restore()
    assert second.connectors[1].core.transaction is None
    [stop] = await second.stops()
    assert stop["meterStop"] == 1234  # whole Wh, rounded down as every register
    assert stop["timestamp"] == "2026-01-01T00:10:00.000Z"  # as of that reading
    assert stop["reason"] == "PowerLoss" and "idTag" not in stop
    end = stop["transactionData"][-1]["sampledValue"][0]
    assert end["context"] == "Transaction.End" and end["value"] == "1234"
    [row] = await second.rows()
    assert row.stopped_at == "2026-01-01T00:10:00.000Z" and row.stop_reason == "PowerLoss"


async def test_a_cut_off_transaction_without_a_reading_ends_at_its_start(
    state: Path, runs: list[Run]
) -> None:
    clock = ManualClock()
    first = Run(state, clock)
    runs.append(first)
    tx = await first.charge()
    await first.end()

    second = Run(state, clock)
    runs.append(second)
    await second.recovery.restore()
    [stop] = await second.stops()
    assert stop["meterStop"] == tx.meter_start_wh and stop["reason"] == "PowerLoss"


async def test_a_suspended_transaction_of_a_connector_gone_from_the_file_ends(
    state: Path, runs: list[Run]
) -> None:
    clock = ManualClock()
    first = Run(state, clock, connectors=2)
    runs.append(first)
    await first.charge(cid=2)
    await first.recovery.suspend()
    await first.end()

    second = Run(state, clock, connectors=1)
    runs.append(second)
    await second.recovery.restore()
    [stop] = await second.stops()
    assert stop["reason"] == "PowerLoss"
    assert second.connectors[1].core.transaction is None


async def test_suspend_marks_only_the_transactions_that_run(state: Path, runs: list[Run]) -> None:
    clock = ManualClock()
    first = Run(state, clock, connectors=2)
    runs.append(first)
    await first.charge(cid=1, tag="ONE", cs_id=71)
    await first.charge(cid=2, tag="TWO", cs_id=72)
    [_, stop] = first.connectors[2].core.stop(StopReason.LOCAL, clock.now(), "TWO")
    assert isinstance(stop, StopTransaction)
    await first.metering.stop(2, stop)  # its StopTransaction is queued, not yet answered
    await first.recovery.suspend()
    await first.end()

    second = Run(state, clock, connectors=2)
    runs.append(second)
    await second.recovery.restore()
    resumed = second.connectors[1].core.transaction
    assert resumed is not None and resumed.id_tag == "ONE"
    assert second.connectors[2].core.transaction is None
    assert [s["reason"] for s in await second.stops()] == ["Local"]  # no second stop for it
