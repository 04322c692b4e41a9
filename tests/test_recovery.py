"""Recovery after a restart (bridge.runtime.recovery): suspended transactions resume, cut-off ones end.

Real: Recovery, the store (SQLite in tmp_path: a restart closes it and opens the file again; a crash
is a run that never suspended), the transaction messages and their outbox, Metering (its stop values
and the sampler of a resumed transaction), the configuration keys, and a connector at run time with
a real core, coordinator and simulated charger: each run wired, and each restart made, by
tests/helpers/restarts.py. Stand-in: the link (`Link` of tests/helpers/parts.py); where the central
system answers a StartTransaction the test answers the outbox's head as the session's sender would.
Whole restarts of the daemon over the real link are in test_persistence and test_crash.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bridge.core.connector import StopReason, StopTransaction, Transaction
from tests.helpers.restarts import Restarts


@pytest.fixture
async def restarts(tmp_path: Path) -> AsyncIterator[Restarts]:
    """The runs a test makes, on one store and one clock; whatever is still open at its end is closed."""
    made = Restarts(tmp_path / "state")
    yield made
    await made.close()


async def test_a_suspended_transaction_resumes_with_its_state(restarts: Restarts) -> None:
    clock = restarts.clock
    first = restarts.first()
    tx = await first.charge()
    core = first.connectors[1].core
    core.on_start_confirmed(tx.local_id, "GROUP")
    # StartTransaction.conf said Invalid with StopTransactionOnInvalidId false: energy is stopped,
    # the transaction goes on with a budget (MaxEnergyOnInvalidId) used up.
    core.on_start_rejected(tx.local_id, clock.now(), stop_on_invalid_id=False, max_energy_wh=0)
    running = core.transaction
    assert running is not None and running.deauthorized
    second = await restarts.restart(first, graceful=True, off_for_s=30)
    rt = second.connectors[1]
    assert rt.core.transaction == Transaction(
        tx.local_id, "TAG", tx.meter_start_wh, tx.started_at, parent_id_tag="GROUP",
        invalid_energy_limit_wh=running.invalid_energy_limit_wh, deauthorized=True,
    )  # fmt: skip
    assert rt.resume_pending  # energy as the transaction had it, at the first reading
    assert second.messages.transaction_id(tx.local_id) == 77
    assert [t.get_name() for t in second.tasks.named("meter values")] == ["1: meter values"]
    assert await second.stops() == []


async def test_the_resume_mark_is_cleared_only_once_the_charge_point_runs(restarts: Restarts) -> None:
    first = restarts.first()
    tx = await first.charge()

    second = await restarts.restart(first, graceful=True)  # restored, then stopped before it ran:
    [row] = await second.rows()
    assert row.suspended_at is not None  # still resumable

    third = await restarts.restart(second, graceful=False)
    assert third.connectors[1].core.transaction is not None
    await third.recovery.running()
    [row] = await third.rows()
    assert row.suspended_at is None and row.suspended_state is None

    fourth = await restarts.restart(third, graceful=False)  # a crash: no suspend
    assert fourth.connectors[1].core.transaction is None
    [stop] = await fourth.stops()
    assert stop["reason"] == "PowerLoss"
    assert fourth.messages.transaction_id(tx.local_id) == 77  # what the StopTransaction will carry


async def test_a_cut_off_transaction_ends_with_PowerLoss_at_the_last_persisted_reading(
    restarts: Restarts,
) -> None:
    clock = restarts.clock
    first = restarts.first()
    tx = await first.charge()
    await first.messages.reading(tx.local_id, 1234.9, "2026-01-01T00:10:00.000Z")  # the sampler's
    clock.advance(300)  # more energy flowed, but no reading of it was persisted before the crash
    second = await restarts.restart(first, graceful=False)
    assert second.connectors[1].core.transaction is None
    [stop] = await second.stops()
    assert stop["meterStop"] == 1234  # whole Wh, rounded down as every register
    assert stop["timestamp"] == "2026-01-01T00:10:00.000Z"  # as of that reading
    assert stop["reason"] == "PowerLoss" and "idTag" not in stop
    end = stop["transactionData"][-1]["sampledValue"][0]
    assert end["context"] == "Transaction.End" and end["value"] == "1234"
    [row] = await second.rows()
    assert row.stopped_at == "2026-01-01T00:10:00.000Z" and row.stop_reason == "PowerLoss"


async def test_a_cut_off_transaction_without_a_reading_ends_at_its_start(restarts: Restarts) -> None:
    first = restarts.first()
    tx = await first.charge()
    second = await restarts.restart(first, graceful=False)
    [stop] = await second.stops()
    assert stop["meterStop"] == tx.meter_start_wh and stop["reason"] == "PowerLoss"


async def test_a_suspended_transaction_of_a_connector_gone_from_the_file_ends(restarts: Restarts) -> None:
    first = restarts.first(connectors=2)
    await first.charge(cid=2)
    second = await restarts.restart(first, graceful=True, connectors=1)
    [stop] = await second.stops()
    assert stop["reason"] == "PowerLoss"
    assert second.connectors[1].core.transaction is None


async def test_suspend_marks_only_the_transactions_that_run(restarts: Restarts) -> None:
    clock = restarts.clock
    first = restarts.first(connectors=2)
    await first.charge(cid=1, tag="ONE", cs_id=71)
    await first.charge(cid=2, tag="TWO", cs_id=72)
    [_, stop] = first.connectors[2].core.stop(StopReason.LOCAL, clock.now(), "TWO")
    assert isinstance(stop, StopTransaction)
    await first.metering.stop(2, stop)  # its StopTransaction is queued, not yet answered
    second = await restarts.restart(first, graceful=True)
    resumed = second.connectors[1].core.transaction
    assert resumed is not None and resumed.id_tag == "ONE"
    assert second.connectors[2].core.transaction is None
    assert [s["reason"] for s in await second.stops()] == ["Local"]  # no second stop for it
