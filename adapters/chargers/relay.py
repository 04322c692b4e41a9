"""Relay retrofit: a plain ("dumb") wallbox whose supply is switched by a metering relay.

Two relays are supported, each in a module of its own: a Shelly Gen2+ switch over its HTTP RPC API
(`type: shelly`, shelly.py) and a Tasmota device over MQTT (`type: tasmota`, tasmota.py). This module
holds what they share: the options of the wallbox behind the relay, the draw inference and the driver
that turns a `RelayStatus` into a reading. Docs: docs/devices/relay.md; each device's API is linked,
with the fields its driver reads, at the head of its module (protocol facts: devices.md §6).

Theory
------
The relay sees two things only: whether it is closed, and the power flowing through it. It cannot
see the control pilot, so it knows neither whether a vehicle is plugged in nor whether the vehicle
asks for energy.

- The plug is never reported: `plugged` is always None and `can_sense_plug` False. The bridge then
  takes the connector as free while no transaction runs and as plugged while one does: an
  authorized start closes the relay at once, and an unplug (which cannot be seen) never ends a
  transaction. Power through a closed relay does prove a vehicle, but reporting that as `True`
  and going back to unknown when the relay opens would mix sensed and unsensed readings in one
  session; the proof is carried by `ev_requesting` instead.
- "EV requesting" is inferred from the power draw by `DrawInference` (pure, time passed in). Relay
  open: not drawing. Relay closed: power above `charging_above_w` means the vehicle draws (OCPP
  Charging), at once; power below `idle_below_w` for `idle_after_s` without a break means it
  stopped drawing (SuspendedEV: full, or its own timer). Between the two thresholds the last
  decision stands (hysteresis), so a ramping or pausing vehicle does not flap. A vehicle that stops
  drawing looks exactly like one that left: an unplug is never claimed.

The relay cannot set a current: it switches whatever the wallbox offers (`max_current_a`, the
wallbox's own setting) on or off. Capabilities say so (min = max = that current); `set_current`
accepts that very value and refuses any other with NotSupportedByDevice.
"""

from __future__ import annotations

import abc
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from adapters.base import (
    Charger,
    ChargerCapabilities,
    ChargerReading,
    Fault,
    NotSupportedByDevice,
)

log = logging.getLogger("adapters.relay")  # the name log lines have always shown

Clock = Callable[[], float]  # monotonic seconds


# -- the inference (pure) ------------------------------------------------------------------------
class DrawInference:
    """Whether the vehicle draws energy, from the relay state and its power, with hysteresis and an
    idle delay. Feed it every reading: `update(relay_on, power_w, now_s)`."""

    def __init__(self, charging_above_w: float, idle_below_w: float, idle_after_s: float) -> None:
        self.charging_above_w = charging_above_w
        self.idle_below_w = idle_below_w
        self.idle_after_s = idle_after_s
        self._drawing = False
        self._low_since: float | None = None

    def update(self, relay_on: bool, power_w: float | None, now_s: float) -> bool:
        if not relay_on:
            # Nothing flows, nothing can be seen; the next closing starts from scratch.
            self._drawing = False
            self._low_since = None
        elif power_w is not None:  # no measurement this time: the last decision stands
            self._step(power_w, now_s)
        return self._drawing

    def _step(self, power_w: float, now_s: float) -> None:
        if power_w > self.charging_above_w:
            self._drawing = True
            self._low_since = None
        elif power_w < self.idle_below_w:
            if self._low_since is None:
                self._low_since = now_s
            if self._drawing and now_s - self._low_since >= self.idle_after_s:
                self._drawing = False
        else:
            self._low_since = None  # in the band: not idle, not proof of charging either


# -- options ----------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class RelayOptions:
    """What both relay drivers share: the wallbox behind the relay and the draw thresholds."""

    type: str
    phases: int = 1  # phases wired to the vehicle, for reporting (the relay measures one line)
    max_current_a: float = 16.0  # the current the wallbox offers by its own setting; never set
    infer_from_power: bool = True  # False: the relay does not see the wallbox's power (contactor coil)
    charging_above_w: float = 50.0
    idle_below_w: float = 25.0
    idle_after_s: float = 60.0

    def _relay_problems(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        if self.phases not in (1, 3):
            problems.append(("phases", "must be 1 or 3"))
        if not 0 < self.max_current_a <= 80:
            problems.append(("max_current_a", "must be above 0 and at most 80 (the wallbox's own setting)"))
        if self.idle_below_w < 0:
            problems.append(("idle_below_w", "must be 0 or more"))
        if self.charging_above_w <= self.idle_below_w:
            problems.append(
                ("charging_above_w", "must be above idle_below_w (the gap between them is the hysteresis)")
            )
        if self.idle_after_s < 0:
            problems.append(("idle_after_s", "must be 0 or more"))
        return problems


def as_number(value: Any) -> float | None:
    """A JSON number as a float; None for anything else (absent, null, a text, a bool)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


# -- the shared driver ------------------------------------------------------------------------------
@dataclass(frozen=True)
class RelayStatus:
    """What a relay reports, in the bridge's units."""

    on: bool
    power_w: float | None = None
    energy_wh: float | None = None
    voltage_v: float | None = None
    current_a: float | None = None
    frequency_hz: float | None = None
    fault: Fault | None = None


class RelayCharger(Charger):
    """A wallbox behind a relay: energy on/off is the relay; plug and draw are inferred from power."""

    options: RelayOptions

    def __init__(self, options: RelayOptions, clock: Clock) -> None:
        super().__init__()
        self.options = options
        self._clock = clock
        self._inference = DrawInference(options.charging_above_w, options.idle_below_w, options.idle_after_s)

    @property
    def capabilities(self) -> ChargerCapabilities:
        o = self.options
        return ChargerCapabilities(
            can_sense_plug=False,
            can_unlock=False,
            fixed_cable=False,  # unknown to the relay; nothing it could unlock either way
            can_switch_phases=False,
            can_reset=False,  # rebooting the relay would not reset the wallbox (docs/devices/relay.md)
            has_meter=True,
            has_rfid=False,
            phases=o.phases,
            min_current_a=o.max_current_a,  # on or off: the wallbox's own current, nothing in between
            max_current_a=o.max_current_a,
            current_step_a=o.max_current_a,
        )

    @abc.abstractmethod
    async def _status(self) -> RelayStatus: ...

    @abc.abstractmethod
    async def _switch(self, on: bool) -> None: ...

    async def read(self) -> ChargerReading:
        s = await self._status()
        if self.options.infer_from_power:
            drawing = self._inference.update(s.on, s.power_w, self._clock())
        else:  # the relay's power says nothing about the vehicle: assume it draws while switched on
            drawing = s.on
        return ChargerReading(
            plugged=None,  # cannot be sensed (see the module's theory)
            ev_requesting=drawing,
            energy_allowed=s.on,
            energy_wh=s.energy_wh,
            power_w=s.power_w,
            # The relay measures the one line it switches; it is reported as L1.
            current_a=(s.current_a,) if s.current_a is not None else None,
            voltage_v=(s.voltage_v,) if s.voltage_v is not None else None,
            frequency_hz=s.frequency_hz,
            current_offered_a=self.options.max_current_a if s.on else 0.0,
            fault=s.fault,
        )

    async def set_enabled(self, enabled: bool) -> None:
        await self._switch(enabled)

    async def set_current(self, amps: float) -> None:
        if not math.isclose(amps, self.options.max_current_a):
            raise NotSupportedByDevice(
                f"a relay cannot set a current: it switches the wallbox's own "
                f"{self.options.max_current_a:g} A on or off"
            )
