"""The store: what must survive a crash or a power cut, in one SQLite file.

Theory. One database per daemon (`<state_dir>/ocpp-bridge.sqlite3`), WAL mode,
one connection used from one dedicated thread (sqlite3 on a slow SD card must
not block the event loop); the async methods hop to that thread in order, so
writes reach the disk in the order they were asked for.

Durability is chosen per write:
- a transaction start (with its StartTransaction in the outbox), every meter
  reading taken (with its MeterValues), a transaction end (with its
  StopTransaction), the central system's transaction id, and configuration
  values are committed with `synchronous=FULL`: on disk before the call
  returns, so a power cut right after loses none of them;
- removing answered messages other than StartTransaction and StopTransaction
  (MeterValues, and durable messages of no transaction) is grouped: a batch
  of answered seqs goes in one commit with `synchronous=NORMAL` (or with the
  next durable outbox write, whichever comes first). A crash or power cut
  before that commit can at worst bring back messages the central system
  already has, which are sent again with their original message ids.

The outbox keeps its size per charge point in `_queued` (a COUNT at the first
use, then kept by every outbox write on the store thread), so its bound is
checked in the same commit that adds a MeterValues.

At start the file is checked (`PRAGMA quick_check`); a file that is not a
database or is damaged is moved aside (with its -wal and -shm) under a name
with the time, the reason is logged, and a new database is created: the
daemon keeps working, and the old file is there for an expert to rescue.
The schema is versioned with `PRAGMA user_version`; `MIGRATIONS[n]` takes
version n to n+1.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger("bridge.store")

FILENAME = "ocpp-bridge.sqlite3"
T = TypeVar("T")

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
]

_ADD_STOP_VALUE = "INSERT INTO stop_txn_values (tx, meter_value) VALUES (?, ?)"


@dataclass(frozen=True)
class TransactionRow:
    id: int
    charge_point: str
    connector: int
    id_tag: str
    meter_start: int
    started_at: str
    cs_id: int | None
    last_meter_wh: float | None
    last_meter_at: str | None
    stopped_at: str | None
    meter_stop: int | None
    stop_reason: str | None
    suspended_at: str | None = None  # the bridge stopped gracefully during it: it resumes
    suspended_state: str | None = None  # JSON: what the running transaction knew (see ChargePoint.suspend)


@dataclass(frozen=True)
class OutboxRow:
    seq: int
    charge_point: str
    action: str
    tx: int | None  # None: a durable message of no transaction
    payload: str  # JSON text: parsed only when the message is sent (memory per queued message)
    unique_id: str
    created_at: str


@dataclass(frozen=True)
class Terms:
    """What an outbox write does besides its own rows, in the same commit."""

    done: tuple[int, ...] = ()  # answered (or given up) messages that leave the outbox now
    bound: int | None = None  # at this many queued, the oldest MeterValues goes before one is added
    keep: int | None = None  # ... but never this one: it is on its way


@dataclass(frozen=True)
class Queued:
    """An outbox write's outcome: the new message's seq and the MeterValues the bound dropped."""

    seq: int
    dropped: tuple[int, ...] = ()


_OUTBOX_COLUMNS = "seq, charge_point, action, tx, payload, unique_id, created_at"


class StoreError(Exception):
    pass


def _retrieved(job: asyncio.Future[Any]) -> None:
    """Marks a shielded job's failure as seen: its caller (if not cancelled meanwhile) gets it too."""
    if not job.cancelled() and job.exception() is not None:
        log.debug("a store job failed: %r", job.exception())


