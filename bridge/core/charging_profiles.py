"""Charging profiles (pure): the model, the checks of SetChargingProfile, and the installed set.

A profile arrives as the wire dict (camelCase, as SetChargingProfile carries it
after the schema check) and is parsed once into `ChargingProfile`; the wire
dict is kept for the store. Times are whole seconds since the epoch (UTC):
schedules are defined in seconds and the composite works on plain integers.

Two kinds of "no" (ERRATA 3.24, 3.38): a value that cannot be a valid profile
(the first period not at 0, periods out of order, Recurring without its kind)
is a `ProfileInvalid` -> CALLERROR PropertyConstraintViolation; a valid profile
this charge point will not install (no transaction for a TxProfile, too many
profiles, stack level too high) is `Rejected` with a reason for the log.

Choices where the specification leaves room, written down in docs/protocol.md:
- Replacement by (stackLevel, purpose) is per connector: a connector's default
  does not replace another connector's.
- An Absolute schedule without startSchedule starts when it is received.
- A Relative schedule counts from the transaction's start; a Relative ChargePointMaxProfile on a
  connector without a transaction (and for connector 0) counts from when it was received.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class Purpose(StrEnum):
    CHARGE_POINT_MAX = "ChargePointMaxProfile"
    TX_DEFAULT = "TxDefaultProfile"
    TX = "TxProfile"


class Kind(StrEnum):
    ABSOLUTE = "Absolute"
    RECURRING = "Recurring"
    RELATIVE = "Relative"


RECURRENCE_S = {"Daily": 86_400, "Weekly": 7 * 86_400}


class ProfileInvalid(ValueError):
    """The profile breaks the specification's rules (answered PropertyConstraintViolation)."""


@dataclass(frozen=True, slots=True)
class Period:
    start_s: int  # from the start of the schedule
    limit: float  # A per phase, or W in total, per the schedule's unit
    phases: int | None  # numberPhases, None = not given (3 is assumed where it matters)


@dataclass(frozen=True)
class ChargingProfile:
    id: int
    connector_id: int
    stack_level: int
    purpose: Purpose
    kind: Kind
    unit: str  # "A" or "W"
    periods: tuple[Period, ...]
    start_schedule: int | None = None  # epoch seconds; Absolute and Recurring
    duration_s: int | None = None
    recurrence_s: int | None = None  # Recurring: 86400 (Daily) or 604800 (Weekly)
    valid_from: int | None = None
    valid_to: int | None = None
    transaction_id: int | None = None
    min_rate: float | None = None
    received_at: int = (
        0  # epoch seconds: a Relative ChargePointMaxProfile without a transaction counts from here
    )
    wire: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    starts: tuple[int, ...] = field(default=(), compare=False, repr=False)  # period starts, for bisect

    def limit_at(self, offset_s: int) -> Period:
        """The period in force `offset_s` seconds after the schedule's start (offset >= 0)."""
        return self.periods[bisect.bisect_right(self.starts, offset_s) - 1]

    def valid_at(self, t: int) -> bool:
        return (self.valid_from is None or self.valid_from <= t) and (
            self.valid_to is None or t < self.valid_to
        )


def _epoch(value: Any, field_name: str) -> int | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise ProfileInvalid(f"{field_name}: not an ISO 8601 date-time") from exc
    if moment.tzinfo is None:
        raise ProfileInvalid(f"{field_name}: the time zone is missing (use Z or an offset)")
    return int(moment.timestamp())


