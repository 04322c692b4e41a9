"""One charge point's link to its central system.

Owns, for the daemon's whole life:
- the connect loop: connect, serve, and after any failure wait a jittered
  exponential back-off and connect again, forever;
- the boot state machine (`bridge.core.boot`) and the BootNotification
  exchange that opens each connection that needs it;
- the keepalive: websocket pings every WebSocketPingInterval, read live, so
  a ChangeConfiguration takes effect at once; a missing pong drops the link;
- the heartbeat: a Heartbeat after HeartbeatInterval without other CALLs;
- the outgoing queue and its single sender, so that CALLs leave one at a
  time (OCPP-J 4.1.1) and only once Boot was Accepted.

Two sources feed the sender. Messages that need not survive a restart
(StatusNotification, Authorize, Heartbeat, ...) wait in memory, here.
Messages that must (transaction messages, and later security events and
firmware/diagnostics statuses) are owned by a `DurableQueue` (the outbox):
the sender pulls its head, keeps the head's attempts on it (D1), and settles
it once answered or given up on; they keep their order and survive a dropped
connection. Other messages may overtake a durable one (OCPP 1.6 §3.7) while
it waits for a retry or is backlog from before this connection; otherwise
messages leave in the order they were made, which the sender tells from the
durable queue's seq: an in-memory message records the newest durable seq
when it is made (`durable_mark`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from ocpp.v16 import call
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from bridge.clock import Clock
from bridge.core.backoff import Backoff
from bridge.core.boot import Boot, BootState
from bridge.core.config_keys import Configuration
from bridge.ocpp.connection import describe_failure, open_connection
from bridge.ocpp.errors import CallErrorReceived, CallFailed, CallTimeout, InvalidResponse, NotConnected
from bridge.ocpp.ports import LinkSettings
from bridge.ocpp.rpc import Endpoint, Observer
from bridge.ocpp.wire import to_wire

if TYPE_CHECKING:
    from bridge.metrics import RpcMetrics

log = logging.getLogger("bridge.session")

STABLE_CONNECTION_S = 10.0  # a connection that lived this long resets the back-off
CLOSE_TIMEOUT_S = 2.0  # a stop waits this long at most for the close handshake
TIMEOUT_RESEND_PAUSE_S = 5.0  # a timed-out transaction message is resent after this pause
MIN_PONG_WAIT_S = 2.0  # with a tiny ping interval, still give a slow link this long to answer


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


@dataclass
class LinkStatus:
    """What an installer asks first; served by the status API."""

    connected: bool = False
    connected_since: datetime | None = None
    accepted_since: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None


class Session:
    def __init__(
        self,
        cfg: LinkSettings,
        configuration: Configuration,
        handlers: object,
        clock: Clock,
        boot_payload: Callable[[], call.BootNotification],
        on_online: Callable[[bool], None],
    ) -> None:
        self.cfg = cfg
        self.configuration = configuration
        self.handlers = handlers
        self.clock = clock
        self._boot_payload = boot_payload
        self._on_online = on_online
        self.boot = Boot(force_on_reconnect=cfg.boot_on_reconnect)
        self.boot_generation = 0  # counts Accepted BootNotifications
        self.link = LinkStatus()
        self.rpc_metrics: RpcMetrics | None = None  # counts the traffic (set by the charge point)
        self.backoff = Backoff(cfg.reconnect.initial_s, cfg.reconnect.max_s)
        self._endpoint: Endpoint | None = None
        self._ws: ClientConnection | None = None
        self._ready = asyncio.Event()  # connected and Boot Accepted
        self._wakeup = asyncio.Event()
        self._normal: deque[Outgoing] = deque()
        self._durable: DurableQueue | None = None  # the outbox, once attached
        self._last_call_sent = 0.0
        self._config_changed = asyncio.Event()
        self._closing = False
        self._online_mark = 0  # durable messages up to this seq are backlog from before this connection
        self._boot_wake = asyncio.Event()
        self._drop_reason: str | None = None  # why we ended the current connection ourselves

    # -- public ------------------------------------------------------------
    observer: Observer | None = None  # sees every frame (the demo's timeline)

    @property
    def endpoint(self) -> Endpoint | None:
        return self._endpoint

    @property
    def online(self) -> bool:
        return self._ready.is_set()

    @property
    def accepted(self) -> bool:
        return self.boot.state is BootState.ACCEPTED

    def submit(
        self,
        build: Callable[[], Any | None],
        *,
        on_result: Callable[[Any], None] | None = None,
        drop_when_offline: bool = False,
        want_result: bool = False,
    ) -> asyncio.Future[Any] | None:
        """Queue a CALL in memory; `build` makes it at send time, `on_result` takes its answer at once.
        Messages that must survive a restart go to the durable queue instead (`attach`)."""
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
        """The durable queue (the outbox) this session sends from, besides its own in-memory one."""
        self._durable = durable
        durable.bind(self._wakeup.set)

    def spawn(self, coro: Any, what: str) -> None:
        """Run a follow-up of the CALL being handled (never `call()` inside a handler)."""
        if self._endpoint is None:
            coro.close()
            return
        self._endpoint.spawn(coro, what)

    def after_reply(self, followup: Callable[[], Awaitable[Any] | None]) -> None:
        """Run `followup` once the answer to the CALL being handled is on the wire (Replies)."""
        if self._endpoint is not None:
            self._endpoint.after_reply(followup)

    def boot_now(self) -> None:
        """TriggerMessage(BootNotification) while not Accepted: boot again without waiting the interval."""
        self.boot.trigger()
        self._boot_wake.set()

    def configuration_changed(self) -> None:
        """Timers re-read HeartbeatInterval, WebSocketPingInterval, ... at once."""
        self._config_changed.set()

    def pending_transactional(self) -> int:
        """How many durable messages (transaction messages, ...) wait to be delivered."""
        return self._durable.pending() if self._durable is not None else 0

    def oldest_transactional_at(self) -> float | None:
        """When the oldest queued durable message was made (epoch seconds), or None."""
        return self._durable.oldest_at() if self._durable is not None else None

    async def run(self) -> None:
        sender = asyncio.create_task(self._send_loop(), name=f"{self.cfg.id} sender")
        try:
            while not self._closing:  # a stop: no reconnecting while the daemon winds down
                await self._connect_and_serve()
                if self._closing:
                    break
                delay = self.backoff.next_delay()
                log.debug("%s: reconnecting in %.1f s", self.cfg.id, delay)
                await asyncio.sleep(delay)
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
            if self._durable is not None:
                self._durable.idle()  # what the queue grouped is written before the store closes

    async def restart(self) -> None:
        """As after a reboot: drop the connection; the next one starts with a BootNotification."""
        self.boot = Boot(force_on_reconnect=self.cfg.boot_on_reconnect)
        self.backoff.reset()
        if self._ws is not None:
            self._drop_reason = "restarting after Reset"
            await self._ws.close(code=1012, reason="reset")  # 1012: service restart

    async def close(self) -> None:
        """Close the link for a stop, in at most CLOSE_TIMEOUT_S (a dead peer never answers the close
        handshake; systemd's stop timeout must not be spent here)."""
        self._closing = True
        if self._ws is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await self._ws.close()

    # -- connection lifecycle ------------------------------------------------
    def _record_error(self, message: str) -> None:
        if self._closing:
            return
        if message != self.link.last_error:
            log.warning("%s: %s", self.cfg.id, message)
        else:
            log.debug("%s: %s (again)", self.cfg.id, message)
        self.link.last_error = message
        self.link.last_error_at = self.clock.now()

    async def _connect_and_serve(self) -> None:
        try:
            ws = await open_connection(
                self.cfg, open_timeout=float(self.configuration.get_int("MessageTimeout"))
            )
        except Exception as exc:  # every failure is "retry later"
            self._record_error(describe_failure(exc, self.cfg))
            return
        self._ws = ws
        self._drop_reason = None
        self.link.connected = True
        self.link.connected_since = self.clock.now()
        log.info("%s: connected to %s", self.cfg.id, self.cfg.csms_url)
        endpoint = Endpoint(
            ws,
            self.handlers,
            name=self.cfg.id,
            timeout=lambda: float(self.configuration.get_int("MessageTimeout")),
            on_traffic=self._count,
            observer=self.observer,
            may_answer=lambda: self.boot.may_answer(self.clock.monotonic()),
            metrics=self.rpc_metrics,
        )
        self._endpoint = endpoint
        started = self.clock.monotonic()
        tasks = [
            asyncio.create_task(self._boot_then_online(endpoint)),
            asyncio.create_task(self._keepalive(ws)),
        ]
        try:
            await endpoint.run()
        except ConnectionClosed as exc:
            self._record_error(
                self._drop_reason or f"connection closed (code {exc.rcvd.code if exc.rcvd else 1006})"
            )
        except Exception as exc:
            log.exception("%s: connection failed", self.cfg.id)
            self._record_error(f"connection failed: {exc}")
        finally:
            self._ready.clear()
            self._endpoint = None
            self._ws = None
            self.link.connected = False
            self.link.connected_since = None
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await endpoint.close()
            await self._release(ws)
            self._fail_offline_items()
            self._on_online(False)
            if self.clock.monotonic() - started >= STABLE_CONNECTION_S:
                self.backoff.reset()

    @staticmethod
    async def _release(ws: ClientConnection) -> None:
        """Never leave a connection behind: the next one is opened only once this one is closed.

        The link normally ends closed already; after a failure of ours it may still be open, and a
        socket left open is a silent link to the central system and a leaked descriptor here.
        """
        if ws.state is State.CLOSED:
            return
        with contextlib.suppress(Exception):
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await ws.close(code=1011, reason="internal error")
        ws.transport.abort()  # nothing left to do once closed; ends it if the peer never answered

    def _on_boot_answer(self, answer: Any, content: str) -> None:
        """Runs in the receive loop, before the central system's next frame is handled."""
        self.clock.sync(answer.current_time)
        self.boot.on_answer(answer.status, answer.interval, content, self.clock.monotonic())
        log.info("%s: BootNotification %s (interval %s s)", self.cfg.id, answer.status, answer.interval)
        if answer.status != "Accepted":
            return
        self.boot_generation += 1
        self.link.accepted_since = self.clock.now()
        if answer.interval > 0:
            # The boot interval is the central system's HeartbeatInterval (§4.2).
            outcome = self.configuration.change("HeartbeatInterval", str(answer.interval))
            if outcome.status != "Accepted":
                log.warning(
                    "%s: boot interval %d s not adopted: %s", self.cfg.id, answer.interval, outcome.reason
                )

    async def _boot_then_online(self, endpoint: Endpoint) -> None:
        payload = self._boot_payload()
        content = json.dumps(to_wire(payload), sort_keys=True)
        if self.boot.on_connected(content):
            while self.boot.state is not BootState.ACCEPTED:
                wait = self.boot.next_boot_at - self.clock.monotonic()
                if wait > 0:
                    self._boot_wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._boot_wake.wait(), wait)
                self.boot.on_sent()
                try:
                    await endpoint.call(
                        payload, on_result=lambda answer: self._on_boot_answer(answer, content)
                    )
                except NotConnected:
                    return
                except CallFailed as exc:
                    log.warning("%s: BootNotification failed: %s", self.cfg.id, exc)
                    self.boot.on_failure(self.clock.monotonic())
        self.backoff.reset()
        # What was queued before now is backlog.
        self._online_mark = self._durable.last_seq() if self._durable is not None else 0
        self._ready.set()
        self._wakeup.set()
        self._on_online(True)
        await self._heartbeat()

    async def _heartbeat(self) -> None:
        while True:
            interval = self.configuration.get_int("HeartbeatInterval")
            if interval <= 0:
                await self._wait_config_change(None)
                continue
            due = self._last_call_sent + interval - self.clock.monotonic()
            if due > 0:
                await self._wait_config_change(due)
                continue
            future = self.submit(lambda: call.Heartbeat(), drop_when_offline=True, want_result=True)
            assert future is not None
            self._last_call_sent = self.clock.monotonic()  # no second heartbeat while this one waits
            try:
                answer = await future
            except CallFailed:
                continue
            self.clock.sync(answer.current_time)

    async def _wait_config_change(self, timeout: float | None) -> None:
        self._config_changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._config_changed.wait(), timeout)

    async def _keepalive(self, ws: ClientConnection) -> None:
        """Ping per WebSocketPingInterval; no pong within the interval means a dead link."""
        while True:
            interval = self.configuration.get_int("WebSocketPingInterval")
            if interval <= 0:
                await self._wait_config_change(None)
                continue
            await self._wait_config_change(interval)
            patience = max(interval, MIN_PONG_WAIT_S)
            try:
                pong = await ws.ping()
                await asyncio.wait_for(pong, timeout=patience)
            except TimeoutError:
                self._drop_reason = f"no pong within {patience} s: dropped the connection"
                ws.transport.abort()
                return
            except ConnectionClosed:
                return

    def _count(self, direction: str, action: str) -> None:
        if direction == "sent":  # a Heartbeat is due only after this long without another CALL
            self._last_call_sent = self.clock.monotonic()

    def _fail_offline_items(self) -> None:
        kept: deque[Outgoing] = deque()
        for item in self._normal:
            if item.drop_when_offline:
                if item.future is not None and not item.future.done():
                    item.future.set_exception(NotConnected("connection lost before sending"))
            else:
                kept.append(item)
        self._normal = kept

    # -- the single sender ---------------------------------------------------
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

    async def _send_loop(self) -> None:
        while True:
            if not self._ready.is_set():
                if self._durable is not None:
                    self._durable.idle()  # offline: what the queue grouped need not wait for the link
                await self._ready.wait()
            item, wait = self._next_item(self.clock.monotonic())
            if item is None:
                if self._durable is not None:
                    self._durable.idle()
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), wait)
                continue
            if isinstance(item, Outgoing):
                await self._send_normal(item)
                continue
            delivered = await self._try_durable(item)
            if delivered is not None:
                assert self._durable is not None
                await self._durable.settle(item.seq, delivered)

    async def transactional_sent(self, timeout: float) -> bool:
        """Wait (at most `timeout`) until no durable message is queued; True if none is."""
        if self._durable is None:
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._durable.wait_empty(), timeout)
        return self._durable.pending() == 0

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
        endpoint = self._endpoint
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
            log.warning("%s: %s", self.cfg.id, exc)
            self._settle(item, error=exc)
            return
        self._settle(item, result)

    async def _try_durable(self, item: DurableCall) -> bool | None:
        """Send once: True answered, False given up on, None still queued (D1 for the rest)."""
        payload = item.build()
        endpoint = self._endpoint
        if payload is None:
            return False
        if endpoint is None:
            return None
        if item.sent_on is endpoint:
            item.unique_id = str(uuid.uuid4())
        item.sent_on = endpoint
        item.in_flight = True
        try:
            await endpoint.call(payload, on_result=item.on_result, unique_id=item.unique_id)
        except NotConnected:
            self._ready.clear()  # as in _send_normal
            return None
        except CallTimeout as exc:
            # D1: a timeout is "not delivered yet", not a failed attempt
            item.not_before = self.clock.monotonic() + TIMEOUT_RESEND_PAUSE_S
            log.warning("%s: %s; will resend", self.cfg.id, exc)
            return None
        except (CallErrorReceived, InvalidResponse) as exc:
            log.warning("%s: %s", self.cfg.id, exc)
            item.attempts += 1
            if item.attempts < self.configuration.get_int("TransactionMessageAttempts"):
                retry = self.configuration.get_int("TransactionMessageRetryInterval") * item.attempts
                item.not_before = self.clock.monotonic() + retry
                return None
            log.error(
                "%s: giving up on %s after %d attempts",
                self.cfg.id,
                getattr(payload, "action", type(payload).__name__),
                item.attempts,
            )
            return False
        finally:
            item.in_flight = False
        return True
