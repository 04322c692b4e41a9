"""The outbox on its own: a real store in tmp_path, a hand-moved clock, and the test as the sender.

The test plays the session's part through the queue's interface (bridge.ocpp.session.DurableQueue):
`head()`, `build()`, the answer through `on_result`, `settle()`, `idle()`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call_result

from bridge.clock import iso
from bridge.ocpp.wire import RawCall
from bridge.outbox import Message, Outbox, TransactionMessages
from bridge.outbox.queue import BATCH
from bridge.store import Store
from tests.helpers.clock import ManualClock

CP = "CP-1"


class Sender:
    """Stands in for the session: holds the queue it is given, counts the wake-ups."""

    def __init__(self) -> None:
        self.wakes = 0
        self.queue: Outbox | None = None

    def attach(self, durable: Outbox) -> None:
        self.queue = durable
        durable.bind(self.wake)

    def wake(self) -> None:
        self.wakes += 1


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store.open(tmp_path)
    yield store
    store.close()


def reopen(store: Store, tmp_path: Path) -> Store:
    """As after a restart: the same file, a new store."""
    store.close()
    return Store.open(tmp_path)


async def settled_in_store(store: Store) -> None:
    """Every store job asked for so far is done, and its outcome taken in (jobs complete in order)."""
    await store.run(int)


async def head(outbox: Outbox) -> Message:
    """The head, once the page it is in has been read."""
    for _ in range(10):
        message = outbox.head()
        if message is not None:
            return message
        await settled_in_store(outbox.store)
    raise AssertionError("no head: nothing queued")


async def deliver(outbox: Outbox, answer: Any = None) -> dict[str, Any]:
    """Send the head as the session does: build it, apply its answer, settle it. Returns its payload."""
    message = await head(outbox)
    built = message.build()
    assert isinstance(built, RawCall) and built.action == message.action
    if message.on_result is not None:
        message.on_result(answer)
    await outbox.settle(message.seq, True)
    return built.payload


def rows(store: Store) -> list[tuple[str, str]]:
    return [(r.action, r.unique_id) for r in store.outbox(CP)]


def transaction_messages(store: Store, max_queued: int = 1000) -> tuple[TransactionMessages, Sender]:
    sender = Sender()
    messages = TransactionMessages(CP, store, sender, max_queued, lambda *_: None, lambda *_: None)
    return messages, sender


def started(transaction_id: int) -> call_result.StartTransaction:
    return call_result.StartTransaction(transaction_id=transaction_id, id_tag_info={"status": "Accepted"})


# -- any durable message ------------------------------------------------------------------------------
async def test_a_durable_message_of_no_transaction_is_queued_sent_as_is_and_survives_a_restart(
    store: Store, tmp_path: Path
) -> None:
    clock = ManualClock()
    outbox = Outbox(CP, store, bound=100)
    sender = Sender()
    sender.attach(outbox)
    await outbox.put("FirmwareStatusNotification", {"status": "Downloading"}, iso(clock.now()))
    clock.advance(30)
    await outbox.put("DiagnosticsStatusNotification", {"status": "Uploaded"}, iso(clock.now()))
    assert sender.wakes == 2 and outbox.pending() == 2
    first, _ = store.outbox(CP)
    assert (first.action, first.tx, json.loads(first.payload)) == (
        "FirmwareStatusNotification", None, {"status": "Downloading"},
    )  # fmt: skip
    assert outbox.oldest_at() == clock.now().timestamp() - 30

    store = reopen(store, tmp_path)
    outbox = Outbox(CP, store, bound=100)
    assert await outbox.restore() == 2
    message = await head(outbox)
    assert (message.seq, message.unique_id) == (first.seq, first.unique_id)
    assert message.build() == RawCall("FirmwareStatusNotification", {"status": "Downloading"})
    assert message.on_result is None  # nothing in its answer to apply
    await outbox.settle(message.seq, True)
    assert outbox.pending() == 1 and outbox.oldest_at() == clock.now().timestamp()
    assert (await deliver(outbox)) == {"status": "Uploaded"}
    outbox.idle()
    await settled_in_store(store)
    assert store.outbox(CP) == [] and outbox.pending() == 0 and outbox.oldest_at() is None
    store.close()


async def test_a_durable_message_that_breaks_its_schema_is_refused_and_not_queued(store: Store) -> None:
    outbox = Outbox(CP, store, bound=100)
    with pytest.raises(ValueError, match="DiagnosticsStatusNotification"):
        await outbox.put("DiagnosticsStatusNotification", {"status": "Lost"}, "2026-01-01T00:00:00.000Z")
    assert outbox.pending() == 0 and store.outbox(CP) == []


# -- pages -----------------------------------------------------------------------------------------------
async def test_more_messages_than_a_page_are_read_page_by_page_in_order(store: Store, tmp_path: Path) -> None:
    clock = ManualClock()
    outbox = Outbox(CP, store, bound=1000, page=10)
    Sender().attach(outbox)
    for _ in range(35):
        await outbox.put("FirmwareStatusNotification", {"status": "Installing"}, iso(clock.now()))
        clock.advance(1)
    queued = store.outbox(CP)
    assert len(queued) == 35 == outbox.pending()
    assert outbox.in_memory() == 10  # the first page; the rest waits in the store

    # A restart reads the first page only, and the rest page by page as the sender goes.
    store = reopen(store, tmp_path)
    outbox = Outbox(CP, store, bound=1000, page=10)
    Sender().attach(outbox)
    assert await outbox.restore() == 35 and outbox.in_memory() == 10
    sent = []
    while outbox.pending():
        message = await head(outbox)
        assert outbox.in_memory() <= 10 + 5  # a page, read when half of the last one is left
        sent.append((message.seq, message.unique_id))
        await outbox.settle(message.seq, True)
    assert sent == [(r.seq, r.unique_id) for r in queued]
    outbox.idle()
    await settled_in_store(store)
    assert store.outbox(CP) == []
    store.close()


async def test_a_message_added_while_pages_wait_in_the_store_comes_after_them(store: Store) -> None:
    outbox = Outbox(CP, store, bound=1000, page=4)
    Sender().attach(outbox)
    for _ in range(9):
        await outbox.put("FirmwareStatusNotification", {"status": "Installing"}, "2026-01-01T00:00:00.000Z")
    seqs = []
    while outbox.pending():
        message = await head(outbox)
        seqs.append(message.seq)
        if len(seqs) == 2:  # added while most of the queue is only in the store
            await outbox.put(
                "FirmwareStatusNotification", {"status": "Installed"}, "2026-01-01T00:01:00.000Z"
            )
        await outbox.settle(message.seq, True)
    assert len(seqs) == 10 and seqs == sorted(seqs)


async def test_while_the_head_is_read_from_the_store_the_queue_says_which_seq_it_follows(
    store: Store,
) -> None:
    outbox = Outbox(CP, store, bound=1000, page=2)
    Sender().attach(outbox)
    for _ in range(3):
        await outbox.put("FirmwareStatusNotification", {"status": "Installing"}, "2026-01-01T00:00:00.000Z")
    assert outbox.unread() is None  # the head is in memory
    first = await head(outbox)
    await outbox.settle(first.seq, True)
    second = await head(outbox)
    await outbox.settle(second.seq, True)
    assert outbox.head() is None and outbox.unread() == second.seq  # the next page is being read
    await settled_in_store(store)
    third = outbox.head()
    assert third is not None and third.seq > second.seq and outbox.unread() is None
    await outbox.settle(third.seq, True)
    assert outbox.head() is None and outbox.unread() is None  # nothing queued


# -- the bound ----------------------------------------------------------------------------------------
async def test_the_bound_is_kept_by_the_store_oldest_meter_values_first(store: Store, tmp_path: Path) -> None:
    messages, _ = transaction_messages(store, max_queued=5)
    await messages.start(1, 1, "TAG", 0, "2026-01-01T00:00:00.000Z")
    for n in range(1, 9):
        await messages.meter_values(1, 1, float(n), f"2026-01-01T00:00:{n:02d}.000Z", [{"value": str(n)}])
    await messages.stop(1, 9, "2026-01-01T00:01:00.000Z", "Local", None)
    assert messages.dropped_meter_values == 4
    assert store.outbox_count(CP) == messages.outbox.pending() == 6  # the stop goes beyond the bound
    stamps = [json.loads(r.payload)["meterValue"][0]["timestamp"][17:19] for r in store.outbox(CP)[1:-1]]
    assert stamps == ["05", "06", "07", "08"]

    # After a restart the bound holds at once: the count is the store's, not a list in memory.
    store = reopen(store, tmp_path)
    messages, _ = transaction_messages(store, max_queued=5)
    await messages.restore()
    await messages.start(2, 2, "TAG", 0, "2026-01-01T00:02:00.000Z")
    await messages.meter_values(2, 2, 1.0, "2026-01-01T00:02:01.000Z", [{"value": "1"}])
    assert messages.dropped_meter_values == 3 and store.outbox_count(CP) == 5
    store.close()


async def test_the_bound_tells_its_listener_as_it_warns(store: Store) -> None:
    """The first drop (and every thousandth) is told: the security event MemoryExhaustion."""
    messages, _ = transaction_messages(store, max_queued=3)
    told: list[int] = []
    messages.outbox.on_bound = told.append
    await messages.start(1, 1, "TAG", 0, "2026-01-01T00:00:00.000Z")
    for n in range(1, 6):
        await messages.meter_values(1, 1, float(n), f"2026-01-01T00:00:0{n}.000Z", [{"value": str(n)}])
    assert messages.dropped_meter_values == 3 and told == [1]


async def test_the_bound_never_drops_the_meter_values_on_its_way(store: Store) -> None:
    messages, _ = transaction_messages(store, max_queued=3)
    await messages.start(1, 1, "TAG", 0, "2026-01-01T00:00:00.000Z")
    await deliver(messages.outbox, started(7))
    for n in range(1, 4):
        await messages.meter_values(1, 1, float(n), f"2026-01-01T00:00:0{n}.000Z", [{"value": str(n)}])
    on_its_way = await head(messages.outbox)
    on_its_way.in_flight = True  # as the session marks it while the call is out
    await messages.meter_values(1, 1, 4.0, "2026-01-01T00:00:04.000Z", [{"value": "4"}])
    left = [json.loads(r.payload)["meterValue"][0]["timestamp"][18] for r in store.outbox(CP)]
    assert left == ["1", "3", "4"]  # the second went, not the first
    on_its_way.in_flight = False
    assert (await deliver(messages.outbox))["transactionId"] == 7
    later = [await deliver(messages.outbox) for _ in range(2)]
    assert [m["meterValue"][0]["timestamp"][18] for m in later] == ["3", "4"]


# -- grouped removals ---------------------------------------------------------------------------------
async def test_answered_messages_leave_the_store_in_groups(store: Store, tmp_path: Path) -> None:
    outbox = Outbox(CP, store, bound=1000)
    Sender().attach(outbox)
    for _ in range(5):
        await outbox.put("FirmwareStatusNotification", {"status": "Downloaded"}, "2026-01-01T00:00:00.000Z")
    queued = rows(store)
    for _ in range(3):
        await deliver(outbox)
    await settled_in_store(store)
    assert outbox.pending() == 2
    assert rows(store) == queued  # answered, noted, not written yet
    outbox.idle()  # the sender has nothing to send: now
    await settled_in_store(store)
    assert rows(store) == queued[3:]

    # A crash before such a write sends those messages again, with their own ids (the central
    # system recognises a repeat by its id).
    await deliver(outbox)
    store = reopen(store, tmp_path)  # the noted removal never written: as after a kill
    outbox = Outbox(CP, store, bound=1000)
    assert await outbox.restore() == 2
    assert [(await head(outbox)).unique_id] == [queued[3][1]]
    store.close()


async def test_a_batch_of_answered_messages_is_written_without_waiting_for_idle(store: Store) -> None:
    outbox = Outbox(CP, store, bound=10 * BATCH, page=10 * BATCH)
    Sender().attach(outbox)
    for _ in range(BATCH + 1):
        await outbox.put("FirmwareStatusNotification", {"status": "Idle"}, "2026-01-01T00:00:00.000Z")
    for _ in range(BATCH):
        await deliver(outbox)
    await settled_in_store(store)
    assert store.outbox_count(CP) == 1


async def test_grouped_removals_go_with_the_next_durable_write(store: Store) -> None:
    messages, _ = transaction_messages(store)
    await messages.start(1, 1, "TAG", 0, "2026-01-01T00:00:00.000Z")
    await messages.meter_values(1, 1, 1.0, "2026-01-01T00:00:01.000Z", [{"value": "1"}])
    await messages.meter_values(1, 1, 2.0, "2026-01-01T00:00:02.000Z", [{"value": "2"}])
    await deliver(messages.outbox, started(3))  # written at once, with the central system's id
    assert store.transactions(CP)[0].cs_id == 3 and store.outbox_count(CP) == 2
    await deliver(messages.outbox)
    assert store.outbox_count(CP) == 2  # noted
    await messages.stop(1, 2, "2026-01-01T00:01:00.000Z", "Local", None)
    assert [r.action for r in store.outbox(CP)] == ["MeterValues", "StopTransaction"]  # it went along
    await deliver(messages.outbox)
    await deliver(messages.outbox, call_result.StopTransaction())
    assert store.outbox(CP) == [] and store.transactions(CP) == []  # the stop took the rest along


# -- transaction ids, and the queue after a restart ------------------------------------------------------
async def test_a_restart_gives_back_the_same_queue_and_the_central_systems_id(
    store: Store, tmp_path: Path
) -> None:
    messages, _ = transaction_messages(store)
    await messages.start(1, 1, "TAG", 100, "2026-01-01T00:00:00.000Z")
    await messages.meter_values(1, 1, 110.0, "2026-01-01T00:00:10.000Z", [{"value": "110"}])
    await messages.meter_values(1, 1, 120.0, "2026-01-01T00:00:20.000Z", [{"value": "120"}])
    await messages.stop(1, 120, "2026-01-01T00:00:30.000Z", "Local", "TAG")
    assert messages.transaction_id(1) == -1 and messages.cs_id(1) is None
    await deliver(messages.outbox, started(42))
    assert messages.transaction_id(1) == 42 and messages.cs_id(1) == 42
    before = rows(store)

    store = reopen(store, tmp_path)
    messages, _ = transaction_messages(store)
    assert await messages.restore() == []  # ended: kept only for its messages, not open
    assert messages.cs_id(1) == 42 and messages.outbox.pending() == 3
    assert rows(store) == before
    sent = [await deliver(messages.outbox) for _ in range(2)]
    assert [m["transactionId"] for m in sent] == [42, 42]
    stop = await deliver(messages.outbox, call_result.StopTransaction())
    assert stop["transactionId"] == 42 and stop["idTag"] == "TAG"
    assert messages.cs_id(1) is None  # forgotten with its last message
    assert store.outbox(CP) == [] and store.transactions(CP) == []
    store.close()


async def test_a_start_given_up_on_leaves_its_later_messages_with_minus_one(store: Store) -> None:
    messages, _ = transaction_messages(store)
    await messages.start(1, 1, "TAG", 0, "2026-01-01T00:00:00.000Z")
    await messages.meter_values(1, 1, 1.0, "2026-01-01T00:00:01.000Z", [{"value": "1"}])
    start = await head(messages.outbox)
    await messages.outbox.settle(start.seq, False)  # D1: its attempts are spent
    assert (await deliver(messages.outbox))["transactionId"] == -1  # ERRATA 3.18
    assert store.transactions(CP)[0].cs_id is None


async def test_every_queued_message_gets_its_own_version_4_uuid(store: Store) -> None:
    outbox = Outbox(CP, store, bound=1000)
    for _ in range(200):
        await outbox.put("DiagnosticsStatusNotification", {"status": "Uploaded"}, iso(ManualClock().now()))
    ids = [unique_id for _, unique_id in rows(store)]
    assert len(ids) == 200 and len(set(ids)) == 200
    assert all(uuid.UUID(i).version == 4 and str(uuid.UUID(i)) == i for i in ids)
