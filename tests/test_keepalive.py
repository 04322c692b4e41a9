"""bridge.ocpp.keepalive: when websocket pings fall due (time moved by hand, the link a stand-in that
answers every ping at once)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from bridge.core.config_keys import FEATURES, Configuration
from bridge.ocpp.keepalive import Keepalive
from tests.helpers.clock import ManualClock

FIXED = {"NumberOfConnectors": "1", "SupportedFeatureProfiles": "Core"}


class AnsweringLink:
    """Counts pings; each pong is there at once."""

    def __init__(self) -> None:
        self.pings = 0

    async def ping(self) -> asyncio.Future[float]:
        self.pings += 1
        pong: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        pong.set_result(0.0)
        return pong


def no_calls(build: Callable[[], Any], **_: Any) -> None:
    raise AssertionError("no CALL is expected from the ping loop")


async def settle() -> None:
    """Let the ping loop run until it waits again."""
    for _ in range(10):
        await asyncio.sleep(0)


async def test_pings_fall_due_an_interval_after_the_last_pong_not_on_a_configuration_change() -> None:
    clock = ManualClock()
    configuration = Configuration(FEATURES, FIXED)  # WebSocketPingInterval: 30 (the default)
    keepalive = Keepalive(configuration, clock, no_calls)
    link = AnsweringLink()
    dead: list[str] = []
    pings = asyncio.create_task(keepalive.pings(link, dead.append))  # type: ignore[arg-type]
    try:
        await settle()
        clock.advance(29)
        # Every Boot answer sets HeartbeatInterval, which wakes the timers: no ping for that.
        assert configuration.change("HeartbeatInterval", "86400").status == "Accepted"
        keepalive.configuration_changed()
        await settle()
        assert link.pings == 0

        clock.advance(1)  # 30 s since the connection opened
        keepalive.configuration_changed()
        await settle()
        assert link.pings == 1

        # A shorter interval counts from the last pong, and takes effect at once.
        clock.advance(4)
        assert configuration.change("WebSocketPingInterval", "5").status == "Accepted"
        keepalive.configuration_changed()
        await settle()
        assert link.pings == 1
        clock.advance(1)
        keepalive.configuration_changed()
        await settle()
        assert link.pings == 2

        # Switched off: no pings however long; switched on again: a full interval from then.
        assert configuration.change("WebSocketPingInterval", "0").status == "Accepted"
        keepalive.configuration_changed()
        clock.advance(100)
        await settle()
        assert configuration.change("WebSocketPingInterval", "5").status == "Accepted"
        keepalive.configuration_changed()
        await settle()
        assert link.pings == 2
        clock.advance(5)
        keepalive.configuration_changed()
        await settle()
        assert link.pings == 3
        assert dead == []
    finally:
        pings.cancel()
