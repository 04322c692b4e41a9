"""Smart charging at run time: the installed profiles, the SmartCharging answers, and the limit
carried to each device.

The decisions are pure (`bridge.core.charging_profiles`, `composite`, `setpoint`); this shell
persists the profiles, answers the central system, and makes the hardware follow: the limit
reaches a device when profiles change, when a transaction starts or ends, and when a schedule
period begins (one timer to the next boundary, no polling). A device that refuses a limit is
tried again every APPLY_RETRY_S. A report-only connector (its device cannot switch energy) takes no
profile and is never set a limit (`report_only_refusal`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from bridge.clock import Clock, iso
from bridge.core import device_errors
from bridge.core.charging_profiles import (
    ChargingProfile,
    Limits,
    ProfileInvalid,
    ProfileSet,
    Purpose,
    RunningTransaction,
    parse_profile,
    report_only_refusal,
)
from bridge.core.composite import (
    CompositePeriod,
    ConnectorLimits,
    charge_point_composite,
    connector_composite,
)
from bridge.core.config_keys import Configuration
from bridge.core.device_errors import LimitOutcome
from bridge.core.setpoint import Setpoint, setpoint
from bridge.flag import Flag
from bridge.ocpp.errors import ErrorCode, OcppError
from bridge.runtime.connector import ConnectorRuntime
from bridge.store import Store

log = logging.getLogger("bridge.smart_charging")

APPLY_RETRY_S = 30.0  # a device that refused its limit is tried again this often
MAX_SLEEP_S = 300.0  # wake at least this often: a wall clock corrected by the central system moves boundaries
# The limit in force is computed over [now, now + LOOKAHEAD_S): its first period is the limit, the
# second's start the next boundary. Longer than MAX_SLEEP_S, so a boundary within it is never missed;
# short, so a day of 96 periods per profile is not worked out at every boundary.
LOOKAHEAD_S = 2 * int(MAX_SLEEP_S)
REMOTE_START_PROFILE_S = 600.0  # a RemoteStart TxProfile waits this long at most for its transaction
UNITS = {"Current": "A", "Power": "W"}
MAX_COMPOSITE_S = 31 * 86_400  # GetCompositeSchedule answers at most this far ahead (bounded work)


def _constraint(description: str) -> OcppError:
    return OcppError(ErrorCode.PROPERTY_CONSTRAINT_VIOLATION, description)


class SmartCharging:
    def __init__(
        self,
        cp_id: str,
        connectors: Mapping[int, ConnectorRuntime],
        configuration: Configuration,
        clock: Clock,
        store: Store,
        limit_applied: Callable[[int, bool], None],
        cs_id: Callable[[int], int | None],
    ) -> None:
        self._cp_id = cp_id
        self._connectors = connectors
        self._configuration = configuration
        self._clock = clock
        self._store = store
        # The device took its limit (paused: below its minimum, or refused): the connector is told.
        self._limit_applied = limit_applied
        self._cs_id = cs_id  # the central system's id of a local transaction (the outbox owns the map)
        self.profiles = ProfileSet()
        self._received: dict[int, int] = {}  # profile id -> when it was received (epoch s), for the store
        self.applied: dict[int, Setpoint] = {}  # per connector: what the device was last set to
        # A RemoteStartTransaction's TxProfile, by connector: the tag it is for, when it came (monotonic).
        self._remote_start_profiles: dict[int, tuple[str, float, Mapping[str, Any]]] = {}
        self._wake = Flag()
        # Per connector: one apply at a time compares and sets `applied` (the device itself is
        # serialised by its coordinator's lock).
        self._apply_locks: dict[int, asyncio.Lock] = {}
        self._retry_at: float | None = None
        self._refused: set[int] = set()  # connectors whose charger did not take its limit: paused

    # -- state ----------------------------------------------------------------------
    def _now(self) -> int:
        return int(self._clock.now().timestamp())

    def limits(self) -> Limits:
        c = self._configuration
        return Limits(
            max_stack_level=c.get_int("ChargeProfileMaxStackLevel"),
            max_periods=c.get_int("ChargingScheduleMaxPeriods"),
            max_installed=c.get_int("MaxChargingProfilesInstalled"),
            units=frozenset(UNITS[u] for u in c.get_list("ChargingScheduleAllowedChargingRateUnit")),
        )

    def _transaction(self, cid: int) -> RunningTransaction | None:
        tx = self._connectors[cid].core.transaction
        if tx is None:
            return None
        return RunningTransaction(int(tx.started_at.timestamp()), self._cs_id(tx.local_id))

    def _connector(self, cid: int) -> ConnectorLimits:
        rt = self._connectors[cid]
        caps = rt.charger.capabilities
        voltage = rt.settings.nominal_voltage_v if rt.settings else 230.0
        return ConnectorLimits(
            cid, caps.max_current_a, caps.phases, voltage, self._transaction(cid), caps.can_switch_phases
        )

    def _share(self) -> int:
        """Connectors sharing the ChargePointMaxProfile: those with a transaction (at least one)."""
        return max(1, sum(1 for rt in self._connectors.values() if rt.core.transaction is not None))

    async def restore(self, rows: list[tuple[int, str, int]] | None = None) -> None:
        """The profiles installed before the restart (after the transactions are restored): a
        TxProfile stays with its transaction when that resumed, and goes when it ended."""
        if rows is None:
            rows = await self._store.run(self._store.charging_profiles, self._cp_id)
        dropped = 0
        for connector, body, received_at in rows:
            try:
                profile = parse_profile(json.loads(body), connector, received_at)
            except (ProfileInvalid, ValueError, KeyError, TypeError) as exc:
                log.warning("%s: a stored charging profile is unreadable, dropped: %s", self._cp_id, exc)
                dropped += 1
                continue
            if connector != 0 and connector not in self._connectors:
                dropped += 1
                continue
            if profile.purpose is Purpose.TX:
                # Kept only for a transaction resumed after a graceful stop (the one it was for).
                tx = self._transaction(connector)
                if tx is None or (
                    profile.transaction_id is not None and profile.transaction_id != tx.transaction_id
                ):
                    dropped += 1
                    continue
            self.profiles.install(profile)
            self._received[profile.id] = received_at
        if dropped:
            self._persist()
        if len(self.profiles):
            log.info("%s: %d charging profiles restored", self._cp_id, len(self.profiles))

    def _persist(self) -> None:
        rows = [
            (p.id, p.connector_id, json.dumps(p.wire), self._received.get(p.id, 0)) for p in self.profiles
        ]
        self._store.submit(self._store.save_charging_profiles, self._cp_id, rows)

    async def flush(self) -> None:
        """Wait until the profiles written so far are on disk (the store writes in order)."""
        await self._store.run(lambda: None)

    def _changed(self) -> None:
        self._persist()
        self._wake.set()

    def _install(self, profile: ChargingProfile, received_at: int) -> None:
        for gone in self.profiles.install(profile):
            self._received.pop(gone.id, None)
        self._received[profile.id] = received_at
        log.info(
            "%s: charging profile %d installed (%s, connector %d, stack level %d)",
            self._cp_id, profile.id, profile.purpose, profile.connector_id, profile.stack_level,
        )  # fmt: skip
        self._changed()

    def _check_connector(self, connector_id: int) -> None:
        if not self._known_connector(connector_id):
            n = len(self._connectors)
            raise _constraint(f"connectorId {connector_id}: this charge point has connectors 0 to {n}")

    def _known_connector(self, connector_id: int) -> bool:
        return connector_id == 0 or connector_id in self._connectors

    def _report_only_refusal(self, connector_id: int) -> str | None:
        switches = {cid: rt.charger.capabilities.can_switch_energy for cid, rt in self._connectors.items()}
        return report_only_refusal(connector_id, switches)

    # -- the central system's messages ----------------------------------------------------
    def set_profile(self, connector_id: int, wire: Mapping[str, Any]) -> str:
        """SetChargingProfile: Accepted or Rejected; invalid values raise PropertyConstraintViolation."""
        self._check_connector(connector_id)
        now = self._now()
        profile = self.parse(wire, connector_id, now)
        running = {cid: self._transaction(cid) for cid in self._connectors}
        reason = self._report_only_refusal(connector_id)
        reason = reason or self.profiles.rejection(profile, self.limits(), running)
        if reason is not None:
            log.warning("%s: SetChargingProfile %d rejected: %s", self._cp_id, profile.id, reason)
            return "Rejected"
        self._install(profile, now)
        return "Accepted"

    def clear(
        self,
        profile_id: int | None,
        connector_id: int | None,
        purpose: str | None,
        stack_level: int | None,
    ) -> str:
        """ClearChargingProfile: Accepted when something was removed, else Unknown."""
        gone = self.profiles.clear(
            profile_id, connector_id, Purpose(purpose) if purpose is not None else None, stack_level
        )
        for p in gone:
            self._received.pop(p.id, None)
        log.info("%s: ClearChargingProfile removed %s", self._cp_id, [p.id for p in gone] or "nothing")
        if not gone:
            return "Unknown"
        self._changed()
        return "Accepted"

    def composite_schedule(self, connector_id: int, duration_s: int, unit: str | None) -> dict[str, Any]:
        """GetCompositeSchedule from now for `duration_s` (at most 31 days: the answer's duration says
        how far it goes), in the unit asked for (A by default, W when only Power is allowed); the
        schedule carries no startSchedule (ERRATA 3.57)."""
        if not self._known_connector(connector_id):
            # "if the connectorId is unknown, it SHALL respond with a status Rejected" (§5.7)
            log.warning(
                "%s: GetCompositeSchedule for unknown connector %d: Rejected", self._cp_id, connector_id
            )
            return {"status": "Rejected"}
        if (why := self._report_only_refusal(connector_id)) is not None:
            log.warning(
                "%s: GetCompositeSchedule for connector %d: Rejected (%s)", self._cp_id, connector_id, why
            )
            return {"status": "Rejected"}  # no limit applies to it
        if unit is None:
            unit = "A" if "A" in self.limits().units else "W"
        t0 = self._now()
        t1 = t0 + min(max(1, duration_s), MAX_COMPOSITE_S)
        periods = self.composite(connector_id, t0, t1, unit)
        return {
            "status": "Accepted",
            "connectorId": connector_id,
            "scheduleStart": iso(datetime.fromtimestamp(t0, UTC)),
            "chargingSchedule": {
                "duration": t1 - t0,
                "chargingRateUnit": unit,
                "chargingSchedulePeriod": [
                    {
                        "startPeriod": p.start - t0,
                        "limit": p.limit,
                        **({"numberPhases": p.phases} if p.phases is not None else {}),
                    }
                    for p in periods
                ],
            },
        }

    def composite(self, connector_id: int, t0: int, t1: int, unit: str = "A") -> list[CompositePeriod]:
        if connector_id == 0:
            return charge_point_composite(
                self.profiles, [self._connector(cid) for cid in self._connectors], t0, t1, unit
            )
        return connector_composite(self.profiles, self._connector(connector_id), t0, t1, unit, self._share())

    # -- transactions -------------------------------------------------------------------
    def parse(self, wire: Mapping[str, Any], connector_id: int, now: int | None = None) -> ChargingProfile:
        """The one check of a profile's values, whichever message carries it (SetChargingProfile,
        RemoteStartTransaction): a value the rules forbid (a date that is none, a first period not
        at 0) is a PropertyConstraintViolation."""
        try:
            return parse_profile(wire, connector_id, self._now() if now is None else now)
        except ProfileInvalid as exc:
            raise _constraint(str(exc)) from exc

    def remote_start_profile(self, cid: int, id_tag: str, wire: Mapping[str, Any]) -> str | None:
        """The chargingProfile of a RemoteStartTransaction: kept for the transaction it starts.
        Returns why it cannot be used (the RemoteStart is then Rejected), or None; invalid values
        raise PropertyConstraintViolation (`parse`)."""
        profile = self.parse(wire, cid)
        if wire.get("chargingProfilePurpose") != Purpose.TX:
            return "the chargingProfile of a RemoteStartTransaction must be a TxProfile"
        if wire.get("transactionId") is not None:
            return "the TxProfile of a RemoteStartTransaction cannot name a transactionId"
        limits = self.limits()
        if profile.stack_level > limits.max_stack_level or len(profile.periods) > limits.max_periods:
            return "the TxProfile exceeds ChargeProfileMaxStackLevel or ChargingScheduleMaxPeriods"
        if profile.unit not in limits.units:
            return f"the unit {profile.unit} is not allowed"
        self._remote_start_profiles[cid] = (id_tag, self._clock.monotonic(), wire)
        return None

    def transaction_started(self, cid: int, id_tag: str) -> None:
        """A transaction started: a RemoteStart's TxProfile for this tag is installed for it."""
        pending = self._remote_start_profiles.pop(cid, None)
        if (
            pending is not None
            and pending[0].casefold() == id_tag.casefold()
            and self._clock.monotonic() - pending[1] < REMOTE_START_PROFILE_S
        ):
            wire = pending[2]
            now = self._now()
            profile = parse_profile(wire, cid, now)
            running = {c: self._transaction(c) for c in self._connectors}
            reason = self.profiles.rejection(profile, self.limits(), running)
            if reason is None:
                self._install(profile, now)
            else:
                log.warning("%s/%d: the RemoteStart TxProfile is not used: %s", self._cp_id, cid, reason)
        self._wake.set()

    def transaction_ended(self, cid: int) -> None:
        self._remote_start_profiles.pop(cid, None)
        gone = self.profiles.end_transaction(cid)
        for p in gone:
            self._received.pop(p.id, None)
        if gone:
            self._persist()
        self._wake.set()

    def device_started(self, cid: int) -> None:
        """A device (re)started: it is told its limit again."""
        self.applied.pop(cid, None)
        self._wake.set()

    # -- applying --------------------------------------------------------------------------
    async def run(self) -> None:
        """Apply the limits now, then at each boundary, on every change, and to retry a refusal."""
        while True:
            self._wake.clear()
            wait = await self.apply_all()
            await self._wake.wait_at_most(max(0.0, min(wait, MAX_SLEEP_S)))

    async def apply_all(self) -> float:
        """Bring every device to its limit now; returns the seconds until the next boundary."""
        now = self._now()
        wait = float(LOOKAHEAD_S)
        self._retry_at = None
        for cid in self._connectors:
            periods = await self.apply(cid, now)
            if len(periods) > 1:
                wait = min(wait, periods[1].start - self._clock.now().timestamp())
        if self._retry_at is not None:
            wait = min(wait, APPLY_RETRY_S)
        return wait

    async def apply(self, cid: int, now: int | None = None) -> list[CompositePeriod]:
        """Tell connector `cid`'s device its limit as of now, when it differs from what it has."""
        now = self._now() if now is None else now
        periods = self.composite(cid, now, now + LOOKAHEAD_S)
        rt = self._connectors[cid]
        if not periods or not rt.started or not rt.charger.capabilities.can_switch_energy:
            return periods  # report only: a limit it could not back by switching off is never set
        caps = rt.charger.capabilities
        wanted = setpoint(periods[0].limit, periods[0].phases, caps)
        async with self._apply_locks.setdefault(cid, asyncio.Lock()):
            if self.applied.get(cid) == wanted:
                return periods
            before = self.applied.get(cid)
            phases = wanted.phases
            if phases is None and before is not None and before.phases not in (None, caps.phases):
                phases = caps.phases  # the profile that asked for fewer phases is over: switch back
            current = wanted.current_a if caps.min_current_a < caps.max_current_a else None
            exc = await rt.device.set_limit(phases, current)
            if device_errors.limit_outcome(exc) is LimitOutcome.REFUSED:
                # Fail safe: a limit below the charger's own maximum that it did not take pauses the
                # charging until it does (tried again every APPLY_RETRY_S); energy at an unknown
                # current could exceed it.
                limited = wanted.paused or periods[0].limit < caps.max_current_a
                log.warning(
                    "%s/%d: %s did not take the limit %.1f A%s: %s",
                    self._cp_id, cid, rt.charger.description, wanted.current_a,
                    "; charging paused until it does" if limited else "", exc,
                )  # fmt: skip
                self._retry_at = self._clock.monotonic() + APPLY_RETRY_S
                self.applied.pop(cid, None)
                if limited:
                    self._refused.add(cid)
                    self._limit_applied(cid, True)
                return periods
            self._refused.discard(cid)
            self.applied[cid] = wanted
        if before is None or before.paused != wanted.paused or before.current_a != wanted.current_a:
            # The device's own maximum at start limits nothing: not worth a line per connector at INFO.
            unlimited = before is None and not wanted.paused and wanted.current_a >= caps.max_current_a
            log.log(
                logging.DEBUG if unlimited else logging.INFO,
                "%s/%d: charging limit %s",
                self._cp_id,
                cid,
                f"{periods[0].limit:g} A is below the device's minimum: paused"
                if wanted.paused
                else f"{wanted.current_a:g} A",
            )
        self._limit_applied(cid, wanted.paused)
        return periods

    def current_limit_a(self, cid: int) -> float | None:
        """The current the device was set to (0 while paused by the limit), None before the first."""
        if cid in self._refused:
            return 0.0
        applied = self.applied.get(cid)
        if applied is None:
            return None
        return 0.0 if applied.paused else applied.current_a
