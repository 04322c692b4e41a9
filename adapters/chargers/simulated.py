"""A simulated charger: a real driver behind the same contract as hardware.

It models an IEC 61851 charger with a vehicle: the cable is plugged or not,
the vehicle asks for energy unless it suspends, and energy flows only while
the bridge allows it, at the current offered (capped by what the vehicle
takes). The energy register integrates that power over time, so meter
values rise as they would on a real box. It is driven from outside (the
local HTTP API, tests, the demo) with plug / unplug / tap / ev_suspend /
ev_resume / fault / clear_fault.

State across restarts. Given a state file (the daemon passes one under
`state_dir`), the simulated box is the same device after a restart: what
makes it one (plug, vehicle suspended, relay, current, fault, register) is
read at `start()` and written at `close()`, and every `save_every_s` while
it changes, so that a crash loses no more than that. Writes are atomic
(a temporary file, fsync, rename) and run in a thread, one round for all
the boxes of the daemon at a time (`StateWriter`). The box lives in the
bridge's process: while the bridge is down no energy accrues. A missing or
damaged file gives a fresh simulator (the options' `plugged` and
`initial_energy_wh`), with a warning for a damaged one. A device that was
`silence`d answers again after a restart, as a box that was power-cycled.
What is done at the box before its file has been read (a plug through the
local API as the daemon starts) is done once it has been, in order, so that
the file does not undo it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Concatenate, ParamSpec

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
from adapters.chargers.simulated_state import (
    SimulatorState,
    StateWriter,
    reader_for,
    write_state,
    writer_for,
)
from adapters.transports.pool import Transports

log = logging.getLogger("adapters.simulated")  # the name log lines have always shown

SAVE_EVERY_S = 5.0  # the state is written this often while it changes (and at close)


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


_P = ParamSpec("_P")


def _at_the_box(
    action: Callable[Concatenate[SimulatedCharger, _P], None],
) -> Callable[Concatenate[SimulatedCharger, _P], None]:
    """A hand action: done now, or, before the state file has been read, once it has been."""

    def act(self: SimulatedCharger, /, *args: _P.args, **kwargs: _P.kwargs) -> None:
        if self._deferred is not None:
            self._deferred.append(functools.partial(action, self, *args, **kwargs))
        else:
            action(self, *args, **kwargs)

    functools.update_wrapper(act, action)  # its name and docstring
    return act


class SimulatedCharger(Charger):
    Options = SimulatedOptions
    keeps_state: ClassVar[bool] = True
    # Every change but the energy flowing is announced (a StateChanged): the bridge reads the box only
    # then and at its meter-value instants, not every second. Going silent is announced too, as a
    # broker announces a device's last will: the read that follows fails, and those after it.
    reports_changes: ClassVar[bool] = True

    def __init__(
        self,
        options: SimulatedOptions,
        transports: Transports | None = None,  # unused: a simulated charger needs no connection
        clock: Callable[[], float] = time.monotonic,
        state_file: Path | None = None,  # None: nothing is kept across restarts
        save_every_s: float = SAVE_EVERY_S,
    ) -> None:
        super().__init__()
        self.options = options
        self.state_file = state_file
        self._save_every_s = save_every_s
        self._restored = False  # the state file was read: from now on it is ours to write
        self._saved: SimulatorState | None = None  # what the file holds
        self._writer: StateWriter | None = None  # from start() to close()
        self._writing: asyncio.Future[OSError | None] | None = None  # the last write, while it goes on
        # Hand actions waiting for the state file to be read (None: done at once).
        self._deferred: list[Callable[[], None]] | None = [] if state_file is not None else None
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

    # -- state across restarts ---------------------------------------------
    def state(self) -> SimulatorState:
        """What the box is now (see the module's docstring)."""
        self._advance()
        return SimulatorState(
            self._plugged, self._ev_suspended, self._enabled, self._current_a, self._energy_wh, self._fault
        )

    def _restore(self, state: SimulatorState) -> None:
        o = self.options
        self._plugged, self._ev_suspended, self._enabled = state.plugged, state.ev_suspended, state.enabled
        # Within the options, which may have changed since.
        self._current_a = min(max(state.current_a, o.min_current_a), o.max_current_a)
        self._energy_wh = state.energy_wh
        self._fault = state.fault
        self._last = self._clock()  # nothing accrued while the bridge was away

    async def start(self) -> None:
        if self.state_file is None or self._restored:
            return
        try:
            state = await reader_for().read(self.state_file)  # with the other boxes starting now
        except ValueError as exc:
            log.warning("simulated charger: state file ignored, starting fresh: %s", exc)
            state = None
        if state is not None:
            self._restore(state)
            self._saved = state
        self._restored = True
        deferred, self._deferred = self._deferred or [], None
        for action in deferred:
            action()
        self._writer = writer_for(self._save_every_s)
        self._writer.watch(self)  # the file of a new box, or the hand actions that waited

    async def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.forget(self)
            if writer.writing is not None:  # a round may be writing this file: it goes first
                await asyncio.gather(writer.writing, return_exceptions=True)
        if self._restored:
            await self._save(writer)

    def _touched(self) -> None:
        """Something kept in the state file may have changed: written in the writer's next round."""
        if self._writer is not None:
            self._writer.watch(self)

    def unsaved_state(self) -> SimulatorState | None:
        """The state, when the file does not hold it (None: nothing to write, or closed)."""
        if self._writer is None:
            return None
        state = self.state()
        return None if state == self._saved else state

    def state_written(self, state: SimulatorState, error: OSError | None) -> None:
        if error is not None:  # a full or read-only disk must not stop the simulated box
            log.warning("simulated charger: cannot write %s: %s", self.state_file, error)
        else:
            self._saved = state

    def keeps_changing(self) -> bool:
        return self._writer is not None and self._power_w() > 0

    async def _save(self, writer: StateWriter | None) -> None:
        """The last write, at close: with the other boxes closing now (`writer`), else on its own."""
        if self._writing is not None:  # a write cancelled with its task still runs in its thread
            await asyncio.gather(self._writing, return_exceptions=True)
        state = self.state()
        if state == self._saved or self.state_file is None:
            return
        if writer is not None:
            writing = asyncio.ensure_future(writer.write_last(self.state_file, state))
        else:
            writing = asyncio.ensure_future(asyncio.to_thread(write_state, self.state_file, state))
        self._writing = writing
        error: OSError | None
        try:
            error = await asyncio.shield(writing)
        except OSError as exc:  # a full or read-only disk must not stop the simulated box
            error = exc
        finally:
            if writing.done():
                self._writing = None
        self.state_written(state, error)

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
        self._touched()

    async def set_current(self, amps: float) -> None:
        self._answering()
        o = self.options
        if not o.min_current_a <= amps <= o.max_current_a:
            raise DeviceRefused(f"current {amps} A outside {o.min_current_a}..{o.max_current_a} A")
        self._advance()
        changed, self._current_a = amps != self._current_a, amps
        if changed:
            self._changed()  # Current.Offered

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
        self._changed()

    # -- what a person (or a test) does at the simulated box ------------
    def _changed(self) -> None:
        self._touched()
        self._emit(StateChanged())

    @_at_the_box
    def plug(self) -> None:
        self._advance()
        self._plugged = True
        self._ev_suspended = False
        self._changed()

    @_at_the_box
    def unplug(self, *, announce: bool = True) -> None:
        """`announce=False`: a box that does not tell, which only the next read finds out."""
        self._advance()
        self._plugged = False
        if announce:
            self._changed()
        else:
            self._touched()

    @_at_the_box
    def tap(self, id_tag: str) -> None:
        self._emit(TagPresented(id_tag))

    @_at_the_box
    def ev_suspend(self) -> None:
        self._advance()
        self._ev_suspended = True
        self._changed()

    @_at_the_box
    def ev_resume(self) -> None:
        self._advance()
        self._ev_suspended = False
        self._changed()

    @_at_the_box
    def fault(self, error_code: str, info: str | None = None) -> None:
        self._advance()
        self._fault = DeviceFault(error_code=error_code, info=info)
        self._changed()

    @_at_the_box
    def silence(self) -> None:
        """The device stops answering reads and commands; the energy register keeps counting."""
        self._silent = True
        self._changed()  # its last will: see reports_changes

    @_at_the_box
    def answer(self) -> None:
        """The device answers again."""
        self._silent = False
        self._changed()

    @_at_the_box
    def clear_fault(self) -> None:
        self._advance()
        self._fault = None
        self._changed()
