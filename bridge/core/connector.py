"""One connector's brain (pure): what each input means for its lifecycle and its transaction.

Inputs are events with the time passed in: a device reading, an id tag presented (at the box or by
RemoteStartTransaction), the answers of the central system, ChangeAvailability, a charging limit.
Outputs are effects the shell carries out: ask for authorization, start or stop a transaction, allow
or stop energy.

What an input means is decided here: the same tag or one of the same group stops the transaction,
an unplug stops it with StopTransactionOnEVSideDisconnect, an invalid tag may use MaxEnergyOnInvalidId
first, a plug-in nobody tapped for presents the configured free-vend tag, and a report-only device
charging on after the bridge ended its transaction presents it (or the next tag) again. Where the
lifecycle goes is the table's (`connector_states`, whose theory comes first);
`connector_lifecycle.Lifecycle` takes the transitions and keeps the facts and the state's data; the
status is a projection (`connector_status`).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from adapters.base import ChargerReading, DeviceFault
from bridge.core.connector_effects import (
    Authorize,
    Effect,
    ReservationEnded,
    SetEnergy,
    StartTransaction,
    StopTransaction,
)
from bridge.core.connector_lifecycle import Lifecycle
from bridge.core.connector_states import (
    CableIn,
    CableOut,
    CancelReservation,
    ConnectionTimeout,
    Reservation,
    Reserve,
    Resume,
    State,
    Stop,
    TagAccepted,
    TagPresented,
)
from bridge.core.connector_status import Status, StatusReport
from bridge.core.device_errors import ocpp_fault
from bridge.core.transaction import StopReason, Transaction, same_tag

# What the shell and the other modules import from here.
__all__ = [
    "Authorize", "Connector", "Effect", "Reservation", "ReservationEnded", "SetEnergy", "StartTransaction",
    "Status", "StatusReport", "StopReason", "StopTransaction", "Transaction", "admits", "same_tag",
]  # fmt: skip


def admits(reservation: Reservation, id_tag: str, parent_id_tag: str | None) -> bool:
    """Whether a tag may use the reservation: its own tag, or one whose parentIdTag is the
    reservation's (§5.13)."""
    if same_tag(id_tag, reservation.id_tag):
        return True
    group = reservation.parent_id_tag
    return group is not None and parent_id_tag is not None and same_tag(group, parent_id_tag)


