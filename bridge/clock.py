"""The charge point's clocks.

`monotonic()` times intervals; `now()` stamps messages. The wall clock is
corrected by the offset to the central system's `currentTime` (from
BootNotification and Heartbeat answers): a Pi without a real-time clock may
boot with the wrong date and no NTP, and the central system is the
reference OCPP recommends. The system clock itself is never touched.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime


class Clock:
    def __init__(self) -> None:
        self.offset_s = 0.0

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.fromtimestamp(time.time() + self.offset_s, UTC)

    def sync(self, central_time: str) -> None:
        """Adopt the central system's time (an ISO 8601 string); bad values are ignored."""
        try:
            parsed = datetime.fromisoformat(central_time.replace("Z", "+00:00"))
        except ValueError:
            return
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        self.offset_s = parsed.timestamp() - time.time()


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a Z, as central systems expect."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
