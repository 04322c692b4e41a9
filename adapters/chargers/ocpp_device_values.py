"""The values a `type: ocpp` charger reports, taken or refused (pure: the link passes them in).

`sampled(values)`: one MeterValues' sampledValue list -> `Sampled` (register, power, currents,
voltages) and the deviations it holds. Only finite, plausible numbers in a unit known here are taken
(Wh/kWh, W/kW, A, V; no unit: the measurand's own); anything else is a deviation and ignored, never
guessed. Voltages are per phase (L1, L1-N, ...); line-to-line ones (L1-L2, ~400 V) are ignored.

`take`, `take_start`, `take_stop`: into a connector's state, through its register's `Counting`
(ocpp_device_register.py), which never lets the bridge's register go down.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from adapters.chargers.ocpp_device_register import MAX_REGISTER_WH
from adapters.chargers.ocpp_device_state import ChargerState

REGISTER = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"
CURRENT = "Current.Import"
VOLTAGE = "Voltage"

MAX_POWER_W = 1e6  # 1 MW
MAX_CURRENT_A = 2000.0
MAX_VOLTAGE_V = 1500.0

# measurand -> {unit: factor to the bridge's unit}; None: no unit given (the measurand's own)
_UNITS: dict[str, dict[str | None, float]] = {
    REGISTER: {None: 1.0, "Wh": 1.0, "kWh": 1000.0},
    POWER: {None: 1.0, "W": 1.0, "kW": 1000.0},
    CURRENT: {None: 1.0, "A": 1.0},
    VOLTAGE: {None: 1.0, "V": 1.0},
}
# (low, high) of a plausible value; the register's high bound is excluded
_BOUNDS: dict[str, tuple[float, float]] = {
    REGISTER: (0.0, MAX_REGISTER_WH),
    POWER: (-MAX_POWER_W, MAX_POWER_W),
    CURRENT: (-MAX_CURRENT_A, MAX_CURRENT_A),
    VOLTAGE: (0.0, MAX_VOLTAGE_V),
}
# a current's or voltage's phase -> the line it is of; no phase: a single-phase charger's L1
_PHASES = {None: "L1", "L1": "L1", "L2": "L2", "L3": "L3", "L1-N": "L1", "L2-N": "L2", "L3-N": "L3"}
_LINES = ("L1", "L2", "L3")


@dataclass(frozen=True)
class Sampled:
    """What one MeterValues' sampled values said that the bridge takes (None: not said, or refused)."""

    energy_wh: float | None = None
    power_w: float | None = None
    current_a: tuple[float, ...] | None = None
    voltage_v: tuple[float, ...] | None = None
    deviations: tuple[str, ...] = ()


def sampled(values: Sequence[Mapping[str, Any]]) -> Sampled:
    """The sampled values (keys in snake case, as the link passes them) taken or refused."""
    deviations: list[str] = []
    energy: float | None = None
    power: float | None = None
    lines: dict[str, dict[str, float]] = {CURRENT: {}, VOLTAGE: {}}
    for v in values:
        measurand = v.get("measurand", REGISTER)
        units = _UNITS.get(measurand)
        if units is None:
            continue  # a measurand the bridge does not read (SoC, frequency, ...)
        phase = v.get("phase")
        if measurand in (REGISTER, POWER) and phase is not None:
            continue  # per phase: the bridge takes the total
        if measurand in lines and phase not in _PHASES:
            continue  # N, or line-to-line (L1-L2): not a phase's own
        unit = v.get("unit")
        if unit not in units:
            deviations.append(f"MeterValues with a unit it cannot be in: {measurand} in {unit!r}")
            continue
        number = _number(v.get("value"))
        low, high = _BOUNDS[measurand]
        if number is not None:
            number *= units[unit]
        if number is None or not (low <= number <= high) or (measurand == REGISTER and number >= high):
            deviations.append(f"MeterValues with an impossible {measurand}: {v.get('value')!r}")
            continue
        if measurand == REGISTER:
            energy = number
        elif measurand == POWER:
            power = number
        else:
            lines[measurand][_PHASES[phase]] = number
    currents, voltages = (tuple(lines[m][p] for p in _LINES if p in lines[m]) for m in (CURRENT, VOLTAGE))
    return Sampled(energy, power, currents or None, voltages or None, tuple(deviations))


def _number(value: Any) -> float | None:
    """A finite number from its text (OCPP sends them as strings); None for anything else."""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


# -- on a connector's state (the link's calls) ---------------------------------------------------
def take(state: ChargerState, values: Sequence[Mapping[str, Any]]) -> None:
    """One MeterValues' sampled values into `state`: what is taken replaces what was known."""
    got = sampled(values)
    for deviation in got.deviations:
        state.deviation(deviation)
    if got.energy_wh is not None:
        state.energy_wh, text = state.meter.sample(state.energy_wh, got.energy_wh)
        if text is not None:
            state.deviation(text)
    if got.power_w is not None:
        state.power_w = got.power_w
    if got.current_a is not None:
        state.current_a = got.current_a
    if got.voltage_v is not None:
        state.voltage_v = got.voltage_v


def take_start(state: ChargerState, meter_start: float) -> None:
    """The meterStart of a transaction the bridge accepted (a refused one's is never taken)."""
    state.energy_wh, text = state.meter.started(state.energy_wh, meter_start)
    if text is not None:
        state.deviation(text)


def take_stop(state: ChargerState, meter_stop: float) -> None:
    """The meterStop of the connector's transaction."""
    state.energy_wh, text = state.meter.stopped(state.energy_wh, meter_stop)
    if text is not None:
        state.deviation(text)
