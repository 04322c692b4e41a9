"""The central system's transaction ids: the one map from our local transaction ids to them.

A transaction is known to the central system by the `transactionId` of its
StartTransaction.conf; until that answer is read (or when its StartTransaction
was given up on) it has none, and its messages carry -1 (ERRATA 3.18). The id
is set as the answer is read, before any later message is built, and kept in
the store (transactions.cs_id) with the StartTransaction's removal, so a
transaction resumed after a restart keeps it. It is forgotten once the
transaction's StopTransaction has left the outbox.
"""

from __future__ import annotations

from collections.abc import Iterable

from bridge.store import TransactionRow

UNKNOWN = -1  # the transactionId of a transaction the central system never numbered (ERRATA 3.18)


class TransactionIds:
    def __init__(self) -> None:
        self._ids: dict[int, int] = {}  # local id -> the central system's transactionId

    def restore(self, rows: Iterable[TransactionRow]) -> None:
        self._ids.update({r.id: r.cs_id for r in rows if r.cs_id is not None})

    def get(self, local_id: int) -> int | None:
        """The central system's id of a local transaction, None while it has none."""
        return self._ids.get(local_id)

    def wire(self, local_id: int | None) -> int:
        """The `transactionId` a message of this local transaction carries: -1 while it has none."""
        if local_id is None:
            return UNKNOWN
        return self._ids.get(local_id, UNKNOWN)

    def local(self, transaction_id: int) -> int | None:
        """The local transaction the central system knows by `transaction_id` (the newest, should it
        have given the same id twice), or None."""
        found = [local for local, cs_id in self._ids.items() if cs_id == transaction_id]
        return max(found) if found else None

    def answered(self, local_id: int, transaction_id: int) -> None:
        self._ids[local_id] = transaction_id

    def forget(self, local_id: int) -> None:
        self._ids.pop(local_id, None)
