"""One shared timer for every device read at the same period: the polls of a daemon, not a timer each.

A connector's poll loop that waits `poll_interval_s` with a timer of its own costs a timer handle, a heap
push and its cancel on every pass; at thousands of connectors read every second that was a large part
of the loop's work, and every connector started at the same instant stays in step with the others
(bursts). A Ticker runs one timer per period for all its members and spreads them over SLOTS slots of
the period: member k is woken every period, at its slot's offset, so a second's reads are spread over
the second. A member is a callback; it joins when its loop reads periodically and leaves when it stops.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable

SLOTS = 10  # a period is cut into this many slots (at most; one slot is never shorter than MIN_SLOT_S)
MIN_SLOT_S = 0.05

Wake = Callable[[], None]


class Ticker:
    def __init__(self, period_s: float) -> None:
        self.period_s = period_s
        self._slots = max(1, min(SLOTS, int(period_s / MIN_SLOT_S)))
        self._members: list[set[Wake]] = [set() for _ in range(self._slots)]
        self._slot_of: dict[Wake, int] = {}
        self._next = 0  # the slot the timer wakes next
        self._at = 0.0  # loop time of the next tick
        self._handle: asyncio.TimerHandle | None = None

    def join(self, wake: Wake) -> None:
        """`wake` is called once every period from now on (within a period of joining), until `leave`."""
        if wake in self._slot_of:
            return
        slot = min(range(self._slots), key=lambda i: len(self._members[i]))  # the emptiest: spread
        self._members[slot].add(wake)
        self._slot_of[wake] = slot
        if self._handle is None:
            loop = asyncio.get_running_loop()
            self._at = loop.time() + self.period_s / self._slots
            self._handle = loop.call_at(self._at, self._tick)

    def leave(self, wake: Wake) -> None:
        slot = self._slot_of.pop(wake, None)
        if slot is not None:
            self._members[slot].discard(wake)
        if not self._slot_of and self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def __len__(self) -> int:
        return len(self._slot_of)

    def _tick(self) -> None:
        members = self._members[self._next]
        self._next = (self._next + 1) % self._slots
        for wake in list(members):
            wake()
        loop = asyncio.get_running_loop()
        # In step with the period; a loop running late does not make up the ticks it missed.
        self._at = max(loop.time(), self._at + self.period_s / self._slots)
        self._handle = loop.call_at(self._at, self._tick)


_tickers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[float, Ticker]] = (
    weakref.WeakKeyDictionary()
)


def ticker_for(period_s: float) -> Ticker:
    """The running loop's ticker of this period (made at first use)."""
    by_period = _tickers.setdefault(asyncio.get_running_loop(), {})
    ticker = by_period.get(period_s)
    if ticker is None:
        ticker = by_period[period_s] = Ticker(period_s)
    return ticker
