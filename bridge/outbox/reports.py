"""A reporting target's transaction messages (bridge/reporting): its own queue and its own ids.

Each StartTransaction, MeterValues and StopTransaction the charge point queues for its primary is
copied, in the same commit, into each target's queue (`Outbox` under the target's key, see
bridge/store/reporting.py): the outbox stays the one owner of what must survive a restart, and a
crash keeps the primary's message and its copies or none of them. A copy carries the local
transaction id until it is sent; its `transactionId` is filled in at send time from the answer THIS
target gave to the transaction's StartTransaction (`TransactionIds`, one map per target), so a
StopTransaction queued while the target was down names the id its StartTransaction gets later.
The id is kept in `report_tx_ids` with the StartTransaction's removal, so a restart keeps it.

A target is given MeterValues and a StopTransaction only of the transactions whose StartTransaction
went into its queue: one open when it was listed (or its URL or id changed) is not its. What it was
given is known again at a restart from its queue (a StartTransaction row) and `report_tx_ids` (one
delivered), each written in the commit that made it so.

MeterValues of a target are thinned to its own MeterValueSampleInterval (a target cannot get more
than the charge point samples for the primary; 0: none), decided when the message is queued.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from bridge.outbox.queue import Kind, Message, Outbox
from bridge.outbox.tx_ids import TransactionIds
from bridge.store import Store

SAMPLE_SLACK_S = 0.5  # a sample this much early still counts as due (timers are not exact)


class ReportMessages:
    """One target's queue of transaction messages (a `copies` entry of TransactionMessages)."""

    def __init__(self, key: str, store: Store, bound: int, sample_interval: Callable[[], int]) -> None:
        self.key = key
        self.store = store
        self.outbox = Outbox(key, store, bound=bound)
        self.ids = TransactionIds()
        self._sample_interval = sample_interval  # its own MeterValueSampleInterval, in seconds
        self._last_sample: dict[int, datetime] = {}  # local tx -> the last MeterValues copied
        # The local transactions whose StartTransaction went into this queue: only theirs get
        # MeterValues and a StopTransaction (one started before the target was listed never does).
        self._started: set[int] = set()
        self.outbox.kinds.update(
            StartTransaction=Kind(answered=self._start_answered, settled=self._start_settled),
            MeterValues=Kind(fill=self._fill_id),
            StopTransaction=Kind(fill=self._fill_id, settled=self._stop_settled),
        )

    async def restore(self) -> int:
        """Its ids and queue as the last run left them; returns how many messages are queued."""
        ids = await self.store.run(self.store.report_ids, self.key)
        for tx, cs_id in ids.items():
            self.ids.answered(tx, cs_id)
        self._started = await self.store.run(self.store.report_started, self.key)
        return await self.outbox.restore()

    def wants(self, action: str, tx: int, at: str) -> bool:
        """Whether this message is copied to the target: a StartTransaction always; MeterValues (at
        its own interval) and the StopTransaction only of a transaction whose start it was given."""
        if action == "StartTransaction":
            self._started.add(tx)  # written with the copy, in the commit that queues the primary's
            return True
        if action == "StopTransaction":
            self._last_sample.pop(tx, None)
            if tx not in self._started:
                return False
            self._started.discard(tx)
            return True
        if action != "MeterValues" or tx not in self._started:
            return False
        interval = self._sample_interval()
        if interval <= 0:
            return False
        when = _parse(at)
        last = self._last_sample.get(tx)
        # Earlier than the last one copied: the clock was moved back (the primary's currentTime),
        # so the interval counts from this sample on, else the target would get none until then.
        if (
            when is not None
            and last is not None
            and 0 <= (when - last).total_seconds() < interval - SAMPLE_SLACK_S
        ):
            return False
        if when is not None:
            self._last_sample[tx] = when
        return True

    def transaction_id(self, tx: int) -> int:
        """The transactionId the target knows local transaction `tx` by (-1 while it has none)."""
        return self.ids.wire(tx)

    # -- what the outbox asks of it ---------------------------------------------------
    def _fill_id(self, message: Message, payload: dict[str, Any]) -> None:
        payload["transactionId"] = self.ids.wire(message.tx)

    def _start_answered(self, message: Message, answer: Any) -> None:
        # Runs as the answer is read, before the next message is built. Its idTagInfo decides
        # nothing: a reporting target never refuses a session.
        assert message.tx is not None
        self.ids.answered(message.tx, answer.transaction_id)

    async def _start_settled(self, message: Message, delivered: bool) -> None:
        tx = message.tx
        cs_id = self.ids.get(tx) if delivered and tx is not None else None
        settle, key = self.store.settle_report, self.key
        await self.outbox.remove_by(message, lambda done: settle(key, done, tx, cs_id, False))

    async def _stop_settled(self, message: Message, delivered: bool) -> None:
        tx = message.tx
        settle, key = self.store.settle_report, self.key
        await self.outbox.remove_by(message, lambda done: settle(key, done, tx, None, True))
        if tx is not None:
            self.ids.forget(tx)


def _parse(stamp: str) -> datetime | None:
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
