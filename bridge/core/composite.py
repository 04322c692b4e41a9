"""The composite schedule (pure): the limit in force on a connector over a time window.

OCPP 1.6 §3.13: per purpose, the valid profile with the highest stackLevel
whose schedule is running wins at each instant; where it is not running
(before its start, after its duration, outside validFrom/validTo) the next
lower one shows through [ERRATA 3.7]. A connector's limit is then the minimum
of the ChargePointMaxProfile (its share of it), the transaction's limit
(TxProfile over TxDefaultProfile; a connector's own default over the
connector-0 default) and the device's own maximum (the "local limit").

How it is computed: each precedence list is *painted* onto the window -- the
highest profile first, each lower one only into the time still uncovered --
giving a step function; step functions are then merged. The work grows with
the periods that can be seen, not with window length times profiles, and
nothing is sampled: boundaries fall exactly where a profile changes.

Units: A is per phase, W is the total. A W limit becomes A through the
nominal voltage and the phases in use: numberPhases of the period (3 when not
given, ERRATA 3.34), but never more than the connector has wired (a 1-phase
charger under an 11 kW limit may use 11 kW on its one phase, capped by its
own maximum).

Times are whole epoch seconds; a window is [t0, t1).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from bridge.core.charging_profiles import ChargingProfile, Kind, Purpose, RunningTransaction

# A step function over the window: (start, end, value in the target unit, numberPhases asked for).
Step = tuple[int, int, float, int | None]


@dataclass(frozen=True)
class ConnectorLimits:
    """What a connector contributes of its own: its device and its transaction."""

    connector_id: int
    max_current_a: float  # the device's maximum: the local limit
    phases: int  # phases wired to the vehicle
    nominal_voltage_v: float
    transaction: RunningTransaction | None = None


@dataclass(frozen=True, slots=True)
class CompositePeriod:
    start: int  # epoch seconds
    limit: float  # in the unit asked for, rounded down to 0.1
    phases: int | None = None


def _runs(p: ChargingProfile, t0: int, t1: int, tx_start: int | None) -> list[tuple[int, int, int]]:
    """Where `p`'s schedule runs inside [t0, t1): (schedule start, from, to) per run."""
    lo_valid = t0 if p.valid_from is None else max(t0, p.valid_from)
    hi_valid = t1 if p.valid_to is None else min(t1, p.valid_to)
    if lo_valid >= hi_valid:
        return []
    if p.kind is Kind.RELATIVE:
        anchors = [tx_start if tx_start is not None else t0]
        length: int | None = p.duration_s
    elif p.kind is Kind.ABSOLUTE:
        assert p.start_schedule is not None
        anchors = [p.start_schedule]
        length = p.duration_s
    else:  # Recurring: every period length from startSchedule, earlier occurrences included
        assert p.start_schedule is not None and p.recurrence_s is not None
        every = p.recurrence_s
        first = p.start_schedule + math.floor((lo_valid - p.start_schedule) / every) * every
        anchors = list(range(first, hi_valid, every))
        # Periods and duration beyond the recurrence are not carried out [SPEC 3.13.6].
        length = every if p.duration_s is None else min(p.duration_s, every)
    runs = []
    for anchor in anchors:
        lo = max(anchor, lo_valid)
        hi = hi_valid if length is None else min(anchor + length, hi_valid)
        if lo < hi:
            runs.append((anchor, lo, hi))
    return runs


Convert = Callable[[float, str, int | None], float]  # (limit, its unit, numberPhases) -> target unit


def _paint(
    profiles: Sequence[ChargingProfile], t0: int, t1: int, tx_start: int | None, convert: Convert
) -> list[Step]:
    """The step function of a precedence list (first wins where its schedule runs); gaps: no limit."""
    uncovered = [(t0, t1)]
    steps: list[Step] = []
    for p in profiles:
        if not uncovered:
            break
        starts, periods, last, unit = p.starts, p.periods, len(p.periods) - 1, p.unit
        for anchor, lo, hi in _runs(p, t0, t1, tx_start):
            still: list[tuple[int, int]] = []
            for a, b in uncovered:
                s, e = max(a, lo), min(b, hi)
                if s >= e:
                    still.append((a, b))
                    continue
                i = bisect.bisect_right(starts, s - anchor) - 1
                while i <= last:
                    begin = anchor + starts[i]
                    if begin >= e:
                        break
                    end = e if i == last else min(e, anchor + starts[i + 1])
                    period = periods[i]
                    steps.append(
                        (max(s, begin), end, convert(period.limit, unit, period.phases), period.phases)
                    )
                    i += 1
                if a < s:
                    still.append((a, s))
                if e < b:
                    still.append((e, b))
            uncovered = still
    steps.sort()
    return steps


