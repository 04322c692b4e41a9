"""MinimumStatusDuration (pure): a status is reported only once it has lasted that long.

A status that changes again within the duration is never reported: a
cable wiggled in and out, a vehicle that pauses for a second. Faulted is
the exception and goes out at once: an error that cleared quickly is still
worth knowing about (OCPP 1.6 §4.9 lets errors be reported after the fact).
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.core.connector import Status, StatusReport


@dataclass
class StatusHold:
    candidate: StatusReport | None = None
    since: float = 0.0  # monotonic seconds

    def decide(self, report: StatusReport, now: float, minimum_s: int) -> float | None:
        """None: report `report` now. A number: hold it, and look again after that many seconds."""
        if minimum_s <= 0 or report.status is Status.FAULTED:
            self.candidate = None
            return None
        if report != self.candidate:
            self.candidate, self.since = report, now
        left = self.since + minimum_s - now
        if left <= 0:
            self.candidate = None
            return None
        return left
