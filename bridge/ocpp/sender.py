"""The single sender of one charge point's link: CALLs leave one at a time (OCPP-J 4.1.1), and only
while the link is ready (connected, BootNotification Accepted).

Two sources feed it. Messages that need not survive a restart (StatusNotification, Authorize,
Heartbeat, ...) wait in memory, here. Messages that must (transaction messages, and later security
events and firmware/diagnostics statuses) are owned by a `DurableQueue` (the outbox): the sender pulls
its head, keeps the head's attempts on it (D1), and settles it once answered or given up on; they keep
their order and survive a dropped connection. Other messages may overtake a durable one (OCPP 1.6
§3.7) while it waits for a retry or is backlog from before this connection; otherwise messages leave
in the order they were made, which the sender tells from the durable queue's seq: an in-memory
message records the newest durable seq when it is made (`durable_mark`).

Retry rules. An in-memory message is sent once: a timeout or an error answer fails its future; it
stays queued only when the link is gone (the next connection sends it), unless it is to be dropped
when offline. A durable message is "not delivered yet" after a timeout (sent again after
TIMEOUT_RESEND_PAUSE_S, D1); an error answer is a failed attempt, retried after
TransactionMessageRetryInterval times the attempts made until TransactionMessageAttempts, then given up on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from bridge.clock import Clock
from bridge.core.config_keys import Configuration
from bridge.flag import Flag
from bridge.ocpp.errors import CallErrorReceived, CallTimeout, InvalidResponse, NotConnected
from bridge.ocpp.rpc import Endpoint
from bridge.ocpp.wire import message_id

log = logging.getLogger("bridge.session")

TIMEOUT_RESEND_PAUSE_S = 5.0  # a timed-out transaction message is resent after this pause


@dataclass(eq=False, kw_only=True)
class Outgoing:
    """A CALL waiting in memory. `build` runs at send time (ids known by then); None skips it."""

    build: Callable[[], Any | None] = field(kw_only=False)
    on_result: Callable[[Any], None] | None = None  # applied before the next message is built
    drop_when_offline: bool = False
    future: asyncio.Future[Any] | None = None
    durable_mark: int = 0  # the newest durable message's seq when this one was made: those go first


class DurableCall(Protocol):
    """A message that must survive a restart, as its durable queue hands it to the sender.

    The queue owns it until it is settled; the sender keeps its attempts on it (D1)."""

    seq: int  # its place in the durable queue: durable messages leave in this order
    # Kept when it is sent again on a new connection (the central system may have seen it before
    # the drop), but never twice on one connection (OCPP-J 4.1.3): see `_try_durable`.
    unique_id: str
    on_result: Callable[[Any], None] | None  # applied as the answer is read, before the next build
    attempts: int
    not_before: float  # monotonic: not sent again before this (a retry's pause)
    sent_on: object | None  # the endpoint it was last sent on
    in_flight: bool  # on its way now: the queue's bound must not drop it

    def build(self) -> Any | None:
        """The CALL, made at send time (the ids it carries are known by then); None: skip it."""
        ...


class DurableQueue(Protocol):
    """Messages that must survive a restart: the session pulls them, one at a time, in order."""

    def bind(self, wake: Callable[[], None]) -> None:
        """`wake` is to be called whenever the head may have changed (a message added, a page read)."""
        ...

    def head(self) -> DurableCall | None:
        """The oldest message not settled, or None (none queued, or it is still being read)."""
        ...

    def unread(self) -> int | None:
        """While the head is being read from the store: the seq it comes after (everything up to
        that seq was settled); None otherwise."""
        ...

    def last_seq(self) -> int:
        """The seq of the newest message queued so far (0: none)."""
        ...

    async def settle(self, seq: int, delivered: bool) -> None:
        """The head was answered (True) or given up on (False): it leaves the queue."""
        ...

    def idle(self) -> None:
        """The sender has nothing to send now: a moment to write what the queue grouped."""
        ...

    def pending(self) -> int:
        """How many messages are queued and not settled."""
        ...

    def oldest_at(self) -> float | None:
        """When the oldest queued message was made (epoch seconds), or None."""
        ...

    async def wait_empty(self) -> None:
        """Until no message is queued."""
        ...


class Sender:
    """The outgoing queue of one link and the one task that empties it (`run`).

    The session owns the connection: `endpoint()` is its current one (None between connections);
    it calls `resume()` once Boot is Accepted and `pause()` when the link goes."""

    def __init__(
        self, name: str, configuration: Configuration, clock: Clock, endpoint: Callable[[], Endpoint | None]
    ) -> None:
        self._name = name
        self._configuration = configuration
        self._clock = clock
        self._endpoint = endpoint
        self._ready = Flag()  # connected and Boot Accepted
        self._wakeup = Flag()
        self._normal: deque[Outgoing] = deque()
        self._durable: DurableQueue | None = None  # the outbox, once attached
        self._online_mark = 0  # durable messages up to this seq are backlog from before this connection

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def submit(
        self,
        build: Callable[[], Any | None],
        *,
        on_result: Callable[[Any], None] | None = None,
        drop_when_offline: bool = False,
        want_result: bool = False,
    ) -> asyncio.Future[Any] | None:
        """Queue a CALL in memory (see Session.submit)."""
        item = Outgoing(
            build,
            on_result=on_result,
            drop_when_offline=drop_when_offline,
            durable_mark=self._durable.last_seq() if self._durable is not None else 0,
        )
        if want_result:
            item.future = asyncio.get_running_loop().create_future()
        self._normal.append(item)
        self._wakeup.set()
        return item.future

    def attach(self, durable: DurableQueue) -> None:
        """The durable queue (the outbox) to send from, besides the in-memory one."""
        self._durable = durable
        durable.bind(self._wakeup.set)

    def quiet(self) -> bool:
        """No message other than a durable one is queued or waits for its answer."""
        return not self._normal

    def pending(self) -> int:
        """How many durable messages wait to be delivered."""
        return self._durable.pending() if self._durable is not None else 0

    def oldest_at(self) -> float | None:
        """When the oldest queued durable message was made (epoch seconds), or None."""
        return self._durable.oldest_at() if self._durable is not None else None

    async def durable_sent(self, timeout: float) -> bool:
        """Wait (at most `timeout`) until no durable message is queued; True if none is."""
        if self._durable is None:
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._durable.wait_empty(), timeout)
        return self._durable.pending() == 0

    def resume(self) -> None:
        """Boot was Accepted on this connection: send. What was queued before now is backlog."""
        self._online_mark = self._durable.last_seq() if self._durable is not None else 0
        self._ready.set()
        self._wakeup.set()

    def pause(self) -> None:
        """The link is gone or going: nothing more is sent until `resume()`."""
        self._ready.clear()

    def drop_offline(self) -> None:
        """The connection ended: messages that were to be dropped when offline fail with NotConnected."""
        kept: deque[Outgoing] = deque()
        for item in self._normal:
            if item.drop_when_offline:
                if item.future is not None and not item.future.done():
                    item.future.set_exception(NotConnected("connection lost before sending"))
            else:
                kept.append(item)
        self._normal = kept

    def flush(self) -> None:
        """What the durable queue grouped is written now (before the store closes)."""
        if self._durable is not None:
            self._durable.idle()

    # -- the send loop ---------------------------------------------------------
    def _next_item(self, now: float) -> tuple[Outgoing | DurableCall | None, float | None]:
        """The next item to send, or how long until the durable head may go.

        Messages leave in the order they were made, except that other messages overtake durable
        messages (§3.7 allows it) that wait for a retry or are a backlog from before this
        connection: a status or an Authorize does not wait behind hours of queued meter values.
        """
        normal = self._normal[0] if self._normal else None
        queue = self._durable
        durable = queue.head() if queue is not None else None
        if durable is None:
            # While the head is being read from the store, a message that must follow a durable one
            # made on this connection waits for it (the queue wakes the sender).
            after = queue.unread() if queue is not None else None
            if normal is None or after is None or normal.durable_mark <= max(after, self._online_mark):
                return normal, None
            return None, None
        if durable.not_before > now:
            return normal, None if normal is not None else durable.not_before - now
        backlog = durable.seq <= self._online_mark
        if normal is None or (durable.seq <= normal.durable_mark and not backlog):
            return durable, None
        return normal, None

    async def run(self) -> None:
        """Send, forever (the session cancels it)."""
        while True:
            if not self._ready.is_set():
                if self._durable is not None:
                    self._durable.idle()  # offline: what the queue grouped need not wait for the link
                await self._ready.wait()
            item, wait = self._next_item(self._clock.monotonic())
            if item is None:
                if self._durable is not None:
                    self._durable.idle()
                self._wakeup.clear()
                await self._wakeup.wait_at_most(wait)
                continue
            if isinstance(item, Outgoing):
                await self._send_normal(item)
                continue
            delivered = await self._try_durable(item)
            if delivered is not None:
                assert self._durable is not None
                await self._durable.settle(item.seq, delivered)

    def _settle(self, item: Outgoing, result: Any = None, error: BaseException | None = None) -> None:
        if self._normal and self._normal[0] is item:
            self._normal.popleft()
        if item.future is None or item.future.done():
            return
        if error is not None:
            item.future.set_exception(error)
        else:
            item.future.set_result(result)

    async def _send_normal(self, item: Outgoing) -> None:
        """Send once; it stays queued only when the link is gone (and it may wait for the next)."""
        payload = item.build()
        endpoint = self._endpoint()
        if payload is None:
            self._settle(item)
            return
        if endpoint is None:
            return
        try:
            result = await endpoint.call(payload, on_result=item.on_result)
        except NotConnected:
            # The link is gone or going: wait for the next one. Without this the sender would
            # spin on a closing socket (its send fails without yielding) and starve the loop.
            self._ready.clear()
            return  # stays queued; the next connection sends it
        except CallTimeout as exc:
            self._settle(item, error=exc)
            return
        except (CallErrorReceived, InvalidResponse) as exc:
            log.warning("%s: %s", self._name, exc)
            self._settle(item, error=exc)
            return
        self._settle(item, result)

    async def _try_durable(self, item: DurableCall) -> bool | None:
        """Send once: True answered, False given up on, None still queued (D1 for the rest)."""
        payload = item.build()
        endpoint = self._endpoint()
        if payload is None:
            return False
        if endpoint is None:
            return None
        if item.sent_on is endpoint:
            item.unique_id = message_id()
        item.sent_on = endpoint
        item.in_flight = True
        try:
            await endpoint.call(payload, on_result=item.on_result, unique_id=item.unique_id)
        except NotConnected:
            self._ready.clear()  # as in _send_normal
            return None
        except CallTimeout as exc:
            # D1: a timeout is "not delivered yet", not a failed attempt
            item.not_before = self._clock.monotonic() + TIMEOUT_RESEND_PAUSE_S
            log.warning("%s: %s; will resend", self._name, exc)
            return None
        except (CallErrorReceived, InvalidResponse) as exc:
            log.warning("%s: %s", self._name, exc)
            item.attempts += 1
            if item.attempts < self._configuration.get_int("TransactionMessageAttempts"):
                retry = self._configuration.get_int("TransactionMessageRetryInterval") * item.attempts
                item.not_before = self._clock.monotonic() + retry
                return None
            log.error(
                "%s: giving up on %s after %d attempts",
                self._name,
                getattr(payload, "action", type(payload).__name__),
                item.attempts,
            )
            return False
        finally:
            item.in_flight = False
        return True
