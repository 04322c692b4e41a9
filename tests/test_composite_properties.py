"""Properties of the composite schedule (bridge.core.composite), checked with hypothesis.

Random but valid SetChargingProfile payloads (all three purposes; Absolute, Relative, Recurring
Daily/Weekly; stack levels 0..10; 1..N periods; limits in A or W with at most one decimal; optional
numberPhases, duration, validFrom/validTo; connector 0 or 1) go through `parse_profile` and into a
`ProfileSet` where `rejection()` says None, so the replacement rules apply as in production.

The composite is compared with a deliberately naive reference written here, which works from the
wire dicts (not from the parsed profiles) and evaluates one instant at a time: per purpose, the
valid profiles whose schedule runs at t, the highest stack level, a linear look-up of the period,
exact arithmetic (fractions), then the minimum rounded down to 0.1.

The choices the reference shares with the composite, as written in bridge/core/composite.py:
- a Recurring schedule repeats in both directions from its startSchedule (modulo the recurrence);
- a Relative Tx/TxDefaultProfile counts from the transaction's start, or from the window's start
  without one; a Relative ChargePointMaxProfile from the transaction's start, or from when it was
  received without one (see test_relative_charge_point_max_advances_with_time);
- a TxProfile that is not running lets the TxDefaultProfile show through; a connector's own
  TxDefaultProfile goes before the connector-0 one whatever their stack levels;
- W <-> A through the nominal voltage and min(numberPhases or 3, phases wired); the device's own
  maximum in W uses the phases in force (the transaction's period's, else the charge point
  maximum's), else the phases wired;
- the phases of the composite: the transaction's period's numberPhases, else the charge point
  maximum's, else None.

No example database is written (database=None): the repository does not ignore `.hypothesis/`.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction
from typing import Any

from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from bridge.core.charging_profiles import (
    ChargingProfile,
    Kind,
    Limits,
    ProfileSet,
    Purpose,
    RunningTransaction,
    parse_profile,
)
from bridge.core.composite import (
    CompositePeriod,
    ConnectorLimits,
    charge_point_composite,
    connector_composite,
)

DAY = 86_400
WEEK = 7 * DAY
T_BASE = int(datetime(2026, 3, 2, tzinfo=UTC).timestamp())  # a Monday, 00:00 UTC
CONNECTOR = 1
TX_ID = 42
MAX_STACK = 10
MAX_PERIODS = 96
MAX_INSTALLED = 20

FAST = settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- generating SetChargingProfile payloads ---------------------------------------------------


def iso(epoch_s: int, offset_h: int) -> str:
    """An ISO 8601 date-time, in UTC with Z or with a numeric offset (the same instant)."""
    if offset_h == 0:
        return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return datetime.fromtimestamp(epoch_s, timezone(timedelta(hours=offset_h))).isoformat()


offsets_h = st.sampled_from([0, 0, 1, -5])
# Period lengths: round ones (boundaries of different profiles coincide) and arbitrary seconds.
steps_s = st.one_of(st.sampled_from([60, 900, 1800, 3600, 7200, 4 * 3600]), st.integers(1, 30_000))


def limit_tenths(unit: str) -> st.SearchStrategy[int]:
    if unit == "A":
        return st.one_of(st.integers(0, 640), st.sampled_from([0, 60, 100, 160, 320]))
    return st.one_of(st.integers(0, 300_000), st.sampled_from([0, 1380, 4140, 11_000, 22_000]))


@st.composite
def schedule_periods(draw: st.DrawFn, unit: str, max_periods: int) -> list[dict[str, Any]]:
    n = draw(st.integers(1, max_periods))
    starts = [0, *itertools.accumulate(draw(st.lists(steps_s, min_size=n - 1, max_size=n - 1)))]
    periods = []
    for start in starts:
        period: dict[str, Any] = {"startPeriod": start, "limit": draw(limit_tenths(unit)) / 10}
        phases = draw(st.sampled_from([None, None, 1, 2, 3]))
        if phases is not None:
            period["numberPhases"] = phases
        periods.append(period)
    return periods


@st.composite
def profile_wire(
    draw: st.DrawFn,
    profile_id: int,
    purpose: Purpose,
    stack_level: int,
    units: Sequence[str],
    max_periods: int = 8,
) -> dict[str, Any]:
    """One csChargingProfiles as SetChargingProfile carries it (camelCase), valid by the rules."""
    kind = draw(st.sampled_from(["Absolute", "Relative", "Recurring"]))
    unit = draw(st.sampled_from(list(units)))
    schedule: dict[str, Any] = {
        "chargingRateUnit": unit,
        "chargingSchedulePeriod": draw(schedule_periods(unit, max_periods)),
    }
    wire: dict[str, Any] = {
        "chargingProfileId": profile_id,
        "stackLevel": stack_level,
        "chargingProfilePurpose": str(purpose),
        "chargingProfileKind": kind,
    }
    if kind == "Recurring":
        wire["recurrencyKind"] = draw(st.sampled_from(["Daily", "Weekly"]))
        # Mostly in the past (the usual "from last midnight"), sometimes ahead.
        start = T_BASE + draw(st.integers(-9 * DAY, 2 * DAY))
        schedule["startSchedule"] = iso(start, draw(offsets_h))
    elif kind == "Absolute" and draw(st.integers(0, 4)) > 0:  # else: starts when received
        start = T_BASE + draw(st.one_of(st.integers(-3 * DAY, 3 * DAY), st.sampled_from([0, DAY, -DAY])))
        schedule["startSchedule"] = iso(start, draw(offsets_h))
    if draw(st.booleans()):
        schedule["duration"] = draw(st.one_of(steps_s, st.integers(1, 3 * DAY), st.just(DAY)))
    if draw(st.integers(0, 5)) == 0:
        schedule["minChargingRate"] = draw(st.integers(0, 60)) / 10
    wire["chargingSchedule"] = schedule
    valid_from = T_BASE + draw(st.integers(-2 * DAY, 3 * DAY)) if draw(st.integers(0, 3)) == 0 else None
    valid_to = T_BASE + draw(st.integers(-DAY, 4 * DAY)) if draw(st.integers(0, 3)) == 0 else None
    if valid_from is not None and valid_to is not None and valid_to <= valid_from:
        valid_from, valid_to = valid_to - 1, valid_from + 1
    if valid_from is not None:
        wire["validFrom"] = iso(valid_from, draw(offsets_h))
    if valid_to is not None:
        wire["validTo"] = iso(valid_to, draw(offsets_h))
    if purpose is Purpose.TX and draw(st.booleans()):
        wire["transactionId"] = draw(st.sampled_from([TX_ID, TX_ID, 7]))  # 7: not the running one
    return wire


def valid_connector(purpose: Purpose, cid: int) -> int:
    """ChargePointMaxProfile on 0, TxProfile on the connector, TxDefaultProfile on either."""
    if purpose is Purpose.CHARGE_POINT_MAX:
        return 0
    if purpose is Purpose.TX:
        return CONNECTOR
    return cid


# (target unit, units the profiles use): A with and without W profiles, and W.
UNIT_MIXES = [("A", ("A",)), ("A", ("A", "W")), ("W", ("A", "W")), ("W", ("W",))]


@dataclass(frozen=True)
class Sent:
    """A SetChargingProfile: its connectorId, its csChargingProfiles, when it was received."""

    connector: int
    wire: dict[str, Any]
    received_at: int  # an Absolute schedule without startSchedule starts here


@dataclass
class Scenario:
    unit: str
    units: tuple[str, ...]
    connector: ConnectorLimits
    share: int
    t0: int
    t1: int
    sent: list[Sent]  # in the order sent


@st.composite
def connector_limits(draw: st.DrawFn, t0: int, with_tx: bool | None = None) -> ConnectorLimits:
    has_tx = draw(st.booleans()) if with_tx is None else with_tx
    tx = None
    if has_tx:
        started = t0 - draw(st.one_of(st.integers(0, 2 * DAY), st.just(0)))
        tx = RunningTransaction(started, draw(st.sampled_from([TX_ID, TX_ID, None])))
    return ConnectorLimits(
        connector_id=CONNECTOR,
        max_current_a=draw(st.sampled_from([60, 100, 160, 320, 630])) / 10,
        phases=draw(st.sampled_from([1, 3, 3, 2])),
        nominal_voltage_v=draw(st.sampled_from([230.0, 230.0, 120.0, 240.0])),
        transaction=tx,
        can_switch_phases=draw(st.booleans()),
    )


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    unit, units = draw(st.sampled_from(UNIT_MIXES))
    t0 = T_BASE + draw(st.one_of(st.integers(-DAY, 2 * DAY), st.sampled_from([0, 900, DAY])))
    length = draw(st.one_of(st.sampled_from([DAY, 2 * DAY, 2 * DAY]), st.integers(1, 2 * DAY)))
    sent = []
    for _ in range(draw(st.integers(1, 12))):
        purpose = draw(st.sampled_from(list(Purpose)))
        # Ids and stack levels from small ranges: replacements by id and by (stack, purpose) happen.
        pid, stack = draw(st.integers(1, 14)), draw(st.integers(0, MAX_STACK))
        wire = draw(profile_wire(pid, purpose, stack, units, draw(st.sampled_from([8] * 9 + [MAX_PERIODS]))))
        cid = valid_connector(purpose, draw(st.sampled_from([0, CONNECTOR])))
        sent.append(Sent(cid, wire, t0 - draw(st.one_of(st.integers(0, 2 * DAY), st.just(0)))))
    return Scenario(
        unit=unit,
        units=units,
        connector=draw(connector_limits(t0)),
        share=draw(st.sampled_from([1, 1, 1, 2, 3])),
        t0=t0,
        t1=t0 + length,
        sent=sent,
    )


def limits_for(units: Iterable[str]) -> Limits:
    return Limits(MAX_STACK, MAX_PERIODS, MAX_INSTALLED, frozenset(units))


def install_all(s: Scenario) -> tuple[ProfileSet, list[Sent]]:
    """The profiles through parse_profile into a ProfileSet, those rejection() accepts; with the naive
    reference's own idea of what is installed (same id, or same connector, purpose and stack level,
    replaces)."""
    profiles = ProfileSet()
    naive: list[Sent] = []
    running = {CONNECTOR: s.connector.transaction}
    for new in s.sent:
        profile = parse_profile(new.wire, new.connector, new.received_at)
        if profiles.rejection(profile, limits_for(s.units), running) is not None:
            continue
        profiles.install(profile)

        def key(x: Sent) -> tuple[int, str, int]:
            return x.connector, x.wire["chargingProfilePurpose"], x.wire["stackLevel"]

        naive = [
            x
            for x in naive
            if x.wire["chargingProfileId"] != new.wire["chargingProfileId"] and key(x) != key(new)
        ]
        naive.append(new)
    assert sorted(p.id for p in profiles) == sorted(x.wire["chargingProfileId"] for x in naive)
    return profiles, naive


# -- the naive reference ----------------------------------------------------------------------


def epoch(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp())  # Python 3.11 reads Z and offsets


def exact(x: float) -> Fraction:
    """A limit as the decimal it was written as (at most one decimal)."""
    return Fraction(repr(x))


def tenths_down(x: Fraction) -> Fraction:
    return Fraction(math.floor(x * 10), 10)


@dataclass(frozen=True)
class Running:
    """A profile's period in force at an instant, already in the target unit."""

    stack_level: int
    limit: Fraction
    phases: int | None


