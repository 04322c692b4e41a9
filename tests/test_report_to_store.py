"""What a reporting target keeps in the store (bridge/store/reporting.py): schemas 12 and 13 keep every
row of an older file; each target's queue is separate and ordered; a transaction's row stays until no queue
holds a message of it; the ids a target gave survive a reopen; its samples at its own interval."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bridge.outbox import Outbox
from bridge.outbox.reports import ReportMessages
from bridge.store import FILENAME, MIGRATIONS, Store
from bridge.store.outbox import transaction_done
from bridge.store.reporting import target_key

T0 = "2026-01-01T00:00:00.000Z"
BROKER = target_key("CP-1", "NL-ABC-123", "wss://broker.example/ocpp")
BILLING = target_key("CP-1", "CP-1", "ws://billing.example/ocpp")


def test_an_older_file_keeps_its_rows_and_gains_the_targets_table(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / FILENAME, isolation_level=None)
    for n, script in enumerate(MIGRATIONS[:11]):
        db.executescript(f"BEGIN; {script}; PRAGMA user_version = {n + 1}; COMMIT;")
    columns = "id, charge_point, connector, id_tag, meter_start, started_at, cs_id"
    db.execute(f"INSERT INTO transactions ({columns}) VALUES (4, 'CP-1', 1, 'TAG', 100, ?, 41)", (T0,))
    db.execute("INSERT INTO outbox (charge_point, action, tx, payload, unique_id, created_at)"
               " VALUES ('CP-1', 'MeterValues', 4, '{}', 'm1', ?)", (T0,))  # fmt: skip
    db.close()
    store = Store.open(tmp_path)
    try:
        assert store.pragma("user_version") == len(MIGRATIONS) == 13
        assert [(r.id, r.cs_id) for r in store.transactions("CP-1")] == [(4, 41)]
        assert [r.unique_id for r in store.outbox("CP-1")] == ["m1"]
        assert store.report_ids(BROKER) == {}
    finally:
        store.close()


def test_each_targets_queue_is_its_own_and_a_transaction_stays_until_every_queue_delivered_it(
    tmp_path: Path,
) -> None:
    store = Store.open(tmp_path)
    try:
        store.begin_transaction("CP-1", 1, 1, "TAG", 0, T0, '{"s": 1}', "p-start")
        for key, tag in ((BROKER, "b"), (BILLING, "c")):
            store.queue_report(key, "StartTransaction", 1, '{"s": 1}', f"{tag}-start", T0)
        store.queue_report(BROKER, "MeterValues", 1, '{"m": 1}', "b-mv", T0)
        store.end_transaction("CP-1", 1, 10, T0, "Local", '{"e": 1}', "p-stop")
        for key, tag in ((BROKER, "b"), (BILLING, "c")):
            store.queue_report(key, "StopTransaction", 1, '{"e": 1}', f"{tag}-stop", T0)
        assert [r.unique_id for r in store.outbox(BROKER)] == ["b-start", "b-mv", "b-stop"]
        assert [r.unique_id for r in store.outbox(BILLING)] == ["c-start", "c-stop"]
        assert [r.unique_id for r in store.outbox("CP-1")] == ["p-start", "p-stop"]

        # The primary delivers everything: the row stays, the targets still need it.
        primary = [r.seq for r in store.outbox("CP-1")]
        store.remove_messages("CP-1", tuple(primary), True, 1, None, True)
        assert [r.id for r in store.transactions("CP-1")] == [1]
        # The broker numbers it 7001 and gets all; the billing system still holds its messages.
        start, *rest = [r.seq for r in store.outbox(BROKER)]
        store.settle_report(BROKER, (start,), 1, 7001, False)
        assert store.report_ids(BROKER) == {1: 7001} and store.report_ids(BILLING) == {}
        store.settle_report(BROKER, tuple(rest), 1, None, True)
        assert store.report_ids(BROKER) == {} and [r.id for r in store.transactions("CP-1")] == [1]
        store.settle_report(BILLING, tuple(r.seq for r in store.outbox(BILLING)), 1, None, True)
        assert store.transactions("CP-1") == [] and store.outbox(BILLING) == []
    finally:
        store.close()


def test_the_ids_a_target_gave_survive_a_reopen(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    store.begin_transaction("CP-1", 3, 1, "TAG", 0, T0, "{}", "p-start")
    store.queue_report(BROKER, "StartTransaction", 3, "{}", "b-start", T0)
    store.settle_report(BROKER, tuple(r.seq for r in store.outbox(BROKER)), 3, 7003, False)
    store.close()
    store = Store.open(tmp_path)
    try:
        assert store.report_ids(BROKER) == {3: 7003}
    finally:
        store.close()


def test_a_target_gets_samples_at_its_own_interval_and_none_at_0(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    try:
        interval = [3]
        messages = ReportMessages(BROKER, store, 1000, lambda: interval[0])
        every_second = [f"2026-01-01T00:00:{s:02d}.000Z" for s in range(8)]
        assert messages.wants("StartTransaction", 1, every_second[0])
        assert messages.wants("StartTransaction", 2, every_second[0])
        taken = [at for at in every_second if messages.wants("MeterValues", 1, at)]
        assert taken == [every_second[0], every_second[3], every_second[6]]
        # Half a second early still counts (the sampler's timers are not exact); another transaction
        # has its own count.
        assert messages.wants("MeterValues", 1, "2026-01-01T00:00:08.600Z")
        assert messages.wants("MeterValues", 2, every_second[7])
        assert messages.wants("StopTransaction", 1, every_second[7])
        interval[0] = 0
        assert not messages.wants("MeterValues", 2, "2026-01-01T00:01:00.000Z")
        assert messages.wants("StopTransaction", 2, "2026-01-01T00:01:00.000Z")
    finally:
        store.close()


def test_a_clock_moved_back_does_not_silence_a_targets_samples(tmp_path: Path) -> None:
    """The primary's currentTime moves the clock an hour back mid-session (the board's clock ran
    fast): the samples after it are stamped earlier than the last one copied, and still go, at the
    target's interval from then on."""
    store = Store.open(tmp_path)
    try:
        messages = ReportMessages(BROKER, store, 1000, lambda: 60)
        assert messages.wants("StartTransaction", 1, "2026-01-01T12:00:00.000Z")
        assert messages.wants("MeterValues", 1, "2026-01-01T12:01:00.000Z")
        later = [f"2026-01-01T11:{m:02d}:00.000Z" for m in range(2, 6)]
        assert [at for at in later if messages.wants("MeterValues", 1, at)] == later
        half_minutes = [f"2026-01-01T11:06:{s:02d}.000Z" for s in (0, 30)] + ["2026-01-01T11:07:00.000Z"]
        taken = [at for at in half_minutes if messages.wants("MeterValues", 1, at)]
        assert taken == [half_minutes[0], half_minutes[2]]
    finally:
        store.close()


