"""A connector's recent readings for the page's chart (GET .../readings): power and energy, at most one
point per `every_s`, the last `window_s`. Fed with the readings the coordinator takes anyway (no extra
device read); a fixed-size deque, so its memory never grows."""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

EVERY_S = 5.0
WINDOW_S = 600.0


class Point(NamedTuple):
    at: float  # epoch seconds
    power_w: float | None
    energy_wh: float | None


class ReadingsRing:
    def __init__(self, every_s: float = EVERY_S, window_s: float = WINDOW_S) -> None:
        if every_s <= 0 or window_s < every_s:
            raise ValueError(f"a readings ring needs 0 < every_s <= window_s: {every_s}, {window_s}")
        self._every_s = every_s
        self._window_s = window_s
        self._points: deque[Point] = deque(maxlen=int(window_s // every_s))

    def add(self, at: float, power_w: float | None, energy_wh: float | None) -> None:
        """A reading taken at `at` (epoch seconds); dropped when the last point is under `every_s` old."""
        if self._points and at - self._points[-1].at < self._every_s:
            return
        self._points.append(Point(at, power_w, energy_wh))

    def points(self, now: float) -> list[Point]:
        """The points of the last `window_s` before `now`, oldest first."""
        start = now - self._window_s
        return [p for p in self._points if p.at >= start]
