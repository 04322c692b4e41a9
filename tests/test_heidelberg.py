"""The Heidelberg Energy Control driver against its emulator (tests/emulators/heidelberg.py) over Modbus
RTU on a socat pseudo-terminal pair: the probe and capabilities, a reading in the box's units, energy
on and off as the current command in 0.1 A, its error replies and fault states, the pacing of one bus
with two boxes, a box behind a gateway, the watchdog kept fed and falling back once the driver stops,
standby, an outage; its configuration checked with line numbers; and `ocpp-bridge probe` against it.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.base import DeviceRefused, DeviceUnreachable, FaultKind
from adapters.chargers.heidelberg import HeidelbergCharger, HeidelbergOptions
from adapters.transports.pool import Transports
from bridge.config import ConfigError, parse_config
from bridge.probe import probe
from tests.emulators.heidelberg import HeidelbergBox, HeidelbergBus, heidelberg_rtu, heidelberg_tcp

CURRENT, FAILSAFE, WATCHDOG, STANDBY, REMOTE_LOCK = 261, 262, 257, 258, 259


def options(bus: HeidelbergBus, device_id: int = 1, **fields: Any) -> HeidelbergOptions:
    return HeidelbergOptions(modbus=bus.url, device_id=device_id, timeout_s=0.2, **fields)


def operated(charger: HeidelbergCharger) -> HeidelbergCharger:
    charger.set_listener(lambda event: None)  # as the device's coordinator does: the bridge operates it
    return charger


def writes_of(box: HeidelbergBox) -> list[Any]:
    return [a for a in box.accesses if a.function_code in (6, 16)]


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[HeidelbergBus]:
    async with heidelberg_rtu(tmp_path, HeidelbergBox(plugged=True)) as emulated:
        yield emulated


async def test_the_probe_reads_the_box_in_its_units_and_writes_nothing(
    bus: HeidelbergBus, transports: Transports
) -> None:
    box = bus.box()
    charger = HeidelbergCharger(options(bus, max_current_a=16), transports)
    await charger.start()
    caps = charger.capabilities
    reading = await charger.read()
    assert (caps.can_sense_plug, caps.can_unlock, caps.fixed_cable, caps.can_switch_phases) == (
        True, False, True, False,
    )  # fmt: skip
    assert (caps.has_meter, caps.has_rfid, caps.can_reset) == (True, False, False)
    assert (caps.min_current_a, caps.max_current_a, caps.current_step_a, caps.phases) == (6, 16, 0.1, 3)
    # Power-on state: 261 = 160, so the box lets a plugged car charge (C2) at 16 A.
    assert (reading.plugged, reading.ev_requesting, reading.energy_allowed) == (True, True, True)
    assert reading.current_a == (16.0, 16.0, 16.0) and reading.voltage_v == (230.0, 231.0, 229.0)
    assert reading.power_w == box.reported_power_w[-1] == 11040.0  # VA: 16 A x (230 + 231 + 229) V
    assert reading.energy_wh == box.reported_energy_wh[-1]  # VAh since installation (17-18)
    assert reading.fault is None
    # The probe: layout (4), hardware range (100-101); a poll is one request, 5..18; no write.
    requests = [(a.function_code, a.address, len(a.values or ())) for a in box.accesses]
    assert requests == [(4, 4, 1), (4, 100, 2), (4, 5, 14)]
    assert bus.pacing_violations == []
    box.unplug()
    idle = await charger.read()
    assert (idle.plugged, idle.ev_requesting, idle.energy_allowed) == (False, False, True)  # A2
    assert idle.current_a == (0, 0, 0) and idle.power_w == 0


async def test_a_small_box_an_old_layout_and_one_phase(tmp_path: Path, transports: Transports) -> None:
    box = HeidelbergBox(layout=0x0103, hw_max_a=10, plugged=True, ev_phases=1)
    async with heidelberg_rtu(tmp_path, box) as small:
        charger = HeidelbergCharger(options(small, phases=1), transports)
        reading = await charger.read()
        await operated(charger).set_enabled(True)  # the default limit, 16 A, capped by the hardware
    assert charger.capabilities.max_current_a == 10  # register 100
    assert box.writes(CURRENT) == [0, 100] and box.current_da == 100
    assert reading.power_w is None  # no register 14 before layout 1.0.4
    assert reading.energy_wh == 12345.0  # no 17-18 before 1.0.7: since power-on (15-16)
    assert reading.current_a == (10.0,) and reading.voltage_v == (230.0,)
    polls = [(a.address, len(a.values or ())) for a in box.accesses[2:4]]
    assert polls == [(5, 9), (15, 2)]  # around the missing register 14


@pytest.mark.parametrize("rtu_framing", [True, False], ids=["rtu+tcp", "tcp"])
async def test_a_box_behind_a_gateway(rtu_framing: bool, transports: Transports) -> None:
    async with heidelberg_tcp(HeidelbergBox(device_id=7, plugged=True), rtu_framing=rtu_framing) as gateway:
        assert gateway.url.startswith("rtu+tcp://127.0.0.1:" if rtu_framing else "tcp://127.0.0.1:")
        charger = operated(HeidelbergCharger(options(gateway, 7), transports))
        await charger.set_enabled(True)
        await charger.set_current(9)
        reading = await charger.read()
        gateway.box(7).silent = True
        with pytest.raises(DeviceUnreachable):
            await charger.read()
    assert reading.current_a == (9.0, 9.0, 9.0) and gateway.box(7).writes(CURRENT) == [0, 160, 90]


async def test_energy_on_and_off_is_the_current_command_in_tenths_of_an_ampere(
    bus: HeidelbergBus, transports: Transports
) -> None:
    box = bus.box()
    charger = operated(HeidelbergCharger(options(bus), transports))
    await charger.start()  # the bridge takes over: 261 = 0 until a transaction allows energy
    taken_over = await charger.read()
    assert box.writes(CURRENT) == [0]
    assert taken_over.ev_requesting and not taken_over.energy_allowed  # C1
    await charger.set_enabled(True)
    await charger.set_current(7.39)
    on = await charger.read()
    await charger.set_enabled(False)
    await charger.set_current(8)  # energy off: kept, written when energy is allowed again
    off = await charger.read()
    await charger.set_enabled(True)
    again = await charger.read()
    assert box.writes(CURRENT) == [0, 160, 73, 0, 80]
    assert on.current_a == (7.3, 7.3, 7.3) and on.energy_allowed
    assert off.plugged and off.ev_requesting and not off.energy_allowed and off.current_a == (0, 0, 0)
    assert again.current_a == (8.0, 8.0, 8.0) and box.state() == 7  # C2
    with pytest.raises(DeviceRefused, match=r"current 17 A outside 6\.\.16 A"):
        await charger.set_current(17)
    assert box.writes(CURRENT)[-1] == 80  # nothing sent
    # Every write is function code 16, as evcc writes.
    assert {a.function_code for a in writes_of(box)} == {16}


async def test_the_boxs_error_replies_and_fault_states(
    bus: HeidelbergBus, tmp_path: Path, transports: Transports
) -> None:
    raw = transports.modbus(bus.url)
    with pytest.raises(DeviceRefused, match="exception 2, illegal data address"):
        await raw.read_input_registers(1, 19, 1)  # beyond the documented map
    await asyncio.sleep(0.1)  # the box's pacing
    with pytest.raises(DeviceRefused, match="exception 2"):
        await raw.write_registers(1, 257, [15000, 4, 1, 0])  # 260 is reserved
    await asyncio.sleep(0.1)
    with pytest.raises(DeviceRefused, match="exception 3, illegal data value"):
        await raw.write_register(1, CURRENT, 50)  # below 6 A
    # A failsafe current above what the hardware allows: the box refuses it when the driver sets up.
    (tmp_path / "small").mkdir()
    async with heidelberg_rtu(tmp_path / "small", HeidelbergBox(hw_max_a=10)) as small:
        charger = operated(HeidelbergCharger(options(small, failsafe_current_a=12), transports))
        with pytest.raises(DeviceRefused, match=r"exception 3, illegal data value.*maximum of 10 A"):
            await charger.start()
        assert small.box().writes(FAILSAFE) == []
    box = bus.box()
    charger = HeidelbergCharger(options(bus), transports)
    assert (await charger.read()).plugged
    box.fault_state = 11
    error = await charger.read()
    assert error.fault is not None and error.fault.kind is FaultKind.INTERNAL
    assert error.fault.vendor_code == "state 11" and not error.energy_allowed
    assert error.plugged  # as it was: a fault is no unplug
    box.fault_state = 9
    state_e = await charger.read()
    assert state_e.fault is not None and state_e.fault.kind is FaultKind.EV_COMMUNICATION
    box.fault_state = None
    assert (await charger.read()).fault is None


async def test_two_boxes_on_one_bus_each_at_its_address_paced_for_the_whole_bus(
    tmp_path: Path, transports: Transports
) -> None:
    first, second = HeidelbergBox(device_id=1, plugged=True), HeidelbergBox(device_id=2)
    async with heidelberg_rtu(tmp_path, first, second) as shared:
        one = operated(HeidelbergCharger(options(shared, 1), transports))
        two = operated(HeidelbergCharger(options(shared, 2), transports))
        await asyncio.gather(one.start(), two.start())
        await one.set_enabled(True)
        await asyncio.gather(one.set_current(10), two.set_current(12), one.read(), two.read())
        readings = await asyncio.gather(one.read(), two.read(), one.read(), two.read())
        assert shared.pacing_violations == []
        times = sorted(a.at for box in (first, second) for a in box.accesses)
        assert min(b - a for a, b in itertools.pairwise(times)) >= 0.095  # the bus's gap, across boxes
        # A driver configured without the gap on the same bus: the bus keeps the largest gap any of
        # its devices asked for, so one device's setting cannot make the others miss frames.
        hasty = HeidelbergCharger(options(shared, 2, request_gap_s=0), transports)
        for _ in range(3):
            await hasty.read()
        assert shared.pacing_violations == []
    assert first.writes(CURRENT) == [0, 160, 100] and second.writes(CURRENT) == [0]  # 12 A kept: off
    assert [r.plugged for r in readings] == [True, False, True, False]
    assert readings[0].current_a == (10.0, 10.0, 10.0) and readings[1].current_a == (0, 0, 0)


async def test_the_watchdog_is_fed_by_the_background_job_and_falls_back_once_the_driver_stops(
    bus: HeidelbergBus, transports: Transports
) -> None:
    box = bus.box()
    charger = operated(
        HeidelbergCharger(options(bus, watchdog_timeout_s=1, failsafe_current_a=0), transports)
    )
    (job,) = charger.background()
    await charger.start()
    await charger.set_enabled(True)
    assert box.holding == {WATCHDOG: 1000, STANDBY: 4, REMOTE_LOCK: 1, CURRENT: 160, FAILSAFE: 0}
    feeding = asyncio.create_task(job())  # as the coordinator runs it; no polls in between
    await asyncio.sleep(2.6)
    assert box.charging() and box.fallbacks == []  # (charging() brings the box's clock up to date)
    feeds = [a for a in box.accesses if a.function_code == 3]
    assert len(feeds) >= 9 and all(a.address == 257 and len(a.values or ()) == 6 for a in feeds)
    feeding.cancel()  # the bridge is gone
    await asyncio.gather(feeding, return_exceptions=True)
    await asyncio.sleep(1.3)
    assert box.current_da == 0 and len(box.fallbacks) == 1 and not box.charging()  # the failsafe: 0
    feeding = asyncio.create_task(job())  # back: the feed finds 261 changed and writes it again
    await asyncio.sleep(0.6)
    feeding.cancel()
    await asyncio.gather(feeding, return_exceptions=True)
    assert box.current_da == 160 and box.charging()
    assert box.writes(WATCHDOG) == [1000, 1000]


async def test_standby_is_disabled_and_a_sleeping_box_is_woken(
    tmp_path: Path, transports: Transports
) -> None:
    box = HeidelbergBox(standby_after_s=0.3)
    async with heidelberg_rtu(tmp_path, box) as sleepy:
        charger = HeidelbergCharger(options(sleepy), transports)  # a probe: it sets nothing
        await asyncio.sleep(0.4)
        box.plug()
        asleep = await charger.read()
        assert asleep.fault is not None and asleep.fault.vendor_code == "state 10 (F)"
        assert not asleep.ev_requesting and box.asleep
        operated(charger)
        awake = await charger.read()  # the driver writes its settings: 258 = 4, 259 = 1 wakes the box
        box.unplug()
        await asyncio.sleep(0.4)
        still = await charger.read()
    assert awake.fault is None and awake.plugged and box.writes(STANDBY) == [4]
    assert still.fault is None and not box.asleep  # standby disabled: it stays awake unplugged


async def test_an_outage_is_unreachable_and_a_rebooted_box_gets_its_settings_again(
    bus: HeidelbergBus, transports: Transports
) -> None:
    box = bus.box()
    charger = operated(HeidelbergCharger(options(bus, watchdog_timeout_s=5), transports))
    await charger.set_enabled(True)
    await charger.set_current(10)
    assert (await charger.read()).current_a == (10.0, 10.0, 10.0)
    box.silent = True
    with pytest.raises(DeviceUnreachable, match=r"no answer within 0\.2 s"):
        await charger.read()
    box.power_cycle()  # it comes back with its power-on settings: watchdog 15 s, standby on, 16 A
    box.silent = False
    back = await charger.read()
    assert back.current_a == (10.0, 10.0, 10.0) and back.energy_allowed
    assert box.holding == {WATCHDOG: 5000, STANDBY: 4, REMOTE_LOCK: 1, CURRENT: 100, FAILSAFE: 0}
    assert box.writes(WATCHDOG) == [5000, 5000]


# -- configuration ------------------------------------------------------------------------------------

CONFIG = """\
state_dir: ./state
charge_points:
  - id: HD-1
    csms_url: ws://127.0.0.1:9000/ocpp
    connectors:
      - id: 1
        charger:
          type: heidelberg
          modbus: {modbus}
          device_id: {device_id}
          failsafe_current_a: {failsafe}
          watchdog_timeout_s: {watchdog}
