"""What a connector's decisions ask the shell to do (pure values)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TypeAlias

from bridge.core.connector_states import Reservation
from bridge.core.transaction import StopReason, Transaction


@dataclass(frozen=True)
class Authorize:
    id_tag: str


@dataclass(frozen=True)
class StartTransaction:
    transaction: Transaction


@dataclass(frozen=True)
class StopTransaction:
    transaction: Transaction
    meter_stop_wh: int
    stopped_at: datetime
    reason: StopReason
    id_tag: str | None  # the tag that stopped it, when known


@dataclass(frozen=True)
class SetEnergy:
    allowed: bool
    # Energy off because the transaction ended (or there is none), not a pause within one: a device
    # that keeps a session of its own (an OCPP charger) ends it then, and only pauses otherwise.
    session_ends: bool = False


@dataclass(frozen=True)
class ReservationEnded:
    """The connector let a reservation go: used by a transaction, or no longer usable (Faulted,
    Unavailable). The shell forgets it in the store."""

    reservation: Reservation
    why: str  # "used", "Faulted", "Unavailable"


Effect: TypeAlias = Authorize | StartTransaction | StopTransaction | SetEnergy | ReservationEnded
