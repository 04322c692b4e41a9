"""One charge point's link to its central system.

Owns, for the daemon's whole life:
- the connect loop: connect, serve, and after any failure wait a jittered
  exponential back-off and connect again, forever;
- the boot state machine (`bridge.core.boot`) and the BootNotification
  exchange that opens each connection that needs it;
- the keepalive and the heartbeat (`bridge.ocpp.keepalive`), run while a
  connection is up;
- the outgoing queue and its single sender (`bridge.ocpp.sender`), so that
  CALLs leave one at a time (OCPP-J 4.1.1) and only once Boot was Accepted;
  messages that must survive a restart come from a `DurableQueue` (the
  outbox) attached to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ocpp.v16 import call
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from bridge.clock import Clock
from bridge.core.backoff import Backoff
from bridge.core.boot import Boot, BootState
from bridge.core.config_keys import Configuration
from bridge.flag import Flag
from bridge.ocpp.connection import describe_failure, open_connection, plain_link
from bridge.ocpp.errors import CallFailed, NotConnected
from bridge.ocpp.keepalive import Keepalive
from bridge.ocpp.ports import FrameSink, LinkSecurity, LinkSettings
from bridge.ocpp.rpc import Endpoint, Observer
from bridge.ocpp.sender import DurableQueue, Sender
from bridge.ocpp.wire import to_wire

if TYPE_CHECKING:
    from bridge.metrics import RpcMetrics

log = logging.getLogger("bridge.session")

STABLE_CONNECTION_S = 10.0  # a connection that lived this long resets the back-off
CLOSE_TIMEOUT_S = 2.0  # a stop waits this long at most for the close handshake


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
        log_name: str | None = None,
    ) -> None:
        self.cfg = cfg
        # What its log lines and frames are named by (default: the identity); a reporting target's
        # link names its target too, so its lines are not taken for the primary's.
        self.name = log_name or cfg.id
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
        self._sender = Sender(self.name, configuration, clock, lambda: self._endpoint)
        self._keepalive = Keepalive(configuration, clock, self.submit)
        self._closing = False
        self._boot_wake = Flag()
        self._drop_reason: str | None = None  # why we ended the current connection ourselves
        self.security: LinkSecurity = plain_link(cfg)  # how to connect (the runtime sets its own)

    # -- public ------------------------------------------------------------
    observer: Observer | None = None  # sees every frame (the demo's timeline)
    on_invalid_message: Callable[[str], None] | None = None  # a CALL refused as not valid OCPP
    frame_sink: FrameSink | None = None  # every frame in and out (the runtime's ring for the API)

    @property
    def endpoint(self) -> Endpoint | None:
        return self._endpoint

    @property
    def online(self) -> bool:
        return self._sender.ready

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
        return self._sender.submit(
            build, on_result=on_result, drop_when_offline=drop_when_offline, want_result=want_result
        )

    def attach(self, durable: DurableQueue) -> None:
        """The durable queue (the outbox) this session sends from, besides its own in-memory one."""
        self._sender.attach(durable)

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
        self._keepalive.configuration_changed()

    def settled_in(self) -> bool:
        """Online, and what it said on coming online (its statuses) has been answered."""
        return self.online and self._sender.quiet()

    def pending_transactional(self) -> int:
        """How many durable messages (transaction messages, ...) wait to be delivered."""
        return self._sender.pending()

    def oldest_transactional_at(self) -> float | None:
        """When the oldest queued durable message was made (epoch seconds), or None."""
        return self._sender.oldest_at()

    async def transactional_sent(self, timeout: float) -> bool:
        """Wait (at most `timeout`) until no durable message is queued; True if none is."""
        return await self._sender.durable_sent(timeout)

    async def run(self) -> None:
        sender = asyncio.create_task(self._sender.run(), name=f"{self.name} sender")
        try:
            while not self._closing:  # a stop: no reconnecting while the daemon winds down
                await self._connect_and_serve()
                if self._closing:
                    break
                delay = self.backoff.next_delay()
                log.debug("%s: reconnecting in %.1f s", self.name, delay)
                await asyncio.sleep(delay)
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
            self._sender.flush()  # what the durable queue grouped is written before the store closes

    async def restart(self) -> None:
        """As after a reboot: drop the connection; the next one starts with a BootNotification."""
        self.boot = Boot(force_on_reconnect=self.cfg.boot_on_reconnect)
        self.backoff.reset()
        if self._ws is not None:
            self._drop_reason = "restarting after Reset"
            await self._ws.close(code=1012, reason="reset")  # 1012: service restart

    async def reconnect(self, reason: str) -> None:
        """Drop the connection and open a new one at once (new credentials, a new security profile or
        certificate); queued messages stay queued. No BootNotification unless its content changed (D4)."""
        self.backoff.reset()
        if self._ws is not None:
            self._drop_reason = reason
            await self._ws.close(code=1000, reason="reconnecting")

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
            log.warning("%s: %s", self.name, message)
        else:
            log.debug("%s: %s (again)", self.name, message)
        self.link.last_error = message
        self.link.last_error_at = self.clock.now()

    async def _connect_and_serve(self) -> None:
        try:
            options = await self.security.options()
        except Exception as exc:  # a certificate file that cannot be read (a raise tried falls back)
            self._record_error(f"cannot prepare the connection: {exc}")
            return
        try:
            ws = await open_connection(
                self.cfg, options, open_timeout=float(self.configuration.get_int("MessageTimeout"))
            )
        except Exception as exc:  # every failure is "retry later"
            told = None if self._closing else self.security.failed(options, exc)
            self._record_error(told or describe_failure(exc, self.cfg, options.url))
            return
        try:
            self.security.opened(options)
        except Exception:  # its bookkeeping failing must not end the connect loop for good
            log.exception("%s: after opening the connection", self.name)
        self._ws = ws
        self._drop_reason = None
        self.link.connected = True
        self.link.connected_since = self.clock.now()
        log.info("%s: connected to %s", self.name, options.url)
        endpoint = Endpoint(
            ws,
            self.handlers,
            name=self.name,
            timeout=lambda: float(self.configuration.get_int("MessageTimeout")),
            on_traffic=self._keepalive.on_traffic,
            observer=self.observer,
            may_answer=lambda: self.boot.may_answer(self.clock.monotonic()),
            metrics=self.rpc_metrics,
            on_invalid=self.on_invalid_message,
            frame_sink=self.frame_sink,
        )
        self._endpoint = endpoint
        started = self.clock.monotonic()
        tasks = [
            asyncio.create_task(self._boot_then_online(endpoint)),
            asyncio.create_task(self._keepalive.pings(ws, self._dropped_dead)),
        ]
        try:
            await endpoint.run()
        except ConnectionClosed as exc:
            self._record_error(
                self._drop_reason or f"connection closed (code {exc.rcvd.code if exc.rcvd else 1006})"
            )
        except Exception as exc:
            log.exception("%s: connection failed", self.name)
            self._record_error(f"connection failed: {exc}")
        finally:
            self._sender.pause()
            self._endpoint = None
            self._ws = None
            self.link.connected = False
            self.link.connected_since = None
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await endpoint.close()
            await self._release(ws)
            self._sender.drop_offline()
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

    def _on_boot_answer(self, answer: Any, content: str, asked_at: float) -> None:
        """Runs in the receive loop, before the central system's next frame is handled."""
        self.clock.sync(answer.current_time, asked_at)
        self.boot.on_answer(answer.status, answer.interval, content, self.clock.monotonic())
        log.info("%s: BootNotification %s (interval %s s)", self.name, answer.status, answer.interval)
        if answer.status != "Accepted":
            return
        self.boot_generation += 1
        self.link.accepted_since = self.clock.now()
        if answer.interval > 0:
            # The boot interval is the central system's HeartbeatInterval (§4.2).
            outcome = self.configuration.change("HeartbeatInterval", str(answer.interval))
            if outcome.status != "Accepted":
                log.warning(
                    "%s: boot interval %d s not adopted: %s", self.name, answer.interval, outcome.reason
                )

    async def _boot_then_online(self, endpoint: Endpoint) -> None:
        payload = self._boot_payload()
        content = json.dumps(to_wire(payload), sort_keys=True)
        if self.boot.on_connected(content):
            while self.boot.state is not BootState.ACCEPTED:
                wait = self.boot.next_boot_at - self.clock.monotonic()
                if wait > 0:
                    self._boot_wake.clear()
                    await self._boot_wake.wait_at_most(wait)
                self.boot.on_sent()
                asked_at = self.clock.wall()
                try:
                    await endpoint.call(
                        payload,
                        on_result=functools.partial(self._on_boot_answer, content=content, asked_at=asked_at),
                    )
                except NotConnected:
                    return
                except CallFailed as exc:
                    log.warning("%s: BootNotification failed: %s", self.name, exc)
                    self.boot.on_failure(self.clock.monotonic())
        self.backoff.reset()
        self._sender.resume()  # what was queued before now is backlog
        self._on_online(True)
        await self._keepalive.heartbeats()

    def _dropped_dead(self, reason: str) -> None:
        self._drop_reason = reason
