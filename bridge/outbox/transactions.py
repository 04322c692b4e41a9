"""Transaction messages: persisted first, queued in order, delivered once, replayed after a crash.

StartTransaction, MeterValues and StopTransaction are written to the store
(with the reading or the transaction state they carry) before they are queued
in the outbox (`bridge.outbox.queue`), and leave it only when the central
system answered them or they were given up on (D1). After a restart they are
taken up again in their order, before BootNotification is even sent, each
with its original message id.

Transaction ids: a message carries our local transaction id until it is
sent; `transactionId` is filled in at send time from the central system's
answer to the StartTransaction (`TransactionIds`, the one map of them).
Messages leave in order, so a later message of a transaction is only built
once its StartTransaction was answered or given up on; in the second case it
carries -1 (ERRATA 3.18).

The queue is bounded (`max_queued_messages`): at the bound the oldest queued
MeterValues is dropped, logged and counted; StartTransaction and
StopTransaction are never dropped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, Protocol

from bridge.core.meter_values import thin_evenly
from bridge.ocpp.wire import checked_call, message_id
from bridge.outbox.queue import Kind, Message, Outbox
from bridge.outbox.tx_ids import TransactionIds
from bridge.store import Queued, Store, Stored, Terms, TransactionRow

log = logging.getLogger("bridge.outbox")

StartAnswered = Callable[[int, str, Any], None]  # (local transaction id, idTag, StartTransaction.conf)
TagInfo = Callable[[str, dict[str, Any]], None]  # (idTag, idTagInfo) from a StopTransaction.conf


class Sender(Protocol):
    """What sends the outbox's messages (bridge.ocpp.session.Session)."""

    def attach(self, durable: Outbox) -> None: ...


class Copy(Protocol):
    """A reporting target's queue (bridge.outbox.reports.ReportMessages)."""

    outbox: Outbox

    def wants(self, action: str, tx: int, at: str) -> bool: ...


