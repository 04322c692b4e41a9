"""A connector's register as the bridge keeps it against what its `type: ocpp` charger counts (pure).

The bridge's register of a connector never goes down. Chargers with a per-session meter report
meterStart 0 after a register of 1000, and some restart their MeterValues register at 0 each session:
a value below the known register is a deviation and does not replace it; a sample below it means the
charger's count restarted, and the register counts on from the known one (from the running
transaction's meterStart when there is one, else from that sample). A meterStop is taken as the
register at the start plus what the charger counted since its meterStart (docs/devices/ocpp.md,
"What the charger gets wrong"). One `Counting` per connector, on its ChargerState
(ocpp_device_state.py), so it outlives the charger's connections; not across a restart of the bridge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

MAX_REGISTER_WH = 1e12  # below: 1 TWh, far beyond any charger's lifetime


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