def parse_profile(wire: Mapping[str, Any], connector_id: int, received_at: int) -> ChargingProfile:
    """A profile from its wire dict (csChargingProfiles, already schema-checked) for `connector_id`,
    or ProfileInvalid naming the field."""
    schedule = wire["chargingSchedule"]
    kind = Kind(wire["chargingProfileKind"])
    raw_periods = schedule["chargingSchedulePeriod"]
    periods = tuple(
        Period(
            int(p["startPeriod"]),
            float(p["limit"]),
            None if p.get("numberPhases") is None else int(p["numberPhases"]),
        )
        for p in raw_periods
    )
    if not periods:
        raise ProfileInvalid("chargingSchedulePeriod: at least one period is needed")
    if periods[0].start_s != 0:
        raise ProfileInvalid("chargingSchedulePeriod: the first startPeriod must be 0")
    for earlier, later in itertools.pairwise(periods):
        if later.start_s <= earlier.start_s:
            raise ProfileInvalid("chargingSchedulePeriod: startPeriod must increase from period to period")
    for p in periods:
        if p.limit < 0:
            raise ProfileInvalid("chargingSchedulePeriod: limit must not be negative")
        if p.phases is not None and p.phases not in (1, 2, 3):
            raise ProfileInvalid("chargingSchedulePeriod: numberPhases must be 1, 2 or 3")
    start = _epoch(schedule.get("startSchedule"), "startSchedule")
    recurrence: int | None = None
    if kind is Kind.RECURRING:
        kind_name = wire.get("recurrencyKind")
        if kind_name is None:
            raise ProfileInvalid("recurrencyKind: a Recurring profile needs Daily or Weekly")
        recurrence = RECURRENCE_S[kind_name]
        if start is None:
            raise ProfileInvalid("startSchedule: a Recurring profile needs the time it recurs from")
    elif kind is Kind.ABSOLUTE and start is None:
        start = received_at
    elif kind is Kind.RELATIVE:
        start = None  # relative to the transaction's start; a startSchedule given is meaningless
    duration = schedule.get("duration")
    if duration is not None and int(duration) <= 0:
        raise ProfileInvalid("duration: must be more than 0 seconds")
    valid_from = _epoch(wire.get("validFrom"), "validFrom")
    valid_to = _epoch(wire.get("validTo"), "validTo")
    if valid_from is not None and valid_to is not None and valid_to <= valid_from:
        raise ProfileInvalid("validTo: must be after validFrom")
    stored = dict(wire)
    if kind is Kind.ABSOLUTE and schedule.get("startSchedule") is None:
        stored["chargingSchedule"] = {**schedule, "startSchedule": _iso(received_at)}
    return ChargingProfile(
        id=int(wire["chargingProfileId"]),
        connector_id=connector_id,
        stack_level=int(wire["stackLevel"]),
        purpose=Purpose(wire["chargingProfilePurpose"]),
        kind=kind,
        unit=str(schedule["chargingRateUnit"]),
        periods=periods,
        start_schedule=start,
        duration_s=None if duration is None else int(duration),
        recurrence_s=recurrence,
        valid_from=valid_from,
        valid_to=valid_to,
        transaction_id=None if wire.get("transactionId") is None else int(wire["transactionId"]),
        min_rate=None if schedule.get("minChargingRate") is None else float(schedule["minChargingRate"]),
        received_at=received_at,
        wire=stored,
        starts=tuple(p.start_s for p in periods),
    )


def report_only_refusal(connector_id: int, switches_energy: Mapping[int, bool]) -> str | None:
    """Why a profile for `connector_id` is refused because no device it would limit can switch
    energy (report only: it could not follow the limit), or None. A profile for connector 0 is kept
    while one connector can follow it, and applied only to those."""
    if connector_id != 0:
        if switches_energy.get(connector_id, True):
            return None
        return f"connector {connector_id} is report only: its device decides when energy flows"
    if any(switches_energy.values()):
        return None
    return "every connector is report only: their devices decide when energy flows"


