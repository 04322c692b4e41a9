"""A device's reading checked before the bridge takes it (pure).

A driver turns what a device says into a `ChargerReading`; a device that sends nonsense (a register of
NaN, 1e308, or below zero; a power of infinity) must not reach the transaction: a meterStop that is
not a whole number of Wh cannot be stored or sent, and the StopTransaction would be lost with it.
Such a reading is refused as a whole, as a read that failed (the coordinator counts it towards the
device's fault), and the last good one stays: bridge/runtime/coordinator.py.

The bounds are far beyond any charger's (a register of 1 TWh, 10 MW, 10 kA, 10 kV): they catch what
no device can have measured, not what is merely unusual. Negative power and currents are allowed
(a meter that also counts export signs them).
"""

from __future__ import annotations

import math

from adapters.base import ChargerReading

MAX_REGISTER_WH = 1e12
MAX_POWER_W = 1e7
MAX_CURRENT_A = 1e4
MAX_VOLTAGE_V = 1e4
MAX_FREQUENCY_HZ = 1e3


def impossible(reading: ChargerReading) -> str | None:
    """What no device can have measured in `reading`, or None when it can be taken."""
    checks: list[tuple[str, float | None, float, float]] = [
        ("energy_wh", reading.energy_wh, 0.0, MAX_REGISTER_WH),
        ("power_w", reading.power_w, -MAX_POWER_W, MAX_POWER_W),
        ("frequency_hz", reading.frequency_hz, 0.0, MAX_FREQUENCY_HZ),
        ("soc_percent", reading.soc_percent, 0.0, 100.0),
        ("current_offered_a", reading.current_offered_a, 0.0, MAX_CURRENT_A),
    ]
    checks += [
        (f"current_a[{i}]", a, -MAX_CURRENT_A, MAX_CURRENT_A) for i, a in enumerate(reading.current_a or ())
    ]
    checks += [(f"voltage_v[{i}]", v, 0.0, MAX_VOLTAGE_V) for i, v in enumerate(reading.voltage_v or ())]
    for name, value, low, high in checks:
        if value is not None and not (math.isfinite(value) and low <= value <= high):
            return f"{name} {value!r} is outside {low:g} to {high:g}"
    return None
