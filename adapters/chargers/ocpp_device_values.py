"""The values a `type: ocpp` charger reports, taken or refused (pure: the link passes them in).

`sampled(values)`: one MeterValues' sampledValue list -> `Sampled` (register, power, currents,
voltages) and the deviations it holds. Only finite, plausible numbers in a unit known here are taken
(Wh/kWh, W/kW, A, V; no unit: the measurand's own); anything else is a deviation and ignored, never
guessed. Voltages are per phase (L1, L1-N, ...); line-to-line ones (L1-L2, ~400 V) are ignored.

`Counting`: the bridge's register of a connector never goes down. Chargers with a per-session meter
report meterStart 0 after a register of 1000, and some restart their MeterValues register at 0 each
session: a value below the known register is a deviation and does not replace it; a sample below it
means the charger's count restarted, and the register counts on from the known one (from the running
transaction's meterStart when there is one, else from that sample). A meterStop is taken as the
register at the start plus what the charger counted since its meterStart (docs/devices/ocpp.md,
"What the charger gets wrong").
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from adapters.chargers.ocpp_device_state import ChargerState

REGISTER = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"
CURRENT = "Current.Import"
VOLTAGE = "Voltage"

MAX_REGISTER_WH = 1e12  # below: 1 TWh, far beyond any charger's lifetime
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


@dataclass
class Counting:
    """How a connector's charger counts its register against the bridge's (see the module's text).
    Each method takes the bridge's known register and returns the register to keep and a deviation
    (or None)."""

    offset_wh: float = 0.0  # the bridge's register minus the charger's, once its count restarted
    start: tuple[float, float] | None = field(default=None)  # (meterStart, the bridge's register then)

    def sample(self, known: float | None, raw: float) -> tuple[float, str | None]:
        """A MeterValues register."""
        value = raw + self.offset_wh
        if known is None or value >= known:
            return value, None
        if self.start is not None and self.start[0] <= raw:
            self.offset_wh = self.start[1] - self.start[0]  # it counts from its meterStart
        else:
            self.offset_wh = known - raw  # on from here: nothing invented
        text = f"MeterValues register {raw:g} Wh below the register known, {known:g} Wh: counted on from it"
        return max(known, raw + self.offset_wh), text

    def started(self, known: float | None, meter_start: float) -> tuple[float | None, str | None]:
        """The meterStart of a transaction the bridge accepted."""
        if not _plausible(meter_start):
            return known, f"StartTransaction with an impossible meterStart: {meter_start!r}"
        value = meter_start + self.offset_wh
        if known is not None and value < known:
            self.start = (meter_start, known)
            return known, f"meterStart {meter_start:g} Wh below the register known, {known:g} Wh: kept"
        self.start = (meter_start, value)
        return value, None

    def stopped(self, known: float | None, meter_stop: float) -> tuple[float | None, str | None]:
        """The meterStop of the transaction that ends."""
        start, self.start = self.start, None
        if not _plausible(meter_stop):
            return known, f"StopTransaction with an impossible meterStop: {meter_stop!r}"
        if start is not None and meter_stop >= start[0]:
            value = start[1] + (meter_stop - start[0])  # what it counted in the transaction
        else:
            value = meter_stop + self.offset_wh
        if known is not None and value < known:
            return known, f"meterStop {meter_stop:g} Wh below the register known, {known:g} Wh: kept"
        return value, None


def _plausible(register_wh: float) -> bool:
    return math.isfinite(register_wh) and 0 <= register_wh < MAX_REGISTER_WH


# -- on a connector's state (the link's calls) ---------------------------------------------------
# A connector's Counting lives as long as its ChargerState, across the charger's connections; kept
# beside it (by the state's identity, dropped with it) since ChargerState has no field for it yet.
_COUNTINGS: dict[int, Counting] = {}


def counting_of(state: ChargerState) -> Counting:
    counting = _COUNTINGS.get(id(state))
    if counting is None:
        counting = _COUNTINGS[id(state)] = Counting()
        weakref.finalize(state, _COUNTINGS.pop, id(state), None)
    return counting


def take(state: ChargerState, values: Sequence[Mapping[str, Any]]) -> None:
    """One MeterValues' sampled values into `state`: what is taken replaces what was known."""
    got = sampled(values)
    for deviation in got.deviations:
        state.deviation(deviation)
    if got.energy_wh is not None:
        state.energy_wh, text = counting_of(state).sample(state.energy_wh, got.energy_wh)
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
    state.energy_wh, text = counting_of(state).started(state.energy_wh, meter_start)
    if text is not None:
        state.deviation(text)


def take_stop(state: ChargerState, meter_stop: float) -> None:
    """The meterStop of the connector's transaction."""
    state.energy_wh, text = counting_of(state).stopped(state.energy_wh, meter_stop)
    if text is not None:
        state.deviation(text)