"""


def test_the_options_are_checked_with_line_numbers() -> None:
    url = "rtu:///dev/ttyUSB0?baudrate=19200&parity=E"
    good = parse_config(CONFIG.format(modbus=url, device_id=3, failsafe=0, watchdog=15), "hd.yaml")
    (connector,) = good.charge_points[0].connectors
    assert connector.charger.options == HeidelbergOptions(modbus=url, device_id=3)
    bad = CONFIG.format(modbus="/dev/ttyUSB0", device_id=0, failsafe=3, watchdog=90)
    with pytest.raises(ConfigError) as info:
        parse_config(bad, "hd.yaml")
    found = {p.path.rsplit(".", 1)[-1]: (p.line, p.message) for p in info.value.problems}
    lines = bad.splitlines()
    for key, words in [
        ("modbus", "did you mean rtu:///dev/ttyUSB0"),
        ("device_id", "1 to 247"),
        ("failsafe_current_a", "0 (stop charging) or 6 to 16 A"),
        ("watchdog_timeout_s", "1 to 65 seconds"),
    ]:
        line, message = found[key]
        assert lines[line - 1].strip().startswith(key + ":") and words in message, (key, line, message)


# -- ocpp-bridge probe --------------------------------------------------------------------------------


async def test_probe_describes_the_box_and_writes_nothing(bus: HeidelbergBus, tmp_path: Path) -> None:
    doc = {
        "state_dir": str(tmp_path / "state"),
        "charge_points": [{
            "id": "HD-1", "csms_url": "ws://127.0.0.1:9/ocpp",
            "connectors": [{"id": 1, "charger": {"type": "heidelberg", "modbus": bus.url, "device_id": 1}}],
        }],
    }  # fmt: skip
    lines: list[str] = []
    code = await probe(parse_config(yaml.safe_dump(doc)), lines.append, timeout_s=5)
    assert code == 0, lines
    assert lines == [
        f"HD-1 connector 1: Heidelberg #1 on {bus.url}&stopbits=1&bytesize=8",
        "  plugged: yes; vehicle asks for energy: yes; energy allowed: yes",
        f"  energy register: {bus.box().reported_energy_wh[-1]:.0f} Wh; power: 11040 W; current: 16/16/16 A; "
        "voltage: 230/231/229 V",
        "  can: plug sensing yes, unlock no, fixed cable yes, phase switching no, reset no, meter yes, "
        "card reader no; 3 phase(s), current 6..16 A in steps of 0.1 A",
        "  OK",
        "1 of 1 device setups answer",
    ]
    assert writes_of(bus.box()) == []
