"""A charger with a separate meter of record.

Control (energy on/off, current, phases, unlock, reset, a firmware image) goes to the charger;
the electrical values come from the meter, which is what the session's
energy is billed on. State (plugged, EV requesting, fault) stays the
charger's. A meter that does not answer fails the read like a silent
charger would, naming the meter, so that the connector is reported and
recovers the same way.
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


class MeteredCharger(Charger):
    def __init__(self, charger: Charger, meter: Meter) -> None:
        super().__init__()
        self.charger = charger
        self.meter = meter

    def set_listener(self, listener: Listener | None) -> None:
        self.charger.set_listener(listener)

    @property
    def capabilities(self) -> ChargerCapabilities:
        return replace(self.charger.capabilities, has_meter=True)

    @property
    def description(self) -> str:
        return f"{self.charger.description} with {self.meter.description}"

    @property
    def simulator(self) -> Simulator | None:
        return self.charger.simulator  # a simulated charger stays one with a meter of record

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

    async def set_enabled(self, enabled: bool) -> None:
        await self.charger.set_enabled(enabled)

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
