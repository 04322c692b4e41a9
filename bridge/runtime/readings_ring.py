"""A connector's recent readings for the page's chart (GET .../readings): power and energy, at most one
point per `every_s`, the last `window_s`. Fed with the readings the coordinator takes anyway (no extra
device read). Kept in three arrays of doubles used as a circle: 120 points are 2.9 KiB however long
the daemon runs (a tuple of three floats would be ~14 KiB: 70 MiB at 5,000 charging connectors)."""

from __future__ import annotations

import math
from array import array
from typing import NamedTuple

EVERY_S = 5.0
WINDOW_S = 600.0


class Point(NamedTuple):
    at: float  # epoch seconds
    power_w: float | None
    energy_wh: float | None


def _stored(value: float | None) -> float:
    return math.nan if value is None else value


def _value(stored: float) -> float | None:
    return None if math.isnan(stored) else stored


class ReadingsRing:
    def __init__(self, every_s: float = EVERY_S, window_s: float = WINDOW_S) -> None:
        if every_s <= 0 or window_s < every_s:
            raise ValueError(f"a readings ring needs 0 < every_s <= window_s: {every_s}, {window_s}")
        self._every_s = every_s
        self._window_s = window_s
        self._size = int(window_s // every_s)
        self._at = array("d")
        self._power = array("d")
        self._energy = array("d")
        self._next = 0  # once full: the oldest point, overwritten by the next

    def add(self, at: float, power_w: float | None, energy_wh: float | None) -> None:
        """A reading taken at `at` (epoch seconds): the first of its `every_s` slot (at // every_s)
        is kept. A slot, not "every_s after the last point": reads every 5 s with jitter would keep
        only every other one. A reading before the last point (the clock stepped back) starts over."""
        count = len(self._at)
        if count:
            last = self._at[(self._next - 1) % count] // self._every_s
            slot = at // self._every_s
            if slot == last:
                return
            if slot < last:  # the clock stepped back: the points kept are in its future now
                self._at, self._power, self._energy = array("d"), array("d"), array("d")
                self._next = 0
                count = 0
        if count < self._size:
            self._at.append(at)
            self._power.append(_stored(power_w))
            self._energy.append(_stored(energy_wh))
            self._next = (count + 1) % self._size
            return
        i = self._next
        self._at[i], self._power[i], self._energy[i] = at, _stored(power_w), _stored(energy_wh)
        self._next = (i + 1) % self._size

    def points(self, now: float) -> list[Point]:
        """The points of the last `window_s` before `now`, oldest first."""
        count = len(self._at)
        first = self._next if count == self._size else 0
        start = now - self._window_s
        order = ((first + k) % count for k in range(count))
        return [
            Point(self._at[i], _value(self._power[i]), _value(self._energy[i]))
            for i in order
            if self._at[i] >= start
        ]
