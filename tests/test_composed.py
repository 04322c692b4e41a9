"""A charger with a meter of record (adapters/chargers/composed.py): the simulated charger and an SDM630
emulated over real Modbus TCP (tests/emulators/eastron.py)."""

from __future__ import annotations

import pytest

from adapters.base import DeviceUnreachable
from adapters.chargers.composed import MeteredCharger
from adapters.chargers.simulated import SimulatedCharger, SimulatedOptions
from adapters.meters.eastron import EastronOptions, Sdm630
from adapters.transports.pool import Transports
from tests.emulators.eastron import EmulatedMeter, eastron_tcp


def meter_of_record() -> EmulatedMeter:
    meter = EmulatedMeter("sdm630", 1)
    meter.set(energy_kwh=42.0, power_w=7000.0, voltage_v=(230.0, 231.0, 229.0), current_a=(10.0, 10.5, 9.5),
              frequency_hz=50.01)  # fmt: skip
    return meter


async def test_state_comes_from_the_charger_and_the_values_from_the_meter(transports: Transports) -> None:
    async with eastron_tcp(meter_of_record()) as emu:
        sim = SimulatedCharger(SimulatedOptions(initial_energy_wh=5.0))
        composed = MeteredCharger(sim, Sdm630(EastronOptions("sdm630", emu.url, 1), transports))
        await composed.start()
        sim.plug()
        reading = await composed.read()
        assert (reading.plugged, reading.ev_requesting) == (True, True)  # the charger's
        assert reading.energy_wh == pytest.approx(42000.0)  # the meter's register, not the charger's 5 Wh
        assert (reading.power_w, reading.frequency_hz) == (pytest.approx(7000.0), pytest.approx(50.01))
        assert composed.capabilities.has_meter and composed.simulator is sim
        assert composed.description.startswith("simulated charger with SDM630 #1")
        await composed.set_enabled(True)  # control goes to the charger
        assert sim.state().enabled


async def test_a_silent_meter_fails_the_read_naming_the_meter(transports: Transports) -> None:
    async with eastron_tcp(meter_of_record()) as emu:
        sim = SimulatedCharger(SimulatedOptions())
        meter = Sdm630(EastronOptions("sdm630", emu.url, 1, timeout_s=0.3), transports)
        composed = MeteredCharger(sim, meter)
        await composed.start()
        emu.meter(1).silent = True
        with pytest.raises(DeviceUnreachable, match=f"^{meter.description}: "):
            await composed.read()
        emu.meter(1).silent = False
        assert (await composed.read()).energy_wh == pytest.approx(42000.0)  # and it recovers