def period_at(wire: Mapping[str, Any], t: int, relative_anchor: int | None, received_at: int) -> Any:
    """The wire period of this profile in force at t, or None where its schedule does not run."""
    if "validFrom" in wire and t < epoch(wire["validFrom"]):
        return None
    if "validTo" in wire and t >= epoch(wire["validTo"]):
        return None
    schedule = wire["chargingSchedule"]
    kind = wire["chargingProfileKind"]
    if kind == "Recurring":
        every = DAY if wire["recurrencyKind"] == "Daily" else WEEK
        offset = (t - epoch(schedule["startSchedule"])) % every
    else:
        if kind == "Relative":
            anchor = relative_anchor if relative_anchor is not None else received_at
        elif "startSchedule" in schedule:
            anchor = epoch(schedule["startSchedule"])
        else:
            anchor = received_at
        offset = t - anchor
        if offset < 0:
            return None
    if "duration" in schedule and offset >= schedule["duration"]:
        return None
    found = None
    for period in schedule["chargingSchedulePeriod"]:
        if period["startPeriod"] <= offset:
            found = period
    return found


def phases_drawn(c: ConnectorLimits, asked: int | None) -> int:
    """A charger that can switch draws on min(numberPhases or 3, wired); one that cannot, on all wired."""
    return min(asked or 3, c.phases) if c.can_switch_phases else c.phases


