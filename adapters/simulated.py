"""A simulated charger: a real driver behind the same contract as hardware.

It models an IEC 61851 charger with a vehicle: the cable is plugged or not,
the vehicle asks for energy unless it suspends, and energy flows only while
the bridge allows it, at the current offered (capped by what the vehicle
takes). The energy register integrates that power over time, so meter
values rise as they would on a real box. It is driven from outside (the
local HTTP API, tests, the demo) with plug / unplug / tap / ev_suspend /
ev_resume / fault / clear_fault.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from adapters.base import (
    Charger,
    ChargerCapabilities,
    ChargerReading,
    DeviceFault,
    DeviceRefused,
    DeviceUnreachable,
    StateChanged,
    TagPresented,
)
from adapters.transports import Transports


@dataclass(frozen=True)
class SimulatedOptions:
    """The `charger: {type: simulated, ...}` block."""

    type: str = "simulated"
    phases: int = 3
    voltage_v: float = 230.0
    min_current_a: float = 6.0
    max_current_a: float = 16.0
    current_step_a: float = 1.0
    ev_max_current_a: float = 16.0  # what the simulated vehicle draws at most
    initial_energy_wh: float = 0.0
    fixed_cable: bool = False
    has_lock: bool = True
    time_scale: float = 1.0  # energy accrues this many times faster than real time (demos)
    plugged: bool = False  # a vehicle is plugged in (and asks for energy) when the bridge starts

    def validate(self) -> list[tuple[str, str]]:
        """(field, problem) pairs; empty when the options make sense."""
        problems: list[tuple[str, str]] = []
        if self.phases not in (1, 3):
            problems.append(("phases", "must be 1 or 3"))
        if self.voltage_v <= 0:
            problems.append(("voltage_v", "must be above 0"))
        if not 0 < self.min_current_a <= self.max_current_a:
            problems.append(("min_current_a", "must be above 0 and at most max_current_a"))
        if self.current_step_a <= 0:
            problems.append(("current_step_a", "must be above 0"))
        if self.ev_max_current_a <= 0:
            problems.append(("ev_max_current_a", "must be above 0"))
        if self.initial_energy_wh < 0:
            problems.append(("initial_energy_wh", "must be 0 or more"))
        if self.time_scale <= 0:
            problems.append(("time_scale", "must be above 0"))
        return problems


class SimulatedCharger(Charger):
    Options = SimulatedOptions

    def __init__(
        self,
        options: SimulatedOptions,
        transports: Transports | None = None,  # unused: a simulated charger needs no connection
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.options = options
        self._clock = clock
        self._plugged = options.plugged
        self._ev_suspended = False
        self._enabled = False
        self._current_a = options.max_current_a
        self._fault: DeviceFault | None = None
        self._energy_wh = options.initial_energy_wh
        self._last = clock()
        self.unlock_count = 0
        self.reset_count = 0
        self._silent = False  # a device that stopped answering (cable cut, power off, crashed)

    @property
    def capabilities(self) -> ChargerCapabilities:
        o = self.options
        return ChargerCapabilities(
            can_sense_plug=True,
            can_unlock=o.has_lock and not o.fixed_cable,
            fixed_cable=o.fixed_cable,
            can_switch_phases=False,
            can_reset=True,
            has_meter=True,
            has_rfid=True,
            phases=o.phases,
            min_current_a=o.min_current_a,
            max_current_a=o.max_current_a,
            current_step_a=o.current_step_a,
        )

    @property
    def description(self) -> str:
        return "simulated charger"

    @property
    def simulator(self) -> SimulatedCharger:
        return self

    # -- physics ---------------------------------------------------------
    def _drawn_current(self) -> float:
        if not (self._plugged and self._enabled and not self._ev_suspended and self._fault is None):
            return 0.0
        return min(self._current_a, self.options.ev_max_current_a)

    def _power_w(self) -> float:
        return self._drawn_current() * self.options.voltage_v * self.options.phases

    def _advance(self) -> None:
        """Integrate the power drawn since the last change into the register."""
        now = self._clock()
        elapsed_h = max(0.0, now - self._last) * self.options.time_scale / 3600.0
        self._energy_wh += self._power_w() * elapsed_h
        self._last = now

    # -- the driver contract --------------------------------------------
    async def read(self) -> ChargerReading:
        self._advance()
        if self._silent:
            raise DeviceUnreachable("no answer (simulated)")
        amps = self._drawn_current()
        phases = self.options.phases
        return ChargerReading(
            plugged=self._plugged,
            ev_requesting=self._plugged and not self._ev_suspended,
            energy_allowed=self._enabled,
            energy_wh=round(self._energy_wh, 3),
            power_w=self._power_w(),
            current_a=tuple(amps for _ in range(phases)),
            voltage_v=tuple(self.options.voltage_v for _ in range(phases)),
            frequency_hz=50.0,
            current_offered_a=self._current_a if self._enabled else 0.0,
            fault=self._fault,
        )

    def _answering(self) -> None:
        if self._silent:  # a command reaches a silent device no more than a read does
            raise DeviceUnreachable("no answer (simulated)")

    async def set_enabled(self, enabled: bool) -> None:
        self._answering()
        self._advance()
        self._enabled = enabled

    async def set_current(self, amps: float) -> None:
        self._answering()
        o = self.options
        if not o.min_current_a <= amps <= o.max_current_a:
            raise DeviceRefused(f"current {amps} A outside {o.min_current_a}..{o.max_current_a} A")
        self._advance()
        self._current_a = amps

    async def unlock(self) -> None:
        self._answering()
        if not self.capabilities.can_unlock:
            await super().unlock()
        self.unlock_count += 1

    async def reset(self, hard: bool) -> None:
        self._answering()
        self._advance()
        self._enabled = False
        self.reset_count += 1

    # -- what a person (or a test) does at the simulated box ------------
    def _changed(self) -> None:
        self._emit(StateChanged())

    def plug(self) -> None:
        self._advance()
        self._plugged = True
        self._ev_suspended = False
        self._changed()

    def unplug(self) -> None:
        self._advance()
        self._plugged = False
        self._changed()

    def tap(self, id_tag: str) -> None:
        self._emit(TagPresented(id_tag))

    def ev_suspend(self) -> None:
        self._advance()
        self._ev_suspended = True
        self._changed()

    def ev_resume(self) -> None:
        self._advance()
        self._ev_suspended = False
        self._changed()

    def fault(self, error_code: str, info: str | None = None) -> None:
        self._advance()
        self._fault = DeviceFault(error_code=error_code, info=info)
        self._changed()

    def silence(self) -> None:
        """The device stops answering reads and commands; the energy register keeps counting."""
        self._silent = True

    def answer(self) -> None:
        """The device answers again."""
        self._silent = False
        self._changed()

    def clear_fault(self) -> None:
        self._advance()
        self._fault = None
        self._changed()