class TransactionMessages:
    def __init__(
        self,
        cp_id: str,
        store: Store,
        session: Sender,
        max_queued: int,
        on_start_answer: StartAnswered,
        on_tag_info: TagInfo,
    ) -> None:
        self.cp_id = cp_id
        self.store = store
        self.outbox = Outbox(cp_id, store, bound=max_queued)
        self.ids = TransactionIds()
        # The reporting targets' queues (bridge/outbox/reports.py): each transaction message is
        # copied to each that wants it, in the commit that queues it here.
        self.copies: list[Copy] = []
        self._on_start_answer = on_start_answer
        self._on_tag_info = on_tag_info
        self.max_stop_values = 100  # StopTransactionMaxMeterValues
        self._kept: dict[int, int] = {}  # local id -> values kept for its StopTransaction
        self.outbox.kinds.update(
            StartTransaction=Kind(answered=self._start_answered, settled=self._start_settled),
            MeterValues=Kind(fill=self._fill_id),
            StopTransaction=Kind(
                fill=self._fill_id, answered=self._stop_answered, settled=self._stop_settled
            ),
        )
        session.attach(self.outbox)

    @property
    def max_queued(self) -> int:
        return self.outbox.bound

    @property
    def dropped_meter_values(self) -> int:
        return self.outbox.dropped

    def transaction_id(self, tx: int) -> int:
        """The transactionId a message of local transaction `tx` carries: -1 while it has none."""
        return self.ids.wire(tx)

    def cs_id(self, tx: int) -> int | None:
        """The central system's id of local transaction `tx`, None while it has none."""
        return self.ids.get(tx)

    async def restore(self, stored: Stored | None = None) -> list[TransactionRow]:
        """Take up what the store holds; returns the transactions left open by the last run.
        `stored`: this charge point's rows, read already (else read now)."""
        rows = stored.transactions if stored else await self.store.run(self.store.transactions, self.cp_id)
        self.ids.restore(rows)
        queued = await self.outbox.restore(stored.outbox_state if stored else None)
        if queued:
            log.info("%s: %d messages from the last run are queued again", self.cp_id, queued)
        return [r for r in rows if r.stopped_at is None]

    # -- new messages ------------------------------------------------------------
    async def start(
        self,
        tx: int,
        connector: int,
        id_tag: str,
        meter_start: int,
        started_at: str,
        stop_value: dict[str, Any] | None = None,
        reservation_id: int | None = None,
    ) -> None:
        """Persist and queue a StartTransaction; `stop_value` is the Transaction.Begin MeterValue kept
        for the StopTransaction's transactionData; `reservation_id`: the reservation it uses up."""
        unique_id = message_id()
        payload: dict[str, Any] = {
            "connectorId": connector,
            "idTag": id_tag,
            "meterStart": meter_start,
            "timestamp": started_at,
        }
        if reservation_id is not None:
            payload["reservationId"] = reservation_id
        checked_call("StartTransaction", payload)  # checked once, here; sent as it is
        text = json.dumps(payload)
        kept = json.dumps(stop_value) if stop_value else None
        cp, store = self.cp_id, self.store

        def write(terms: Terms) -> Queued:
            return store.begin_transaction(
                cp, tx, connector, id_tag, meter_start, started_at, text, unique_id, kept, terms
            )

        await self.outbox.add(
            "StartTransaction",
            tx,
            text,
            unique_id,
            started_at,
            write,
            copies=self._copies("StartTransaction", tx, started_at),
        )
        self._kept[tx] = 1 if kept else 0

    async def meter_values(
        self,
        tx: int,
        connector: int,
        energy_wh: float | None,
        at: str,
        sampled: list[dict[str, Any]],
        stop_value: dict[str, Any] | None = None,
    ) -> None:
        """Persist a reading and queue its MeterValues (and keep `stop_value` for the StopTransaction);
        at the bound the oldest queued MeterValues goes, in the same write."""
        unique_id = message_id()
        payload = {"connectorId": connector, "meterValue": [{"timestamp": at, "sampledValue": sampled}]}
        checked_call("MeterValues", {**payload, "transactionId": 0})
        text = json.dumps(payload)
        kept = json.dumps(stop_value) if stop_value else None
        cp, store = self.cp_id, self.store

        def write(terms: Terms) -> Queued:
            # Positional: a test wraps the method in a plain function.
            return store.record_meter_values(cp, tx, energy_wh, at, text, unique_id, kept, terms)

        await self.outbox.add(
            "MeterValues",
            tx,
            text,
            unique_id,
            at,
            write,
            bounded=True,
            copies=self._copies("MeterValues", tx, at),
        )
        await self._count_kept(tx, kept)

    async def reading(
        self, tx: int, energy_wh: float | None, at: str, stop_value: dict[str, Any] | None = None
    ) -> None:
        """Persist a reading only (no MeterValues configured): a power cut keeps it."""
        kept = json.dumps(stop_value) if stop_value else None
        await self.store.run(self.store.record_reading, tx, energy_wh, at, kept)
        await self._count_kept(tx, kept)

    async def _count_kept(self, tx: int, kept: str | None) -> None:
        """Values kept for a StopTransaction are bounded: at twice the limit, every second one between
        the first and the newest goes (the rest are thinned evenly when the transaction stops)."""
        if kept is None:
            return
        self._kept[tx] = self._kept.get(tx, 0) + 1
        if self._kept[tx] > 2 * self.max_stop_values:
            self._kept[tx] = await self.store.run(self.store.thin_stop_values, tx)

    async def stop(
        self,
        tx: int,
        meter_stop: int,
        at: str,
        reason: str,
        id_tag: str | None,
        end_value: dict[str, Any] | None = None,
    ) -> None:
        """Persist and queue a StopTransaction; its transactionData is what was kept during the
        transaction plus `end_value` (Transaction.End), at most StopTransactionMaxMeterValues."""
        unique_id = message_id()
        payload: dict[str, Any] = {"meterStop": meter_stop, "timestamp": at, "reason": reason}
        if id_tag is not None:
            payload["idTag"] = id_tag
        data = [json.loads(v) for v in await self.store.run(self.store.stop_values, tx)]
        if end_value:
            data.append(end_value)
        if data:
            payload["transactionData"] = thin_evenly(data, self.max_stop_values)
        self._kept.pop(tx, None)
        checked_call("StopTransaction", {**payload, "transactionId": 0})
        text = json.dumps(payload)
        cp, store = self.cp_id, self.store

        def write(terms: Terms) -> Queued:
            return store.end_transaction(cp, tx, meter_stop, at, reason, text, unique_id, terms)

        await self.outbox.add(
            "StopTransaction", tx, text, unique_id, at, write, copies=self._copies("StopTransaction", tx, at)
        )

    def _copies(self, action: str, tx: int, at: str) -> list[Outbox]:
        return [copy.outbox for copy in self.copies if copy.wants(action, tx, at)]

    # -- what the outbox asks of transaction messages --------------------------------
    def _fill_id(self, message: Message, payload: dict[str, Any]) -> None:
        payload["transactionId"] = self.ids.wire(message.tx)

    def _start_answered(self, message: Message, answer: Any) -> None:
        # Runs as the answer is read, before any later message is built.
        assert message.tx is not None
        self.ids.answered(message.tx, answer.transaction_id)
        self._on_start_answer(message.tx, json.loads(message.payload)["idTag"], answer)

    def _stop_answered(self, message: Message, answer: Any) -> None:
        if answer.id_tag_info:
            id_tag = json.loads(message.payload).get("idTag")
            if id_tag:
                self._on_tag_info(id_tag, answer.id_tag_info)

    async def _start_settled(self, message: Message, delivered: bool) -> None:
        cs_id = self.ids.get(message.tx) if delivered and message.tx is not None else None
        await self.outbox.remove_now(message, cs_id=cs_id)

    async def _stop_settled(self, message: Message, delivered: bool) -> None:
        await self.outbox.remove_now(message, ended=True)
        if message.tx is not None:
            self.ids.forget(message.tx)
