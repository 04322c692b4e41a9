"""Reservations (ReserveNow) per charge point: kept across a restart until they are used, cancelled or
expire, or their connector can no longer hold them (schema migration 10 -> 11)."""

from __future__ import annotations

from typing import NamedTuple

from bridge.store.base import StoreBase


class ReservationRow(NamedTuple):
    reservation_id: int
    connector: int  # as asked: 0 for the charge point as a whole
    id_tag: str
    parent_id_tag: str | None
    expiry: str  # ISO 8601


_COLUMNS = "reservation_id, connector, id_tag, parent_id_tag, expiry"


class ReservationTables(StoreBase):
    """The reservations table (store thread)."""

    def reservations(self, cp: str) -> list[ReservationRow]:
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM reservations WHERE charge_point = ? ORDER BY reservation_id", (cp,)
        )
        return [ReservationRow(int(r), int(c), str(t), p, str(e)) for r, c, t, p, e in rows.fetchall()]

    def all_reservations(self) -> dict[str, list[ReservationRow]]:
        """Every charge point's reservations in one query (the start of a daemon of many)."""
        found: dict[str, list[ReservationRow]] = {}
        rows = self._db.execute(f"SELECT charge_point, {_COLUMNS} FROM reservations ORDER BY reservation_id")
        for cp, r, c, t, p, e in rows.fetchall():
            found.setdefault(str(cp), []).append(ReservationRow(int(r), int(c), str(t), p, str(e)))
        return found

    def save_reservation(self, cp: str, row: ReservationRow) -> None:
        """Keep a reservation (a new one, or one replaced by the same reservationId), durably: it is
        on disk before ReserveNow is answered Accepted."""
        self._write(True, [(
            f"INSERT INTO reservations (charge_point, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (charge_point, reservation_id) DO UPDATE SET connector = excluded.connector,"
            " id_tag = excluded.id_tag, parent_id_tag = excluded.parent_id_tag, expiry = excluded.expiry",
            (cp, *row),
        )])  # fmt: skip

    def delete_reservation(self, cp: str, reservation_id: int) -> None:
        self._write(True, [(
            "DELETE FROM reservations WHERE charge_point = ? AND reservation_id = ?", (cp, reservation_id)
        )])  # fmt: skip
