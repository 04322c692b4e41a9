"""The charge point's clocks.

`monotonic()` times intervals; `now()` stamps messages. The wall clock is
corrected by the offset to the central system's `currentTime` (from
BootNotification and Heartbeat answers): a Pi without a real-time clock may
boot with the wrong date and no NTP, and the central system is the
reference OCPP recommends. The system clock itself is never touched.

The central system read its clock at some moment between our request and our reading of its answer.
A clock that already reads a time within that window is right, as far as the answer can tell, and
is kept: under load an answer waits in the event loop before it is handled (2 s with 5,000 charge
points booting at once), and adopting its time as "now" would set the clock back by that wait. A
clock outside the window is corrected to the window's middle (Cristian's algorithm); a currentTime
without fractions of a second widens the window by the second it leaves out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime


class Clock:
    def __init__(self) -> None:
        self.offset_s = 0.0
        # Told when the offset changes: a wait for a moment in wall time (a firmware update at
        # retrieveDate) looks at its deadline again.
        self._watchers: set[Callable[[], None]] = set()

    def watch(self, moved: Callable[[], None]) -> Callable[[], None]:
        """Call `moved` whenever the offset changes; returns what stops it."""
        self._watchers.add(moved)
        return lambda: self._watchers.discard(moved)

    def move(self, offset_s: float) -> None:
        """Set the offset (the central system's time adopted; a test's clock moved)."""
        if offset_s == self.offset_s:
            return
        self.offset_s = offset_s
        for moved in list(self._watchers):
            moved()

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.fromtimestamp(time.time() + self.offset_s, UTC)

    def wall(self) -> float:
        """The system's clock, uncorrected (epoch seconds): when a request goes out, for `sync`."""
        return time.time()

    def sync(self, central_time: str, asked_at: float) -> None:
        """Adopt the central system's time (an ISO 8601 string) from the answer to a request made at
        `asked_at` (`wall()` then), unless the clock agrees with it; bad values are ignored."""
        try:
            parsed = parse_iso(central_time)
        except ValueError:
            return
        whole_seconds = "." not in central_time and "," not in central_time
        self.move(
            corrected_offset(
                self.offset_s, parsed.timestamp(), 1.0 if whole_seconds else 0.001, asked_at, self.wall()
            )
        )


def corrected_offset(
    offset_s: float, central: float, resolution_s: float, asked: float, answered: float
) -> float:
    """The offset to keep after an answer: `central` (epoch seconds, true to `resolution_s` below
    it: a time of whole seconds may be up to a second behind) was read between `asked` and
    `answered` (our uncorrected clock). Kept when the window allows it, else the window's middle."""
    earliest, latest = asked + offset_s, answered + offset_s  # our clock's reading at each end
    if central <= latest and central + resolution_s >= earliest:
        return offset_s
    return central + resolution_s / 2 - (asked + answered) / 2


def parse_iso(text: str) -> datetime:
    """An OCPP dateTime as an aware datetime; one without an offset is UTC, as the central system's
    clock is read (ValueError when it is not a date and time)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a Z, as central systems expect."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
