"""When a device's coordinator reads it (pure: the times are passed in).

Two kinds of waits: a *period*, read at every tick of a timer shared by every device of that period
(bridge/runtime/ticker.py), and a *deadline*, a one-off time when a reading is needed. A device that
must be polled has its poll interval as the period; one that reports its changes has none while idle,
the retry period while it fails, the flowing period while energy flows (what flows is never reported),
and deadlines from its owner (a ConnectionTimeOut falls due) and from the unwanted-energy guard.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReadSchedule:
    period_s: float | None  # read every this long (a shared ticker); None: no periodic read
    deadline_s: float | None  # and at the latest in this long; None: no deadline

    @property
    def wait_s(self) -> float | None:
        """The longest the loop may go without a read (None: only on a report)."""
        waits = [w for w in (self.period_s, self.deadline_s) if w is not None]
        return min(waits) if waits else None


def read_schedule(
    *,
    poll_interval_s: float | None,
    answering: bool,
    flowing: bool,
    due_in_s: tuple[float | None, ...],
    retry_s: float,
    flowing_s: float,
) -> ReadSchedule:
    """`poll_interval_s`: the device's own (None: it reports its changes); `answering`: started and no
    failed read; `flowing`: its last reading shows power; `due_in_s`: when readings are needed."""
    if poll_interval_s is not None:
        return ReadSchedule(poll_interval_s, None)
    if not answering:
        return ReadSchedule(retry_s, None)  # until it answers (its start is retried more slowly)
    waits = [w for w in due_in_s if w is not None]
    return ReadSchedule(flowing_s if flowing else None, max(0.0, min(waits)) if waits else None)
