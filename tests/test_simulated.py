"""The simulated charger: physics with an injected clock, and its driver contract."""

import pytest

from adapters.base import DeviceRefused, NotSupportedByDevice, StateChanged, TagPresented
from adapters.chargers.simulated import SimulatedCharger, SimulatedOptions


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


async def test_energy_rises_with_the_applied_current_only_while_energy_flows() -> None:
    clock = FakeClock()
    sim = SimulatedCharger(SimulatedOptions(phases=3, voltage_v=230, initial_energy_wh=500), clock=clock)
    sim.plug()
    clock.t += 3600
    assert (await sim.read()).energy_wh == 500  # plugged but not enabled: nothing flows
    await sim.set_enabled(True)
    await sim.set_current(10)
    clock.t += 1800  # half an hour at 10 A x 3 x 230 V = 3450 Wh
    r = await sim.read()
    assert r.energy_wh == pytest.approx(500 + 3450)
    assert r.power_w == pytest.approx(6900)
    assert r.current_a == (10, 10, 10)
    assert r.current_offered_a == 10


async def test_the_vehicle_draws_at_most_its_own_maximum_and_nothing_when_suspended() -> None:
    clock = FakeClock()
    sim = SimulatedCharger(SimulatedOptions(phases=1, max_current_a=32, ev_max_current_a=16), clock=clock)
    sim.plug()
    await sim.set_enabled(True)
    await sim.set_current(32)
    assert (await sim.read()).power_w == 16 * 230
    sim.ev_suspend()
    r = await sim.read()
    assert r.power_w == 0 and not r.ev_requesting and r.plugged


async def test_time_scale_speeds_up_energy_for_demos() -> None:
    clock = FakeClock()
    sim = SimulatedCharger(SimulatedOptions(phases=1, time_scale=60), clock=clock)
    sim.plug()
    await sim.set_enabled(True)
    await sim.set_current(10)
    clock.t += 60  # one real minute = one simulated hour
    assert (await sim.read()).energy_wh == pytest.approx(2300)


async def test_faults_stop_the_flow_and_are_reported() -> None:
    sim = SimulatedCharger(SimulatedOptions())
    sim.plug()
    await sim.set_enabled(True)
    sim.fault("GroundFailure", "RCD tripped")
    r = await sim.read()
    assert r.fault is not None and r.fault.error_code == "GroundFailure" and r.power_w == 0
    sim.clear_fault()
    assert (await sim.read()).fault is None


async def test_events_reach_the_listener() -> None:
    sim = SimulatedCharger(SimulatedOptions())
    seen: list[object] = []
    sim.set_listener(seen.append)
    sim.plug()
    sim.tap("ABC")
    assert seen == [StateChanged(), TagPresented("ABC")]


async def test_current_outside_the_range_is_refused_and_fixed_cable_cannot_unlock() -> None:
    sim = SimulatedCharger(SimulatedOptions(min_current_a=6, max_current_a=16, fixed_cable=True))
    with pytest.raises(DeviceRefused):
        await sim.set_current(5)
    assert not sim.capabilities.can_unlock
    with pytest.raises(NotSupportedByDevice):
        await sim.unlock()


def test_options_validation_names_each_bad_field() -> None:
    problems = dict(SimulatedOptions(phases=2, min_current_a=20, max_current_a=16, time_scale=0).validate())
    assert set(problems) == {"phases", "min_current_a", "time_scale"}
