"""The cost of the composite schedule (bridge.core.composite): worst case and typical set-up.

Run as `.venv/bin/python bench/composite.py [-n RUNS] [--quick]` (or `make bench`; a few seconds with
the defaults). Not a test: it prints a table and exits 0 whether the target is met or not. `--quick`
(in `make test`) times each row 50 times: it proves the benchmark still runs; its figures mean little.

The worst case: one connector (3 phases, 32 A, 230 V, a transaction running for 2 h) under the most
profiles this charge point accepts with the default configuration -- MaxChargingProfilesInstalled
(20) profiles, each with ChargingScheduleMaxPeriods (96) periods: 5 ChargePointMaxProfiles, 5
TxProfiles, 5 TxDefaultProfiles of the connector and 5 of connector 0, stack levels 0..4 in each.
Kinds cycle through Recurring Daily, Absolute, Relative, Recurring Weekly and Absolute; units
alternate A and W (so about half the periods are converted). Starts and durations are staggered so
that every profile shows through somewhere (see `worst_case`; the script counts them): the higher
the stack level, the shorter its schedule and its periods (down to 1 min), and the composite of a
day has some 650 periods (1000 over two days). The profiles go through parse_profile and
ProfileSet.rejection (all accepted, none replaced). Kinds for the ChargePointMaxProfiles leave out
Relative: see test_relative_charge_point_max_advances_with_time in tests/test_composite_properties.py.

Timed, each over many runs (time.perf_counter_ns around the one call; median and p95):
  - connector_composite over 24 h, in A and in W (GetCompositeSchedule for a day);
  - the "limit now" query the shell runs at every boundary: connector_composite over
    [now, now + 10 min] (bridge.smart_charging.LOOKAHEAD_S), in A;
and the same for a typical set-up: 1 ChargePointMaxProfile (Absolute, 1 period), 1 TxDefaultProfile
(Recurring Daily, 24 hourly periods) and 1 TxProfile (Relative, 3 hourly periods in W, 6 h).

The target: under 1 ms per computation; PASS when the p95 is under it.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository: bridge
from bridge.core.charging_profiles import (
    Limits,
    ProfileSet,
    Purpose,
    RunningTransaction,
    parse_profile,
)
from bridge.core.composite import CompositePeriod, ConnectorLimits, connector_composite

TARGET_MS = 1.0
QUICK_RUNS = 50  # --quick: timed runs per row
DAY = 86_400
from bridge.smart_charging import LOOKAHEAD_S  # noqa: E402 - the window the shell really uses

NOW = int(datetime(2026, 3, 4, 8, 7, 0, tzinfo=UTC).timestamp())  # a Wednesday morning
MIDNIGHT = NOW - NOW % DAY
MONDAY = MIDNIGHT - 2 * DAY
TX_STARTED = NOW - 2 * 3600
CONNECTOR = 1
# The defaults of ChargeProfileMaxStackLevel, ChargingScheduleMaxPeriods, MaxChargingProfilesInstalled.
LIMITS = Limits(max_stack_level=10, max_periods=96, max_installed=20, units=frozenset({"A", "W"}))
THE_CONNECTOR = ConnectorLimits(CONNECTOR, 32.0, 3, 230.0, RunningTransaction(TX_STARTED, 7))
LOAD_AT_START = os.getloadavg()[0]


def _iso(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _wire(
    profile_id: int,
    purpose: Purpose,
    stack: int,
    kind: str,
    unit: str,
    step_s: int,
    periods: int,
    rng: random.Random,
    start: int | None = None,
    duration_s: int | None = None,
    recurrency: str | None = None,
    given: list[float] | None = None,
) -> dict[str, Any]:
    """A csChargingProfiles as SetChargingProfile carries it; limits `given`, else random ones that
    differ from period to period."""
    low, high = (60, 320) if unit == "A" else (4_000, 22_000)  # A in tenths, W in whole watts
    limits: list[float] = list(given or [])
    while len(limits) < periods:
        value = rng.randint(low, high) / 10 if unit == "A" else float(rng.randint(low, high))
        if not limits or value != limits[-1]:
            limits.append(value)
    schedule: dict[str, Any] = {
        "chargingRateUnit": unit,
        "chargingSchedulePeriod": [
            {"startPeriod": i * step_s, "limit": limit} for i, limit in enumerate(limits)
        ],
    }
    if start is not None:
        schedule["startSchedule"] = _iso(start)
    if duration_s is not None:
        schedule["duration"] = duration_s
    wire: dict[str, Any] = {
        "chargingProfileId": profile_id,
        "stackLevel": stack,
        "chargingProfilePurpose": str(purpose),
        "chargingProfileKind": kind,
        "chargingSchedule": schedule,
    }
    if recurrency is not None:
        wire["recurrencyKind"] = recurrency
    return wire


@dataclass
class Setup:
    name: str
    profiles: ProfileSet
    periods: int  # schedule periods installed, in all


def _install(name: str, sent: list[tuple[int, dict[str, Any]]]) -> Setup:
    profiles = ProfileSet()
    for cid, wire in sent:
        profile = parse_profile(wire, cid, NOW - 3 * 3600)
        reason = profiles.rejection(profile, LIMITS, {CONNECTOR: THE_CONNECTOR.transaction})
        if reason is not None:
            raise SystemExit(f"{name}: profile {profile.id} rejected: {reason}")
        if profiles.install(profile):
            raise SystemExit(f"{name}: profile {profile.id} replaced another")
    return Setup(name, profiles, sum(len(p.periods) for p in profiles))


def _placed(
    pid: int,
    purpose: Purpose,
    stack: int,
    kind: str,
    unit: str,
    begin: int,
    duration_s: int,
    rng: random.Random,
) -> dict[str, Any]:
    """A 96-period profile whose schedule runs over [begin, begin + duration_s), whatever its kind; a
    Relative one runs from the transaction's start, its periods spread over that longer run."""
    step = duration_s // 96
    if kind == "Relative":
        run = begin - TX_STARTED + duration_s
        return _wire(pid, purpose, stack, kind, unit, run // 96, 96, rng, None, run)
    if kind == "Daily":
        return _wire(
            pid, purpose, stack, "Recurring", unit, step, 96, rng, begin - 7 * DAY, duration_s, "Daily"
        )
    if kind == "Weekly":
        return _wire(
            pid, purpose, stack, "Recurring", unit, step, 96, rng, begin - 7 * DAY, duration_s, "Weekly"
        )
    return _wire(pid, purpose, stack, kind, unit, step, 96, rng, begin, duration_s)


def worst_case() -> Setup:
    """Stack level k of a group runs from the start of the group's band for (5 - k) fifths of it: the
    higher the level, the shorter its schedule and periods, and each level shows in its own fifth.
    The transaction's three groups take 8 h bands one after the other (TxProfiles first: a default
    shows only where no TxProfile runs); the ChargePointMaxProfiles are a Daily one for the whole
    day under four 4-hour slices, and take the minimum with them wherever their limit is lower."""
    rng = random.Random(20)
    kinds = ["Daily", "Absolute", "Relative", "Weekly", "Absolute"]
    sent = []
    pid = 0
    band = 8 * 3600
    for g, (purpose, cid) in enumerate(
        [(Purpose.TX, CONNECTOR), (Purpose.TX_DEFAULT, CONNECTOR), (Purpose.TX_DEFAULT, 0)]
    ):
        begin = NOW + g * band
        for stack in range(5):
            pid += 1
            kind = kinds[(stack + g) % 5]
            duration = (5 - stack) * band // 5  # 96 periods of 5, 4, 3, 2, 1 min
            sent.append(
                (cid, _placed(pid, purpose, stack, kind, "AW"[(stack + g) % 2], begin, duration, rng))
            )
    pid += 1
    sent.append((0, _placed(pid, Purpose.CHARGE_POINT_MAX, 0, "Daily", "A", MIDNIGHT, DAY, rng)))
    for stack, hour in enumerate([2, 8, 14, 19], start=1):  # 96 periods of 2.5 min each
        pid += 1
        kind = ["Absolute", "Weekly", "Absolute", "Daily"][stack - 1]  # Relative: see the tests' finding
        sent.append(
            (
                0,
                _placed(
                    pid,
                    Purpose.CHARGE_POINT_MAX,
                    stack,
                    kind,
                    "WA"[stack % 2],
                    NOW + hour * 3600,
                    4 * 3600,
                    rng,
                ),
            )
        )
    return _install("worst case: 20 profiles x 96 periods", sent)


def typical() -> Setup:
    rng = random.Random(3)
    hourly = [16.0] * 6 + [10.0] * 3 + [13.0] * 8 + [6.0] * 4 + [16.0] * 3  # A, from midnight
    cp_max = _wire(
        1, Purpose.CHARGE_POINT_MAX, 0, "Absolute", "A", 3600, 1, rng, MIDNIGHT - 30 * DAY, given=[14.0]
    )
    default = _wire(
        2, Purpose.TX_DEFAULT, 0, "Recurring", "A", 3600, 24, rng, MIDNIGHT - 7 * DAY, None, "Daily", hourly
    )
    # From the transaction's start (2 h ago): 6 A, 10.7 A, then 15.9 A until 6 h.
    tx = _wire(
        3, Purpose.TX, 1, "Relative", "W", 3600, 3, rng, None, 6 * 3600, given=[4_140.0, 7_400.0, 11_000.0]
    )
    return _install(
        "typical: ChargePointMax + TxDefault (24 periods) + TxProfile",
        [(0, cp_max), (0, default), (CONNECTOR, tx)],
    )


def showing_through(setup: Setup) -> int:
    """How many of the profiles matter in the 24 h window: without each, the composite differs."""
    profiles = list(setup.profiles)
    c = THE_CONNECTOR
    full = connector_composite(profiles, c, NOW, NOW + DAY)
    return sum(
        connector_composite([q for q in profiles if q is not p], c, NOW, NOW + DAY) != full for p in profiles
    )


@dataclass
class Timing:
    label: str
    samples_ns: list[int]
    periods_out: int

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples_ns) / 1e6

    @property
    def p95_ms(self) -> float:
        return statistics.quantiles(self.samples_ns, n=20)[-1] / 1e6


