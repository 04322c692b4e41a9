"""Chargers with something beside them: a separate meter of record (`MeteredCharger`), a card reader
(adapters/chargers/with_reader.py), both on `ChargerBeside`, which hands everything to the charger.

A metered charger: control (energy on/off, current, phases, unlock, reset, a firmware image) goes to
the charger; the electrical values come from the meter, which is what the session's energy is billed
on. State (plugged, EV requesting, fault) stays the charger's. A meter that does not answer fails the
read like a silent charger would, naming the meter, so that the connector is reported and recovers
the same way.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from adapters.base import (
    BackgroundJob,
    Charger,
    ChargerCapabilities,
    ChargerReading,
    DeviceError,
    Listener,
    Meter,
    Simulator,
)


class ChargerBeside(Charger):
    """A charger and something beside it: every call goes to `charger` unless a subclass adds to it
    (one place that forwards, so that a new method of the contract reaches every composition)."""

    def __init__(self, charger: Charger) -> None:
        super().__init__()
        self.charger = charger

    def set_listener(self, listener: Listener | None) -> None:
        super().set_listener(listener)
        self.charger.set_listener(listener)

    @property
    def capabilities(self) -> ChargerCapabilities:
        return self.charger.capabilities

    @property
    def description(self) -> str:
        return self.charger.description

    def probe_lines(self) -> list[str]:
        return self.charger.probe_lines()

    @property
    def simulator(self) -> Simulator | None:
        return self.charger.simulator  # a simulated charger stays one with a meter or a reader beside it

    async def start(self) -> None:
        await self.charger.start()

    def background(self) -> tuple[BackgroundJob, ...]:
        return self.charger.background()

    async def close(self) -> None:
        await self.charger.close()

    async def read(self) -> ChargerReading:
        return await self.charger.read()

    async def set_enabled(self, enabled: bool) -> None:
        await self.charger.set_enabled(enabled)

    async def end_session(self) -> None:
        await self.charger.end_session()

    async def set_current(self, amps: float) -> None:
        await self.charger.set_current(amps)

    async def set_phases(self, phases: int) -> None:
        await self.charger.set_phases(phases)

    async def unlock(self) -> None:
        await self.charger.unlock()

    async def reset(self, hard: bool) -> None:
        await self.charger.reset(hard)

    async def install_firmware(self, image: Path) -> None:
        await self.charger.install_firmware(image)


class MeteredCharger(ChargerBeside):
    def __init__(self, charger: Charger, meter: Meter) -> None:
        super().__init__(charger)
        self.meter = meter

    @property
    def capabilities(self) -> ChargerCapabilities:
        return replace(self.charger.capabilities, has_meter=True)

    @property
    def description(self) -> str:
        return f"{self.charger.description} with {self.meter.description}"

    async def start(self) -> None:
        await self.charger.start()
        await self.meter.start()

    def background(self) -> tuple[BackgroundJob, ...]:
        return self.charger.background() + self.meter.background()

    async def close(self) -> None:
        try:
            await self.charger.close()
        finally:
            await self.meter.close()

    async def read(self) -> ChargerReading:
        state = await self.charger.read()
        try:
            m = await self.meter.read()
        except DeviceError as exc:
            raise type(exc)(f"{self.meter.description}: {exc}") from exc
        return replace(
            state,
            energy_wh=m.energy_wh,
            power_w=m.power_w,
            current_a=m.current_a,
            voltage_v=m.voltage_v,
            frequency_hz=m.frequency_hz if m.frequency_hz is not None else state.frequency_hz,
        )