def to_unit(limit: Fraction, source: str, phases: int | None, c: ConnectorLimits, unit: str) -> Fraction:
    if source == unit:
        return limit
    volts_phases = Fraction(repr(c.nominal_voltage_v)) * phases_drawn(c, phases)
    return limit / volts_phases if unit == "A" else limit * volts_phases


def winner(
    candidates: Iterable[Sent],
    t: int,
    c: ConnectorLimits,
    unit: str,
    relative_anchor: int | None,  # None: each profile's receipt time
) -> Running | None:
    best: Running | None = None
    for x in candidates:
        wire = x.wire
        period = period_at(wire, t, relative_anchor, x.received_at)
        if period is None or (best is not None and best.stack_level >= wire["stackLevel"]):
            continue
        source = wire["chargingSchedule"]["chargingRateUnit"]
        phases = period.get("numberPhases")
        best = Running(wire["stackLevel"], to_unit(exact(period["limit"]), source, phases, c, unit), phases)
    return best


@dataclass(frozen=True)
class Reference:
    device: Fraction
    cp_max: Running | None
    tx: Running | None
    limit: Fraction  # min of the three, rounded down to 0.1
    phases: int | None


def reference_at(
    installed: Sequence[Sent],
    c: ConnectorLimits,
    t: int,
    t0: int,
    unit: str,
    share: int = 1,
) -> Reference:
    """What limits connector `c` at instant t, evaluated on its own."""
    tx_start = c.transaction.started_at if c.transaction is not None else t0

    def of(purpose: Purpose, cid: int) -> list[Sent]:
        return [x for x in installed if x.wire["chargingProfilePurpose"] == purpose and x.connector == cid]

    # A Relative ChargePointMaxProfile counts from the transaction's start, else from its receipt.
    cp_anchor = c.transaction.started_at if c.transaction is not None else None
    cp_max = winner(of(Purpose.CHARGE_POINT_MAX, 0), t, c, unit, cp_anchor)
    tx = None
    if c.transaction is not None:
        tx = winner(of(Purpose.TX, c.connector_id), t, c, unit, tx_start)
    if tx is None:
        tx = winner(of(Purpose.TX_DEFAULT, c.connector_id), t, c, unit, tx_start)
    if tx is None:
        tx = winner(of(Purpose.TX_DEFAULT, 0), t, c, unit, tx_start)
    phases = tx.phases if tx is not None and tx.phases is not None else (cp_max.phases if cp_max else None)
    device = Fraction(repr(c.max_current_a))
    if unit == "W":
        device *= Fraction(repr(c.nominal_voltage_v)) * (
            c.phases if phases is None else phases_drawn(c, phases)
        )
    bounds = [device]
    if cp_max is not None:
        bounds.append(cp_max.limit / share)
    if tx is not None:
        bounds.append(tx.limit)
    return Reference(device, cp_max, tx, tenths_down(min(bounds)), phases)


