"""The store on its own: schema, durability choices, damage handling, bookkeeping."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from pathlib import Path

import pytest

from bridge.store import FILENAME, MIGRATIONS, Store, StoreError, Terms

T0 = "2026-01-01T00:00:00.000Z"


def open_store(tmp_path: Path) -> Store:
    return Store.open(tmp_path)


def test_a_new_database_is_created_in_wal_mode_at_the_latest_schema(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    try:
        # Both are kept in the file itself: read as any other reader of the file reads them.
        with contextlib.closing(sqlite3.connect(tmp_path / FILENAME)) as reader:
            assert reader.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert reader.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert store.pragma("synchronous") == 2  # FULL
    finally:
        store.close()
    assert (tmp_path / FILENAME).exists()


def test_pragma_reads_the_store_connections_settings_and_nothing_else(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    try:
        assert store.pragma("journal_mode") == "wal"
        assert store.pragma("user_version") == len(MIGRATIONS)
        with pytest.raises(ValueError):
            store.pragma("wal_checkpoint")  # type: ignore[arg-type]  # a name is put into the SQL: only these
    finally:
        store.close()


def test_a_transaction_and_its_messages_round_trip_in_order(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    try:
        start = store.begin_transaction("CP-1", 7, 1, "TAG", 1000, T0, '{"idTag": "TAG"}', "id-start").seq
        mv = store.record_meter_values(
            "CP-1", 7, 1500.5, "2026-01-01T00:01:00.000Z", '{"connectorId": 1}', "id-mv"
        ).seq
        stop = store.end_transaction(
            "CP-1", 7, 1600, "2026-01-01T00:02:00.000Z", "Local", "{}", "id-stop"
        ).seq
        assert start < mv < stop
        rows = store.outbox("CP-1")
        assert [(r.action, r.unique_id, r.tx) for r in rows] == [
            ("StartTransaction", "id-start", 7),
            ("MeterValues", "id-mv", 7),
            ("StopTransaction", "id-stop", 7),
        ]
        assert rows[0].payload == '{"idTag": "TAG"}' and rows[1].payload == '{"connectorId": 1}'
        (tx,) = store.transactions("CP-1")
        assert (tx.last_meter_wh, tx.meter_stop, tx.stop_reason) == (1500.5, 1600, "Local")
        assert store.outbox("CP-2") == []
        # Delivery: the central system's id is kept; the finished transaction goes with its last message.
        store.remove_messages("CP-1", (start,), True, 7, cs_id=4711)
        assert store.transactions("CP-1")[0].cs_id == 4711
        store.remove_messages("CP-1", (mv,))
        store.remove_messages("CP-1", (stop,), True, 7, ended=True)
        assert store.outbox("CP-1") == [] and store.transactions("CP-1") == []
    finally:
        store.close()


def test_local_transaction_ids_are_never_reused(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    try:
        assert store.next_transaction_id() == 1
        seq = store.begin_transaction("CP-1", 1, 1, "T", 0, T0, "{}", "a").seq
        stop = store.end_transaction("CP-1", 1, 0, T0, "Local", "{}", "b").seq
        store.remove_messages("CP-1", (seq,), True, 1, cs_id=1)
        store.remove_messages("CP-1", (stop,), True, 1, ended=True)
        assert store.transactions("CP-1") == []
        assert store.next_transaction_id() == 2
    finally:
        store.close()


def test_everything_survives_a_reopen(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.begin_transaction("CP-1", 3, 2, "TAG", 10, T0, "{}", "u1")
    store.record_reading(3, 55.0, "2026-01-01T00:05:00.000Z")
    store.save_config_value("CP-1", "HeartbeatInterval", "120")
    store.save_config_value("CP-1", "HeartbeatInterval", "90")
    store.close()
    store = open_store(tmp_path)
    try:
        assert [r.unique_id for r in store.outbox("CP-1")] == ["u1"]
        (tx,) = store.transactions("CP-1")
        assert (tx.connector, tx.last_meter_wh, tx.last_meter_at, tx.stopped_at) == (
            2,
            55.0,
            "2026-01-01T00:05:00.000Z",
            None,
        )
        assert store.config_values("CP-1") == {"HeartbeatInterval": "90"}
        assert store.next_transaction_id() == 4
    finally:
        store.close()


def test_the_oldest_meter_values_are_dropped_first_never_start_or_stop(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    try:
        store.begin_transaction("CP-1", 1, 1, "T", 0, T0, "{}", "s")
        first = store.record_meter_values("CP-1", 1, 1.0, T0, "{}", "m1").seq
        second = store.record_meter_values("CP-1", 1, 2.0, T0, "{}", "m2").seq
        store.end_transaction("CP-1", 1, 2, T0, "Local", "{}", "e")
        assert store.drop_oldest_meter_values("CP-1") == first
        assert store.drop_oldest_meter_values("CP-1") == second
        assert store.drop_oldest_meter_values("CP-1") is None
        assert [r.action for r in store.outbox("CP-1")] == ["StartTransaction", "StopTransaction"]
    finally:
        store.close()


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda p: p.write_bytes(b"this is not a database at all" * 100), id="garbage"),
        pytest.param(lambda p: p.write_bytes(p.read_bytes()[:1500]), id="truncated"),
        pytest.param(lambda p: p.write_bytes(p.read_bytes()[:4096] + b"\xff" * 8192), id="corrupt-pages"),
    ],
)
def test_a_damaged_file_is_moved_aside_with_a_clear_log_line_and_a_new_one_works(
    tmp_path: Path, damage, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_store(tmp_path)
    for n in range(1, 50):
        store.begin_transaction("CP-1", n, 1, "T" * 20, n, T0, "{}", f"id-{n}")
    with contextlib.closing(sqlite3.connect(tmp_path / FILENAME)) as other:  # all of it into the file
        other.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    path = tmp_path / FILENAME
    damage(path)
    caplog.set_level(logging.ERROR)
    store = open_store(tmp_path)
    try:
        assert store.recovered_from is not None and store.recovered_from.exists()
        assert store.recovered_from.name.startswith(FILENAME + ".damaged-")
        message = " ".join(r.getMessage() for r in caplog.records)
        assert "is damaged" in message and str(store.recovered_from) in message
        store.begin_transaction("CP-1", 1, 1, "T", 0, T0, "{}", "fresh")  # it works
        assert [r.unique_id for r in store.outbox("CP-1")] == ["fresh"]
    finally:
        store.close()


def test_a_newer_schema_is_refused_and_the_file_left_alone(tmp_path: Path) -> None:
    open_store(tmp_path).close()
    db = sqlite3.connect(tmp_path / FILENAME)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    db.close()
    with pytest.raises(StoreError, match="newer than this ocpp-bridge knows"):
        open_store(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir() if "damaged" in p.name) == []


def test_the_outbox_count_is_kept_by_every_outbox_write(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    try:

        def counted() -> int:
            with contextlib.closing(sqlite3.connect(tmp_path / FILENAME)) as reader:
                return int(
                    reader.execute("SELECT COUNT(*) FROM outbox WHERE charge_point = 'CP-1'").fetchone()[0]
                )

        start = store.begin_transaction("CP-1", 1, 1, "T", 0, T0, "{}", "s").seq
        mvs = [store.record_meter_values("CP-1", 1, float(n), T0, "{}", f"m{n}").seq for n in range(4)]
        other = store.queue_message("CP-1", "FirmwareStatusNotification", '{"status": "Idle"}', "f", T0)
        assert other.dropped == () and store.outbox("CP-1")[-1].tx is None  # of no transaction
        assert store.outbox_count("CP-1") == counted() == 6
        # The bound, in the commit that adds: the oldest MeterValues but the one on its way goes.
        bounded = store.record_meter_values("CP-1", 1, 5.0, T0, "{}", "m5", None, Terms(bound=6, keep=mvs[0]))
        assert bounded.dropped == (mvs[1],) and store.outbox_count("CP-1") == counted() == 6
        # Grouped removals, with the next write or on their own; a seq already gone counts nothing.
        store.remove_messages("CP-1", (start, mvs[0], mvs[1]))
        assert store.outbox_count("CP-1") == counted() == 4
        store.end_transaction("CP-1", 1, 5, T0, "Local", "{}", "e", Terms(done=(mvs[2], other.seq)))
        assert store.outbox_count("CP-1") == counted() == 3
        assert store.outbox_count("CP-2") == 0
    finally:
        store.close()
    store = open_store(tmp_path)
    try:
        assert store.outbox_count("CP-1") == 3  # counted again after a restart
        assert [r.unique_id for r in store.outbox_page("CP-1", 0, 2)] == ["m3", "m5"]
        assert store.outbox_state("CP-1", 1) == (3, store.outbox("CP-1")[-1].seq, store.outbox("CP-1")[:1])
    finally:
        store.close()


def test_schema_7_outbox_rows_are_kept_and_seqs_go_on_after_the_migration(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / FILENAME, isolation_level=None)
    for n, script in enumerate(MIGRATIONS[:7]):
        db.executescript(f"BEGIN; {script}; PRAGMA user_version = {n + 1}; COMMIT;")
    for n in range(5):
        db.execute(
            "INSERT INTO outbox (charge_point, action, tx, payload, unique_id, created_at)"
            " VALUES ('CP-1', 'MeterValues', 1, '{}', ?, ?)",
            (f"u{n}", T0),
        )
    db.execute("DELETE FROM outbox WHERE seq > 3")  # the newest were answered: their seqs are used up
    db.close()
    store = open_store(tmp_path)
    try:
        assert [(r.seq, r.unique_id, r.tx) for r in store.outbox("CP-1")] == [
            (1, "u0", 1),
            (2, "u1", 1),
            (3, "u2", 1),
        ]
        assert store.queue_message("CP-1", "FirmwareStatusNotification", "{}", "new", T0).seq == 6
    finally:
        store.close()


def test_the_stored_states_at_start_are_what_each_table_holds_for_each_charge_point(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    try:
        # One table each for CP-1 .. CP-6, and CP-7 with nothing at all (a fresh charge point).
        store.save_config_value("CP-1", "HeartbeatInterval", "60")
        store.cache_put("CP-2", "TAG", "Accepted", None, None, T0, [])
        store.save_availability("CP-3", {1: False})
        store.begin_transaction("CP-4", 1, 1, "TAG", 0, T0, "{}", "s")
        store.queue_message("CP-5", "FirmwareStatusNotification", '{"status": "Idle"}', "f", T0)
        store.save_charging_profiles("CP-6", [(7, 1, "{}", 0)])
        store.save_job_record("CP-8", "firmware", '{"state": "SCHEDULED"}')
        cps = [f"CP-{n}" for n in (1, 2, 3, 4, 5, 6, 8, 7)]
        states = store.stored_states(cps, 10)
        for cp in cps:
            state = states[cp]
            assert state.config_values == store.config_values(cp)
            assert state.cache_entries == store.cache_entries(cp)
            assert state.availability == store.availability(cp)
            assert state.transactions == store.transactions(cp)
            assert state.outbox_state == store.outbox_state(cp, 10)
            assert state.charging_profiles == store.charging_profiles(cp)
            assert state.job_records == store.job_records(cp)
        assert [cp for cp in cps if states[cp] != states["CP-7"]] == cps[:7]  # each holds something
        assert store.outbox_count("CP-7") == 0
    finally:
        store.close()


def test_a_jobs_record_is_kept_replaced_and_removed_across_reopens(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    try:
        store.save_job_record("CP-1", "firmware", '{"state": "SCHEDULED", "at": 1}')
        store.save_job_record("CP-1", "diagnostics", '{"state": "UPLOADING"}')
        store.save_job_record("CP-1", "firmware", '{"state": "DOWNLOADED"}')  # replaces
    finally:
        store.close()
    store = open_store(tmp_path)
    try:
        assert store.job_records("CP-1") == {
            "firmware": '{"state": "DOWNLOADED"}', "diagnostics": '{"state": "UPLOADING"}'
        }  # fmt: skip
        assert store.job_records("CP-2") == {}
        store.save_job_record("CP-1", "diagnostics", None)
        assert store.job_records("CP-1") == {"firmware": '{"state": "DOWNLOADED"}'}
    finally:
        store.close()
