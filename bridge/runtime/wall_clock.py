"""Waiting for a moment in wall time (a retrieveDate, a reservation's expiry, the next attempt)."""

from __future__ import annotations

from bridge.clock import Clock
from bridge.flag import Flag

# A wall clock the central system moves wakes a wait at once (Clock.watch); one that NTP moves tells
# nobody, and is seen within this long.
LOOK_AGAIN_S = 60.0


async def wait_wall(clock: Clock, wake: Flag, seconds: float) -> None:
    """Up to `seconds` of wall time on `clock`, less when `wake` is set or the clock moves; the caller
    looks at its deadline again after."""
    unwatch = clock.watch(wake.set)
    try:
        await wake.wait_at_most(min(seconds, LOOK_AGAIN_S))
    finally:
        unwatch()
