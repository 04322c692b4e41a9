"""The outbox: the one owner of the messages that must survive a restart.

Theory. Each such message is a row of the store's outbox table, written (with
whatever state it carries) before anything acts on it, and removed only once
the central system answered it or it was given up on (D1). The session pulls
the head (`bridge.ocpp.session.DurableQueue`); this module keeps only a window
of the queue in memory, never the whole of it:

- The window is the oldest messages, at most about a page (PAGE) of them. A
  message added while the window holds everything queued is appended to it;
  otherwise it stays in the store, and the next page (seqs after the last one
  read) is read when fewer than PAGE // 2 are left, before the sender runs dry.
- Removals are grouped. An answered MeterValues (or durable message of no
  transaction) is noted and leaves the store with the next outbox write: the
  next page read, the next message added, the answer to a StartTransaction or
  StopTransaction (written at once and durably: the central system's
  transaction id and the end of a transaction must not be lost), at BATCH
  notes, or when the sender has nothing to send. A crash before that write
  only means those messages are sent again with their original message ids,
  by which the central system recognises a repeat (D1).
- The bound: with `bound` messages queued, the oldest queued MeterValues (not
  the one on its way) goes before another is added, counted and decided in the
  store in the commit that adds it. StartTransaction, StopTransaction and
  messages of no transaction are never dropped.
- Order. Seqs are the store's AUTOINCREMENT: a later message has a larger seq.
  Store jobs run, and their futures complete, in the order they were asked
  for, and every change to the window is made in a job's done-callback, so a
  page read and a message added never cross: a message is either in the page
  or added after it.

What an action adds to this generic queue (the transactionId filled in at send
time, what its answer tells, a durable removal) is its `Kind`, registered by
the module that makes such messages (`bridge.outbox.transactions`).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bridge.flag import Flag
from bridge.ocpp.wire import RawCall, checked_call, message_id
from bridge.store import OutboxRow, Queued, Store, Terms

log = logging.getLogger("bridge.outbox")

PAGE = 200  # messages read from the store at a time
BATCH = 100  # answered messages noted before their removal is written anyway


@dataclass(frozen=True)
class Kind:
    """What one action adds to the generic queue."""

    fill: Callable[[Message, dict[str, Any]], None] | None = None  # at send time (the transactionId)
    answered: Callable[[Message, Any], None] | None = None  # as its answer is read
    # Instead of a grouped removal: the outbox's `remove_now`, with what else the answer changes.
    settled: Callable[[Message, bool], Awaitable[None]] | None = None


class Message:
    """One queued message in the window: what the session sends (its `DurableCall`)."""

    __slots__ = (
        "action",
        "attempts",
        "created_at",
        "gone",
        "in_flight",
        "kind",
        "not_before",
        "on_result",
        "payload",
        "sent_on",
        "seq",
        "tx",
        "unique_id",
    )  # fmt: skip

    def __init__(
        self, seq: int, action: str, tx: int | None, payload: str, unique_id: str, created_at: str,
        kind: Kind | None,
    ) -> None:  # fmt: skip
        self.seq = seq
        self.action = action
        self.tx = tx
        self.payload = payload  # JSON text, parsed at send time
        self.unique_id = unique_id
        self.created_at = created_at
        self.kind = kind
        answered = kind.answered if kind is not None else None
        self.on_result: Callable[[Any], None] | None = (
            functools.partial(answered, self) if answered is not None else None
        )
        # The sender's bookkeeping (bridge.ocpp.session.DurableCall).
        self.attempts = 0
        self.not_before = 0.0
        self.sent_on: object | None = None
        self.in_flight = False
        self.gone = False  # dropped at the bound while on its way: no longer counted

    def build(self) -> RawCall:
        payload = json.loads(self.payload)  # checked against its schema when it was made
        kind = self.kind
        if kind is not None and kind.fill is not None:
            kind.fill(self, payload)
        return RawCall(self.action, payload)


class Outbox:
    """The durable queue of one charge point (bridge.ocpp.session.DurableQueue)."""

    def __init__(self, cp_id: str, store: Store, bound: int, page: int = PAGE) -> None:
        self.cp_id = cp_id
        self.store = store
        self.bound = bound  # max_queued_messages
        self.page = page
        self.kinds: dict[str, Kind] = {}
        self.dropped = 0  # MeterValues dropped at the bound
        self.lost = 0  # copies (a reporting target's) whose write failed alone: never written
        self.on_bound: Callable[[int], None] | None = None  # told as the warning is logged (MemoryExhaustion)
        self._window: deque[Message] = deque()
        self._loaded = 0  # every queued seq up to this one is in the window (or was settled)
        self._complete = True  # the window holds every queued message
        self._reading = False  # a page read is under way
        self._last = 0  # the newest seq queued
        self._pending = 0  # queued and not settled
        self._done: list[int] = []  # answered: to leave the store with the next outbox write
        self._empty = Flag()
        self._empty.set()
        self._wake: Callable[[], None] = lambda: None
        self._last_head_at: str | None = None  # the last head's created_at, while a page is read

    # -- producers ---------------------------------------------------------------------
    async def restore(self, state: tuple[int, int, list[OutboxRow]] | None = None) -> int:
        """Take up what the store holds (before the first connection); returns how many are queued.
        `state`: the store's outbox_state for this charge point, read already (else read now)."""
        if state is None:
            state = await self.store.run(self.store.outbox_state, self.cp_id, self.page)
        count, last, rows = state
        self._window = deque(self._message(*_fields(row)) for row in rows)
        self._loaded = rows[-1].seq if rows else 0
        self._complete = len(rows) < self.page
        self._last, self._pending = last, count
        self._counted()
        return count

    async def put(self, action: str, payload: dict[str, Any], created_at: str) -> None:
        """Queue a durable CALL of no transaction (SecurityEventNotification, FirmwareStatusNotification,
        DiagnosticsStatusNotification, ...): checked against its schema now (ValueError), sent as it
        is, kept until answered or given up on (D1). `created_at`: the message's time, ISO 8601."""
        checked_call(action, payload)
        text = json.dumps(payload)
        unique_id = message_id()
        cp, store = self.cp_id, self.store

        def write(terms: Terms) -> Queued:
            return store.queue_message(cp, action, text, unique_id, created_at, terms)

        await self.add(action, None, text, unique_id, created_at, write)

    async def add(
        self, action: str, tx: int | None, payload: str, unique_id: str, created_at: str,
        write: Callable[[Terms], Queued], bounded: bool = False, copies: Sequence[Outbox] = (),
    ) -> int:  # fmt: skip
        """Queue a message: `write(terms)` (run on the store thread) persists it with whatever it
        carries and returns its seq; `bounded`: within the bound (MeterValues). `copies`: the queues of
        reporting targets (bridge/reporting), each given the same message (its own message id) in the
        same commit, so a crash keeps all of them or none."""
        terms = self._terms(bounded)
        if not copies or tx is None:
            job = self.store.job(write, terms)
            job.add_done_callback(functools.partial(self._added, terms.done, action, tx, payload, unique_id,
                                                    created_at))  # fmt: skip
            queued: Queued = await asyncio.shield(job)
            return queued.seq
        others = [(copy, copy._terms(bounded), message_id()) for copy in copies]
        store = self.store

        def write_all(terms: Terms) -> tuple[Queued, list[Queued | None]]:
            first = write(terms)
            more: list[Queued | None] = []
            for copy, copy_terms, copy_id in others:
                try:
                    more.append(store.queue_report(copy.cp_id, action, tx, payload, copy_id, created_at,
                                                   copy_terms))  # fmt: skip
                except Exception:  # one target's queue failing must not cost the primary its message
                    if not store.outbox_holds(self.cp_id, first.seq):
                        raise  # SQLite rolled the whole transaction back: the primary's write with it
                    log.exception("%s: queueing %s for a reporting target failed", copy.cp_id, action)
                    more.append(None)
            return first, more

        group = self.store.job(write_all, terms)
        group.add_done_callback(functools.partial(self._added, terms.done, action, tx, payload, unique_id,
                                                  created_at, pick=_first))  # fmt: skip
        for n, (copy, copy_terms, copy_id) in enumerate(others):
            pick = functools.partial(_nth, n)
            group.add_done_callback(functools.partial(copy._added, copy_terms.done, action, tx, payload,
                                                      copy_id, created_at, pick=pick))  # fmt: skip
        both = await asyncio.shield(group)
        return both[0].seq

    def _terms(self, bounded: bool) -> Terms:
        """What the next outbox write does besides its own rows: the grouped removals, the bound."""
        head = self._window[0] if self._window else None
        return Terms(
            self._take_done(),
            self.bound if bounded else None,
            head.seq if head is not None and head.in_flight else None,
        )

    async def remove_now(self, message: Message, cs_id: int | None = None, ended: bool = False) -> None:
        """A durable removal of `message` (with what was grouped so far), for a `Kind.settled`:
        `cs_id` is the central system's id of its transaction; `ended`: its transaction goes too."""
        remove = self.store.remove_messages
        await self.remove_by(message, lambda done: remove(self.cp_id, done, True, message.tx, cs_id, ended))

    async def remove_by(self, message: Message, remove: Callable[[tuple[int, ...]], None]) -> None:
        """A durable removal of `message` and what was grouped so far by `remove(seqs)` (run on the
        store thread), which writes whatever else the answer changes in the same commit."""
        done = (*self._take_done(), message.seq)
        try:
            await self.store.run(remove, done)
        except Exception:
            log.exception("%s: removing answered messages from the store failed; tried again later",
                          self.cp_id)  # fmt: skip
            self._done[:0] = done

    # -- the session's side (DurableQueue) ------------------------------------------------
    def bind(self, wake: Callable[[], None]) -> None:
        self._wake = wake

    def head(self) -> Message | None:
        if self._window:
            return self._window[0]
        self._refill()
        return None

    def unread(self) -> int | None:
        return self._loaded if not self._window and self._pending > 0 else None

    def last_seq(self) -> int:
        return self._last

    async def settle(self, seq: int, delivered: bool) -> None:
        message = self._take(seq)
        if message is None:
            return
        self._last_head_at = message.created_at
        if not message.gone:
            self._pending -= 1
            self._counted()
        if len(self._window) < self.page // 2:
            self._refill()
        kind = message.kind
        if kind is not None and kind.settled is not None:
            await kind.settled(message, delivered)
            return
        self._done.append(seq)
        if len(self._done) >= BATCH:
            self._flush()

    def idle(self) -> None:
        self._flush()

    def pending(self) -> int:
        return self._pending

    def oldest_at(self) -> float | None:
        if not self._pending:
            return None
        stamp = self._window[0].created_at if self._window else self._last_head_at
        return _epoch(stamp) if stamp is not None else None

    async def wait_empty(self) -> None:
        await self._empty.wait()

    def in_memory(self) -> int:
        """How many queued messages are held in memory (at most about a page)."""
        return len(self._window)

    # -- inside --------------------------------------------------------------------------
    def _message(
        self, seq: int, action: str, tx: int | None, payload: str, unique_id: str, created_at: str
    ) -> Message:
        return Message(seq, action, tx, payload, unique_id, created_at, self.kinds.get(action))

    def _take(self, seq: int) -> Message | None:
        window = self._window
        if window and window[0].seq == seq:
            return window.popleft()
        for message in window:
            if message.seq == seq:
                window.remove(message)
                return message
        return None

    def _take_done(self) -> tuple[int, ...]:
        done, self._done = tuple(self._done), []
        return done

    def _counted(self) -> None:
        if self._pending > 0:
            self._empty.clear()
        else:
            self._empty.set()

    def _added(
        self, done: tuple[int, ...], action: str, tx: int | None, payload: str, unique_id: str,
        created_at: str, job: asyncio.Future[Any], pick: Callable[[Any], Queued | None] | None = None,
    ) -> None:  # fmt: skip
        if job.cancelled() or job.exception() is not None:
            self._done[:0] = done  # the write was undone whole: they are still to be removed
            return  # the caller gets the error
        queued = job.result() if pick is None else pick(job.result())
        if queued is None:  # this copy's write failed alone
            self._done[:0] = done
            self.lost += 1
            return
        for seq in queued.dropped:
            self._drop(seq)
        self._pending += 1
        self._last = max(self._last, queued.seq)
        if queued.seq > self._loaded:
            if self._complete and len(self._window) < self.page:
                self._window.append(self._message(queued.seq, action, tx, payload, unique_id, created_at))
                self._loaded = queued.seq
            else:
                self._complete = False  # it waits in the store for its page
        self._counted()
        self._wake()

    def _drop(self, seq: int) -> None:
        """The store dropped MeterValues `seq` at the bound."""
        self._pending -= 1
        self.dropped += 1
        for message in self._window:
            if message.seq == seq:
                if message.in_flight:
                    message.gone = True  # settled when its answer comes, counted now
                else:
                    self._window.remove(message)
                break
        if self.dropped == 1 or self.dropped % 1000 == 0:
            log.warning(
                "%s: %d messages are queued (the bound): dropped the oldest MeterValues (%d dropped so far)",
                self.cp_id, self.bound, self.dropped,
            )  # fmt: skip
            if self.on_bound is not None:
                self.on_bound(self.dropped)

    def _refill(self) -> None:
        """Read the next page, unless the window holds everything or a read is under way."""
        if self._complete or self._reading:
            return
        self._reading = True
        done = self._take_done()
        try:
            job = self.store.job(self.store.outbox_page, self.cp_id, self._loaded, self.page, done)
        except RuntimeError:  # the store is closed: the daemon is stopping
            self._reading = False
            self._done[:0] = done
            return
        job.add_done_callback(functools.partial(self._paged, done))

    def _paged(self, done: tuple[int, ...], job: asyncio.Future[list[OutboxRow]]) -> None:
        self._reading = False
        if job.cancelled() or job.exception() is not None:
            self._done[:0] = done
            log.error("%s: reading queued messages from the store failed: %r; trying again in 1 s",
                      self.cp_id, None if job.cancelled() else job.exception())  # fmt: skip
            asyncio.get_running_loop().call_later(1.0, self._wake)
            return
        rows = job.result()
        for row in rows:
            if row.seq > self._loaded:
                self._window.append(self._message(*_fields(row)))
        if rows:
            self._loaded = max(self._loaded, rows[-1].seq)
        self._complete = len(rows) < self.page
        self._wake()

    def _flush(self) -> None:
        """Write the grouped removals now (not waited for: the store thread keeps the order)."""
        if not self._done:
            return
        done = self._take_done()
        try:
            job = self.store.job(self.store.remove_messages, self.cp_id, done)
        except RuntimeError:  # the store is closed: they are sent again after the restart
            log.warning("%s: %d answered messages stay in the store (it is closed)", self.cp_id, len(done))
            return
        job.add_done_callback(functools.partial(self._flushed, done))

    def _flushed(self, done: tuple[int, ...], job: asyncio.Future[None]) -> None:
        if job.cancelled() or job.exception() is not None:
            log.error("%s: removing %d answered messages from the store failed: %r; tried again later",
                      self.cp_id, len(done), None if job.cancelled() else job.exception())  # fmt: skip
            self._done[:0] = done


def _first(result: tuple[Queued, list[Queued | None]]) -> Queued:
    return result[0]


def _nth(n: int, result: tuple[Queued, list[Queued | None]]) -> Queued | None:
    return result[1][n]


def _fields(row: OutboxRow) -> tuple[int, str, int | None, str, str, str]:
    return row.seq, row.action, row.tx, row.payload, row.unique_id, row.created_at


def _epoch(stamp: str) -> float | None:
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
