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
nominal voltage and the phases the charger will draw on: for a charger that
can switch phases, numberPhases of the period (3 when not given, ERRATA 3.34)
but never more than it has wired; for one that cannot, all its wired phases
whatever the period asks (a fixed 3-phase charger under "4000 W on 1 phase"
gets 4000 W / 3 phases, never 4000 W per phase; a 1-phase charger under an
11 kW limit may use 11 kW on its one phase, capped by its own maximum).

Times are whole epoch seconds; a window is [t0, t1).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

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
    can_switch_phases: bool = False  # else it always charges on all its wired phases


class CompositePeriod(NamedTuple):  # a tuple: made by the thousand, cheaper than a dataclass
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
        if tx_start is not None:
            anchors = [tx_start]
        elif p.purpose is Purpose.CHARGE_POINT_MAX:
            anchors = [p.received_at]  # no transaction to count from: from its arrival, fixed
        else:
            anchors = [t0]  # a default shown for an idle connector: as if a transaction started now
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
    profiles: Sequence[ChargingProfile],
    t0: int,
    t1: int,
    tx_start: int | None,
    convert: Convert,
    unit: str,
) -> list[Step]:
    """The step function of a precedence list (first wins where its schedule runs); gaps: no limit.
    Limits come out in `unit` (`convert` is called only for profiles in the other unit)."""
    uncovered = [(t0, t1)]
    steps: list[Step] = []
    append = steps.append
    for p in profiles:
        if not uncovered:
            break
        starts, periods, last = p.starts, p.periods, len(p.periods) - 1
        same_unit = p.unit == unit
        for anchor, lo, hi in _runs(p, t0, t1, tx_start):
            still: list[tuple[int, int]] = []
            for a, b in uncovered:
                s = a if a > lo else lo
                e = b if b < hi else hi
                if s >= e:
                    still.append((a, b))
                    continue
                i = bisect.bisect_right(starts, s - anchor) - 1
                while i <= last:
                    begin = anchor + starts[i]
                    if begin >= e:
                        break
                    nxt = e if i == last else anchor + starts[i + 1]
                    end = e if e < nxt else nxt
                    period = periods[i]
                    limit = period.limit if same_unit else convert(period.limit, p.unit, period.phases)
                    append((s if s > begin else begin, end, limit, period.phases))
                    i += 1
                if a < s:
                    still.append((a, s))
                if e < b:
                    still.append((e, b))
            uncovered = still
    steps.sort()
    return steps


def _dense(steps: list[Step], t0: int, t1: int) -> tuple[list[int], list[Step | None]]:
    """A step function as contiguous pieces over [t0, t1): each piece's end, and its step (None in
    a gap)."""
    ends: list[int] = []
    pieces: list[Step | None] = []
    at = t0
    for step in steps:
        if step[0] > at:
            ends.append(step[0])
            pieces.append(None)
        ends.append(step[1])
        pieces.append(step)
        at = step[1]
    if at < t1:
        ends.append(t1)
        pieces.append(None)
    return ends, pieces


def _merge(
    functions: Sequence[list[Step]],
    t0: int,
    t1: int,
    combine: Callable[[list[Step | None]], tuple[float, int | None]],
) -> list[CompositePeriod]:
    """Step functions merged into one over [t0, t1): `combine` gets each function's step at an
    instant (None in a gap); equal neighbours are joined. One walk over the pieces, in order."""
    dense = [_dense(steps, t0, t1) for steps in functions]
    index = [0] * len(dense)
    out: list[CompositePeriod] = []
    last: tuple[float, int | None] | None = None
    floor = math.floor
    t = t0
    while t < t1:
        current = [pieces[i] for (_, pieces), i in zip(dense, index, strict=True)]
        limit, phases = combine(current)
        limit = floor(limit * 10 + 1e-6) / 10  # at most one decimal, never above the limit
        if (limit, phases) != last:
            out.append(CompositePeriod(t, limit, phases))
            last = (limit, phases)
        t = min(ends[i] for (ends, _), i in zip(dense, index, strict=True))
        for k, (ends, _) in enumerate(dense):
            if ends[index[k]] == t:
                index[k] += 1
    return out


def _phases_used(c: ConnectorLimits, asked: int | None) -> int:
    """The phases the charger draws on under a period asking for `asked` (numberPhases): a charger
    that cannot switch uses all it has wired, whatever the profile asks."""
    if not c.can_switch_phases:
        return c.phases
    return min(asked or 3, c.phases)


def _converter(c: ConnectorLimits, unit: str) -> Convert:
    def convert(limit: float, source: str, phases: int | None) -> float:
        if source == unit:
            return limit
        used = _phases_used(c, phases)
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
    return _paint(order, t0, t1, tx.started_at if tx is not None else None, _converter(c, unit), unit)


def _local_limit(c: ConnectorLimits, unit: str, phases: int | None) -> float:
    if unit == "A":
        return c.max_current_a
    return c.max_current_a * c.nominal_voltage_v * (c.phases if phases is None else _phases_used(c, phases))


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
    tx_start = c.transaction.started_at if c.transaction is not None else None
    cp_max = _paint(
        _by_stack(p for p in installed if p.purpose is Purpose.CHARGE_POINT_MAX),
        t0,
        t1,
        tx_start,
        convert,
        unit,
    )
    own = _transaction_steps(installed, c, t0, t1, unit)
    return _merge_connector(cp_max, own, t0, t1, c, unit, max(1, share))


def _merge_connector(
    cp_max: list[Step], own: list[Step], t0: int, t1: int, c: ConnectorLimits, unit: str, share: int
) -> list[CompositePeriod]:
    """`_merge` for the two functions of a connector, written out (gaps handled in place, tuples made
    without the NamedTuple's Python-level constructor): the hot path of the composite."""
    local = {ph: _local_limit(c, unit, ph) for ph in (None, 1, 2, 3)}
    floor = math.floor
    make = tuple.__new__
    out: list[CompositePeriod] = []
    append = out.append
    last_limit, last_phases = -1.0, -1
    i = j = 0
    n_a, n_b = len(cp_max), len(own)
    t = t0
    while t < t1:
        # Each function's piece at t: a step that has begun, or a gap up to the next step.
        a = cp_max[i] if i < n_a else None
        if a is None:
            end_a = t1
        elif a[0] > t:
            end_a, a = a[0], None
        else:
            end_a = a[1]
        b = own[j] if j < n_b else None
        if b is None:
            end_b = t1
        elif b[0] > t:
            end_b, b = b[0], None
        else:
            end_b = b[1]
        phases = b[3] if b is not None and b[3] is not None else (a[3] if a is not None else None)
        limit = local[phases]
        if a is not None and a[2] / share < limit:
            limit = a[2] / share
        if b is not None and b[2] < limit:
            limit = b[2]
        limit = floor(limit * 10 + 1e-6) / 10  # at most one decimal, never above the limit
        if limit != last_limit or phases != last_phases:
            append(make(CompositePeriod, (t, limit, phases)))
            last_limit, last_phases = limit, phases  # type: ignore[assignment]
        t = end_a if end_a < end_b else end_b
        if a is not None and end_a == t:
            i += 1
        if b is not None and end_b == t:
            j += 1
    return out


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
        unit,
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
