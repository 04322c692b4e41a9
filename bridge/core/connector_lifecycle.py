"""The running half of a connector (pure): its facts, its lifecycle and the effects of a transition.

`Lifecycle` keeps what the connector knows and takes the transitions `connector_states`' tables
give; `connector.Connector` adds what each input means. The facts are the latest reading (plugged,
the vehicle asking, a fault, the register) and what the shell tells (the device is silent, the
charging limit is below the device's minimum). The lifecycle is a session state and an availability,
with the data of the state it is in (the transaction, the tag waiting for the cable). The OCPP status
is a projection of both (`connector_status.project`), never stored.

Only `_fire` and `_fire_availability` change the lifecycle, and only as the tables say. The effects
follow from the transition taken: entering TRANSACTION starts one (StartTransaction, SetEnergy),
leaving it stops it (SetEnergy(False), StopTransaction), an accepted TagPresented asks an
Authorize.

A connector whose device cannot switch energy (report only, `switches_energy` False) decides the
same transitions but asks for no SetEnergy: the device decides when energy flows, and its status
follows what the device says it allows (docs/protocol.md, "Report-only chargers"). A transaction of
such a connector ended with the cable in leaves `restart_due`: the energy the device goes on giving
is reported in a new transaction (`connector.Connector`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from adapters.base import DeviceFault
from bridge.core.connector_effects import (
    Authorize,
    Effect,
    ReservationEnded,
    SetEnergy,
    StartTransaction,
    StopTransaction,
)
from bridge.core.connector_states import (
    OPERATIVE_NOW,
    SCHEDULED,
    Availability,
    AvailabilityEvent,
    CableIn,
    Facts,
    MakeInoperative,
    MakeOperative,
    Reservation,
    Reserve,
    Resume,
    SessionEvent,
    State,
    Stop,
    TagAccepted,
    TagPresented,
    TransactionEnded,
    availability_step,
    session_step,
)
from bridge.core.connector_status import StatusReport, project
from bridge.core.meter_values import whole_wh
from bridge.core.transaction import Transaction, same_tag


@dataclass(frozen=True)
class _Waiting:
    """The data of AUTHORIZED: the tag waiting for the cable."""

    id_tag: str
    parent_id_tag: str | None
    until: datetime
    reservation: Reservation | None = None  # the reserved tag waits holding its reservation


class Lifecycle:
    __slots__ = (
        "_availability",
        "_reservation",
        "_state",
        "_transaction",
        "_used",
        "_waiting",
        "authorizing",
        "connector_id",
        "device_allows",
        "energy_wh",
        "ev_requesting",
        "fault",
        "free_tag",
        "held",
        "limit_paused",
        "new_id",
        "plug_sensed",
        "plugged",
        "plugged_at",
        "restart_due",
        "restarting",
        "switches_energy",
        "unreachable",
    )  # fmt: skip

    def __init__(
        self,
        connector_id: int,
        *,
        plug_sensed: bool = True,
        new_id: Callable[[], int] | None = None,
        free_tag: str | None = None,
        switches_energy: bool = True,
    ) -> None:
        self.connector_id = connector_id
        self.switches_energy = switches_energy  # False: report only, the device decides on energy
        self.device_allows = True  # the latest reading's energy_allowed (a report-only status shows it)
        # Report only: its transaction ended with the cable in (a Reset, the same tag, ...); if the device
        # charges on, a new one starts (`Connector._charging_on`). Once per ended transaction.
        self.restart_due = False
        self.restarting = False  # a Reset is under way (set by the shell): restart_due waits until it is over
        # Charging without a card (configured): the idTag a plug-in presents when no tag waits for it.
        self.free_tag = free_tag or None
        # Facts: the latest reading, and what the shell tells.
        self.plugged = False
        self.plug_sensed = plug_sensed  # False while the device cannot tell (a relay): see on_reading
        self.ev_requesting = False
        self.fault: DeviceFault | None = None
        self.unreachable: DeviceFault | None = None  # the device stopped answering (set by the shell)
        self.energy_wh: float | None = None
        self.plugged_at: datetime | None = None  # when the cable went in
        # Held for a firmware update (set by the shell): no new session starts, and it shows Unavailable
        # outside a transaction. An overlay like a fault: the availability the central system set stays.
        self.held = False
        self.limit_paused = False  # the charging limit is below what the device can do: no energy
        self.authorizing: set[str] = set()  # tags with an Authorize in flight
        # Local transaction ids: the shell hands in the store's sequence, so ids are never reused.
        self.new_id = new_id or itertools.count(1).__next__
        # The lifecycle (changed only by _fire) and the data of the state it is in.
        self._state = State.IDLE
        self._availability = Availability.OPERATIVE
        self._transaction: Transaction | None = None  # while TRANSACTION
        self._waiting: _Waiting | None = None  # while AUTHORIZED
        self._reservation: Reservation | None = None  # while RESERVED
        self._used: Reservation | None = None  # while TRANSACTION: the reservation it used up

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.connector_id}, {self._state}, {self._availability})"

    # -- what the outside reads --------------------------------------------------
    @property
    def state(self) -> State:
        return self._state

    @property
    def availability(self) -> Availability:
        return self._availability

    @property
    def transaction(self) -> Transaction | None:
        return self._transaction

    @property
    def waiting_tag(self) -> str | None:
        """The tag authorized and waiting for the cable."""
        return self._waiting.id_tag if self._waiting is not None else None

    @property
    def reservation(self) -> Reservation | None:
        """The reservation held: Reserved, or its tag waiting for the cable."""
        if self._state is State.RESERVED:
            return self._reservation
        return self._waiting.reservation if self._waiting is not None else None

    @property
    def used_reservation(self) -> Reservation | None:
        """The reservation the running transaction used up (its id goes into StartTransaction)."""
        return self._used

    @property
    def usable(self) -> bool:
        """A new session may start here: operative, not held, no fault, the device answers."""
        return self.operative and not self.held and self.fault is None and self.unreachable is None

    @property
    def energy_allowed(self) -> bool:
        """What the device is told: energy only in a transaction, not paused by the limit, not an
        invalid tag's."""
        tx = self._transaction
        return tx is not None and not tx.deauthorized and not self.limit_paused

    @property
    def operative(self) -> bool:
        return self._availability in OPERATIVE_NOW

    @operative.setter
    def operative(self, operative: bool) -> None:
        """The stored availability at start, as a ChangeAvailability."""
        self.change_availability(operative)

    def status(self) -> StatusReport:
        return project(
            self._state,
            self._availability,
            plugged=self.plugged,
            ev_requesting=self.ev_requesting,
            energy_allowed=self.energy_allowed if self.switches_energy else self.device_allows,
            fault=self.fault or self.unreachable,
            held=self.held,
        )

    def energy(self, allowed: bool | None = None, *, session_ends: bool = False) -> list[Effect]:
        """SetEnergy to `allowed` (what the transaction allows by default); none for a device that
        cannot switch energy (report only). `session_ends`: off because the transaction ends."""
        if not self.switches_energy:
            return []
        return [SetEnergy(self.energy_allowed if allowed is None else allowed, session_ends=session_ends)]

    def meter_wh(self) -> int:
        """The register for meterStart and meterStop: whole Wh, rounded as the register values are."""
        return whole_wh(self.energy_wh) if self.energy_wh is not None else 0

    def change_availability(self, operative: bool) -> str:
        """ChangeAvailability for this connector: "Accepted" (now) or "Scheduled" (after the transaction)."""
        self._fire_availability(MakeOperative() if operative else MakeInoperative())
        return "Scheduled" if self._availability in SCHEDULED else "Accepted"

    # -- the lifecycle: only the tables change it ------------------------------------------
    def _facts(self) -> Facts:
        return Facts(
            plugged=self.plugged,
            plug_sensed=self.plug_sensed,
            usable=self.usable,
            in_transaction=self._state is State.TRANSACTION,
        )

    def _fire_taken(self, event: SessionEvent) -> bool:
        before = self._state
        self._fire(event)
        return self._state is not before

    def _fire(self, event: SessionEvent) -> list[Effect]:
        """Take the session transition the table gives for `event` (none: ignored) and return the
        effects that follow from it."""
        source = self._state
        target = session_step(source, event, self._facts())
        if target is None:
            return []
        effects: list[Effect] = []
        ended = source is State.TRANSACTION and target is not State.TRANSACTION
        if ended:
            assert isinstance(event, Stop)  # the table's only way out of a transaction
            effects += self._end(event)
        elif target is State.TRANSACTION and source is not State.TRANSACTION:
            effects += self._begin(event)
        elif isinstance(event, TagPresented):
            self.authorizing.add(event.id_tag)
            effects.append(Authorize(event.id_tag))
        if target is State.AUTHORIZED:
            if isinstance(event, TagAccepted):  # the latest tag waits (with the reservation it holds)
                held = self._reservation if source is State.RESERVED else None
                if held is None and self._waiting is not None:
                    held = self._waiting.reservation
                self._waiting = _Waiting(event.id_tag, event.parent_id_tag, event.wait_until, held)
        else:
            self._waiting = None
        if isinstance(event, Reserve):
            self._reservation = event.reservation
        elif target is not State.RESERVED:
            self._reservation = None
        if target is not State.TRANSACTION:
            self._used = None
        self._state = target
        if ended:  # h11's state-triggered transition: a Scheduled availability applies now
            self._fire_availability(TransactionEnded())
            self.restart_due = not self.switches_energy and target is State.FINISHING
        return effects

    def _fire_availability(self, event: AvailabilityEvent) -> None:
        target = availability_step(self._availability, event, self._facts())
        if target is not None:
            self._availability = target

    def _begin(self, event: SessionEvent) -> list[Effect]:
        """Entering TRANSACTION: a new one (an accepted tag, or the cable it waited for) or a resumed one."""
        if isinstance(event, Resume):
            tx = event.transaction
            self._transaction = tx
            self.plugged = True
            self.energy_wh = max(self.energy_wh or 0.0, float(tx.meter_start_wh))
            return self.energy()
        waiting = self._waiting
        used = self._reservation if self._state is State.RESERVED else None
        if used is None and waiting is not None:
            used = waiting.reservation
        if isinstance(event, TagAccepted):
            id_tag, parent, now = event.id_tag, event.parent_id_tag, event.now
        else:
            assert isinstance(event, CableIn) and waiting is not None  # the table's other ways in
            id_tag, parent, now = waiting.id_tag, None, event.now
        if parent is None and waiting is not None and same_tag(id_tag, waiting.id_tag):
            parent = waiting.parent_id_tag
        tx = Transaction(self.new_id(), id_tag, self.meter_wh(), now, parent_id_tag=parent)
        self._transaction = tx
        self._used = used
        self.plugged = self.plugged or not self.plug_sensed
        self.plugged_at = None
        # The start is persisted (with reservationId) before the reservation is let go.
        ended = [ReservationEnded(used, "used")] if used is not None else []
        return [StartTransaction(tx), *ended, *self.energy()]

    def _end(self, stop: Stop) -> list[Effect]:
        """Leaving TRANSACTION: energy off, then the StopTransaction (meterStop never below meterStart)."""
        tx = self._transaction
        assert tx is not None
        meter = self.meter_wh()
        self._transaction = None
        if not self.plug_sensed:
            self.plugged = False  # only assumed for the transaction: free at once, not Preparing
        return [
            *self.energy(False, session_ends=True),
            StopTransaction(tx, max(meter, tx.meter_start_wh), stop.now, stop.reason, stop.id_tag),
        ]
