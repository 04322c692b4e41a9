"""The transactions table and what a transaction keeps for its StopTransaction (stop_txn_values):
each change is written in the same commit as the message that tells the central system of it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bridge.store.outbox import NO_TERMS, OutboxTables, Queued, Terms

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


class TransactionTables(OutboxTables):
    """Transactions and their messages (store thread)."""

    def begin_transaction(
        self, cp: str, tx: int, connector: int, id_tag: str, meter_start: int, started_at: str, payload: str,
        unique_id: str, stop_value: str | None = None, terms: Terms = NO_TERMS,
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
        stop_value: str | None = None, terms: Terms = NO_TERMS,
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
        terms: Terms = NO_TERMS,
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
