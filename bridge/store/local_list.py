"""The local authorization list per charge point (SendLocalList): its entries and its version.

Tables `local_list` (one row per idTag, keyed by the case-folded tag) and `local_list_versions`
(schema 10). An update is written in one SQLite transaction with `synchronous=FULL`: a power cut
halfway through a Full update of 10,000 entries leaves the old list or the new one, never a mix, and
the version always belongs to the entries beside it.
"""

from __future__ import annotations

from collections.abc import Sequence

from bridge.store.base import StoreBase

ListRow = tuple[str, str, str | None, str | None]  # id_tag, status, expiry (ISO 8601), parent_id_tag
StoredList = tuple[int, list[ListRow]]  # the version, the entries
# What an update writes: (key, id_tag, status, expiry, parent_id_tag) for each entry put.
PutRow = tuple[str, str, str, str | None, str | None]


class LocalListTables(StoreBase):
    """The local list's tables (store thread)."""

    def local_list(self, cp: str) -> StoredList | None:
        """`cp`'s list as last saved; None when it never had one."""
        return self.local_lists([cp]).get(cp)

    def local_lists(self, cps: list[str] | None = None) -> dict[str, StoredList]:
        """The lists of `cps` (None: of every charge point), one query per table for all of them."""
        wanted = None if cps is None else set(cps)
        lists: dict[str, StoredList] = {}
        for cp, version in self._db.execute("SELECT charge_point, version FROM local_list_versions"):
            if wanted is None or cp in wanted:
                lists[cp] = (int(version), [])
        rows = self._db.execute(
            "SELECT charge_point, id_tag, status, expiry, parent_id_tag FROM local_list"
        )  # fmt: skip
        for cp, id_tag, status, expiry, parent in rows:
            held = lists.get(cp)
            if held is not None:
                held[1].append((id_tag, status, expiry, parent))
        return lists

    def save_local_list(
        self, cp: str, version: int, full: bool, put: Sequence[PutRow], removed: Sequence[str]
    ) -> None:
        """An accepted update, durably and at once: `full` replaces every entry by `put`; else `put`
        adds or replaces entries and `removed` (case-folded tags) goes."""
        with self._transaction(True) as db:
            if full:
                db.execute("DELETE FROM local_list WHERE charge_point = ?", (cp,))
            else:
                db.executemany(
                    "DELETE FROM local_list WHERE charge_point = ? AND id_tag_key = ?",
                    [(cp, key) for key in removed],
                )
            db.executemany(
                "INSERT INTO local_list (charge_point, id_tag_key, id_tag, status, expiry, parent_id_tag)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (charge_point, id_tag_key) DO UPDATE SET"
                " id_tag = excluded.id_tag, status = excluded.status, expiry = excluded.expiry,"
                " parent_id_tag = excluded.parent_id_tag",
                [(cp, *row) for row in put],
            )
            db.execute(
                "INSERT INTO local_list_versions (charge_point, version) VALUES (?, ?)"
                " ON CONFLICT (charge_point) DO UPDATE SET version = excluded.version",
                (cp, version),
            )