def _iso(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Limits:
    """What this charge point accepts (the SmartCharging configuration keys)."""

    max_stack_level: int
    max_periods: int
    max_installed: int
    units: frozenset[str]  # of "A", "W"


@dataclass(frozen=True)
class RunningTransaction:
    """A connector's transaction, as far as profiles care."""

    started_at: int  # epoch seconds: a Relative TxProfile counts from here
    transaction_id: int | None  # the central system's id, once known


class ProfileSet:
    """The installed profiles of one charge point, with the replacement and clearing rules."""

    def __init__(self, profiles: Iterable[ChargingProfile] = ()) -> None:
        self._by_id: dict[int, ChargingProfile] = {p.id: p for p in profiles}

    def __iter__(self) -> Any:
        return iter(sorted(self._by_id.values(), key=lambda p: p.id))

    def __len__(self) -> int:
        return len(self._by_id)

    def rejection(
        self,
        profile: ChargingProfile,
        limits: Limits,
        running: Mapping[int, RunningTransaction | None],
    ) -> str | None:
        """Why this charge point will not install `profile` (SetChargingProfile Rejected), or None.

        `running`: every connector id of the charge point, with its transaction or None.
        """
        cid = profile.connector_id
        if profile.purpose is Purpose.CHARGE_POINT_MAX and cid != 0:
            return "a ChargePointMaxProfile is for connector 0 only"
        if profile.purpose is Purpose.TX:
            if cid == 0:
                return "a TxProfile needs a connector, not 0"
            tx = running.get(cid)
            if tx is None:
                return f"no transaction runs on connector {cid} for a TxProfile"
            if profile.transaction_id is not None and profile.transaction_id != tx.transaction_id:
                return f"transaction {profile.transaction_id} is not the one running on connector {cid}"
        if profile.stack_level > limits.max_stack_level:
            return f"stackLevel {profile.stack_level} is above the maximum ({limits.max_stack_level})"
        if len(profile.periods) > limits.max_periods:
            return f"{len(profile.periods)} periods, ChargingScheduleMaxPeriods is {limits.max_periods}"
        if profile.unit not in limits.units:
            return f"the unit {profile.unit} is not in ChargingScheduleAllowedChargingRateUnit"
        if len(self._after_install(profile)) > limits.max_installed:
            return f"MaxChargingProfilesInstalled ({limits.max_installed}) profiles are installed"
        return None

    def _replaced_by(self, profile: ChargingProfile) -> list[ChargingProfile]:
        return [
            p
            for p in self._by_id.values()
            if p.id == profile.id
            or (
                p.stack_level == profile.stack_level
                and p.purpose is profile.purpose
                and p.connector_id == profile.connector_id
            )
        ]

    def _after_install(self, profile: ChargingProfile) -> dict[int, ChargingProfile]:
        gone = {p.id for p in self._replaced_by(profile)}
        kept = {pid: p for pid, p in self._by_id.items() if pid not in gone}
        kept[profile.id] = profile
        return kept

    def install(self, profile: ChargingProfile) -> list[ChargingProfile]:
        """Install (after `rejection` said None); returns the profiles it replaced."""
        replaced = self._replaced_by(profile)
        self._by_id = self._after_install(profile)
        return replaced

    def clear(
        self,
        profile_id: int | None = None,
        connector_id: int | None = None,
        purpose: Purpose | None = None,
        stack_level: int | None = None,
    ) -> list[ChargingProfile]:
        """ClearChargingProfile: by id (the other fields ignored), else every profile matching all given
        fields; nothing given clears all (ERRATA 3.25, 3.26). Returns what was removed."""
        if profile_id is not None:
            gone = [p for p in self._by_id.values() if p.id == profile_id]
        else:
            gone = [
                p
                for p in self._by_id.values()
                if (connector_id is None or p.connector_id == connector_id)
                and (purpose is None or p.purpose is purpose)
                and (stack_level is None or p.stack_level == stack_level)
            ]
        for p in gone:
            del self._by_id[p.id]
        return gone

    def end_transaction(self, connector_id: int) -> list[ChargingProfile]:
        """A transaction ended: its TxProfiles go (§3.13.1)."""
        return self.clear(connector_id=connector_id, purpose=Purpose.TX)
