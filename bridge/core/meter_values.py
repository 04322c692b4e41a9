"""Turning a device reading into OCPP SampledValues (pure).

A configured measurand yields one SampledValue per phase the device reports
(`Current.Import` on a 3-phase charger → L1, L2, L3), or one without a phase
for totals. A measurand the device cannot measure yields nothing; the
configuration layer rejects such measurands up front via `can_measure`.
Registers are sent as the device reports them, never rebased to zero, in
whole Wh by `whole_wh`: the rounding of meterStart and meterStop too, so a
central system never sees the register step back at the stop (24.537 Wh in
a MeterValues, then meterStop 24).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from adapters.base import ChargerReading

T = TypeVar("T")

_PHASES = ("L1", "L2", "L3")


def whole_wh(energy_wh: float) -> int:
    """An energy register in whole Wh, as meterStart, meterStop and every register value carry it:
    rounded down, so no Wh is reported before it has been delivered in full."""
    return math.floor(energy_wh)


def _fmt(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".") if value % 1 else str(int(value))


def _per_phase(
    values: tuple[float, ...] | None, measurand: str, unit: str, suffix: str
) -> list[dict[str, Any]]:
    if not values:
        return []
    return [
        {"value": _fmt(v), "measurand": measurand, "unit": unit, "phase": phase + suffix}
        for v, phase in zip(values, _PHASES, strict=False)
    ]


def sampled_values(reading: ChargerReading, measurands: Iterable[str], context: str) -> list[dict[str, Any]]:
    """The SampledValue objects (wire form, camelCase) for `measurands`."""
    out: list[dict[str, Any]] = []
    for item in measurands:
        base, _, phase = _split_phase(item)
        values = _values_for(reading, base)
        if phase:
            values = [v for v in values if v.get("phase", "").split("-")[0] == phase]
        for v in values:
            v.setdefault("location", "Outlet")
            v["context"] = context
            out.append(v)
    return out


def _split_phase(item: str) -> tuple[str, str, str]:
    parts = item.split(".")
    if parts[-1] in ("L1", "L2", "L3", "N") or "-" in parts[-1]:
        return ".".join(parts[:-1]), ".", parts[-1].split("-")[0]
    return item, "", ""


def _values_for(r: ChargerReading, measurand: str) -> list[dict[str, Any]]:
    if measurand == "Energy.Active.Import.Register" and r.energy_wh is not None:
        return [{"value": str(whole_wh(r.energy_wh)), "measurand": measurand, "unit": "Wh"}]
    if measurand == "Power.Active.Import" and r.power_w is not None:
        return [{"value": _fmt(r.power_w), "measurand": measurand, "unit": "W"}]
    if measurand == "Current.Import":
        return _per_phase(r.current_a, measurand, "A", "")
    if measurand == "Voltage":
        return _per_phase(r.voltage_v, measurand, "V", "-N")
    if measurand == "Current.Offered" and r.current_offered_a is not None:
        return [{"value": _fmt(r.current_offered_a), "measurand": measurand, "unit": "A"}]
    if measurand == "Frequency" and r.frequency_hz is not None:
        # 1.6 has no unit for Hz (ERRATA 3.86): the unit is left out.
        return [{"value": _fmt(r.frequency_hz), "measurand": measurand}]
    if measurand == "SoC" and r.soc_percent is not None:
        return [{"value": _fmt(r.soc_percent), "measurand": measurand, "unit": "Percent", "location": "EV"}]
    return []


def can_measure(reading: ChargerReading, item: str) -> bool:
    """Whether this device's readings carry `item` (a measurand, maybe with a phase)."""
    base, _, _ = _split_phase(item)
    return bool(_values_for(reading, base))


def next_aligned(now_s: float, interval_s: int) -> float:
    """The next clock-aligned instant after `now_s` (a Unix time): intervals are counted from
    midnight UTC (900 s → :00, :15, :30, :45), as ClockAlignedDataInterval asks."""
    midnight = now_s - now_s % 86400
    elapsed = now_s - midnight
    # An interval that does not divide a day starts over at the next midnight.
    return min(midnight + (int(elapsed // interval_s) + 1) * interval_s, midnight + 86400)


def thin_evenly(values: Sequence[T], limit: int) -> list[T]:
    """At most `limit` of `values`: the first and the last always (Transaction.Begin and
    Transaction.End, ERRATA 3.14), the ones between evenly spaced over the transaction."""
    n = len(values)
    if n <= limit:
        return list(values)
    if limit < 2:
        return list(values[n - limit :])  # no room for both: the End value
    inner = limit - 2
    picks = [1 + (i * (n - 2)) // inner for i in range(inner)]
    return [values[0], *(values[i] for i in picks), values[-1]]


_AVERAGED = ("power_w", "current_a", "voltage_v", "frequency_hz", "current_offered_a")


class IntervalAverage:
    """Clock-aligned values are "averaged over the interval" (§3.16, ERRATA 3.15): every reading is
    fed in as it is taken, and each value counts for the time until the next reading. The energy
    register and SoC are not averaged: the interval's last reading has them."""

    def __init__(self) -> None:
        self._last: ChargerReading | None = None
        self._last_t = 0.0
        self._span = 0.0
        self._sums: dict[str, list[float]] = {}

    def add(self, reading: ChargerReading, t: float) -> None:
        self._integrate(t)
        self._last, self._last_t = reading, t

    def _integrate(self, t: float) -> None:
        last = self._last
        dt = t - self._last_t
        if last is None or dt <= 0:
            return
        for name in _AVERAGED:
            value = getattr(last, name)
            if value is None:
                continue
            values = value if isinstance(value, tuple) else (value,)
            sums = self._sums.setdefault(name, [0.0] * len(values))
            if len(sums) != len(values):  # the phases changed: start this value over
                sums[:] = [0.0] * len(values)
            for i, v in enumerate(values):
                sums[i] += v * dt
        self._span += dt
        self._last_t = t

    def take(self, t: float) -> ChargerReading | None:
        """The interval's reading up to `t` (the last one with averaged values), and a new interval."""
        self._integrate(t)
        last = self._last
        if last is None:
            return None
        averaged: dict[str, Any] = {}
        if self._span > 0:
            for name, sums in self._sums.items():
                means = tuple(s / self._span for s in sums)
                averaged[name] = means if isinstance(getattr(last, name), tuple) else means[0]
        self._span = 0.0
        self._sums = {}
        self._last_t = t
        return replace(last, **averaged)


def stop_value(
    reading: ChargerReading, at: str, context: str, sampled: list[str], aligned: list[str]
) -> dict[str, Any] | None:
    """A MeterValue kept for StopTransaction.transactionData, or None when none is configured.

    Sample.Periodic values use StopTxnSampledData (`sampled`) and Sample.Clock ones StopTxnAlignedData
    (`aligned`); the Transaction.Begin and End values use StopTxnSampledData, or StopTxnAlignedData when
    only that is set. Both empty: no transactionData at all (§3.16.5).
    """
    if context == "Sample.Clock":
        measurands = aligned
    elif context == "Sample.Periodic":
        measurands = sampled
    else:
        measurands = sampled or aligned
    values = sampled_values(reading, measurands, context) if measurands else []
    return {"timestamp": at, "sampledValue": values} if values else None