def candidate_instants(installed: Sequence[Sent], s: Scenario) -> set[int]:
    """Every instant where a reference value may change (a superset), with its neighbours."""
    c = s.connector
    tx_start = c.transaction.started_at if c.transaction is not None else s.t0
    points = {s.t0}
    for x in installed:
        wire = x.wire
        schedule = wire["chargingSchedule"]
        for key in ("validFrom", "validTo"):
            if key in wire:
                points.add(epoch(wire[key]))
        kind = wire["chargingProfileKind"]
        if kind == "Recurring":
            every = DAY if wire["recurrencyKind"] == "Daily" else WEEK
            first = epoch(schedule["startSchedule"])
            first -= ((first - s.t0) // every + 1) * every
            anchors = list(range(first, s.t1 + every, every))
        elif kind == "Relative":
            anchors = [tx_start, s.t0, x.received_at]
        else:
            anchors = [epoch(schedule["startSchedule"]) if "startSchedule" in schedule else x.received_at]
        for anchor in anchors:
            points.update(anchor + p["startPeriod"] for p in schedule["chargingSchedulePeriod"])
            if "duration" in schedule:
                points.add(anchor + schedule["duration"])
    return {p + d for p in points for d in (-1, 0, 1) if s.t0 <= p + d < s.t1}


# -- helpers on the composite -------------------------------------------------------------------


def value_at(periods: Sequence[CompositePeriod], t: int) -> CompositePeriod:
    found = None
    for p in periods:
        if p.start <= t:
            found = p
    assert found is not None, f"no composite period at {t}"
    return found


def composite_of(s: Scenario, profiles: Iterable[ChargingProfile]) -> list[CompositePeriod]:
    return connector_composite(profiles, s.connector, s.t0, s.t1, s.unit, s.share)


def check_shape(periods: Sequence[CompositePeriod], t0: int, t1: int) -> None:
    assert periods, "a composite always has a first period"
    assert periods[0].start == t0
    for a, b in itertools.pairwise(periods):
        assert a.start < b.start < t1
        assert (a.limit, a.phases) != (b.limit, b.phases), f"equal neighbours not joined at {b.start}"
    for p in periods:
        assert p.limit >= 0
        assert exact(p.limit) * 10 == math.floor(exact(p.limit) * 10), f"more than one decimal: {p.limit}"


def sample_instants(s: Scenario, installed: Sequence[Sent], extra: list[int]) -> list[int]:
    instants = candidate_instants(installed, s)
    instants.update(s.t0 + x % (s.t1 - s.t0) for x in extra)
    instants.add(s.t1 - 1)
    return sorted(instants)


# -- a. never above any applicable limit; equal to their minimum rounded down ------------------


@FAST
@given(s=scenarios(), extra=st.lists(st.integers(0, 2 * DAY), max_size=40))
def test_never_above_any_applicable_limit(s: Scenario, extra: list[int]) -> None:
    """At every sampled instant (each place the reference may change, its neighbours, the composite's
    boundaries and random ones) the composite's limit is at most the device's maximum, the winning
    ChargePointMaxProfile (its share) and the winning Tx/TxDefaultProfile, and in fact their minimum
    rounded down to 0.1; its numberPhases are the reference's too."""
    profiles, installed = install_all(s)
    periods = composite_of(s, profiles)
    note(f"installed: {[p for p in profiles]}")
    note(f"composite: {periods}")
    check_shape(periods, s.t0, s.t1)
    instants = (
        sample_instants(s, installed, extra) + [b.start for b in periods] + [b.start - 1 for b in periods]
    )
    binding = set()
    for t in sorted({t for t in instants if s.t0 <= t < s.t1}):
        got = value_at(periods, t)
        ref = reference_at(installed, s.connector, t, s.t0, s.unit, s.share)
        limit = exact(got.limit)
        assert limit <= ref.device, f"at {t}: {got.limit} above the device maximum {float(ref.device)}"
        if ref.cp_max is not None:
            bound = ref.cp_max.limit / s.share
            assert limit <= bound, f"at {t}: {got.limit} above the ChargePointMaxProfile {float(bound)}"
        if ref.tx is not None:
            assert limit <= ref.tx.limit, f"at {t}: {got.limit} above the Tx/TxDefault {float(ref.tx.limit)}"
        assert limit == ref.limit, f"at {t}: composite {got.limit}, reference {ref}"
        assert got.phases == ref.phases, f"at {t}: composite phases {got.phases}, reference {ref.phases}"
        binding.add(bound_name(ref, s.share))
    # Seen with --hypothesis-show-statistics: that the examples exercise every case.
    event(f"unit {s.unit} from {'+'.join(s.units)}, transaction: {s.connector.transaction is not None}")
    event(f"installed: {min(len(profiles), 6)}{'+' if len(profiles) >= 6 else ''}")
    event(f"composite periods: {min(len(periods), 10)}{'+' if len(periods) >= 10 else ''}")
    for name in binding:
        event(f"the limit came from {name}")


def bound_name(ref: Reference, share: int) -> str:
    if ref.tx is not None and tenths_down(ref.tx.limit) == ref.limit:
        return "the Tx/TxDefault profile"
    if ref.cp_max is not None and tenths_down(ref.cp_max.limit / share) == ref.limit:
        return "the ChargePointMaxProfile"
    return "the device maximum"


# -- b. piecewise constant, boundaries exactly where the reference changes --------------------


@FAST
@given(s=scenarios(), extra=st.lists(st.integers(0, 2 * DAY), max_size=40))
def test_boundaries_only_where_a_profile_changes(s: Scenario, extra: list[int]) -> None:
    """Each composite period after the first starts where the reference's (limit, phases) changes
    from the second before; at every other sampled second it does not change."""
    profiles, installed = install_all(s)
    periods = composite_of(s, profiles)
    note(f"composite: {periods}")
    check_shape(periods, s.t0, s.t1)

    def ref(t: int) -> tuple[Fraction, int | None]:
        r = reference_at(installed, s.connector, t, s.t0, s.unit, s.share)
        return r.limit, r.phases

    boundaries = {p.start for p in periods[1:]}
    for b in sorted(boundaries):
        assert ref(b - 1) != ref(b), f"a composite boundary at {b} where nothing changes: {ref(b)}"
    for t in sample_instants(s, installed, extra):
        if t > s.t0 and t not in boundaries:
            assert ref(t - 1) == ref(t), f"the reference changes at {t} without a composite boundary"


# -- e. (beyond the four asked for) the schedule computed earlier and the "limit now" agree ------


@FAST
@given(s=scenarios(), extra=st.lists(st.integers(0, 2 * DAY), max_size=20))
def test_limit_now_agrees_with_the_schedule_computed_earlier(s: Scenario, extra: list[int]) -> None:
    """The shell sleeps until the composite's next boundary, then asks for the limit now: both must
    agree. Left out: a Relative TxDefaultProfile without a transaction (it counts from "now" by
    design) and a Relative ChargePointMaxProfile (the finding below)."""
    installed, _ = install_all(s)
    tx = s.connector.transaction
    profiles = [
        p
        for p in installed
        if p.kind is not Kind.RELATIVE or (p.purpose is not Purpose.CHARGE_POINT_MAX and tx is not None)
    ]
    periods = composite_of(s, profiles)
    instants = {p.start for p in periods} | {s.t0 + x % (s.t1 - s.t0) for x in extra}
    for t in sorted(instants):
        now = connector_composite(profiles, s.connector, t, t + 1, s.unit, s.share)
        assert (now[0].limit, now[0].phases) == (value_at(periods, t).limit, value_at(periods, t).phases)


# -- c. the order of installation does not matter ----------------------------------------------


@st.composite
def distinct_profiles(draw: st.DrawFn) -> tuple[Scenario, list[int]]:
    """Profiles with distinct ids and distinct (connector, purpose, stack level): no replacement,
    all accepted; with a permutation of their order."""
    unit, units = draw(st.sampled_from(UNIT_MIXES))
    t0 = T_BASE + draw(st.integers(-DAY, 2 * DAY))
    c = draw(connector_limits(t0))
    purposes = [p for p in Purpose if p is not Purpose.TX or c.transaction is not None]
    keys = draw(
        st.lists(
            st.tuples(st.sampled_from(purposes), st.integers(0, MAX_STACK), st.sampled_from([0, CONNECTOR])),
            max_size=MAX_INSTALLED,
            unique_by=lambda k: (k[0], k[1], valid_connector(k[0], k[2])),
        )
    )
    sent = []
    for pid, (purpose, stack, cid) in enumerate(keys, start=1):
        wire = draw(profile_wire(pid, purpose, stack, units))
        if purpose is Purpose.TX:
            wire.pop("transactionId", None)
            if c.transaction is not None and c.transaction.transaction_id is not None and draw(st.booleans()):
                wire["transactionId"] = c.transaction.transaction_id
        sent.append(Sent(valid_connector(purpose, cid), wire, t0 - draw(st.integers(0, DAY))))
    order = draw(st.permutations(range(len(sent))))
    return Scenario(unit, units, c, 1, t0, t0 + draw(st.integers(1, 2 * DAY)), sent), list(order)


@FAST
@given(case=distinct_profiles())
def test_installation_order_does_not_matter(case: tuple[Scenario, list[int]]) -> None:
    """The same profiles installed in any order (nothing replaced) give the identical composite, for
    the connector and for connector 0."""
    s, order = case

    def installed(sent: Sequence[Sent]) -> ProfileSet:
        profiles = ProfileSet()
        for x in sent:
            profile = parse_profile(x.wire, x.connector, x.received_at)
            running = {CONNECTOR: s.connector.transaction}
            assert profiles.rejection(profile, limits_for(s.units), running) is None
            assert profiles.install(profile) == []
        return profiles

    first = installed(s.sent)
    permuted = installed([s.sent[i] for i in order])
    assert len(first) == len(s.sent)
    assert list(first) == list(permuted)
    expected = composite_of(s, first)
    assert composite_of(s, permuted) == expected
    # Also straight from a list in any order, without the ProfileSet's ordering by id.
    assert composite_of(s, [list(first)[i] for i in order]) == expected
    assert charge_point_composite(permuted, [s.connector], s.t0, s.t1, s.unit) == charge_point_composite(
        first, [s.connector], s.t0, s.t1, s.unit
    )


# -- d. a 48-hour Daily recurring schedule, by moving the time -----------------------------------


def _daily_limit(i: int) -> float:
    """Period i (of 96, 15 min each) of the Daily TxDefaultProfile: 6.0 .. 31.9 A, all different
    from their neighbours."""
    return (60 + (i * 37) % 260) / 10


def test_daily_recurring_over_48_hours_by_moving_time() -> None:
    """A Daily TxDefaultProfile of 96 quarter-hours, a Daily one of stack level 2 over it from 17:00
    to 20:00, a ChargePointMaxProfile of 25 A: the limit now, asked at the first, second and last
    second of every quarter-hour over 48 hours, follows the expected pattern; all in under 1 s."""
    midnight = T_BASE
    stamp = iso(midnight - 7 * DAY, 0)  # recurring from a week ago
    evening = iso(midnight - 7 * DAY + 17 * 3600, 0)
    wires = [
        (  # stack 1: 96 periods of 15 min, every day
            CONNECTOR,
            {
                "chargingProfileId": 1,
                "stackLevel": 1,
                "chargingProfilePurpose": "TxDefaultProfile",
                "chargingProfileKind": "Recurring",
                "recurrencyKind": "Daily",
                "chargingSchedule": {
                    "startSchedule": stamp,
                    "chargingRateUnit": "A",
                    "chargingSchedulePeriod": [
                        {"startPeriod": 900 * i, "limit": _daily_limit(i)} for i in range(96)
                    ],
                },
            },
        ),
        (  # stack 2: over it from 17:00 to 20:00 each day, 8 A then 10.5 A from 18:30
            CONNECTOR,
            {
                "chargingProfileId": 2,
                "stackLevel": 2,
                "chargingProfilePurpose": "TxDefaultProfile",
                "chargingProfileKind": "Recurring",
                "recurrencyKind": "Daily",
                "chargingSchedule": {
                    "startSchedule": evening,
                    "duration": 3 * 3600,
                    "chargingRateUnit": "A",
                    "chargingSchedulePeriod": [
                        {"startPeriod": 0, "limit": 8.0},
                        {"startPeriod": 5400, "limit": 10.5},
                    ],
                },
            },
        ),
        (  # the whole charge point: 25 A
            0,
            {
                "chargingProfileId": 3,
                "stackLevel": 0,
                "chargingProfilePurpose": "ChargePointMaxProfile",
                "chargingProfileKind": "Absolute",
                "chargingSchedule": {
                    "startSchedule": stamp,
                    "chargingRateUnit": "A",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 25.0}],
                },
            },
        ),
    ]
    profiles = ProfileSet()
    for cid, wire in wires:
        profile = parse_profile(wire, cid, midnight - 7 * DAY)
        assert profiles.rejection(profile, limits_for("A"), {CONNECTOR: None}) is None
        profiles.install(profile)
    c = ConnectorLimits(CONNECTOR, 32.0, 3, 230.0, None)

    def expected(t: int) -> float:
        of_day = (t - midnight) % DAY
        if 17 * 3600 <= of_day < 20 * 3600:
            tx = 8.0 if of_day < 18 * 3600 + 1800 else 10.5
        else:
            tx = _daily_limit(of_day // 900)
        return min(tx, 25.0, 32.0)

    began = time.perf_counter()
    seen = []
    for step in range(48 * 4):
        t = midnight + 900 * step
        for at in (t, t + 1, t + 899):  # the step's first second, the next one, its last one
            now = connector_composite(profiles, c, at, at + 1)
            assert len(now) == 1 and now[0].start == at
            assert now[0].limit == expected(at), f"at {at - midnight} s: {now[0].limit} != {expected(at)}"
            seen.append(now[0].limit)
    # The whole 48 hours at once agree with the steps.
    whole = connector_composite(profiles, c, midnight, midnight + 2 * DAY)
    for step in range(48 * 4):
        assert value_at(whole, midnight + 900 * step).limit == expected(midnight + 900 * step)
    elapsed = time.perf_counter() - began
    assert len(set(seen)) > 20  # the pattern is not flat
    assert elapsed < 1.0, f"{len(seen)} limit look-ups over 48 h took {elapsed:.3f} s"


# -- findings ----------------------------------------------------------------------------------


def test_relative_charge_point_max_advances_with_time() -> None:
    """A Relative ChargePointMaxProfile 6 A, then 16 A after 3600 s, with a transaction running since
    T: the composite computed at T says 16 A from T + 3600 s, and the limit in force computed at
    T + 3600 s says the same (once a counterexample: it was counted from each window's start)."""
    wire = {
        "chargingProfileId": 1,
        "stackLevel": 0,
        "chargingProfilePurpose": "ChargePointMaxProfile",
        "chargingProfileKind": "Relative",
        "chargingSchedule": {
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [
                {"startPeriod": 0, "limit": 6.0},
                {"startPeriod": 3600, "limit": 16.0},
            ],
        },
    }
    tx = RunningTransaction(T_BASE, TX_ID)
    profiles = ProfileSet()
    profile = parse_profile(wire, 0, T_BASE)
    if profiles.rejection(profile, limits_for("A"), {CONNECTOR: tx}) is not None:
        return
    profiles.install(profile)
    c = ConnectorLimits(CONNECTOR, 32.0, 3, 230.0, tx)
    announced = connector_composite(profiles, c, T_BASE, T_BASE + 2 * DAY)
    assert [(p.start - T_BASE, p.limit) for p in announced] == [(0, 6.0), (3600, 16.0)]
    later = T_BASE + 3600
    assert connector_composite(profiles, c, later, later + 2 * DAY)[0].limit == 16.0  # is 6.0