class Connector(Lifecycle):
    """The connector the shell feeds (`bridge.chargepoint`): one per physical connector."""

    __slots__ = ()

    # -- inputs --------------------------------------------------------------------
    def on_reading(
        self,
        reading: ChargerReading,
        now: datetime,
        stop_on_ev_disconnect: bool,
        stop_on_invalid_id: bool = True,
    ) -> list[Effect]:
        was_plugged = self.plugged
        # A device that cannot sense the plug (a relay: plugged is None) is taken as plugged while a
        # transaction runs and as free otherwise: an authorized tag starts at once, and an unplug
        # can never stop a transaction (it cannot be seen).
        self.plug_sensed = reading.plugged is not None
        self.plugged = bool(reading.plugged) if self.plug_sensed else self._transaction is not None
        self.ev_requesting = reading.ev_requesting
        self.device_allows = reading.energy_allowed
        self.fault = ocpp_fault(reading.fault) if reading.fault is not None else None
        self.unreachable = None  # it answered
        if reading.energy_wh is not None:
            self.energy_wh = reading.energy_wh
        effects: list[Effect] = []
        if self.plugged and not was_plugged:
            self.plugged_at = now
            effects += self._fire(CableIn(now))
            effects += self._free_tag_presented(now)
        elif was_plugged and not self.plugged:
            self.plugged_at = None
            self.restart_due = False  # the car it charged is gone
            effects += self._fire(CableOut())
            if stop_on_ev_disconnect:
                effects += self.stop(StopReason.EV_DISCONNECTED, now, id_tag=None)
        effects += self._invalid_energy_used_up(now, stop_on_invalid_id)
        effects += self._charging_on(self.free_tag)
        return effects + self.reservation_lost()

    def on_device_silent(self, fault: DeviceFault) -> list[Effect]:
        """The shell gave up on the device (several failed reads): Faulted until it answers again.
        A running transaction is kept; it goes on when the device is back. A reservation ends."""
        self.unreachable = fault
        return self.reservation_lost()

    def on_tag(self, id_tag: str, now: datetime, known_parent: str | None = None) -> list[Effect]:
        """A tag presented at the box: stop with the same tag (or one of the same group), else ask
        to authorize it. `known_parent`: the tag's parentIdTag if it is known locally and valid."""
        tx = self._transaction
        if tx is not None:
            if same_tag(id_tag, tx.id_tag):
                # The same tag stops its transaction without an Authorize (§3.4, OCTT TC_068).
                return self.stop(StopReason.LOCAL, now, id_tag=id_tag)
            if tx.parent_id_tag is None:
                return []  # a different tag neither stops nor authorizes (TC_068)
            if known_parent is not None:
                # Same group: stops it (§3.4, TC_069); another group: ignored.
                return self._stop_by_group(id_tag, known_parent, now)
        if self._state is State.FINISHING:
            return self._charging_on(id_tag)  # Finishing: nothing, unless energy goes unreported
        held = self.reservation
        if held is not None and not admits(held, id_tag, known_parent):
            if held.parent_id_tag is None or known_parent is not None:
                return []  # not the reserved tag nor of its group: refused without an Authorize
            # The tag's group is not known here: an Authorize tells it (on_authorized checks it).
        if any(same_tag(id_tag, t) for t in self.authorizing):
            return []  # one Authorize in flight per tag
        return self._fire(TagPresented(id_tag))  # to start, or to learn the tag's group

    def on_authorized(
        self,
        id_tag: str,
        accepted: bool,
        now: datetime,
        connection_timeout_s: int,
        parent_id_tag: str | None = None,
    ) -> list[Effect]:
        """The outcome of authorizing `id_tag` (Authorize.conf, or a remote start)."""
        self.authorizing = {t for t in self.authorizing if not same_tag(t, id_tag)}
        tx = self._transaction
        if tx is not None:
            # Asked to learn the group of a tag presented during the transaction.
            if accepted and parent_id_tag is not None and not same_tag(id_tag, tx.id_tag):
                return self._stop_by_group(id_tag, parent_id_tag, now)
            return []
        held = self.reservation
        if not accepted or (held is not None and not admits(held, id_tag, parent_id_tag)):
            return []  # refused, or not a tag the reservation admits
        until = now + timedelta(seconds=connection_timeout_s)
        return self._fire(TagAccepted(id_tag, parent_id_tag, now, until))

    def on_tick(self, now: datetime, connection_timeout_s: int) -> list[Effect]:
        """Time passes: an authorized tag waits for the cable only ConnectionTimeOut long; a cable
        in waits for a tag only as long, then the connector is Finishing (B6, ERRATA 3.20) until it
        is unplugged."""
        due = self.next_tick(connection_timeout_s)
        if due is None or now < due:
            return []
        held = self.reservation
        effects = self._fire(ConnectionTimeout())
        if held is not None and self._state is State.IDLE:
            effects += self._fire(Reserve(held))  # the reserved tag lapsed: the reservation stands
        return effects

    def next_tick(self, connection_timeout_s: int) -> datetime | None:
        """When `on_tick` decides something next (None: nothing waits for time), so that a shell
        reading a device only on its reports knows when to look again."""
        if self._state is State.AUTHORIZED:
            return self._waiting.until if self._waiting is not None else None
        if self._state is State.RESERVED:
            return None  # a cable in while Reserved waits for the reserved tag (the expiry is the shell's)
        # A cable without a tag; an Authorize in flight holds the time off.
        if self.plugged and self.plugged_at is not None and not self.authorizing and connection_timeout_s > 0:
            return self.plugged_at + timedelta(seconds=connection_timeout_s)
        return None

    @property
    def watches_energy(self) -> bool:
        """A rejected start runs on only until MaxEnergyOnInvalidId is used up: only readings show it."""
        tx = self._transaction
        return tx is not None and tx.invalid_energy_limit_wh is not None and not tx.deauthorized

    def on_start_confirmed(self, local_id: int, parent_id_tag: str | None = None) -> None:
        """StartTransaction.conf arrived: the tag's group it names counts for stops by a tag of the same
        group. (The central system's transaction id is the outbox's: bridge/outbox/tx_ids.py.)"""
        tx = self._transaction
        if tx is not None and tx.local_id == local_id:
            self._transaction = replace(tx, parent_id_tag=parent_id_tag or tx.parent_id_tag)

    def on_start_rejected(
        self, local_id: int, now: datetime, stop_on_invalid_id: bool, max_energy_wh: int
    ) -> list[Effect]:
        """StartTransaction.conf said the tag is not valid (§3.5.4, ERRATA 3.5, 3.17): up to
        MaxEnergyOnInvalidId more Wh may flow, then the transaction stops (DeAuthorized) or, with
        StopTransactionOnInvalidId false, energy stops and the transaction goes on (SuspendedEVSE)."""
        tx = self._transaction
        if tx is None or tx.local_id != local_id:
            return []
        self._transaction = replace(tx, invalid_energy_limit_wh=self.meter_wh() + max(0, max_energy_wh))
        return self._invalid_energy_used_up(now, stop_on_invalid_id)

    def on_limit(self, paused: bool) -> list[Effect]:
        """The charging limit fell below the device's minimum (paused) or rose again: a running
        transaction goes on, with energy off (SuspendedEVSE) or on again."""
        before = self.energy_allowed
        self.limit_paused = paused
        return [] if self.energy_allowed == before else self.energy()

    def stop(self, reason: StopReason, now: datetime, id_tag: str | None) -> list[Effect]:
        return self._fire(Stop(reason, id_tag, now))

    def resume(self, tx: Transaction) -> list[Effect]:
        """The bridge restarted gracefully during `tx`: it goes on. Taken as plugged until the first
        reading says otherwise (an unplug while the bridge was down then ends it as usual)."""
        return self._fire(Resume(tx))

    def reserve(self, reservation: Reservation) -> bool:
        """A reservation takes the connector (Reserved), or replaces the one it holds; False when it
        cannot (the charge-point core answered the ReserveNow before)."""
        if self._state is State.RESERVED:
            held = self._reservation
            if held is None or held.reservation_id != reservation.reservation_id:
                return False  # reserved under another id: Occupied
            self._fire(Reserve(reservation))
            return self._reservation == reservation
        return self._fire_taken(Reserve(reservation))

    def cancel_reservation(self, reservation_id: int | None = None) -> Reservation | None:
        """The reservation ends (cancelled or expired): the one it was, or None when there was none
        (of that id). A tag waiting for the cable with it keeps waiting, without it."""
        held = self.reservation
        if held is None or (reservation_id is not None and held.reservation_id != reservation_id):
            return None
        if self._state is State.RESERVED:
            self._fire(CancelReservation())
        elif self._waiting is not None:
            self._waiting = replace(self._waiting, reservation=None)
        return held

    def reservation_lost(self) -> list[Effect]:
        """A connector no longer usable (Faulted, Unavailable, held) ends its reservation (§5.13)."""
        if self.usable or self.reservation is None:
            return []
        why = "Faulted" if self.fault is not None or self.unreachable is not None else "Unavailable"
        held = self.cancel_reservation()
        return [ReservationEnded(held, why)] if held is not None else []

    # -- decisions on the data -----------------------------------------------------------
    def _free_tag_presented(self, now: datetime) -> list[Effect]:
        """Charging without a card: a cable in that no tag waited for (the connector is still Idle or
        Reserved after CableIn) presents the configured tag, as if it had been tapped. It takes a
        tap's path (Authorize, the list and the cache; a reservation admits it as it would the card),
        and, with no transaction here, it can stop nothing. A card whose Authorize is in flight
        decides alone: the tap came first."""
        if self.free_tag is None or self._state not in (State.IDLE, State.RESERVED) or self.authorizing:
            return []
        return self.on_tag(self.free_tag, now)

    def _charging_on(self, id_tag: str | None) -> list[Effect]:
        """Report only: the transaction ended with the cable in (a Reset, the same tag, DeAuthorized: the
        bridge cannot stop the device) and the device still gives energy to the car. That energy must not
        go unreported: `id_tag` (the free-vend tag at a reading, or a tag presented now) is authorized as
        a tap, and accepted it starts a new transaction from Finishing (the table's TagAccepted row).
        Once per ended transaction, and not while a Reset is under way (after it, at the next reading)."""
        charging = self.ev_requesting and self.device_allows
        if not self.restart_due or self._state is not State.FINISHING or not charging or self.restarting:
            return []
        if id_tag is None or not self.usable or self.authorizing:
            return []
        self.restart_due = False
        self.authorizing.add(id_tag)
        return [Authorize(id_tag)]

    def _invalid_energy_used_up(self, now: datetime, stop_on_invalid_id: bool) -> list[Effect]:
        tx = self._transaction
        if tx is None or tx.invalid_energy_limit_wh is None or not self.watches_energy:
            return []
        if self.meter_wh() < tx.invalid_energy_limit_wh:
            return []
        if stop_on_invalid_id:
            return self.stop(StopReason.DE_AUTHORIZED, now, None)
        self._transaction = replace(tx, deauthorized=True)
        return self.energy(False)  # report only: the transaction goes on, energy is the device's

    def _stop_by_group(self, id_tag: str, parent: str, now: datetime) -> list[Effect]:
        tx = self._transaction
        if tx is not None and tx.parent_id_tag is not None and same_tag(parent, tx.parent_id_tag):
            return self.stop(StopReason.LOCAL, now, id_tag=id_tag)
        return []
