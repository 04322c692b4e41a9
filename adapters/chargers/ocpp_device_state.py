"""What an OCPP charger (`type: ocpp`) told the bridge, kept for its drivers to read (pure data): one
`ChargerState` per connector of the charger that a connector of the bridge drives, and one `ChargerWide`
for the charger as a whole (its connector 0, the ids the link gave, its deviations, the connectors it
reported that no connector of the bridge drives), shared by those states. `Decisions` is the bridge's
side of a connector's own starts; a `Seat` is what the link (ocpp_device_link.py) routes a connector's
messages to.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from adapters.chargers.ocpp_device_register import Counting

log = logging.getLogger("adapters.ocpp_device")

DEVIATIONS_KEPT = 20
WARN_EVERY_S = 60.0  # a warning of one kind is logged at most this often: a storm cannot flood the log

# A connector's status -> (plugged, ev_requesting, energy_allowed); None: keep what was known.
STATUS_READING: dict[str, tuple[bool | None, bool, bool]] = {
    "Available": (False, False, False),
    "Preparing": (True, False, False),
    "Charging": (True, True, True),
    "SuspendedEV": (True, False, True),
    "SuspendedEVSE": (True, True, False),
    "Finishing": (True, False, False),
    "Reserved": (False, False, False),
    "Unavailable": (None, False, False),
    "Faulted": (None, False, False),
}
IN_TRANSACTION = {"Charging", "SuspendedEV", "SuspendedEVSE"}
WHOLE_DOWN = {"Faulted", "Unavailable"}  # connector 0 (the charger as a whole): every connector is


SILENCE_SLACK_S = 30.0  # beyond twice its heartbeat interval: a late Heartbeat is not silence
CALL_TIMEOUTS_CLOSE = 3  # the bridge's calls unanswered in a row that end its connection (it reconnects)


def silent(last_heard: float, now: float, heartbeat_interval_s: float) -> bool:
    """Whether a charger last heard at `last_heard` is silent at `now` (monotonic seconds): nothing
    from it for twice the heartbeat interval it was given and some slack. Its socket may be open and
    its pings answered (by its TCP stack or firmware) while it tells nothing: its last status is old."""
    return now - last_heard > 2 * heartbeat_interval_s + SILENCE_SLACK_S


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class ChargerWide:
    """The charger as a whole: its connector 0's status, the transaction ids the link gave it (unique
    across its connectors), what it did that OCPP does not allow, the connectors it reported that no
    connector of the bridge drives (a configuration hint, not a deviation)."""

    status: str | None = None  # connector 0's
    error_code: str = "NoError"
    info: str | None = None
    vendor_error_code: str | None = None
    given_ids: deque[int] = field(default_factory=lambda: deque(maxlen=100))  # the newest
    deviations: deque[str] = field(default_factory=lambda: deque(maxlen=DEVIATIONS_KEPT))
    undriven: list[int] = field(default_factory=list)
    booted: bool = False  # it sent a BootNotification in this run: a later connection is a reconnect
    warned: dict[str, float] = field(default_factory=dict)  # a warning's kind -> when it was last logged

    def deviation(self, text: str) -> None:
        if self.warn_now(" ".join(text.split()[:2]), time.monotonic()):
            log.warning("OCPP charger deviates from OCPP 1.6: %s", text)
        self.deviations.append(f"{now_iso()} {text}")

    def warn_now(self, kind: str, now: float) -> bool:
        """Whether a warning of `kind` (e.g. a deviation's first two words) is logged at `now`
        (monotonic seconds): once per WARN_EVERY_S; the deviations list keeps every one, bounded."""
        last = self.warned.get(kind)
        if last is not None and now - last < WARN_EVERY_S:
            return False
        if len(self.warned) > 100:
            self.warned.clear()  # kinds come from the charger's messages: the table stays small
        self.warned[kind] = now
        return True

    def not_driven(self, connector_id: int) -> None:
        """Noted once per connector: its messages are answered, their values ignored."""
        if connector_id not in self.undriven:
            log.warning("OCPP charger: connector %d is not driven by the bridge", connector_id)
            self.undriven.append(connector_id)

    @property
    def down(self) -> bool:
        """Connector 0 says the whole charger is Faulted or Unavailable."""
        return self.status in WHOLE_DOWN

    def notes(self) -> list[str]:
        return [f"connector {n} is not driven by the bridge" for n in self.undriven]


@dataclass
class ChargerState:
    """What the charger told the bridge of one connector; the driver reads it."""

    connector_id: int
    booted: bool = False
    status: str | None = None
    error_code: str = "NoError"
    info: str | None = None
    vendor_error_code: str | None = None
    plugged: bool | None = None
    energy_wh: float | None = None
    power_w: float | None = None
    current_a: tuple[float, ...] | None = None
    voltage_v: tuple[float, ...] | None = None
    transaction_id: int | None = None  # the charger's transaction, with the id this link gave it
    stray_transaction_id: int | None = None  # one it reports that the bridge did not accept: stopped
    open_at_boot: int | None = None  # its transaction when it booted again: it must end it
    charger: ChargerWide = field(default_factory=ChargerWide)  # shared by its connectors' states
    meter: Counting = field(default_factory=Counting)  # its register against the charger's count

    @property
    def given_ids(self) -> deque[int]:
        return self.charger.given_ids

    @property
    def deviations(self) -> deque[str]:
        return self.charger.deviations

    def deviation(self, text: str) -> None:
        self.charger.deviation(text)


class Decisions:
    """The bridge's side of the charger's own starts, which the driver fills (see ocpp_device.py)."""

    def __init__(self) -> None:
        self.enabled = False  # the bridge's last set_enabled
        self.cards_waiting = 0  # Authorizes waiting for the bridge: their charger starts on its own
        self.changed = asyncio.Event()  # set on each set_enabled, for an Authorize that waits

    def set(self, enabled: bool) -> None:
        self.enabled = enabled
        self.changed.set()
        self.changed = asyncio.Event()


@dataclass
class Seat:
    """One driven connector as the link sees it: its state, the bridge's decisions, the driver's
    callbacks."""

    state: ChargerState
    decisions: Decisions
    on_change: Callable[[], None]
    on_tag: Callable[[str], None]
    ended_after_boot: asyncio.Event = field(default_factory=asyncio.Event)  # it ended its pre-boot one