async def test_a_target_is_told_only_of_the_transactions_whose_start_it_was_given(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    try:
        at = T0
        # Transaction 1 was open before the target was listed: none of its messages is the target's.
        store.begin_transaction("CP-1", 1, 1, "TAG", 0, T0, "{}", "p-start-1")
        messages = ReportMessages(BROKER, store, 1000, lambda: 1)
        assert await messages.restore() == 0
        assert not messages.wants("MeterValues", 1, at)
        assert not messages.wants("StopTransaction", 1, at)
        # Transaction 2 starts with the target listed: all of it; after its stop, nothing more.
        assert messages.wants("StartTransaction", 2, at)
        assert messages.wants("MeterValues", 2, at)
        assert messages.wants("StopTransaction", 2, at)
        assert not messages.wants("StopTransaction", 2, at)

        # What it was given is known again after a restart: a start still queued (3), one it
        # numbered (4); not one whose stop is already queued (5), nor one never given (1).
        for tx in (3, 4, 5):
            store.queue_report(BROKER, "StartTransaction", tx, "{}", f"b-start-{tx}", T0)
        four = [r.seq for r in store.outbox(BROKER) if r.unique_id == "b-start-4"]
        store.settle_report(BROKER, tuple(four), 4, 7004, False)
        store.queue_report(BROKER, "StopTransaction", 5, "{}", "b-stop-5", T0)
        again = ReportMessages(BROKER, store, 1000, lambda: 1)
        await again.restore()
        assert [tx for tx in (1, 3, 4, 5) if again.wants("MeterValues", tx, at)] == [3, 4]
        assert [tx for tx in (1, 3, 4, 5) if again.wants("StopTransaction", tx, at)] == [3, 4]
    finally:
        store.close()


def test_a_finished_transactions_row_is_removed_by_an_index_lookup_not_a_scan(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    store.close()
    db = sqlite3.connect(tmp_path / FILENAME)
    try:
        sql, params = transaction_done(1)
        plan = " | ".join(row[-1] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", params))
    finally:
        db.close()
    assert "USING COVERING INDEX outbox_tx" in plan and "SCAN outbox" not in plan, plan


async def test_a_copy_failing_alone_costs_the_primary_nothing_but_a_lost_primary_write_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store.open(tmp_path)
    try:
        store.begin_transaction("CP-1", 1, 1, "TAG", 0, T0, "{}", "p-start")
        primary, copy = Outbox("CP-1", store, bound=100), Outbox(BROKER, store, bound=100)
        await primary.restore()
        await copy.restore()
        real = store.queue_report

        def write(uid: str) -> Any:
            return lambda terms: real("CP-1", "MeterValues", 1, "{}", uid, T0, terms)

        def target_full(*args: Any, **kwargs: Any) -> Any:
            raise sqlite3.OperationalError("database or disk is full")

        monkeypatch.setattr(store, "queue_report", target_full)
        seq = await primary.add("MeterValues", 1, "{}", "p-1", T0, write("p-1"), copies=[copy])
        assert [r.seq for r in store.outbox("CP-1") if r.unique_id == "p-1"] == [seq]
        assert copy.lost == 1 and store.outbox(BROKER) == []

        # SQLite rolled the whole transaction back (as on SQLITE_FULL or IOERR): the primary's
        # message is not in the store, and add says so rather than report it queued.
        def all_lost(*args: Any, **kwargs: Any) -> Any:
            lost = tuple(r.seq for r in store.outbox("CP-1") if r.unique_id == "p-2")
            store.remove_messages("CP-1", lost)  # what the rollback undoes
            raise sqlite3.OperationalError("disk I/O error")

        monkeypatch.setattr(store, "queue_report", all_lost)
        with pytest.raises(sqlite3.OperationalError):
            await primary.add("MeterValues", 1, "{}", "p-2", T0, write("p-2"), copies=[copy])
        assert [r.unique_id for r in store.outbox("CP-1")] == ["p-start", "p-1"]
    finally:
        store.close()
