"""The BootNotification state machine of one charge point (pure).

Rules (ocpp16-charge-point.md §4.1, D4):
- BootNotification is the first message on the first connection of a daemon
  run; nothing else is sent before it is Accepted (or, in Pending, before the
  central system asks through TriggerMessage).
- Accepted: adopt the interval as HeartbeatInterval (0 keeps the configured
  one), then StatusNotification for connector 0 and every connector.
- Pending: answer the central system's calls, start nothing unsolicited,
  boot again after `interval`.
- Rejected: send nothing, answer nothing, until `interval` has passed.
- An interval of 0 in Pending/Rejected means "choose yourself":
  DEFAULT_RETRY_S, which does not flood the central system.
- After a reconnect the charge point boots again only when it was never
  Accepted in this run, when the BootNotification content changed, or when
  the per-charge-point setting forces it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

DEFAULT_RETRY_S = 60.0
FAILED_BOOT_RETRY_S = 30.0  # after a timeout or CALLERROR on BootNotification


class BootState(StrEnum):
    NOT_BOOTED = "NotBooted"
    PENDING = "Pending"
    REJECTED = "Rejected"
    ACCEPTED = "Accepted"


@dataclass
class Boot:
    state: BootState = BootState.NOT_BOOTED
    accepted_content: str | None = None  # the BootNotification payload that was Accepted
    next_boot_at: float = 0.0  # monotonic seconds; no BootNotification before this
    force_on_reconnect: bool = False
    # TriggerMessage(BootNotification) came while a BootNotification was on its way: its Pending or
    # Rejected answer must not push the boot the central system asked for out by `interval`.
    triggered: bool = False

    def needs_boot(self, content: str) -> bool:
        """On a fresh connection: must a BootNotification be sent?"""
        if self.state is not BootState.ACCEPTED:
            return True
        return self.force_on_reconnect or content != self.accepted_content

    def on_connected(self, content: str) -> bool:
        """A connection opened: True when it must start with a BootNotification.

        Until that boot is Accepted the charge point sends nothing unsolicited.
        """
        if not self.needs_boot(content):
            return False
        if self.state is BootState.ACCEPTED:
            self.state = BootState.NOT_BOOTED
        return True

    def trigger(self) -> None:
        """TriggerMessage(BootNotification) while not Accepted: boot now, not after the interval."""
        self.next_boot_at = 0.0
        self.triggered = True

    def on_sent(self) -> None:
        """A BootNotification went out: it answers any trigger that came before it."""
        self.triggered = False

    def on_answer(self, status: str, interval: int, content: str, now: float) -> None:
        triggered, self.triggered = self.triggered, False
        if status == "Accepted":
            self.state = BootState.ACCEPTED
            self.accepted_content = content
            return
        self.state = BootState.PENDING if status == "Pending" else BootState.REJECTED
        self.next_boot_at = now if triggered else now + (interval if interval > 0 else DEFAULT_RETRY_S)

    def on_failure(self, now: float) -> None:
        """BootNotification got no usable answer (timeout, CALLERROR, bad schema)."""
        self.next_boot_at = now + FAILED_BOOT_RETRY_S

    @property
    def may_send(self) -> bool:
        """May the charge point initiate messages other than BootNotification?"""
        return self.state is BootState.ACCEPTED

    def may_answer(self, now: float) -> bool:
        """May the charge point answer the central system's calls?"""
        return not (self.state is BootState.REJECTED and now < self.next_boot_at)
