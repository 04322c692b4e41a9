"""A clock the test moves by hand (the bridge's parts take a `bridge.clock.Clock`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bridge.clock import Clock


class ManualClock(Clock):
    def __init__(self, start: datetime = datetime(2026, 1, 1, tzinfo=UTC)) -> None:
        super().__init__()
        self._wall = start
        self._mono = 1000.0

    def monotonic(self) -> float:
        return self._mono

    def now(self) -> datetime:
        return self._wall

    def advance(self, seconds: float) -> None:
        self._mono += seconds
        self._wall += timedelta(seconds=seconds)
