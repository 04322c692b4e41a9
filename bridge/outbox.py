"""Transaction messages: persisted first, queued in order, delivered once, replayed after a crash.

StartTransaction, MeterValues and StopTransaction are written to the store
(with the reading or the transaction state they carry) before they are queued,
and leave the store only when the central system answered them or they were
given up on (D1). After a restart the rows are queued again in their order,
before BootNotification is even sent, each with its original message id.

Transaction ids: a message carries our local transaction id until it is
sent; `transactionId` is filled in at send time from the central system's
answer to the StartTransaction. Messages leave in order, so a later message
of a transaction is only built once its StartTransaction was answered or
given up on; in the second case it carries -1 (ERRATA 3.18).

The queue is bounded (`max_queued_messages`): at the bound the oldest queued
MeterValues is dropped, logged and counted; StartTransaction and
StopTransaction are never dropped.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from bridge.core.meter_values import thin_evenly
from bridge.ocpp.rpc import RawCall, checked_call
from bridge.ocpp.session import Session
from bridge.store import OutboxRow, Store, TransactionRow

log = logging.getLogger("bridge.outbox")

StartAnswered = Callable[[int, str, Any], None]  # (local transaction id, idTag, StartTransaction.conf)
TagInfo = Callable[[str, dict[str, Any]], None]  # (idTag, idTagInfo) from a StopTransaction.conf


class TransactionMessages:
    def __init__(
        self,
        cp_id: str,
        store: Store,
        session: Session,
        max_queued: int,
        on_start_answer: StartAnswered,
        on_tag_info: TagInfo,
    ) -> None:
        self.cp_id = cp_id
        self.store = store
        self.session = session
        self.max_queued = max_queued
        self._on_start_answer = on_start_answer
        self._on_tag_info = on_tag_info
        self.tx_ids: dict[int, int] = {}  # local id -> the central system's transactionId
        self.dropped_meter_values = 0
        self.max_stop_values = 100  # StopTransactionMaxMeterValues
        self._kept: dict[int, int] = {}  # local id -> values kept for its StopTransaction

    def transaction_id(self, tx: int) -> int:
        return self.tx_ids.get(tx, -1)

    async def restore(self) -> list[TransactionRow]:
        """Queue what the store holds; returns the transactions left open by the last run."""
        rows = await self.store.run(self.store.transactions, self.cp_id)
        self.tx_ids.update({r.id: r.cs_id for r in rows if r.cs_id is not None})
        queued = await self.store.run(self.store.outbox, self.cp_id)
        for row in queued:
            self._queue(row)
        if queued:
            log.info(
                "%s: %d transaction messages from the last run are queued again", self.cp_id, len(queued)
            )
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
    ) -> None:
        """Persist and queue a StartTransaction; `stop_value` is the Transaction.Begin MeterValue kept
        for the StopTransaction's transactionData."""
        unique_id = str(uuid.uuid4())
        payload = {
            "connectorId": connector,
            "idTag": id_tag,
            "meterStart": meter_start,
            "timestamp": started_at,
        }
        checked_call("StartTransaction", payload)  # checked once, here; sent as it is
        text = json.dumps(payload)
        begin = self.store.begin_transaction
        kept = json.dumps(stop_value) if stop_value else None
        seq = await self.store.run(
            begin, self.cp_id, tx, connector, id_tag, meter_start, started_at, text, unique_id, kept
        )
        self._kept[tx] = 1 if kept else 0
        self._queue(OutboxRow(seq, self.cp_id, "StartTransaction", tx, text, unique_id, started_at))

    async def meter_values(
        self,
        tx: int,
        connector: int,
        energy_wh: float | None,
        at: str,
        sampled: list[dict[str, Any]],
        stop_value: dict[str, Any] | None = None,
    ) -> None:
        """Persist a reading and queue its MeterValues (and keep `stop_value` for the StopTransaction)."""
        await self._make_room()
        unique_id = str(uuid.uuid4())
        payload = {"connectorId": connector, "meterValue": [{"timestamp": at, "sampledValue": sampled}]}
        checked_call("MeterValues", {**payload, "transactionId": 0})
        text = json.dumps(payload)
        kept = json.dumps(stop_value) if stop_value else None
        seq = await self.store.run(
            self.store.record_meter_values, self.cp_id, tx, energy_wh, at, text, unique_id, kept
        )
        self._queue(OutboxRow(seq, self.cp_id, "MeterValues", tx, text, unique_id, at))
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
        unique_id = str(uuid.uuid4())
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
        seq = await self.store.run(
            self.store.end_transaction, self.cp_id, tx, meter_stop, at, reason, text, unique_id
        )
        self._queue(OutboxRow(seq, self.cp_id, "StopTransaction", tx, text, unique_id, at))

    # -- the queue -----------------------------------------------------------------
    async def _make_room(self) -> None:
        while self.session.pending_transactional() >= self.max_queued:
            seq = await self.store.run(self.store.drop_oldest_meter_values, self.cp_id)
            if seq is None:
                return  # only starts and stops are queued: those are never dropped
            self.session.discard(seq)
            self.dropped_meter_values += 1
            if self.dropped_meter_values == 1 or self.dropped_meter_values % 1000 == 0:
                log.warning(
                    "%s: %d transaction messages are queued (the bound): dropped the oldest MeterValues "
                    "(%d dropped so far)",
                    self.cp_id, self.max_queued, self.dropped_meter_values,
                )  # fmt: skip

    def _queue(self, row: OutboxRow) -> None:
        def build() -> RawCall:
            payload = json.loads(row.payload)
            if row.action != "StartTransaction":
                payload["transactionId"] = self.transaction_id(row.tx)
            return RawCall(row.action, payload)

        def answered(answer: Any) -> None:
            # Runs as the answer is read, before any later message is built.
            if row.action == "StartTransaction":
                self.tx_ids[row.tx] = answer.transaction_id
                self._on_start_answer(row.tx, json.loads(row.payload)["idTag"], answer)
            elif row.action == "StopTransaction" and answer.id_tag_info:
                id_tag = json.loads(row.payload).get("idTag")
                if id_tag:
                    self._on_tag_info(id_tag, answer.id_tag_info)

        async def settled(delivered: bool) -> None:
            cs_id = self.tx_ids.get(row.tx) if row.action == "StartTransaction" and delivered else None
            if row.action == "MeterValues":
                # Not waited for: the next message need not wait for this delete (the store
                # thread keeps the order; a crash before it runs re-sends, with the same id).
                self.store.submit(self.store.delivered, row.seq, row.action, row.tx, None)
                return
            await self.store.run(self.store.delivered, row.seq, row.action, row.tx, cs_id)

        self.session.submit(
            build,
            on_result=answered,
            on_settled=settled,
            unique_id=row.unique_id,
            outbox_seq=row.seq,
            transactional=True,
            created_at=_epoch(row.created_at),
        )


def _epoch(stamp: str) -> float | None:
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
