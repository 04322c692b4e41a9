"""The store's schema and how its file is opened: the PRAGMAs every connection gets, the check that
the file is a sound database, and the migrations.

The schema is versioned with `PRAGMA user_version`; `MIGRATIONS[n]` takes version n to n+1, in one
transaction (applied whole or not at all). A file newer than this ocpp-bridge knows is refused, not
touched.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

log = logging.getLogger("bridge.store")

MIGRATIONS: list[str] = [
    # 0 -> 1
    """
    CREATE TABLE transactions (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,  -- our local transaction id, never reused
        charge_point  TEXT    NOT NULL,
        connector     INTEGER NOT NULL,
        id_tag        TEXT    NOT NULL,
        meter_start   INTEGER NOT NULL,        -- Wh, the device's register
        started_at    TEXT    NOT NULL,
        cs_id         INTEGER,                 -- the central system's transactionId, once answered
        last_meter_wh REAL,                    -- the last reading taken during the transaction
        last_meter_at TEXT,
        stopped_at    TEXT,
        meter_stop    INTEGER,
        stop_reason   TEXT
    );
    CREATE INDEX transactions_open ON transactions (charge_point, stopped_at);
    CREATE TABLE outbox (
        seq           INTEGER PRIMARY KEY AUTOINCREMENT,   -- the order messages leave in
        charge_point  TEXT    NOT NULL,
        action        TEXT    NOT NULL,        -- StartTransaction | MeterValues | StopTransaction
        tx            INTEGER NOT NULL,        -- transactions.id; transactionId is filled in at send time
        payload       TEXT    NOT NULL,        -- the wire payload as JSON
        unique_id     TEXT    NOT NULL,        -- kept, so a resend carries the same message id
        created_at    TEXT    NOT NULL
    );
    CREATE INDEX outbox_charge_point ON outbox (charge_point, seq);
    CREATE TABLE config_keys (
        charge_point  TEXT NOT NULL,
        key           TEXT NOT NULL,
        value         TEXT NOT NULL,
        PRIMARY KEY (charge_point, key)
    );
    """,
    # 1 -> 2
    """
    CREATE TABLE auth_cache (
        charge_point  TEXT NOT NULL,
        tag_key       TEXT NOT NULL,           -- the idTag case-folded (idTags are case-insensitive)
        id_tag        TEXT NOT NULL,
        status        TEXT NOT NULL,
        expiry        TEXT,
        parent_id_tag TEXT,
        updated_at    TEXT NOT NULL,
        PRIMARY KEY (charge_point, tag_key)
    )
    """,
    # 2 -> 3
    """
    CREATE TABLE availability (
        charge_point  TEXT    NOT NULL,
        connector     INTEGER NOT NULL,        -- 0: the charge point as a whole
        operative     INTEGER NOT NULL,
        PRIMARY KEY (charge_point, connector)
    )
    """,
    # 3 -> 4
    """
    CREATE TABLE stop_txn_values (
        seq           INTEGER PRIMARY KEY AUTOINCREMENT,
        tx            INTEGER NOT NULL,        -- transactions.id
        meter_value   TEXT    NOT NULL         -- one MeterValue for StopTransaction.transactionData, JSON
    );
    CREATE INDEX stop_txn_values_tx ON stop_txn_values (tx, seq);
    """,
    # 4 -> 5
    """
    CREATE TABLE charging_profiles (
        charge_point  TEXT    NOT NULL,
        profile_id    INTEGER NOT NULL,        -- chargingProfileId
        connector     INTEGER NOT NULL,
        profile       TEXT    NOT NULL,        -- csChargingProfiles as received, JSON
        received_at   INTEGER NOT NULL,        -- epoch seconds
        PRIMARY KEY (charge_point, profile_id)
    )
    """,
    # 5 -> 6: set when the bridge stops gracefully with the transaction running: it resumes at the
    # next start (a crash or power cut leaves it unset: PowerLoss)
    """
    ALTER TABLE transactions ADD COLUMN suspended_at TEXT
    """,
    # 6 -> 7: what the transaction knew besides its row, kept with the graceful-stop mark: its tag's
    # group, a MaxEnergyOnInvalidId budget, whether it was deauthorized (JSON)
    """
    ALTER TABLE transactions ADD COLUMN suspended_state TEXT
    """,
    # 7 -> 8: the outbox carries durable messages of no transaction too (tx NULL). SQLite cannot
    # drop a NOT NULL: the table is copied, and its AUTOINCREMENT counter with it (seqs never go back).
    """
    CREATE TABLE outbox_v8 (
        seq           INTEGER PRIMARY KEY AUTOINCREMENT,   -- the order messages leave in
        charge_point  TEXT    NOT NULL,
        action        TEXT    NOT NULL,        -- StartTransaction | MeterValues | StopTransaction | ...
        tx            INTEGER,                 -- transactions.id (transactionId is filled in at send
                                               -- time), NULL for a message of no transaction
        payload       TEXT    NOT NULL,        -- the wire payload as JSON
        unique_id     TEXT    NOT NULL,        -- kept, so a resend carries the same message id
        created_at    TEXT    NOT NULL
    );
    INSERT INTO outbox_v8 SELECT seq, charge_point, action, tx, payload, unique_id, created_at FROM outbox;
    DELETE FROM sqlite_sequence WHERE name = 'outbox_v8';
    UPDATE sqlite_sequence SET name = 'outbox_v8' WHERE name = 'outbox';
    DROP TABLE outbox;
    ALTER TABLE outbox_v8 RENAME TO outbox;
    CREATE INDEX outbox_charge_point ON outbox (charge_point, seq);
    """,
    # 8 -> 9: the state of a charge point's long-running jobs (a firmware update, a diagnostics
    # upload) as their core records it (JSON), so that one scheduled for 03:00 survives a restart
    """
    CREATE TABLE job_records (
        charge_point  TEXT    NOT NULL,
        job           TEXT    NOT NULL,        -- "firmware" | "diagnostics"
        record        TEXT    NOT NULL,        -- the core's to_record(), JSON
        PRIMARY KEY (charge_point, job)
    )
    """,
    # 9 -> 10: the local authorization list (SendLocalList), one version per charge point; a Full
    # update replaces a charge point's rows in one transaction
    """
    CREATE TABLE local_list (
        charge_point   TEXT NOT NULL,
        id_tag_key     TEXT NOT NULL,          -- the idTag as compared: case-folded
        id_tag         TEXT NOT NULL,          -- as the central system sent it
        status         TEXT NOT NULL,          -- IdTagInfo.status
        expiry         TEXT,                   -- IdTagInfo.expiryDate, ISO 8601
        parent_id_tag  TEXT,
        PRIMARY KEY (charge_point, id_tag_key)
    ) WITHOUT ROWID;
    CREATE TABLE local_list_versions (
        charge_point   TEXT PRIMARY KEY,
        version        INTEGER NOT NULL
    )
    """,
    # 10 -> 11: reservations (ReserveNow), kept across a restart until they end or expire
    """
    CREATE TABLE reservations (
        charge_point    TEXT    NOT NULL,
        reservation_id  INTEGER NOT NULL,
        connector       INTEGER NOT NULL,      -- 0: the charge point as a whole
        id_tag          TEXT    NOT NULL,
        parent_id_tag   TEXT,
        expiry          TEXT    NOT NULL,      -- ISO 8601
        PRIMARY KEY (charge_point, reservation_id)
    )
    """,
    # 11 -> 12: the transaction ids each reporting target gave (bridge/reporting); its queue is the
    # outbox's rows under its key (bridge/store/reporting.py). No existing row changes.
    """
    CREATE TABLE report_tx_ids (
        target        TEXT    NOT NULL,        -- the target's key (store.reporting.target_key)
        tx            INTEGER NOT NULL,        -- transactions.id
        cs_id         INTEGER NOT NULL,        -- the transactionId that target gave it
        PRIMARY KEY (target, tx)
    ) WITHOUT ROWID
    """,
    # 12 -> 13: whether any queue still holds a message of a finished transaction (the primary's
    # or a target's, store.outbox.transaction_done) is looked up by tx, not by a scan of the outbox.
    # No existing row changes.
    """
    CREATE INDEX outbox_tx ON outbox (tx)
    """,
]


class StoreError(Exception):
    pass


def connect_checked(path: Path) -> sqlite3.Connection:
    """Open the file and prove it is a sound database (else raise: the caller moves it aside)."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        result = db.execute("PRAGMA quick_check").fetchone()
        if result is None or result[0] != "ok":
            raise StoreError(f"integrity check failed: {result[0] if result else 'no answer'}")
        if db.execute("PRAGMA journal_mode=WAL").fetchone()[0] != "wal":
            raise StoreError("cannot switch to WAL mode")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
    except BaseException:
        db.close()
        raise
    return db


def migrate(db: sqlite3.Connection, path: Path) -> None:
    """Bring the schema up to date. A failure here is ours, not the file's: it is not moved aside."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise StoreError(
            f"{path} has schema version {version}, newer than this ocpp-bridge knows ({len(MIGRATIONS)}):"
            " was a newer version installed before? Install it again, or move the file away"
        )
    for n in range(version, len(MIGRATIONS)):
        # One script, one transaction: a migration is applied whole or not at all.
        db.executescript(f"BEGIN IMMEDIATE; {MIGRATIONS[n]}; PRAGMA user_version = {n + 1}; COMMIT;")
        log.info("database %s migrated to schema version %d", path, n + 1)
