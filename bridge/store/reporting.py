"""What a reporting target (bridge/reporting) keeps: its own queue in the outbox table, and the
transaction ids it gave (report_tx_ids).

A target's queue is the outbox table's rows under the target's key (`target_key`) in the
`charge_point` column: a queue of its own, in seq order, separate from the primary's and every other
target's, bounded and paged by the same code (`OutboxTables`). Its rows carry the local transaction
id in `tx`, as the primary's do; the id the target gave is kept in `report_tx_ids`, written durably
with the removal of its StartTransaction, and forgotten with its StopTransaction's. A transaction's
row (`transactions`) stays until no queue holds a message of it: the last StopTransaction delivered,
the primary's or a target's, removes it.
"""

from __future__ import annotations

from typing import Any

from bridge.store.outbox import NO_TERMS, OutboxTables, Queued, Terms, transaction_done


def target_key(cp_id: str, identity: str, csms_url: str) -> str:
    """The key of a target's queue: stable across restarts while its URL and identity stay."""
    return f"{cp_id} > {identity}@{csms_url}"


class ReportingTables(OutboxTables):
    """The reporting targets' operations (store thread)."""

    def queue_report(
        self, target: str, action: str, tx: int, payload: str, unique_id: str, created_at: str,
        terms: Terms = NO_TERMS,
    ) -> Queued:  # fmt: skip
        """A copy of a transaction message for `target`'s queue (within `terms.bound` for MeterValues)."""
        return self._outbox_write(True, target, [], terms, (action, tx, payload, unique_id, created_at))

    def report_queues(self, cp_id: str) -> dict[str, int]:
        """Every target queue of charge point `cp_id` in the store (configured or not), by key: how
        many messages it holds."""
        prefix = target_key(cp_id, "", "")[:-1]  # "<cp> > "
        rows = self._db.execute(
            "SELECT charge_point, COUNT(*) FROM outbox WHERE substr(charge_point, 1, ?) = ?"
            " GROUP BY charge_point",
            (len(prefix), prefix),
        )
        return {str(key): int(count) for key, count in rows}

    def report_ids(self, target: str) -> dict[int, int]:
        """The transaction ids `target` gave, by local transaction id."""
        rows = self._db.execute("SELECT tx, cs_id FROM report_tx_ids WHERE target = ?", (target,))
        return {int(tx): int(cs_id) for tx, cs_id in rows}

    def report_started(self, target: str) -> set[int]:
        """The open transactions whose StartTransaction `target` was given: one still in its queue,
        or one it numbered (its id kept until the StopTransaction leaves)."""
        rows = self._db.execute(
            "SELECT tx FROM outbox WHERE charge_point = ? AND action = 'StartTransaction' AND tx IS NOT NULL"
            " UNION SELECT tx FROM report_tx_ids WHERE target = ?"
            " EXCEPT SELECT tx FROM outbox WHERE charge_point = ? AND action = 'StopTransaction'",
            (target, target, target),
        )
        return {int(tx) for (tx,) in rows}

    def settle_report(
        self, target: str, done: tuple[int, ...], tx: int | None, cs_id: int | None, ended: bool
    ) -> None:
        """`done` leave `target`'s queue in one durable commit; with `cs_id`, the id it gave local
        transaction `tx` is kept; with `ended`, it is forgotten and the transaction's row goes once
        no queue holds a message of it."""
        statements: list[tuple[str, tuple[Any, ...]]] = []
        if cs_id is not None and tx is not None:
            statements.append(("INSERT OR REPLACE INTO report_tx_ids (target, tx, cs_id) VALUES (?, ?, ?)",
                               (target, tx, cs_id)))  # fmt: skip
        if ended and tx is not None:
            statements.append(("DELETE FROM report_tx_ids WHERE target = ? AND tx = ?", (target, tx)))
            statements.append(transaction_done(tx))
        self._outbox_write(True, target, statements, Terms(done))
