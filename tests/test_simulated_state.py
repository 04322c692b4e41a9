"""The simulated charger keeps its state (plug, vehicle, relay, current, fault, energy register) in
state_dir across a restart: its state file, and a daemon restarted during a transaction."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.base import DeviceEvent, DeviceFault, Simulator, StateChanged, TagPresented
from adapters.chargers import simulated_state
from adapters.chargers.simulated import SimulatedCharger, SimulatedOptions
from adapters.chargers.simulated_state import SimulatorState, read_state, write_state
from bridge.devices import device_state_file
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


STATE = SimulatorState(
    plugged=True,
    ev_suspended=True,
    enabled=True,
    current_a=10.0,
    energy_wh=12.345678,
    fault=DeviceFault("GroundFailure", "RCD"),
)


# -- the state file --------------------------------------------------------------------------------


def test_the_state_file_round_trips_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "devices" / "CP-1.1.json"  # its directory is made on the first write
    assert read_state(path) is None  # no file: a fresh simulator
    write_state(path, STATE)
    assert read_state(path) == STATE
    write_state(path, SimulatorState(False, False, False, 16.0, 20.0))
    assert read_state(path) == SimulatorState(False, False, False, 16.0, 20.0)
    assert [p.name for p in path.parent.iterdir()] == ["CP-1.1.json"]


@pytest.mark.parametrize(
    "content",
    [
        b"\x00garbage",
        b"",
        b'{"version": 1, "plugged": true',  # cut short
        b"[1, 2]",
        b'{"version": 99, "plugged": true, "ev_suspended": false, "enabled": false, "current_a": 16,'
        b' "energy_wh": 1, "fault": null}',
        b'{"version": 1, "plugged": "yes", "ev_suspended": false, "enabled": false, "current_a": 16,'
        b' "energy_wh": 1, "fault": null}',
        b'{"version": 1, "plugged": true, "ev_suspended": false, "enabled": false, "current_a": 16,'
        b' "energy_wh": -5, "fault": null}',
        b'{"version": 1, "plugged": true, "ev_suspended": false, "enabled": false, "current_a": 16,'
        b' "energy_wh": NaN, "fault": null}',
        b'{"version": 1, "plugged": true, "ev_suspended": false, "enabled": false, "current_a": 16,'
        b' "energy_wh": 1, "fault": {"info": "no code"}}',
    ],
)
def test_a_damaged_state_file_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "CP-1.1.json"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"CP-1\.1\.json"):
        read_state(path)


# -- the simulated charger with a state file -------------------------------------------------------


async def test_the_simulated_charger_comes_back_as_it_was_closed(tmp_path: Path) -> None:
    path = tmp_path / "CP-1.1.json"
    clock = FakeClock()
    options = SimulatedOptions(phases=1, voltage_v=230, initial_energy_wh=500)
    first = SimulatedCharger(options, clock=clock, state_file=path)
    await first.start()
    first.plug()
    await first.set_current(10)
    await first.set_enabled(True)
    clock.t += 3600  # one hour at 10 A x 230 V
    first.ev_suspend()
    first.fault("GroundFailure", "RCD")
    before = await first.read()
    await first.close()

    second = SimulatedCharger(options, clock=clock, state_file=path)
    await second.start()
    clock.t += 3600  # the bridge was away: the simulated box with it, nothing accrued
    after = await second.read()
    await second.close()
    assert after == before
    assert (after.plugged, after.ev_requesting, after.energy_allowed) == (True, False, True)
    assert after.energy_wh == 2800.0 and after.current_offered_a == 10
    assert after.fault == DeviceFault("GroundFailure", "RCD")


async def test_a_damaged_state_file_gives_a_fresh_simulator_and_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "CP-1.1.json"
    path.write_bytes(b"\x00garbage")
    sim = SimulatedCharger(SimulatedOptions(initial_energy_wh=777, plugged=True), state_file=path)
    with caplog.at_level(logging.WARNING):
        await sim.start()
    assert any("CP-1.1.json" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    reading = await sim.read()
    assert (reading.plugged, reading.energy_wh, reading.energy_allowed) == (True, 777.0, False)
    await sim.close()
    assert read_state(path) == SimulatorState(True, False, False, 16.0, 777.0)  # written good again


async def test_what_is_done_at_the_box_before_its_state_is_read_is_not_undone_by_it(tmp_path: Path) -> None:
    path = tmp_path / "CP-1.1.json"
    write_state(path, SimulatorState(False, False, False, 16.0, 50.0))
    sim = SimulatedCharger(SimulatedOptions(), state_file=path)
    events: list[DeviceEvent] = []
    sim.set_listener(events.append)
    sim.plug()  # through the local API as the daemon starts, before its poll loop started the device
    sim.tap("TAG")
    assert events == []
    await sim.start()
    reading = await sim.read()
    await sim.close()
    assert (reading.plugged, reading.energy_wh) == (True, 50.0)
    assert events == [StateChanged(), TagPresented("TAG")]  # in the order they were done


async def test_a_simulator_that_never_started_leaves_its_state_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "CP-1.1.json"
    write_state(path, STATE)
    sim = SimulatedCharger(SimulatedOptions(), state_file=path)  # e.g. a stop during start-up
    await sim.close()
    assert read_state(path) == STATE


async def test_the_state_is_also_written_while_running_so_a_crash_loses_little(tmp_path: Path) -> None:
    path = tmp_path / "CP-1.1.json"
    sim = SimulatedCharger(SimulatedOptions(), state_file=path, save_every_s=0.05)
    await sim.start()
    try:
        sim.plug()
        for _ in range(100):
            saved = read_state(path)
            if saved is not None and saved.plugged:
                break
            await asyncio.sleep(0.02)
        assert saved is not None and saved.plugged  # no close: as a kill -9 would find it
    finally:
        await sim.close()


async def test_one_round_writes_the_boxes_that_changed_and_those_whose_energy_flows(tmp_path: Path) -> None:
    sims = [
        SimulatedCharger(SimulatedOptions(time_scale=3600), state_file=tmp_path / f"CP-{n}.1.json",
                         save_every_s=0.05)
        for n in range(3)
    ]  # fmt: skip
    for sim in sims:
        await sim.start()
    try:

        async def written(n: int, check: Any) -> SimulatorState:
            for _ in range(200):
                saved = read_state(tmp_path / f"CP-{n}.1.json")
                if saved is not None and check(saved):
                    return saved
                await asyncio.sleep(0.01)
            raise AssertionError(f"CP-{n}: not written as expected")

        for n in range(3):
            await written(n, lambda s: not s.plugged)  # a new box's file, written once
        idle = (tmp_path / "CP-2.1.json").stat().st_mtime_ns
        sims[0].plug()
        sims[1].plug()
        await sims[1].set_enabled(True)  # energy flows on box 1 from now on, unannounced
        await written(0, lambda s: s.plugged)
        first = await written(1, lambda s: s.plugged and s.enabled)
        later = await written(1, lambda s: s.energy_wh > first.energy_wh)  # rounds go on while it flows
        assert later.energy_wh > first.energy_wh
        assert (tmp_path / "CP-2.1.json").stat().st_mtime_ns == idle  # unchanged: not written again
    finally:
        for sim in sims:
            await sim.close()
    final = read_state(tmp_path / "CP-1.1.json")  # the last state, at close
    assert final is not None and final.enabled and final.energy_wh >= later.energy_wh


async def test_boxes_closed_together_write_their_last_states_in_one_thread_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    jobs: list[int] = []
    write_states = simulated_state.write_states

    def counted(batch: list[tuple[Path, SimulatorState]]) -> list[OSError | None]:
        jobs.append(len(batch))
        return write_states(batch)

    monkeypatch.setattr(simulated_state, "write_states", counted)
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro" / ".CP-20.1.json.tmp").mkdir()  # its temporary file cannot be made: its write fails
    files = [tmp_path / f"CP-{n}.1.json" for n in range(20)] + [tmp_path / "ro" / "CP-20.1.json"]
    sims = [SimulatedCharger(SimulatedOptions(), state_file=path, save_every_s=60) for path in files]
    for sim in sims:
        await sim.start()
    for n, sim in enumerate(sims):
        await sim.set_current(6 + n % 10)
    await asyncio.gather(*(sim.close() for sim in sims))
    assert jobs == [21]  # one job for all (a stop of 5,000 boxes made 5,000, of two fsyncs each)
    for n, path in enumerate(files[:-1]):
        saved = read_state(path)
        assert saved is not None and saved.current_a == 6 + n % 10
    assert read_state(files[-1]) is None
    assert "cannot write" in caplog.text and "CP-20.1.json" in caplog.text  # reported, the others written


# -- a daemon restarted during a transaction -------------------------------------------------------


def simulator(daemon: Any) -> Simulator:
    sim = daemon.charge_points["CP-1"].connectors[1].charger.simulator
    assert sim is not None
    return sim  # type: ignore[no-any-return]


def stamp(payload: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(payload["meterValue"][0]["timestamp"].replace("Z", "+00:00"))


def register(meter_values: dict[str, Any]) -> float:
    """The energy register in a MeterValues (the sampled value without a measurand, or named so)."""
    return next(
        float(s["value"])
        for mv in meter_values["meterValue"]
        for s in mv["sampledValue"]
        if s.get("measurand", "Energy.Active.Import.Register") == "Energy.Active.Import.Register"
    )


async def test_a_graceful_restart_keeps_the_vehicle_plugged_in_and_the_register_so_the_session_goes_on(
    tmp_path: Path,
) -> None:
    """The default simulated configuration, restarted during a transaction: nothing in the
    configuration says the vehicle is plugged in; the simulated box remembers it, and its register."""
    async with StrictCentralSystem() as cs:
        config = make_config(
            cs.url, tmp_path, ocpp={"MeterValueSampleInterval": 1}, charger={"time_scale": 100}
        )
        async with running(config) as daemon:
            await cs.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)
            simulator(daemon).plug()
            simulator(daemon).tap("TAG")
            start = await cs.wait_for_call("CP-1", "StartTransaction")
            before = await cs.wait_for_call("CP-1", "MeterValues", lambda p: register(p) > 0, timeout=5)
        saved = read_state(device_state_file(config.state_dir, "CP-1", 1))
        assert saved is not None and saved.plugged and saved.energy_wh >= register(before)

        async with running(config) as daemon:
            await cs.wait_for_call("CP-1", "BootNotification", count=2)
            await cs.wait_for_call(
                "CP-1", "StatusNotification", lambda p: p["status"] == "Charging", count=2, timeout=5
            )
            after = await cs.wait_for_call(
                "CP-1", "MeterValues", lambda p: stamp(p) > stamp(before), timeout=5
            )
            assert "StopTransaction" not in cs.actions("CP-1")  # not ended as unplugged at meterStop 0
            simulator(daemon).tap("TAG")
            stop = await cs.wait_for_call("CP-1", "StopTransaction", timeout=5)
        cs.assert_clean()
    assert after["transactionId"] == stop["transactionId"] == cs.last_transaction_id
    assert start["meterStart"] <= register(before) <= register(after)  # the register never went back
    assert stop["reason"] == "Local" and stop["meterStop"] >= int(register(after))
    assert cs.actions("CP-1").count("StartTransaction") == 1


async def test_the_boxes_starting_together_read_their_files_in_one_thread_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """5,000 boxes starting at once made 5,000 thread handoffs; now one job reads every file asked for
    in the same turn, and a damaged file fails only its own box."""
    good = tmp_path / "good.json"
    write_state(
        good, SimulatorState(True, ev_suspended=False, enabled=False, current_a=16.0, energy_wh=1234.0)
    )
    damaged = tmp_path / "damaged.json"
    damaged.write_bytes(b"{not json")
    jobs: list[list[Path]] = []
    real = simulated_state.read_states

    def counted(paths: list[Path]) -> list[Any]:
        jobs.append(list(paths))
        return real(paths)

    monkeypatch.setattr(simulated_state, "read_states", counted)
    reader = simulated_state.reader_for()
    results = await asyncio.gather(
        reader.read(good), reader.read(tmp_path / "none.json"), reader.read(damaged), return_exceptions=True
    )
    assert jobs == [[good, tmp_path / "none.json", damaged]]  # one job for the three
    assert isinstance(results[0], SimulatorState) and results[0].energy_wh == 1234.0
    assert results[1] is None  # no file yet: a new box
    assert isinstance(results[2], ValueError) and "damaged.json" in str(results[2])
    assert await reader.read(good) == results[0]  # a later read: a job of its own
    assert len(jobs) == 2