def _moved_aside(path: Path, why: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.{why}-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        part = Path(str(path) + suffix)
        if part.exists():
            part.rename(Path(str(target) + suffix))
    return target


class Store:
    """Synchronous core (methods named `_x`) run on the store thread; async wrappers for the loop."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self._db = db
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self.recovered_from: Path | None = None  # where a damaged file was moved, if it was
        self._queued: dict[str, int] = {}  # charge point -> rows in its outbox (store thread only)

    # -- opening ---------------------------------------------------------------
    @classmethod
    def open(cls, state_dir: Path) -> Store:
        """Open (creating, checking, migrating) the database. Blocking file I/O."""
        state_dir.mkdir(parents=True, exist_ok=True)
        path = state_dir / FILENAME
        moved: Path | None = None
        try:
            db = cls._connect_checked(path)
        except (sqlite3.DatabaseError, StoreError) as exc:
            moved = _moved_aside(path, "damaged")
            log.error(
                "the database %s is damaged (%s); it was moved to %s and a new, empty one was created: "
                "queued messages and open transactions in the old file are not sent",
                path, exc, moved,
            )  # fmt: skip
            db = cls._connect_checked(path)
        try:
            cls._migrate(db, path)
        except BaseException:
            db.close()
            raise
        store = cls(db, path)
        store.recovered_from = moved
        return store

    @staticmethod
    def _connect_checked(path: Path) -> sqlite3.Connection:
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

    @staticmethod
    def _migrate(db: sqlite3.Connection, path: Path) -> None:
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

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` on the store thread. A job once asked for is done even when the caller is
        cancelled meanwhile (a stop must not lose the write of an answer already received)."""
        return await asyncio.shield(self.job(fn, *args))

    def job(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """`fn(*args)` on the store thread, as a future of the running loop. Jobs run in the order
        they were asked for, and their futures complete (and call their done-callbacks) in that
        order too. RuntimeError if the store is closed."""
        job = asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        job.add_done_callback(_retrieved)
        return job

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue `fn(*args)` on the store thread without waiting: it still runs after every write
        asked for before it (one thread, in order). A failure is logged."""

        def logged(future: concurrent.futures.Future[Any]) -> None:
            if future.exception() is not None:
                log.error("store write %s failed", getattr(fn, "__name__", fn), exc_info=future.exception())

        self._executor.submit(fn, *args).add_done_callback(logged)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._db.close()

    # -- helpers -----------------------------------------------------------------
    def _write(self, durable: bool, statements: list[tuple[str, tuple[Any, ...]]]) -> list[int | None]:
        """Run statements in one transaction; returns each statement's lastrowid."""
        db = self._db
        if not durable:
            db.execute("PRAGMA synchronous=NORMAL")
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                ids = [db.execute(sql, params).lastrowid for sql, params in statements]
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        finally:
            if not durable:
                db.execute("PRAGMA synchronous=FULL")
        return ids

    # -- the outbox: one queue per charge point -------------------------------------
    def _outbox_write(
        self,
        durable: bool,
        cp: str,
        statements: list[tuple[str, tuple[Any, ...]]],
        terms: Terms,
        message: tuple[str, int | None, str, str, str] | None = None,
    ) -> Queued:
        """One commit: `terms.done` leave the outbox, then `statements`, then room is made within
        `terms.bound`, then `message` (action, tx, payload, unique_id, created_at) is added.
        Keeps the outbox's size in `_queued`; returns the new seq (0: none added)."""
        db = self._db
        count = self.outbox_count(cp)
        dropped: list[int] = []
        seq: int | None = 0
        if not durable:
            db.execute("PRAGMA synchronous=NORMAL")
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                if terms.done:
                    marks = ",".join("?" * len(terms.done))
                    count -= db.execute(
                        f"DELETE FROM outbox WHERE charge_point = ? AND seq IN ({marks})", (cp, *terms.done)
                    ).rowcount
                for sql, params in statements:
                    db.execute(sql, params)
                while terms.bound is not None and count >= terms.bound:
                    row = db.execute(
                        "SELECT seq FROM outbox WHERE charge_point = ? AND action = 'MeterValues'"
                        " AND seq != ? ORDER BY seq LIMIT 1",
                        (cp, -1 if terms.keep is None else terms.keep),
                    ).fetchone()
                    if row is None:
                        break  # only starts and stops are queued: those are never dropped
                    db.execute("DELETE FROM outbox WHERE seq = ?", (row[0],))
                    dropped.append(int(row[0]))
                    count -= 1
                if message is not None:
                    seq = db.execute(
                        "INSERT INTO outbox (charge_point, action, tx, payload, unique_id, created_at)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        (cp, *message),
                    ).lastrowid
                    count += 1
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                self._queued.pop(cp, None)  # counted again at the next use
                raise
        finally:
            if not durable:
                db.execute("PRAGMA synchronous=FULL")
        self._queued[cp] = count
        assert seq is not None
        return Queued(seq, tuple(dropped))

    def outbox_count(self, cp: str) -> int:
        """How many messages `cp`'s outbox holds (answered ones not yet removed included)."""
        count = self._queued.get(cp)
        if count is None:
            count = self._queued[cp] = int(
                self._db.execute("SELECT COUNT(*) FROM outbox WHERE charge_point = ?", (cp,)).fetchone()[0]
            )
        return count

    def outbox_state(self, cp: str, limit: int) -> tuple[int, int, list[OutboxRow]]:
        """At start: how many messages `cp` has queued, the newest seq (0: none) and the first `limit`."""
        last = self._db.execute("SELECT MAX(seq) FROM outbox WHERE charge_point = ?", (cp,)).fetchone()[0]
        return self.outbox_count(cp), int(last or 0), self.outbox_page(cp, 0, limit)

    def outbox_page(self, cp: str, after: int, limit: int, done: tuple[int, ...] = ()) -> list[OutboxRow]:
        """The next `limit` messages of `cp` after seq `after`, in order; `done` leave the outbox first."""
        if done:
            self._outbox_write(False, cp, [], Terms(done))
        rows = self._db.execute(
            f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE charge_point = ? AND seq > ? ORDER BY seq LIMIT ?",
            (cp, after, limit),
        ).fetchall()
        return [OutboxRow(*r) for r in rows]

    def outbox(self, cp: str) -> list[OutboxRow]:
        """Every message `cp` has queued, in order (tests and tools: the daemon reads pages)."""
        return self.outbox_page(cp, 0, -1)

    def remove_messages(
        self, cp: str, done: tuple[int, ...], durable: bool = False, tx: int | None = None,
        cs_id: int | None = None, ended: bool = False,
    ) -> None:  # fmt: skip
        """Answered (or given up) messages leave the outbox in one commit; with `cs_id`, the
        central system's id of transaction `tx` is kept; with `ended`, `tx` goes too once none of
        its messages is left (its StopTransaction was the last)."""
        statements: list[tuple[str, tuple[Any, ...]]] = []
        if cs_id is not None:
            statements.append(("UPDATE transactions SET cs_id = ? WHERE id = ?", (cs_id, tx)))
        if ended:
            statements.append(("DELETE FROM transactions WHERE id = ? AND stopped_at IS NOT NULL"
                               " AND NOT EXISTS (SELECT 1 FROM outbox WHERE tx = ?)", (tx, tx)))  # fmt: skip
        self._outbox_write(durable, cp, statements, Terms(done))

    def queue_message(
        self, cp: str, action: str, payload: str, unique_id: str, created_at: str, terms: Terms = Terms()
    ) -> Queued:
        """A durable message of no transaction (`payload`, JSON), queued in one durable write."""
        return self._outbox_write(True, cp, [], terms, (action, None, payload, unique_id, created_at))

    def drop_oldest_meter_values(self, cp: str) -> int | None:
        """Make room: remove the oldest queued MeterValues of `cp`; returns its seq (None: there is none)."""
        dropped = self._outbox_write(True, cp, [], Terms(bound=self.outbox_count(cp))).dropped
        return dropped[0] if dropped else None

    # -- transactions and their messages ----------------------------------------------
    def begin_transaction(
        self, cp: str, tx: int, connector: int, id_tag: str, meter_start: int, started_at: str, payload: str,
        unique_id: str, stop_value: str | None = None, terms: Terms = Terms(),
    ) -> Queued:  # fmt: skip
        """Record transaction `tx` with its StartTransaction (`payload`, JSON) queued, and its
        Transaction.Begin value for the StopTransaction when there is one."""
        statements: list[tuple[str, tuple[Any, ...]]] = [
            ("INSERT INTO transactions (id, charge_point, connector, id_tag, meter_start, started_at,"
             " last_meter_wh, last_meter_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
             (tx, cp, connector, id_tag, meter_start, started_at, meter_start, started_at)),
        ]  # fmt: skip
        if stop_value is not None:
            statements.append((_ADD_STOP_VALUE, (tx, stop_value)))
        message = ("StartTransaction", tx, payload, unique_id, started_at)
        return self._outbox_write(True, cp, statements, terms, message)

    def record_meter_values(
        self, cp: str, tx: int, energy_wh: float | None, at: str, payload: str, unique_id: str,
        stop_value: str | None = None, terms: Terms = Terms(),
    ) -> Queued:  # fmt: skip
        """A reading taken during a transaction, with its MeterValues (`payload`, JSON) queued (within
        `terms.bound`) and its value for the StopTransaction."""
        statements: list[tuple[str, tuple[Any, ...]]] = []
        if stop_value is not None:
            statements.append((_ADD_STOP_VALUE, (tx, stop_value)))
        if energy_wh is not None:
            statements.append(
                (
                    "UPDATE transactions SET last_meter_wh = ?, last_meter_at = ? WHERE id = ?",
                    (energy_wh, at, tx),
                )
            )
        return self._outbox_write(True, cp, statements, terms, ("MeterValues", tx, payload, unique_id, at))

    def record_reading(
        self, tx: int, energy_wh: float | None, at: str, stop_value: str | None = None
    ) -> None:
        """A reading taken during a transaction, without a message to send."""
        statements: list[tuple[str, tuple[Any, ...]]] = []
        if energy_wh is not None:
            statements.append(("UPDATE transactions SET last_meter_wh = ?, last_meter_at = ? WHERE id = ?",
                               (energy_wh, at, tx)))  # fmt: skip
        if stop_value is not None:
            statements.append((_ADD_STOP_VALUE, (tx, stop_value)))
        if statements:
            self._write(True, statements)

    def stop_values(self, tx: int) -> list[str]:
        """The MeterValues (JSON) kept for transaction `tx`'s StopTransaction, oldest first."""
        rows = self._db.execute(
            "SELECT meter_value FROM stop_txn_values WHERE tx = ? ORDER BY seq", (tx,)
        ).fetchall()
        return [r[0] for r in rows]

    def thin_stop_values(self, tx: int) -> int:
        """Halve what is kept for `tx`'s StopTransaction: the first and the newest values stay, every
        second one between goes. Returns how many are left."""
        seqs = [r[0] for r in self._db.execute(
            "SELECT seq FROM stop_txn_values WHERE tx = ? ORDER BY seq", (tx,)
        ).fetchall()]  # fmt: skip
        doomed = seqs[1:-1][::2]
        if doomed:
            self._write(True, [("DELETE FROM stop_txn_values WHERE seq = ?", (seq,)) for seq in doomed])
        return len(seqs) - len(doomed)

    def end_transaction(
        self, cp: str, tx: int, meter_stop: int, stopped_at: str, reason: str, payload: str, unique_id: str,
        terms: Terms = Terms(),
    ) -> Queued:  # fmt: skip
        """The end of a transaction with its StopTransaction queued (carrying what was kept for its
        transactionData, which is deleted)."""
        statements: list[tuple[str, tuple[Any, ...]]] = [
            ("UPDATE transactions SET stopped_at = ?, meter_stop = ?, stop_reason = ? WHERE id = ?",
             (stopped_at, meter_stop, reason, tx)),
            ("DELETE FROM stop_txn_values WHERE tx = ?", (tx,)),
        ]  # fmt: skip
        message = ("StopTransaction", tx, payload, unique_id, stopped_at)
        return self._outbox_write(True, cp, statements, terms, message)

    def transactions(self, cp: str) -> list[TransactionRow]:
        """Every transaction of `cp` still kept: open ones, and ended ones whose messages are queued."""
        rows = self._db.execute(
            "SELECT id, charge_point, connector, id_tag, meter_start, started_at, cs_id, last_meter_wh,"
            " last_meter_at, stopped_at, meter_stop, stop_reason, suspended_at, suspended_state"
            " FROM transactions WHERE charge_point = ?"
            " ORDER BY id",
            (cp,),
        ).fetchall()
        return [TransactionRow(*r) for r in rows]

    def suspend_transactions(self, at: str, running: dict[int, str]) -> None:
        """A graceful stop: these transactions (local id -> their state, JSON) still run and are to
        resume at the next start. Only they: a transaction whose stop was decided is not marked."""
        self._write(True, [(
            "UPDATE transactions SET suspended_at = ?, suspended_state = ?"
            " WHERE id = ? AND stopped_at IS NULL",
            (at, state, tx),
        ) for tx, state in running.items()])  # fmt: skip

    def resumed(self, txs: list[int]) -> None:
        """These transactions run again: a crash from now on ends them with PowerLoss."""
        self._write(True, [(
            "UPDATE transactions SET suspended_at = NULL, suspended_state = NULL WHERE id = ?", (tx,)
        ) for tx in txs])  # fmt: skip

    def next_transaction_id(self) -> int:
        """The first local transaction id never used in this database (ids are not reused)."""
        row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'transactions'").fetchone()
        return int(row[0]) + 1 if row else 1

    # -- the authorization cache ------------------------------------------------------
    def cache_entries(self, cp: str) -> list[tuple[str, str, str | None, str | None, str]]:
        """(id_tag, status, expiry, parent_id_tag, updated_at), oldest first."""
        rows = self._db.execute(
            "SELECT id_tag, status, expiry, parent_id_tag, updated_at FROM auth_cache WHERE charge_point = ?"
            " ORDER BY updated_at",
            (cp,),
        ).fetchall()
        return [tuple(r) for r in rows]

    def cache_put(
        self,
        cp: str,
        id_tag: str,
        status: str,
        expiry: str | None,
        parent: str | None,
        at: str,
        evicted: list[str],
    ) -> None:
        statements: list[tuple[str, tuple[Any, ...]]] = [
            ("DELETE FROM auth_cache WHERE charge_point = ? AND tag_key = ?", (cp, tag.casefold()))
            for tag in evicted
        ]
        statements.append((
            "INSERT INTO auth_cache (charge_point, tag_key, id_tag, status, expiry, parent_id_tag,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (charge_point, tag_key) DO UPDATE SET"
            " id_tag = excluded.id_tag, status = excluded.status, expiry = excluded.expiry,"
            " parent_id_tag = excluded.parent_id_tag, updated_at = excluded.updated_at",
            (cp, id_tag.casefold(), id_tag, status, expiry, parent, at),
        ))  # fmt: skip
        self._write(True, statements)

    def cache_clear(self, cp: str) -> None:
        self._write(True, [("DELETE FROM auth_cache WHERE charge_point = ?", (cp,))])

    # -- availability (ChangeAvailability survives a reboot) ---------------------------
    def availability(self, cp: str) -> dict[int, bool]:
        rows = self._db.execute("SELECT connector, operative FROM availability WHERE charge_point = ?", (cp,))
        return {int(c): bool(o) for c, o in rows.fetchall()}

    def save_availability(self, cp: str, values: dict[int, bool]) -> None:
        self._write(True, [(
            "INSERT INTO availability (charge_point, connector, operative) VALUES (?, ?, ?)"
            " ON CONFLICT (charge_point, connector) DO UPDATE SET operative = excluded.operative",
            (cp, connector, int(operative)),
        ) for connector, operative in values.items()])  # fmt: skip

    # -- configuration keys set by the central system ------------------------------
    def config_values(self, cp: str) -> dict[str, str]:
        rows = self._db.execute("SELECT key, value FROM config_keys WHERE charge_point = ?", (cp,)).fetchall()
        return {k: v for k, v in rows}

    def save_config_value(self, cp: str, key: str, value: str) -> None:
        self._write(True, [(
            "INSERT INTO config_keys (charge_point, key, value) VALUES (?, ?, ?)"
            " ON CONFLICT (charge_point, key) DO UPDATE SET value = excluded.value",
            (cp, key, value),
        )])  # fmt: skip

    # -- charging profiles (they survive a reboot, ERRATA 3.37) ------------------------
    def charging_profiles(self, cp: str) -> list[tuple[int, str, int]]:
        """(connector, profile JSON, received_at) per installed profile."""
        rows = self._db.execute(
            "SELECT connector, profile, received_at FROM charging_profiles WHERE charge_point = ?"
            " ORDER BY profile_id",
            (cp,),
        ).fetchall()
        return [(int(c), str(p), int(r)) for c, p, r in rows]

    def save_charging_profiles(self, cp: str, profiles: list[tuple[int, int, str, int]]) -> None:
        """Replace the installed set by (profile id, connector, JSON, received_at) rows, at once."""
        self._write(True, [("DELETE FROM charging_profiles WHERE charge_point = ?", (cp,))] + [(
            "INSERT INTO charging_profiles (charge_point, profile_id, connector, profile, received_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (cp, pid, connector, body, received_at),
        ) for pid, connector, body, received_at in profiles])  # fmt: skip
