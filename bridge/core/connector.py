"""One connector's brain (pure): its status and its transaction decisions.

Inputs are events with the time passed in: a device reading, an id tag
presented (at the box or by RemoteStartTransaction), the answers of the
central system. Outputs are effects the shell carries out: ask for
authorization, start or stop a transaction, allow or stop energy.

The status is *derived*, never stored: from what the device reports
(plugged, EV requesting, fault), whether energy is allowed, the transaction
and the short-lived facts "a tag is authorized and waits for the plug"
and "the transaction ended but the cable is still in". Derivation order
follows OCPP 1.6 §4.9: Faulted beats everything; Unavailable only without
a transaction; SuspendedEVSE takes precedence over SuspendedEV.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TypeAlias

from adapters.base import ChargerReading, DeviceFault
from bridge.core.meter_values import whole_wh


class Status(StrEnum):
    AVAILABLE = "Available"
    PREPARING = "Preparing"
    CHARGING = "Charging"
    SUSPENDED_EVSE = "SuspendedEVSE"
    SUSPENDED_EV = "SuspendedEV"
    FINISHING = "Finishing"
    RESERVED = "Reserved"
    UNAVAILABLE = "Unavailable"
    FAULTED = "Faulted"


class StopReason(StrEnum):
    LOCAL = "Local"
    REMOTE = "Remote"
    EV_DISCONNECTED = "EVDisconnected"
    HARD_RESET = "HardReset"
    SOFT_RESET = "SoftReset"
    REBOOT = "Reboot"
    POWER_LOSS = "PowerLoss"
    UNLOCK_COMMAND = "UnlockCommand"
    DE_AUTHORIZED = "DeAuthorized"
    EMERGENCY_STOP = "EmergencyStop"
    OTHER = "Other"


@dataclass(frozen=True)
class StatusReport:
    """What a StatusNotification carries."""

    status: Status
    error_code: str = "NoError"
    info: str | None = None
    vendor_error_code: str | None = None


@dataclass(frozen=True)
class Transaction:
    local_id: int  # ours, stable before the central system's id is known
    id_tag: str
    meter_start_wh: int
    started_at: datetime
    transaction_id: int | None = None  # the central system's id, from StartTransaction.conf
    parent_id_tag: str | None = None  # the tag's group, once the central system named it
    # Set when StartTransaction.conf said the tag is not valid: energy flows up to this register
    # value (MaxEnergyOnInvalidId), then the transaction stops or is suspended.
    invalid_energy_limit_wh: float | None = None
    deauthorized: bool = False  # invalid, energy stopped, the transaction continues


# -- effects -------------------------------------------------------------
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


Effect: TypeAlias = Authorize | StartTransaction | StopTransaction | SetEnergy


def same_tag(a: str, b: str) -> bool:
    """IdTokens are case-insensitive (OCPP 1.6 §3.9)."""
    return a.casefold() == b.casefold()


@dataclass
class Connector:
    connector_id: int
    plugged: bool = False
    plug_sensed: bool = True  # False while the device cannot tell (a relay): see on_reading
    ev_requesting: bool = False
    fault: DeviceFault | None = None
    unreachable: DeviceFault | None = None  # the device stopped answering (set by the shell)
    energy_wh: float | None = None
    energy_allowed: bool = False  # what we told the device
    limit_paused: bool = False  # the charging limit is below what the device can do: no energy
    operative: bool = True
    transaction: Transaction | None = None
    waiting_tag: str | None = None  # authorized, waiting for the plug
    waiting_until: datetime | None = None
    waiting_parent: str | None = None  # the waiting tag's parentIdTag, when known
    finishing: bool = False  # transaction over (or no tag in time), cable still plugged
    plugged_at: datetime | None = None  # when the cable went in, while no transaction runs
    scheduled_operative: bool | None = None  # ChangeAvailability waiting for the transaction to end
    authorizing: set[str] = field(default_factory=set)  # tags with an Authorize in flight
    # Local transaction ids: the shell hands in the store's sequence, so ids are never reused.
    new_id: Callable[[], int] = field(default_factory=lambda: itertools.count(1).__next__)

    # -- derived status --------------------------------------------------
    def status(self) -> StatusReport:
        fault = self.fault or self.unreachable
        if fault is not None:
            return StatusReport(Status.FAULTED, fault.error_code, fault.info, fault.vendor_error_code)
        if self.transaction is not None:
            if not self.plugged:
                return StatusReport(Status.SUSPENDED_EV, info="EV side disconnected")
            if not self.energy_allowed:
                return StatusReport(Status.SUSPENDED_EVSE)
            if not self.ev_requesting:
                return StatusReport(Status.SUSPENDED_EV)
            return StatusReport(Status.CHARGING)
        if not self.operative:
            return StatusReport(Status.UNAVAILABLE)
        if self.finishing:
            return StatusReport(Status.FINISHING)
        if self.plugged or self.waiting_tag is not None:
            return StatusReport(Status.PREPARING)
        return StatusReport(Status.AVAILABLE)

    # -- events ------------------------------------------------------------
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
        self.plugged = bool(reading.plugged) if self.plug_sensed else self.transaction is not None
        self.ev_requesting = reading.ev_requesting
        self.fault = reading.fault
        self.unreachable = None  # it answered
        if reading.energy_wh is not None:
            self.energy_wh = reading.energy_wh
        effects: list[Effect] = []
        if self.plugged and not was_plugged:
            self.plugged_at = now
            if self.transaction is None and self.waiting_tag is not None:
                effects += self._start(self.waiting_tag, now)
        elif was_plugged and not self.plugged:
            self.finishing = False
            self.plugged_at = None
            if self.transaction is not None and stop_on_ev_disconnect:
                effects += self.stop(StopReason.EV_DISCONNECTED, now, id_tag=None)
        effects += self._invalid_energy_used_up(now, stop_on_invalid_id)
        return effects

    def on_device_silent(self, fault: DeviceFault) -> None:
        """The shell gave up on the device (several failed reads): Faulted until it answers again.
        A running transaction is kept; it goes on when the device is back."""
        self.unreachable = fault

    def on_tag(self, id_tag: str, now: datetime, known_parent: str | None = None) -> list[Effect]:
        """A tag presented at the box: stop with the same tag (or one of the same group), else ask
        to authorize it. `known_parent`: the tag's parentIdTag if it is known locally and valid."""
        tx = self.transaction
        if tx is not None:
            if same_tag(id_tag, tx.id_tag):
                # The same tag stops its transaction without an Authorize (§3.4, OCTT TC_068).
                return self.stop(StopReason.LOCAL, now, id_tag=id_tag)
            if tx.parent_id_tag is None:
                return []  # a different tag neither stops nor authorizes (TC_068)
            if known_parent is not None:
                # Same group: stops it (§3.4, TC_069); another group: ignored.
                return self._stop_by_group(id_tag, known_parent, now)
            if any(same_tag(id_tag, t) for t in self.authorizing):
                return []
            self.authorizing.add(id_tag)
            return [Authorize(id_tag)]  # to learn the tag's group
        if not self.operative or self.fault is not None or self.unreachable is not None or self.finishing:
            return []
        if any(same_tag(id_tag, t) for t in self.authorizing):
            return []
        self.authorizing.add(id_tag)
        return [Authorize(id_tag)]

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
        tx = self.transaction
        if tx is not None:
            # Asked to learn the group of a tag presented during the transaction.
            if accepted and parent_id_tag is not None and not same_tag(id_tag, tx.id_tag):
                return self._stop_by_group(id_tag, parent_id_tag, now)
            return []
        if not accepted or not self.operative or self.fault is not None or self.unreachable is not None:
            return []
        if self.plugged or not self.plug_sensed:
            return self._start(id_tag, now, parent_id_tag)
        self.waiting_tag = id_tag
        self.waiting_parent = parent_id_tag
        self.waiting_until = now + timedelta(seconds=connection_timeout_s)
        return []

    def on_tick(self, now: datetime, connection_timeout_s: int) -> list[Effect]:
        """Time passes: an authorized tag waits for the plug only ConnectionTimeOut long; a plugged
        cable waits for a tag only as long, then the connector is Finishing (B6, ERRATA 3.20)
        until it is unplugged."""
        if self.transaction is not None:
            return []
        if self.waiting_until is not None and now >= self.waiting_until:
            self.waiting_tag = None
            self.waiting_until = None
        if (
            self.plugged
            and self.plugged_at is not None
            and self.waiting_tag is None
            and not self.authorizing
            and not self.finishing
            and connection_timeout_s > 0
            and now >= self.plugged_at + timedelta(seconds=connection_timeout_s)
        ):
            self.finishing = True
        return []

    def on_start_confirmed(
        self, local_id: int, transaction_id: int, parent_id_tag: str | None = None
    ) -> None:
        tx = self.transaction
        if tx is not None and tx.local_id == local_id:
            self.transaction = replace(
                tx, transaction_id=transaction_id, parent_id_tag=parent_id_tag or tx.parent_id_tag
            )

    def on_start_rejected(
        self, local_id: int, now: datetime, stop_on_invalid_id: bool, max_energy_wh: int
    ) -> list[Effect]:
        """StartTransaction.conf said the tag is not valid (§3.5.4, ERRATA 3.5, 3.17): up to
        MaxEnergyOnInvalidId more Wh may flow, then the transaction stops (DeAuthorized) or, with
        StopTransactionOnInvalidId false, energy stops and the transaction goes on (SuspendedEVSE)."""
        tx = self.transaction
        if tx is None or tx.local_id != local_id:
            return []
        self.transaction = replace(tx, invalid_energy_limit_wh=self.meter_wh() + max(0, max_energy_wh))
        return self._invalid_energy_used_up(now, stop_on_invalid_id)

    def _invalid_energy_used_up(self, now: datetime, stop_on_invalid_id: bool) -> list[Effect]:
        tx = self.transaction
        if tx is None or tx.invalid_energy_limit_wh is None or tx.deauthorized:
            return []
        if self.meter_wh() < tx.invalid_energy_limit_wh:
            return []
        if stop_on_invalid_id:
            return self.stop(StopReason.DE_AUTHORIZED, now, None)
        self.transaction = replace(tx, deauthorized=True)
        self.energy_allowed = False
        return [SetEnergy(False)]

    def on_limit(self, paused: bool) -> list[Effect]:
        """The charging limit fell below the device's minimum (paused) or rose again: a running
        transaction goes on, with energy off (SuspendedEVSE) or on again."""
        self.limit_paused = paused
        tx = self.transaction
        if tx is None or tx.deauthorized or self.energy_allowed == (not paused):
            return []
        self.energy_allowed = not paused
        return [SetEnergy(self.energy_allowed)]

    def _stop_by_group(self, id_tag: str, parent: str, now: datetime) -> list[Effect]:
        tx = self.transaction
        if tx is not None and tx.parent_id_tag is not None and same_tag(parent, tx.parent_id_tag):
            return self.stop(StopReason.LOCAL, now, id_tag=id_tag)
        return []

    def stop(self, reason: StopReason, now: datetime, id_tag: str | None) -> list[Effect]:
        tx = self.transaction
        if tx is None:
            return []
        meter = self.meter_wh()
        self.transaction = None
        self.finishing = self.plugged and self.plug_sensed
        if not self.plug_sensed:
            self.plugged = False  # only assumed for the transaction: free at once, not Preparing
        self.energy_allowed = False
        if self.scheduled_operative is not None:  # a ChangeAvailability waited for this end
            self.operative = self.scheduled_operative
            self.scheduled_operative = None
        return [SetEnergy(False), StopTransaction(tx, max(meter, tx.meter_start_wh), now, reason, id_tag)]

    def resume(self, tx: Transaction) -> list[Effect]:
        """The bridge restarted gracefully during `tx`: it goes on. Taken as plugged until the first
        reading says otherwise (an unplug while the bridge was down then ends it as usual)."""
        self.transaction = tx
        self.plugged = True
        self.energy_wh = max(self.energy_wh or 0.0, float(tx.meter_start_wh))
        self.energy_allowed = not self.limit_paused and not tx.deauthorized
        return [SetEnergy(self.energy_allowed)]

    def change_availability(self, operative: bool) -> str:
        """ChangeAvailability for this connector: "Accepted" (now) or "Scheduled" (after the transaction)."""
        if self.transaction is not None and operative != self.operative:
            self.scheduled_operative = operative
            return "Scheduled"
        self.operative = operative
        self.scheduled_operative = None
        return "Accepted"

    def meter_wh(self) -> int:
        """The register for meterStart and meterStop: whole Wh, rounded as the register values are."""
        return whole_wh(self.energy_wh) if self.energy_wh is not None else 0

    def _start(self, id_tag: str, now: datetime, parent_id_tag: str | None = None) -> list[Effect]:
        if parent_id_tag is None and self.waiting_tag is not None and same_tag(id_tag, self.waiting_tag):
            parent_id_tag = self.waiting_parent
        tx = Transaction(self.new_id(), id_tag, self.meter_wh(), now, parent_id_tag=parent_id_tag)
        self.transaction = tx
        self.plugged = self.plugged or not self.plug_sensed
        self.plugged_at = None
        self.waiting_parent = None
        self.waiting_tag = None
        self.waiting_until = None
        self.finishing = False
        self.energy_allowed = not self.limit_paused
        return [StartTransaction(tx), SetEnergy(self.energy_allowed)]