def _merge(
    functions: Sequence[list[Step]],
    t0: int,
    t1: int,
    combine: Callable[[list[Step | None]], tuple[float, int | None]],
) -> list[CompositePeriod]:
    """Step functions merged into one over [t0, t1): `combine` gets each function's step at an
    instant (None in a gap); equal neighbours are joined."""
    cuts = {t0}
    for steps in functions:
        for s, e, _, _ in steps:
            cuts.add(s)
            cuts.add(e)
    points = sorted(c for c in cuts if t0 <= c < t1)
    at = [0] * len(functions)
    out: list[CompositePeriod] = []
    for t in points:
        current: list[Step | None] = []
        for k, steps in enumerate(functions):
            i = at[k]
            while i < len(steps) and steps[i][1] <= t:
                i += 1
            at[k] = i
            current.append(steps[i] if i < len(steps) and steps[i][0] <= t else None)
        limit, phases = combine(current)
        limit = math.floor(limit * 10 + 1e-6) / 10  # at most one decimal, never above the limit
        if out and out[-1].limit == limit and out[-1].phases == phases:
            continue
        out.append(CompositePeriod(t, limit, phases))
    return out


def _converter(c: ConnectorLimits, unit: str) -> Convert:
    def convert(limit: float, source: str, phases: int | None) -> float:
        if source == unit:
            return limit
        used = min(phases or 3, c.phases)
        if unit == "A":
            return limit / (c.nominal_voltage_v * used)
        return limit * c.nominal_voltage_v * used

    return convert


def _by_stack(profiles: Iterable[ChargingProfile]) -> list[ChargingProfile]:
    return sorted(profiles, key=lambda p: -p.stack_level)


def _transaction_steps(
    profiles: Sequence[ChargingProfile], c: ConnectorLimits, t0: int, t1: int, unit: str
) -> list[Step]:
    """The transaction's limit: its TxProfile, else this connector's TxDefaultProfile, else the
    connector-0 default (ERRATA 3.8: a new default applies to a running transaction at once)."""
    cid, tx = c.connector_id, c.transaction
    order: list[ChargingProfile] = []
    if tx is not None:
        order += _by_stack(p for p in profiles if p.purpose is Purpose.TX and p.connector_id == cid)
    order += _by_stack(p for p in profiles if p.purpose is Purpose.TX_DEFAULT and p.connector_id == cid)
    order += _by_stack(p for p in profiles if p.purpose is Purpose.TX_DEFAULT and p.connector_id == 0)
    return _paint(order, t0, t1, tx.started_at if tx is not None else None, _converter(c, unit))


def _local_limit(c: ConnectorLimits, unit: str, phases: int | None) -> float:
    if unit == "A":
        return c.max_current_a
    return c.max_current_a * c.nominal_voltage_v * min(phases or c.phases, c.phases)


def connector_composite(
    profiles: Iterable[ChargingProfile],
    c: ConnectorLimits,
    t0: int,
    t1: int,
    unit: str = "A",
    share: int = 1,
) -> list[CompositePeriod]:
    """The composite schedule of connector `c` over [t0, t1) in `unit` ("A" or "W").

    `share`: how many connectors share the ChargePointMaxProfile now (each gets an equal part).
    """
    installed = list(profiles)
    convert = _converter(c, unit)
    cp_max = _paint(
        _by_stack(p for p in installed if p.purpose is Purpose.CHARGE_POINT_MAX), t0, t1, None, convert
    )
    own = _transaction_steps(installed, c, t0, t1, unit)

    def combine(at: list[Step | None]) -> tuple[float, int | None]:
        top, tx = at
        phases = tx[3] if tx is not None and tx[3] is not None else (top[3] if top is not None else None)
        limit = _local_limit(c, unit, phases)
        if top is not None:
            limit = min(limit, top[2] / max(1, share))
        if tx is not None:
            limit = min(limit, tx[2])
        return limit, phases

    return _merge([cp_max, own], t0, t1, combine)


def charge_point_composite(
    profiles: Iterable[ChargingProfile],
    connectors: Sequence[ConnectorLimits],
    t0: int,
    t1: int,
    unit: str = "A",
) -> list[CompositePeriod]:
    """Connector 0: what the whole charge point may draw -- the sum of its connectors' limits
    (each capped by its device), under the ChargePointMaxProfile."""
    installed = list(profiles)
    if not connectors:
        return []
    # The charge point maximum converts with the first connector's voltage and wiring.
    cp_max = _paint(
        _by_stack(p for p in installed if p.purpose is Purpose.CHARGE_POINT_MAX),
        t0,
        t1,
        None,
        _converter(connectors[0], unit),
    )
    own = [_transaction_steps(installed, c, t0, t1, unit) for c in connectors]

    def combine(at: list[Step | None]) -> tuple[float, int | None]:
        top, *each = at
        total = 0.0
        for c, step in zip(connectors, each, strict=True):
            local = _local_limit(c, unit, step[3] if step is not None else None)
            total += local if step is None else min(local, step[2])
        return (total if top is None else min(total, top[2])), None

    return _merge([cp_max, *own], t0, t1, combine)


def limit_now(periods: Sequence[CompositePeriod]) -> CompositePeriod | None:
    """The first period: the one in force at the window's start."""
    return periods[0] if periods else None
