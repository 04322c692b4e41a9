"""The outbox table: one queue of durable messages per charge point, in seq order.

Every write is one commit (`_outbox_write`): the answered messages it carries leave, its own
statements run, room is made within the bound (the oldest MeterValues goes, never the one on its
way), then its message is added. The outbox keeps its size per charge point in `_queued` (a COUNT at
the first use, then kept by every outbox write on the store thread), so its bound is checked in the
same commit that adds a MeterValues.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge.store.base import StoreBase


def transaction_done(tx: int | None) -> tuple[str, tuple[Any, ...]]:
    """The statement that removes finished transaction `tx` once no queue (the primary's or a
    reporting target's) holds a message of it: an outbox write runs it after its own removals.
    The lookup by tx uses the index outbox_tx (schema 13)."""
    return (
        "DELETE FROM transactions WHERE id = ? AND stopped_at IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM outbox WHERE tx = ?)",
        (tx, tx),
    )


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


NO_TERMS = Terms()  # the default: nothing besides the write's own rows


@dataclass(frozen=True)
class Queued:
    """An outbox write's outcome: the new message's seq and the MeterValues the bound dropped."""

    seq: int
    dropped: tuple[int, ...] = ()


_OUTBOX_COLUMNS = "seq, charge_point, action, tx, payload, unique_id, created_at"


class OutboxTables(StoreBase):
    """The outbox's operations (store thread)."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        super().__init__(db, path)
        self._queued: dict[str, int] = {}  # charge point -> rows in its outbox (store thread only)

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
        count = self.outbox_count(cp)
        dropped: list[int] = []
        seq: int | None = 0
        with self._transaction(durable) as db:
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
        self._queued[cp] = count
        assert seq is not None
        return Queued(seq, tuple(dropped))

    def _forget_counts(self) -> None:
        self._queued.clear()  # what was rolled back is counted again at the next use

    def outbox_count(self, cp: str) -> int:
        """How many messages `cp`'s outbox holds (answered ones not yet removed included)."""
        count = self._queued.get(cp)
        if count is None:
            count = self._queued[cp] = int(
                self._db.execute("SELECT COUNT(*) FROM outbox WHERE charge_point = ?", (cp,)).fetchone()[0]
            )
        return count

    def outbox_holds(self, cp: str, seq: int) -> bool:
        """Whether message `seq` of `cp` is in the outbox as this connection sees it (written, or in
        the transaction still open): False after SQLite rolled back the write that made it."""
        row = self._db.execute("SELECT 1 FROM outbox WHERE charge_point = ? AND seq = ?", (cp, seq))
        return row.fetchone() is not None

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
            statements.append(transaction_done(tx))
        self._outbox_write(durable, cp, statements, Terms(done))

    def queue_message(
        self, cp: str, action: str, payload: str, unique_id: str, created_at: str, terms: Terms = NO_TERMS
    ) -> Queued:
        """A durable message of no transaction (`payload`, JSON), queued in one durable write."""
        return self._outbox_write(True, cp, [], terms, (action, None, payload, unique_id, created_at))

    def drop_oldest_meter_values(self, cp: str) -> int | None:
        """Make room: remove the oldest queued MeterValues of `cp`; returns its seq (None: there is none)."""
        dropped = self._outbox_write(True, cp, [], Terms(bound=self.outbox_count(cp))).dropped
        return dropped[0] if dropped else None
