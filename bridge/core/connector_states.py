"""A connector's lifecycle as data: its states, its events and the transition tables (pure).

The theory
----------
A connector's OCPP status mixes three kinds of truth:

1. What the device reports now: the cable is in, the vehicle draws, a fault, the device does not
   answer. These are facts of the latest reading. The connector keeps them as they come and never
   copies them into a state, so the two can never disagree.
2. What the connector decided and must remember from one reading to the next: a tag was accepted
   and waits for the cable, a transaction runs, the cable has had its chance (Finishing), the
   connector is reserved, the central system made it Inoperative. This is the lifecycle, and only
   the tables below change it.
3. The nine OCPP statuses: a projection of 1 and 2 (`connector_status.project`), never stored.

The lifecycle is two small machines, as h11 keeps one per role (`EVENT_TRIGGERED_TRANSITIONS[role]
[state][event]`): SESSION (IDLE, AUTHORIZED, TRANSACTION, FINISHING, RESERVED) and AVAILABILITY
(OPERATIVE, INOPERATIVE, and the two states a ChangeAvailability answered Scheduled leaves until the
transaction ends). Availability is a machine of its own because it is orthogonal to the session: a
ChangeAvailability during a transaction waits for its end, and a cable left in after a session stays
Finishing through an Unavailable spell. In one machine every session state would need an Unavailable
twin. The one link between the two is h11's state-triggered transition: when the session leaves
TRANSACTION, the connector fires TransactionEnded into the availability machine.

Why these session states and no others:
- No PLUGGED state. "The cable is in" is a fact of the reading: IDLE with the cable in projects to
  Preparing. A state would be a second copy of the reading.
- No STARTING state. The transaction runs (energy allowed) from the decision on. The central system's
  transactionId is data on the transaction, and the status does not change when it comes.
- No CHARGING or SUSPENDED states. Inside a transaction the status follows the reading (cable, vehicle
  asking) and whether energy is allowed (a limit below the device's minimum, an invalid tag). None of
  these changes what the next event does.
- No FAULTED state. A fault neither starts nor ends anything. It is an overlay: Faulted shows while
  the device reports a fault or does not answer, and the lifecycle underneath shows again when the
  fault clears (a transaction survives a silent device).

A reservation (ReserveNow) is the data of RESERVED, as the waiting tag is AUTHORIZED's: its id, tag,
parent and expiry. Only a tag the reservation admits (its own, or one whose parentIdTag is the
reservation's) reaches the table's TagPresented and TagAccepted rows while Reserved: the connector
filters the others, as it decides what any tag means. An admitted tag that waits for the cable keeps
the reservation (AUTHORIZED's data); if it lapses, the connector reserves again with it. Entering
TRANSACTION uses the reservation up (its id goes into StartTransaction). A connector that stops being
usable (a fault, Inoperative, held) ends its reservation (CancelReservation), and so do the expiry
and CancelReservation itself.

Charging without a card (a configured free-vend tag, go-e's "dummy card id") adds no row: it is what
an input means, so it is the connector's. A CableIn that no waiting tag takes (the connector is still
IDLE or RESERVED after it, and no tapped card is being authorized) presents the configured tag as a
TagPresented, the path of a tap, so the same Authorize, list and cache decide it and a reservation
filters it as it would the card. A cable that goes in again during a transaction presents nothing:
the free tag never meets a transaction, so it can stop none. A report-only connector (its device
decides on energy) whose transaction the bridge ended with the cable in, while the device charges on,
asks an Authorize from FINISHING (for the free tag at a reading, or a tag presented): accepted, the
FINISHING TagAccepted row starts the transaction that reports that energy. No row is added.

Events are frozen dataclasses, and the tables are keyed by their class. The connector fires an event
when an input calls for it: a reading that shows the cable going in fires CableIn, and a tag that
matches the transaction's fires Stop. What an input means (tags, groups, configuration) is the
connector's business. Where the lifecycle goes is the table's.

A row is (from state, event, guard, to state). A guard is a named predicate over four facts (`Facts`):
the cable, whether the device can sense it, whether the connector is usable (operative, not held for
a firmware update, no fault, the device answers), and whether a transaction runs. The guards of one
(state, event) never hold together. The tests check this over every combination of the facts.

A (state, event) pair with no row, or whose guards all fail, is ignored: the state stays and the event
has no effect. A tag presented while Finishing asks no Authorize, and a CableOut during a transaction
leaves it running (SuspendedEV). Facts from the device are recorded whatever the table says; only the
lifecycle refuses. Nothing raises, because an event out of turn is normal life for a charge point.

The effects (Authorize, StartTransaction, StopTransaction, SetEnergy) are not in the tables. The
connector derives them from the transition taken: entering TRANSACTION starts one, leaving it stops
it, and an accepted TagPresented asks an Authorize. A ChangeAvailability's answer is read from the
availability it leads to: Scheduled while a GOING_* state waits for the transaction's end, else
Accepted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Generic, TypeAlias, TypeVar

from bridge.core.transaction import StopReason, Transaction


class State(StrEnum):
    """The session machine."""

    IDLE = "Idle"  # no session: Available, or Preparing while the cable is in
    AUTHORIZED = "Authorized"  # a tag accepted, waiting ConnectionTimeOut for the cable (Preparing)
    TRANSACTION = "Transaction"  # Charging, SuspendedEV or SuspendedEVSE, from the reading
    FINISHING = "Finishing"  # over (or no tag in time), cable still in: a new session needs a new plug-in
    RESERVED = "Reserved"


class Availability(StrEnum):
    """The availability machine (ChangeAvailability)."""

    OPERATIVE = "Operative"
    INOPERATIVE = "Inoperative"
    GOING_INOPERATIVE = "GoingInoperative"  # answered Scheduled: Inoperative once the transaction ends
    # Answered Scheduled while inoperative: only a transaction resumed after a restart runs there.
    GOING_OPERATIVE = "GoingOperative"


# Operative now: a GOING_INOPERATIVE connector is operative until its transaction ends.
OPERATIVE_NOW = frozenset({Availability.OPERATIVE, Availability.GOING_INOPERATIVE})
SCHEDULED = frozenset({Availability.GOING_INOPERATIVE, Availability.GOING_OPERATIVE})
INITIAL_STATE = State.IDLE
INITIAL_AVAILABILITY = Availability.OPERATIVE


# -- guards --------------------------------------------------------------------------
@dataclass(frozen=True)
class Facts:
    """What the guards may look at."""

    plugged: bool  # the cable is in (taken as in while a transaction runs on a device that cannot tell)
    plug_sensed: bool  # the device can tell (a relay cannot)
    usable: bool  # operative, not held for a firmware update, no fault, the device answers
    in_transaction: bool


class Guard(StrEnum):
    USABLE = "usable"
    CAN_START = "usable, cable in or not sensed"
    NEEDS_CABLE = "usable, no cable"
    CABLE_IN = "cable in"
    NO_CABLE = "no cable seen"
    IN_TRANSACTION = "in transaction"
    NO_TRANSACTION = "no transaction"


GUARDS: Mapping[Guard, Callable[[Facts], bool]] = {
    Guard.USABLE: lambda f: f.usable,
    Guard.CAN_START: lambda f: f.usable and (f.plugged or not f.plug_sensed),
    Guard.NEEDS_CABLE: lambda f: f.usable and f.plug_sensed and not f.plugged,
    Guard.CABLE_IN: lambda f: f.plugged and f.plug_sensed,
    Guard.NO_CABLE: lambda f: not (f.plugged and f.plug_sensed),
    Guard.IN_TRANSACTION: lambda f: f.in_transaction,
    Guard.NO_TRANSACTION: lambda f: not f.in_transaction,
}


# -- events --------------------------------------------------------------------------
@dataclass(frozen=True)
class SessionEvent:
    """An event of the session machine."""


@dataclass(frozen=True)
class CableIn(SessionEvent):
    """A reading shows the cable in where the last one did not."""

    now: datetime


@dataclass(frozen=True)
class CableOut(SessionEvent):
    """A reading shows the cable out where the last one showed it in."""


@dataclass(frozen=True)
class TagPresented(SessionEvent):
    """A tag at the box that needs an Authorize (to start, or to learn its group)."""

    id_tag: str


@dataclass(frozen=True)
class TagAccepted(SessionEvent):
    """A tag accepted to start here (Authorize.conf, the cache, the offline rules, a remote start)."""

    id_tag: str
    parent_id_tag: str | None
    now: datetime
    wait_until: datetime  # how long it waits for the cable (ConnectionTimeOut)


@dataclass(frozen=True)
class ConnectionTimeout(SessionEvent):
    """ConnectionTimeOut ran out: for the waiting tag, or for a cable without a tag (B6)."""


@dataclass(frozen=True)
class Stop(SessionEvent):
    """The transaction ends, for any reason."""

    reason: StopReason
    id_tag: str | None  # the tag that stopped it, when known
    now: datetime


@dataclass(frozen=True)
class Resume(SessionEvent):
    """A transaction stored by a graceful stop goes on after the restart."""

    transaction: Transaction


@dataclass(frozen=True)
class Reservation:
    """A ReserveNow the connector holds: the data of RESERVED (and of AUTHORIZED for its tag)."""

    reservation_id: int
    id_tag: str
    parent_id_tag: str | None
    expiry: datetime
    connector_id: int  # as asked: 0 for the charge point as a whole (this connector was picked)


@dataclass(frozen=True)
class Reserve(SessionEvent):
    """A reservation takes the connector, or replaces its own (the same reservationId)."""

    reservation: Reservation


@dataclass(frozen=True)
class CancelReservation(SessionEvent):
    """The reservation ends without a transaction (cancelled or expired)."""


@dataclass(frozen=True)
class AvailabilityEvent:
    """An event of the availability machine."""


@dataclass(frozen=True)
class MakeOperative(AvailabilityEvent):
    """ChangeAvailability(Operative)."""


@dataclass(frozen=True)
class MakeInoperative(AvailabilityEvent):
    """ChangeAvailability(Inoperative)."""


@dataclass(frozen=True)
class TransactionEnded(AvailabilityEvent):
    """Fired by the connector when the session leaves TRANSACTION."""


# -- the tables ----------------------------------------------------------------------------
S = TypeVar("S", bound=StrEnum)  # a machine's states
E = TypeVar("E")  # its events' base class


@dataclass(frozen=True)
class Row(Generic[S, E]):
    source: S
    event: type[E]
    target: S
    guard: Guard | None = None


_S = State
SESSION_TABLE: tuple[Row[State, SessionEvent], ...] = (
    # A tag presented asks an Authorize where a session may start, and during a transaction (to
    # learn its group). Refused while Finishing or not usable; while Reserved only a tag the
    # reservation admits gets here (the connector refuses the others without an Authorize, TC_046_1).
    Row(_S.IDLE, TagPresented, _S.IDLE, Guard.USABLE),
    Row(_S.AUTHORIZED, TagPresented, _S.AUTHORIZED, Guard.USABLE),
    Row(_S.TRANSACTION, TagPresented, _S.TRANSACTION),
    Row(_S.RESERVED, TagPresented, _S.RESERVED, Guard.USABLE),
    # An accepted tag starts at once where the cable is in (or cannot be seen), else it waits for
    # it. An Authorize asked before the connector went Finishing is still honoured.
    Row(_S.IDLE, TagAccepted, _S.TRANSACTION, Guard.CAN_START),
    Row(_S.IDLE, TagAccepted, _S.AUTHORIZED, Guard.NEEDS_CABLE),
    Row(_S.AUTHORIZED, TagAccepted, _S.TRANSACTION, Guard.CAN_START),
    Row(_S.AUTHORIZED, TagAccepted, _S.AUTHORIZED, Guard.NEEDS_CABLE),  # the latest tag waits
    Row(_S.FINISHING, TagAccepted, _S.TRANSACTION, Guard.CAN_START),
    # The reserved tag (or one of its group): it starts, using the reservation up, or waits for the
    # cable holding it.
    Row(_S.RESERVED, TagAccepted, _S.TRANSACTION, Guard.CAN_START),
    Row(_S.RESERVED, TagAccepted, _S.AUTHORIZED, Guard.NEEDS_CABLE),
    # The cable a tag waits for. Unguarded as the flags were: the tag was accepted while usable, and
    # it starts even if the connector was made Inoperative or faulted since.
    Row(_S.AUTHORIZED, CableIn, _S.TRANSACTION),
    # ConnectionTimeOut: a waiting tag lapses; a cable without a tag has had its chance (B6, ERRATA 3.20).
    Row(_S.AUTHORIZED, ConnectionTimeout, _S.IDLE),
    Row(_S.IDLE, ConnectionTimeout, _S.FINISHING),
    # The end of a transaction, whatever its reason: Finishing while the cable is seen in.
    Row(_S.TRANSACTION, Stop, _S.FINISHING, Guard.CABLE_IN),
    Row(_S.TRANSACTION, Stop, _S.IDLE, Guard.NO_CABLE),
    Row(_S.FINISHING, CableOut, _S.IDLE),
    # A restart goes on with the stored transaction: at start, so only from IDLE.
    Row(_S.IDLE, Resume, _S.TRANSACTION),
    # Reservations: taken where nothing goes on, replaced by the same reservationId; ended by
    # CancelReservation, the expiry, or the connector no longer usable (all CancelReservation).
    Row(_S.IDLE, Reserve, _S.RESERVED, Guard.USABLE),
    Row(_S.RESERVED, Reserve, _S.RESERVED, Guard.USABLE),
    Row(_S.RESERVED, CancelReservation, _S.IDLE),
)

_A = Availability
AVAILABILITY_TABLE: tuple[Row[Availability, AvailabilityEvent], ...] = (
    # At once without a transaction; Scheduled (a GOING_* state) during one.
    Row(_A.OPERATIVE, MakeInoperative, _A.INOPERATIVE, Guard.NO_TRANSACTION),
    Row(_A.OPERATIVE, MakeInoperative, _A.GOING_INOPERATIVE, Guard.IN_TRANSACTION),
    Row(_A.INOPERATIVE, MakeOperative, _A.OPERATIVE, Guard.NO_TRANSACTION),
    Row(_A.INOPERATIVE, MakeOperative, _A.GOING_OPERATIVE, Guard.IN_TRANSACTION),
    # Asking back for what holds now cancels what was scheduled.
    Row(_A.GOING_INOPERATIVE, MakeOperative, _A.OPERATIVE),
    Row(_A.GOING_OPERATIVE, MakeInoperative, _A.INOPERATIVE),
    Row(_A.GOING_INOPERATIVE, TransactionEnded, _A.INOPERATIVE),
    Row(_A.GOING_OPERATIVE, TransactionEnded, _A.OPERATIVE),
)


Index: TypeAlias = Mapping[tuple[S, type[E]], tuple[Row[S, E], ...]]


def _index(table: tuple[Row[S, E], ...]) -> Index[S, E]:
    index: dict[tuple[S, type[E]], tuple[Row[S, E], ...]] = {}
    for row in table:
        index[row.source, row.event] = (*index.get((row.source, row.event), ()), row)
    return index


_SESSION = _index(SESSION_TABLE)
_AVAILABILITY = _index(AVAILABILITY_TABLE)


def _step(index: Index[S, E], state: S, event: E, facts: Facts) -> S | None:
    for row in index.get((state, type(event)), ()):
        if row.guard is None or GUARDS[row.guard](facts):
            return row.target
    return None


def session_step(state: State, event: SessionEvent, facts: Facts) -> State | None:
    """The session state `event` leads to from `state`, or None: the event is ignored."""
    return _step(_SESSION, state, event, facts)


def availability_step(state: Availability, event: AvailabilityEvent, facts: Facts) -> Availability | None:
    """The availability `event` leads to from `state`, or None: the event is ignored."""
    return _step(_AVAILABILITY, state, event, facts)
