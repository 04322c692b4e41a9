"""The store as a whole: one SQLite file per daemon, opened checked, and the per-table operations.

At start the file is checked (`PRAGMA quick_check`); a file that is not a database or is damaged is
moved aside (with its -wal and -shm) under a name with the time, the reason is logged, and a new
database is created: the daemon keeps working, and the old file is there for an expert to rescue.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

from bridge.store.local_list import LocalListTables, StoredList
from bridge.store.reporting import ReportingTables
from bridge.store.reservations import ReservationRow, ReservationTables
from bridge.store.schema import StoreError, connect_checked, migrate
from bridge.store.settings import SettingsTables
from bridge.store.startup import Stored
from bridge.store.transactions import TransactionTables

log = logging.getLogger("bridge.store")

FILENAME = "ocpp-bridge.sqlite3"

# Every table with rows per charge point (what `Store._stored` reads).
_PER_CHARGE_POINT = (
    "config_keys", "auth_cache", "availability", "transactions", "outbox", "charging_profiles",
    "job_records",
)  # fmt: skip


def _moved_aside(path: Path, why: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.{why}-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        part = Path(str(path) + suffix)
        if part.exists():
            part.rename(Path(str(target) + suffix))
    return target


class Store(TransactionTables, ReportingTables, SettingsTables, LocalListTables, ReservationTables):
    """Every table's operations on one connection (see bridge.store.base for the thread)."""

    def stored_states(self, cps: list[str], page: int) -> dict[str, Stored]:
        """Every charge point's rows at start (bridge.store.startup), in one job on the store thread;
        `page`: how many of each outbox's first messages to read. Those with no row in any table (a
        fresh or idle fleet: most of them) are found with one query per table, not six each."""
        with_rows: set[str] = set()
        for table in _PER_CHARGE_POINT:
            with_rows.update(r[0] for r in self._db.execute(f"SELECT DISTINCT charge_point FROM {table}"))
        lists = self.local_lists(cps)  # every list in one query per table
        reserved = self.all_reservations()  # and every reservation in one
        states = {}
        for cp in cps:
            if cp in with_rows:
                states[cp] = self._stored(cp, page, lists, reserved.get(cp, []))
            else:
                self._queued[cp] = 0
                states[cp] = Stored({}, [], {}, [], (0, 0, []), [], {}, lists.get(cp), reserved.get(cp, []))
        return states

    def summary(self, cp: str) -> dict[str, Any]:
        """What a diagnostics archive says of the store for `cp` (store thread): its schema, the
        file's size, what is queued and kept (the local list's entries and version, the reservations held).
        No payload and no id tag: counts, versions and times only (an archive leaves the bridge)."""
        db = self._db

        def one(sql: str) -> Any:
            return db.execute(sql, (cp,)).fetchone()[0]

        queued, oldest = db.execute(
            "SELECT COUNT(*), MIN(created_at) FROM outbox WHERE charge_point = ?", (cp,)
        ).fetchone()
        return {
            "schema_version": db.execute("PRAGMA user_version").fetchone()[0],
            "file_bytes": self.path.stat().st_size if self.path.exists() else None,
            "queued_messages": queued,
            "oldest_queued_at": oldest,
            "open_transactions": one(
                "SELECT COUNT(*) FROM transactions WHERE charge_point = ? AND stopped_at IS NULL"
            ),
            "ended_transactions_kept": one(
                "SELECT COUNT(*) FROM transactions WHERE charge_point = ? AND stopped_at IS NOT NULL"
            ),
            "authorization_cache_entries": one("SELECT COUNT(*) FROM auth_cache WHERE charge_point = ?"),
            "charging_profiles": one("SELECT COUNT(*) FROM charging_profiles WHERE charge_point = ?"),
            "configuration_keys_set": one("SELECT COUNT(*) FROM config_keys WHERE charge_point = ?"),
            "local_list_entries": one("SELECT COUNT(*) FROM local_list WHERE charge_point = ?"),
            # As stored: None before the first accepted SendLocalList (the status API's version is
            # what GetLocalListVersion answers, 0 while the list is empty).
            "local_list_version": one(
                "SELECT (SELECT version FROM local_list_versions WHERE charge_point = ?)"
            ),
            "reservations": one("SELECT COUNT(*) FROM reservations WHERE charge_point = ?"),
        }

    def _stored(
        self, cp: str, page: int, lists: dict[str, StoredList], reserved: list[ReservationRow]
    ) -> Stored:
        return Stored(
            self.config_values(cp), self.cache_entries(cp), self.availability(cp), self.transactions(cp),
            self.outbox_state(cp, page), self.charging_profiles(cp), self.job_records(cp), lists.get(cp),
            reserved,
        )  # fmt: skip

    @classmethod
    def open(cls, state_dir: Path) -> Store:
        """Open (creating, checking, migrating) the database. Blocking file I/O."""
        state_dir.mkdir(parents=True, exist_ok=True)
        path = state_dir / FILENAME
        moved: Path | None = None
        try:
            db = connect_checked(path)
        except (sqlite3.DatabaseError, StoreError) as exc:
            moved = _moved_aside(path, "damaged")
            log.error(
                "the database %s is damaged (%s); it was moved to %s and a new, empty one was created: "
                "queued messages and open transactions in the old file are not sent",
                path, exc, moved,
            )  # fmt: skip
            db = connect_checked(path)
        try:
            migrate(db, path)
        except BaseException:
            db.close()
            raise
        store = cls(db, path)
        store.recovered_from = moved
        return store
