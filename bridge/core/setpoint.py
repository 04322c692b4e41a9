"""From a limit in amperes to what a device is told (pure).

The composite gives a limit per phase in A (or none). A device takes a
current between its minimum and maximum in steps, and maybe a phase count:

- above the maximum: the maximum;
- rounded *down* to the device's step, so the limit is never exceeded;
- below the minimum (6 A for IEC 61851): charging pauses -- energy off with
  the transaction going on (SuspendedEVSE) -- and resumes when the limit
  rises again. A relay that cannot set a current has minimum = maximum: any
  limit below its fixed current pauses it, the only way to honour it;
- numberPhases reaches the device only where it can switch phases, and only
  1 or 3 within what is wired (ERRATA 3.69: more phases than usable → the
  limit is used as given).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from adapters.base import ChargerCapabilities


@dataclass(frozen=True)
class Setpoint:
    current_a: float  # what the device is set to (its maximum when no limit applies)
    paused: bool  # the limit is below the device's minimum: no energy
    phases: int | None = None  # switch to this many phases; None = leave as it is
    limit_a: float | None = None  # the limit this came from; None = no limit


def setpoint(limit_a: float | None, phases: int | None, caps: ChargerCapabilities) -> Setpoint:
    wanted_phases = None
    if caps.can_switch_phases and phases in (1, 3) and phases <= caps.phases:
        wanted_phases = phases
    if limit_a is None:
        return Setpoint(caps.max_current_a, False, wanted_phases)
    amps = min(limit_a, caps.max_current_a)
    step = caps.current_step_a
    if step > 0:
        amps = math.floor(amps / step + 1e-9) * step
    if amps < caps.min_current_a - 1e-9:
        return Setpoint(caps.min_current_a, True, wanted_phases, limit_a)
    return Setpoint(round(amps, 3), False, wanted_phases, limit_a)
