"""The pure smart-charging core: profile checks, replacement and clearing, the composite schedule
(worked examples after the specification and the errata), and what a device is told."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.base import ChargerCapabilities
from bridge.core.charging_profiles import (
    Limits,
    ProfileInvalid,
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
from bridge.core.connector import Connector, SetEnergy, StartTransaction, Status
from bridge.core.setpoint import Setpoint, setpoint

T0 = int(datetime(2026, 11, 23, 8, 0, tzinfo=UTC).timestamp())  # a Monday, 08:00 UTC
LIMITS = Limits(max_stack_level=10, max_periods=96, max_installed=20, units=frozenset({"A", "W"}))
ONE = ConnectorLimits(1, max_current_a=32, phases=3, nominal_voltage_v=230)


def at(offset_s: int) -> str:
    return datetime.fromtimestamp(T0 + offset_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def wire(
    pid: int,
    purpose: str = "TxDefaultProfile",
    stack: int = 0,
    periods: list[tuple[int, float]] | list[tuple[int, float, int]] = ((0, 16),),  # type: ignore[assignment]
    kind: str = "Absolute",
    unit: str = "A",
    start: int | None = 0,
    duration: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    schedule: dict[str, Any] = {
        "chargingRateUnit": unit,
        "chargingSchedulePeriod": [
            {"startPeriod": p[0], "limit": p[1], **({"numberPhases": p[2]} if len(p) > 2 else {})}
            for p in periods
        ],
    }
    if start is not None and kind != "Relative":
        schedule["startSchedule"] = at(start)
    if duration is not None:
        schedule["duration"] = duration
    return {
        "chargingProfileId": pid,
        "stackLevel": stack,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": kind,
        "chargingSchedule": schedule,
        **extra,
    }


def installed(
    *profiles: tuple[int, dict[str, Any]], running: dict[int, RunningTransaction | None] | None = None
) -> ProfileSet:
    ps = ProfileSet()
    run = running if running is not None else {1: RunningTransaction(T0, 7), 2: None}
    for connector, w in profiles:
        p = parse_profile(w, connector, T0)
        assert ps.rejection(p, LIMITS, run) is None, ps.rejection(p, LIMITS, run)
        ps.install(p)
    return ps


def steps(periods: list[CompositePeriod]) -> list[tuple[int, float]]:
    return [(p.start - T0, p.limit) for p in periods]


# -- parsing: PropertyConstraintViolation cases ----------------------------------------------
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"periods": [(10, 16)]}, "the first startPeriod must be 0"),
        ({"periods": [(0, 16), (60, 10), (60, 8)]}, "startPeriod must increase"),
        ({"periods": [(0, 16, 4)]}, "numberPhases must be 1, 2 or 3"),
        ({"kind": "Recurring"}, "recurrencyKind"),
        ({"kind": "Recurring", "recurrencyKind": "Daily", "start": None}, "startSchedule"),
        ({"validFrom": at(100), "validTo": at(50)}, "validTo: must be after validFrom"),
        ({"duration": 0}, "duration"),
        ({"validFrom": "2026-11-23T08:00:00"}, "time zone"),
    ],
)
def test_values_that_cannot_be_a_profile_are_refused_naming_the_field(
    change: dict[str, Any], message: str
) -> None:
    with pytest.raises(ProfileInvalid, match=message):
        parse_profile(wire(1, **change), 1, T0)


def test_an_absolute_schedule_without_start_starts_when_received_and_is_stored_so() -> None:
    p = parse_profile(wire(1, start=None), 1, T0 + 42)
    assert p.start_schedule == T0 + 42
    assert p.wire["chargingSchedule"]["startSchedule"] == at(42)


# -- installing: Rejected cases and replacement ----------------------------------------------
@pytest.mark.parametrize(
    ("connector", "profile", "reason"),
    [
        (1, wire(1, "ChargePointMaxProfile"), "connector 0 only"),
        (0, wire(1, "TxProfile"), "needs a connector"),
        (2, wire(1, "TxProfile"), "no transaction runs on connector 2"),  # OCTT TC_058_1
        (1, wire(1, "TxProfile", transactionId=8), "transaction 8 is not the one running"),
        (1, wire(1, stack=11), "stackLevel 11"),
        (1, wire(1, periods=[(i * 60, 16) for i in range(97)]), "97 periods"),
    ],
)
def test_profiles_this_charge_point_will_not_install(
    connector: int, profile: dict[str, Any], reason: str
) -> None:
    p = parse_profile(profile, connector, T0)
    why = ProfileSet().rejection(p, LIMITS, {1: RunningTransaction(T0, 7), 2: None})
    assert why is not None and reason in why


def test_a_unit_that_is_not_allowed_is_rejected() -> None:
    only_current = Limits(10, 96, 20, frozenset({"A"}))
    p = parse_profile(wire(1, unit="W", periods=[(0, 11000)]), 1, T0)
    assert "unit W" in (ProfileSet().rejection(p, only_current, {1: None}) or "")


def test_replacement_by_id_and_by_stack_and_purpose_on_the_same_connector() -> None:
    ps = installed((1, wire(1, stack=0)), (2, wire(2, stack=0)), (0, wire(3, stack=1)))
    replaced = ps.install(parse_profile(wire(4, stack=0, periods=[(0, 10)]), 1, T0))
    assert [p.id for p in replaced] == [1]  # same purpose and stack on connector 1; connector 2's stays
    replaced = ps.install(parse_profile(wire(3, stack=5), 0, T0))  # the same id, another stack level
    assert [p.id for p in replaced] == [3]
    assert sorted(p.id for p in ps) == [2, 3, 4]


def test_the_installed_maximum_counts_after_replacement() -> None:
    limits = Limits(10, 96, 2, frozenset({"A", "W"}))
    ps = ProfileSet()
    for pid, stack in ((1, 0), (2, 1)):
        ps.install(parse_profile(wire(pid, stack=stack), 1, T0))
    assert ps.rejection(parse_profile(wire(3, stack=2), 1, T0), limits, {1: None}) is not None
    assert ps.rejection(parse_profile(wire(3, stack=1), 1, T0), limits, {1: None}) is None  # replaces 2


@pytest.mark.parametrize(
    ("criteria", "removed"),
    [
        ({}, [1, 2, 3, 4]),  # no fields: all (ERRATA 3.25)
        ({"profile_id": 2, "connector_id": 0, "purpose": Purpose.CHARGE_POINT_MAX}, [2]),  # id wins
        ({"connector_id": 1}, [1, 4]),
        ({"purpose": Purpose.TX_DEFAULT, "stack_level": 0}, [1, 3]),  # AND of the fields given
        ({"connector_id": 1, "purpose": Purpose.CHARGE_POINT_MAX}, []),  # nothing: Unknown
        ({"profile_id": 99}, []),
    ],
)
def test_clear_charging_profile_criteria(criteria: dict[str, Any], removed: list[int]) -> None:
    ps = installed(
        (1, wire(1, stack=0)),
        (1, wire(4, "TxProfile", stack=2)),
        (0, wire(2, "ChargePointMaxProfile")),
        (2, wire(3, stack=0)),
    )
    assert sorted(p.id for p in ps.clear(**criteria)) == removed


def test_a_transaction_end_removes_its_tx_profiles_only() -> None:
    ps = installed((1, wire(1, "TxProfile", stack=1)), (1, wire(2, stack=0)))
    assert [p.id for p in ps.end_transaction(1)] == [1]
    assert [p.id for p in ps] == [2]


# -- the composite ------------------------------------------------------------------------
def test_stacking_falls_back_to_the_lower_level_when_the_higher_ends() -> None:
    """After OCTT TC_072: stack 0 for 400 s, stack 1 for 150 s on top; then no limit (the device's)."""
    ps = installed(
        (1, wire(1, stack=0, periods=[(0, 10)], duration=400)),
        (1, wire(2, stack=1, periods=[(0, 6), (100, 8)], duration=150)),
    )
    assert steps(connector_composite(ps, ONE, T0, T0 + 600)) == [(0, 6), (100, 8), (150, 10), (400, 32)]


def test_a_top_profile_without_duration_hides_the_lower_ones_for_ever() -> None:
    ps = installed(
        (1, wire(1, stack=0, periods=[(0, 10), (300, 20)])),
        (1, wire(2, stack=1, periods=[(0, 12)])),
    )
    assert steps(connector_composite(ps, ONE, T0, T0 + 3600)) == [(0, 12)]  # ERRATA 3.7


def test_three_purposes_combine_as_a_minimum() -> None:
    """After OCTT TC_066: ChargePointMaxProfile, TxDefaultProfile and TxProfile together."""
    ps = installed(
        (0, wire(1, "ChargePointMaxProfile", periods=[(0, 20), (200, 7)])),
        (1, wire(2, "TxDefaultProfile", periods=[(0, 10), (100, 16)])),
        (1, wire(3, "TxProfile", kind="Relative", periods=[(0, 12), (300, 6)], duration=600)),
    )
    tx = ConnectorLimits(1, 32, 3, 230, RunningTransaction(T0 - 100, 7))
    # TxProfile beats the default (relative to the start 100 s ago: 12 A until +200, then 6 A).
    assert steps(connector_composite(ps, tx, T0, T0 + 700)) == [(0, 12), (200, 6), (500, 7)]
    # Without a transaction the TxProfile does not count: default under the maximum.
    assert steps(connector_composite(ps, ONE, T0, T0 + 400)) == [(0, 10), (100, 16), (200, 7)]


def test_a_connectors_own_default_overrides_the_connector_zero_default() -> None:
    ps = installed((0, wire(1, periods=[(0, 10)])), (1, wire(2, periods=[(0, 14)], duration=60)))
    assert steps(connector_composite(ps, ONE, T0, T0 + 120)) == [(0, 14), (60, 10)]
    two = ConnectorLimits(2, 32, 3, 230)
    assert steps(connector_composite(ps, two, T0, T0 + 120)) == [(0, 10)]


def test_valid_from_and_valid_to_bound_a_profile() -> None:
    ps = installed(
        (1, wire(1, stack=0, periods=[(0, 10)])),
        (1, wire(2, stack=1, periods=[(0, 6)], validFrom=at(60), validTo=at(120))),
    )
    assert steps(connector_composite(ps, ONE, T0, T0 + 180)) == [(0, 10), (60, 6), (120, 10)]


def test_an_absolute_schedule_in_the_future_reverts_to_the_lower_level_until_it_starts() -> None:
    ps = installed(
        (1, wire(1, stack=0, periods=[(0, 10)])), (1, wire(2, stack=1, periods=[(0, 6)], start=300))
    )
    assert steps(connector_composite(ps, ONE, T0, T0 + 600)) == [(0, 10), (300, 6)]


def test_daily_recurrence_repeats_at_the_start_time_and_is_cut_at_24_hours() -> None:
    # From 18:00 (10 h after T0's 08:00) for 4 h: 6 A; a duration beyond 24 h is not carried out.
    ps = installed(
        (1, wire(1, stack=0, periods=[(0, 16)])),
        (1, wire(2, stack=1, kind="Recurring", recurrencyKind="Daily", start=10 * 3600 - 86400,
                 periods=[(0, 6)], duration=4 * 3600)),
    )  # fmt: skip
    h = 3600
    assert steps(connector_composite(ps, ONE, T0, T0 + 48 * h)) == [
        (0, 16), (10 * h, 6), (14 * h, 16), (34 * h, 6), (38 * h, 16)
    ]  # fmt: skip


def test_weekly_recurrence_and_periods_beyond_the_recurrence_are_not_carried_out() -> None:
    week = 7 * 86400
    ps = installed(
        (
            1,
            wire(1, kind="Recurring", recurrencyKind="Weekly", start=-week, periods=[(0, 8), (week + 10, 2)]),
        ),
    )
    assert steps(connector_composite(ps, ONE, T0, T0 + 2 * week)) == [(0, 8)]


def test_watts_become_amperes_with_the_nominal_voltage_and_phases() -> None:
    ps = installed((1, wire(1, unit="W", periods=[(0, 11040), (60, 4600, 1)])))
    # A charger that can switch phases: 11040 W / (230 V x 3) = 16 A; 4600 W on 1 phase = 20 A.
    switching = ConnectorLimits(1, 32, 3, 230, can_switch_phases=True)
    assert [(p.start - T0, p.limit, p.phases) for p in connector_composite(ps, switching, T0, T0 + 120)] == [
        (0, 16.0, None),
        (60, 20.0, 1),
    ]
    # One that cannot draws on its 3 phases whatever the period asks: 4600 W / (230 V x 3) = 6.6 A,
    # never 20 A on each of 3 phases (13.8 kW for a 4.6 kW limit).
    assert [(p.start - T0, p.limit) for p in connector_composite(ps, ONE, T0, T0 + 120)] == [
        (0, 16.0),
        (60, 6.6),
    ]
    # In W, the device's own maximum is 32 A x 230 V x 3 phases.
    assert steps(connector_composite(installed(), ONE, T0, T0 + 60, "W")) == [(0, 22080.0)]
    # A 1-phase charger under a W limit uses it on its one phase (never divided by 3 it has not got).
    single = ConnectorLimits(1, 32, 1, 230)
    assert steps(connector_composite(ps, single, T0, T0 + 60)) == [(0, 32.0)]


def test_limits_are_rounded_down_to_one_decimal() -> None:
    ps = installed((1, wire(1, unit="W", periods=[(0, 7000)])))
    assert steps(connector_composite(ps, ONE, T0, T0 + 60)) == [(0, 10.1)]  # 10.144... A


def test_a_charge_point_maximum_is_shared_by_the_connectors_charging() -> None:
    ps = installed((0, wire(1, "ChargePointMaxProfile", periods=[(0, 20)])))
    assert steps(connector_composite(ps, ONE, T0, T0 + 60, share=2)) == [(0, 10)]


def test_connector_zero_is_the_sum_of_the_connectors_under_the_maximum() -> None:
    ps = installed(
        (0, wire(1, "ChargePointMaxProfile", periods=[(0, 40), (60, 15)])),
        (0, wire(2, periods=[(0, 10)])),
    )
    both = [ONE, ConnectorLimits(2, 16, 3, 230)]
    assert steps(charge_point_composite(ps, both, T0, T0 + 120)) == [(0, 20), (60, 15)]


def test_no_profiles_means_the_devices_maximum() -> None:
    assert steps(connector_composite(ProfileSet(), ONE, T0, T0 + 60)) == [(0, 32)]


# -- what the device is told ----------------------------------------------------------------
CAPS = ChargerCapabilities(
    can_sense_plug=True, can_unlock=False, fixed_cable=True, can_switch_phases=True, can_reset=True,
    has_meter=True, has_rfid=True, phases=3, min_current_a=6, max_current_a=16, current_step_a=1,
)  # fmt: skip
RELAY = ChargerCapabilities(
    can_sense_plug=False, can_unlock=False, fixed_cable=True, can_switch_phases=False, can_reset=False,
    has_meter=True, has_rfid=False, phases=3, min_current_a=16, max_current_a=16, current_step_a=16,
)  # fmt: skip


@pytest.mark.parametrize(
    ("caps", "limit", "phases", "expected"),
    [
        (CAPS, None, None, Setpoint(16, False)),
        (CAPS, 32, None, Setpoint(16, False, None, 32)),
        (CAPS, 10.9, None, Setpoint(10, False, None, 10.9)),  # rounded down to the 1 A step
        (CAPS, 6, 1, Setpoint(6, False, 1, 6)),
        (CAPS, 5.9, None, Setpoint(6, True, None, 5.9)),  # below the minimum: paused
        (CAPS, 0, None, Setpoint(6, True, None, 0)),
        (CAPS, 10, 2, Setpoint(10, False, None, 10)),  # 2 phases: not a switch the device has
        (RELAY, 16, None, Setpoint(16, False, None, 16)),
        (RELAY, 10, 1, Setpoint(16, True, None, 10)),  # a relay cannot reduce: it pauses
    ],
)
def test_setpoint(
    caps: ChargerCapabilities, limit: float | None, phases: int | None, expected: Setpoint
) -> None:
    assert setpoint(limit, phases, caps) == expected


def test_a_limit_below_the_minimum_suspends_a_transaction_and_lifts_again() -> None:
    c = Connector(1)
    now = datetime.fromtimestamp(T0, UTC)
    assert c.on_limit(True) == []  # no transaction: only remembered
    c.plugged = True
    c.ev_requesting = True
    effects = c.on_authorized("TAG", True, now, 60)
    assert isinstance(effects[0], StartTransaction) and effects[1] == SetEnergy(False)
    assert c.status().status is Status.SUSPENDED_EVSE
    assert c.on_limit(False) == [SetEnergy(True)]
    assert c.status().status is Status.CHARGING
    assert c.on_limit(True) == [SetEnergy(False)]
    assert c.on_limit(True) == []