def _time(label: str, fn: Callable[[], list[CompositePeriod]], runs: int) -> Timing:
    out = fn()
    for _ in range(max(10, runs // 20)):  # warm-up
        fn()
    samples = []
    for _ in range(runs):
        began = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - began)
    return Timing(label, samples, len(out))


def measure(setup: Setup, runs: int) -> list[Timing]:
    profiles = list(setup.profiles)
    c = THE_CONNECTOR
    return [
        _time("24 h in A", lambda: connector_composite(profiles, c, NOW, NOW + DAY, "A"), runs),
        _time("24 h in W", lambda: connector_composite(profiles, c, NOW, NOW + DAY, "W"), runs),
        _time(
            f"limit now: [now, now + {LOOKAHEAD_S // 60} min] in A",
            lambda: connector_composite(profiles, c, NOW, NOW + LOOKAHEAD_S, "A"),
            runs,
        ),
    ]


def main(runs: int, quick: bool) -> int:
    setups = [worst_case(), typical()]
    if quick:
        print("QUICK MODE (--quick): a check that this benchmark runs; the figures below mean little")
    print(
        f"ocpp-bridge composite schedule: {runs:,} runs per row; "
        f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{platform.platform(terse=True)}"
    )
    print(
        f"load average (1 min) at the start {LOAD_AT_START:.2f}: other work on the machine makes the "
        "times noisy; garbage collection stays on, as in the daemon"
    )
    print(f"target: under {TARGET_MS:g} ms per computation (PASS when the p95 is under it)")
    for setup in setups:
        print()
        print(
            f"{setup.name}: {len(setup.profiles)} profiles, {setup.periods} periods installed, "
            f"{showing_through(setup)} of them show through in the 24 h window"
        )
        print(f"  {'':<40} {'periods out':>11} {'median ms':>10} {'p95 ms':>10}   verdict")
        for t in measure(setup, runs):
            verdict = "PASS" if t.p95_ms < TARGET_MS else "MISS"
            print(f"  {t.label:<40} {t.periods_out:>11} {t.median_ms:>10.3f} {t.p95_ms:>10.3f}   {verdict}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "-n", "--runs", type=int, help=f"timed runs per row (default 1000; {QUICK_RUNS} with --quick)"
    )
    parser.add_argument("--quick", action="store_true", help="under a second: does it still run? (make test)")
    args = parser.parse_args()
    runs = args.runs if args.runs is not None else (QUICK_RUNS if args.quick else 1000)
    sys.exit(main(max(20, runs), args.quick))
