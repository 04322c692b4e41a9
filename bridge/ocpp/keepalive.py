"""How a link shows it is alive, on both levels, with the intervals read live (a ChangeConfiguration
takes effect at once, `configuration_changed`):

- websocket pings every WebSocketPingInterval; no pong within the interval (at least
  MIN_PONG_WAIT_S) means a dead link, which is dropped;
- a Heartbeat after HeartbeatInterval without other CALLs (any CALL sent counts, `on_traffic`); its
  answer sets the clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from ocpp.v16 import call
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from bridge.clock import Clock
from bridge.core.config_keys import Configuration
from bridge.flag import Flag
from bridge.ocpp.errors import CallFailed

MIN_PONG_WAIT_S = 2.0  # with a tiny ping interval, still give a slow link this long to answer


class Submit(Protocol):
    """Queues a CALL on the link (Session.submit); with `want_result`, the future of its answer."""

    def __call__(
        self, build: Callable[[], Any | None], *, drop_when_offline: bool = ..., want_result: bool = ...
    ) -> asyncio.Future[Any] | None: ...


class Keepalive:
    """The ping and heartbeat timers of one link; one per session, for its whole life."""

    def __init__(self, configuration: Configuration, clock: Clock, submit: Submit) -> None:
        self._configuration = configuration
        self._clock = clock
        self._submit = submit
        self._last_call_sent = 0.0
        self._config_changed = Flag()

    def configuration_changed(self) -> None:
        """HeartbeatInterval or WebSocketPingInterval may have changed: the timers read them again."""
        self._config_changed.set()

    def on_traffic(self, direction: str, action: str) -> None:
        if direction == "sent":  # a Heartbeat is due only after this long without another CALL
            self._last_call_sent = self._clock.monotonic()

    async def heartbeats(self) -> None:
        """Send Heartbeats while the link is up (the session cancels it)."""
        while True:
            interval = self._configuration.get_int("HeartbeatInterval")
            if interval <= 0:
                await self._wait_config_change(None)
                continue
            due = self._last_call_sent + interval - self._clock.monotonic()
            if due > 0:
                await self._wait_config_change(due)
                continue
            asked_at = self._clock.wall()
            future = self._submit(lambda: call.Heartbeat(), drop_when_offline=True, want_result=True)
            assert future is not None
            self._last_call_sent = self._clock.monotonic()  # no second heartbeat while this one waits
            try:
                answer = await future
            except CallFailed:
                continue
            self._clock.sync(answer.current_time, asked_at)

    async def pings(self, ws: ClientConnection, on_dead: Callable[[str], None]) -> None:
        """Ping per WebSocketPingInterval; no pong within the interval means a dead link: `on_dead`
        hears why, then the connection is aborted.

        A ping falls due an interval after the connection opened or the last pong. A configuration
        change makes the loop read the interval again, not ping at once: the Boot answer sets
        HeartbeatInterval on every connection, and 5,000 charge points pinging then cost their boot
        a frame, a pong and a timer each."""
        since = self._clock.monotonic()  # the connection was just opened
        while True:
            interval = self._configuration.get_int("WebSocketPingInterval")
            if interval <= 0:
                await self._wait_config_change(None)
                since = self._clock.monotonic()  # switched on now: a full interval from here
                continue
            due = since + interval - self._clock.monotonic()
            if due > 0:
                await self._wait_config_change(due)
                continue
            patience = max(interval, MIN_PONG_WAIT_S)
            try:
                pong = await ws.ping()
                async with asyncio.timeout(patience):
                    await pong
            except TimeoutError:
                on_dead(f"no pong within {patience} s: dropped the connection")
                ws.transport.abort()
                return
            except ConnectionClosed:
                return
            since = self._clock.monotonic()

    async def _wait_config_change(self, timeout: float | None) -> None:
        self._config_changed.clear()
        await self._config_changed.wait_at_most(timeout)
