"""The KEBA P30/P40 Modbus TCP driver against its emulator (tests/emulators/keba_modbus.py) over a real
socket: the probe and capabilities, readings in the device's units, commands in its units, its error
replies, its pacing, the failsafe a dead bridge leaves behind, an outage; its configuration checked with
line numbers; and `ocpp-bridge probe` against it.

The box answers on unit id 255, as KEBA's guides fix it (the transport takes Modbus TCP's whole byte).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.base import (
    DeviceEvent,
    DeviceRefused,
    DeviceUnreachable,
    FaultKind,
    NotSupportedByDevice,
    TagPresented,
)
from adapters.chargers import keba_modbus_api as api
from adapters.chargers.keba_modbus import KebaModbusCharger, KebaModbusOptions
from adapters.transports.pool import Transports
from bridge.config import ConfigError, parse_config
from bridge.probe import probe
from tests.emulators.keba_modbus import P30_X_TETHERED, P40, KebaBox, KebaModbusEmulator, keba_modbus

UNIT = 255  # KEBA's guides fix the unit id
FAST = {"read_gap_s": 0.01, "write_gap_s": 0.05}  # the box's pacing, scaled down for the tests


def box(**fields: Any) -> KebaBox:
    return KebaBox(unit_id=UNIT, **{**FAST, **fields})


def options(emu: KebaModbusEmulator, **fields: Any) -> KebaModbusOptions:
    return KebaModbusOptions(
        modbus=emu.url, device_id=UNIT, timeout_s=0.5, read_interval_s=0.01, write_interval_s=0.05, **fields
    )


@pytest.fixture
async def p30() -> AsyncIterator[KebaModbusEmulator]:
    async with keba_modbus(box(plugged=True)) as emu:
        yield emu


async def test_the_probe_reads_the_product_and_the_capabilities_follow_it(transports: Transports) -> None:
    async with keba_modbus(box()) as c_series:
        charger = KebaModbusCharger(options(c_series), transports)
        await charger.start()
        caps = charger.capabilities
    assert (caps.can_sense_plug, caps.can_unlock, caps.fixed_cable) == (True, True, False)
    assert (caps.can_switch_phases, caps.has_meter, caps.has_rfid, caps.can_reset) == (
        True,
        True,
        True,
        False,
    )
    assert (caps.min_current_a, caps.max_current_a, caps.current_step_a) == (6, 16, 0.001)
    # A tethered x-series whose phase switching is not given to Modbus, with a 13 A DIP switch setting.
    async with keba_modbus(box(product=P30_X_TETHERED, phase_source=0, max_supported_ma=13000)) as x_series:
        charger = KebaModbusCharger(options(x_series, max_current_a=32), transports)
        await charger.start()
        caps = charger.capabilities
        with pytest.raises(NotSupportedByDevice, match="1550"):
            await charger.set_phases(1)
        with pytest.raises(NotSupportedByDevice, match="tethered"):
            await charger.unlock()
    assert (caps.can_unlock, caps.fixed_cable, caps.can_switch_phases) == (False, True, False)
    assert caps.max_current_a == 13


async def test_a_reading_in_the_devices_units(p30: KebaModbusEmulator, transports: Transports) -> None:
    charger = KebaModbusCharger(options(p30), transports)
    reading = await charger.read()
    assert (reading.plugged, reading.ev_requesting, reading.energy_allowed) == (True, True, True)
    assert reading.energy_wh == p30.box.reported_energy_wh[-1] == round(p30.box.energy * 0.1, 1)
    assert reading.power_w == 11040.0  # 3 x 16000 mA x 230 V in mW
    assert reading.current_a == (16.0, 16.0, 16.0) and reading.voltage_v == (230.0, 230.0, 230.0)
    assert reading.fault is None
    # Every read is one UINT32 alone (count 2) at a documented register; none came too soon.
    reads = [a for a in p30.box.accesses if a.function_code == 3]
    assert reads and all(a.register in api.READ_REGISTERS and a.value is not None for a in reads)
    assert p30.box.pacing_violations == []
    # Idle, the poll reads less: state, cable, power, energy, card.
    p30.box.unplug()
    before = len(p30.box.accesses)
    idle = await charger.read()
    assert (idle.plugged, idle.ev_requesting, idle.energy_allowed) == (False, False, False)
    assert idle.current_a is None and idle.power_w == 0
    assert [a.register for a in p30.box.accesses[before:]] == [1000, 1004, 1020, 1036, 1500]


async def test_energy_on_and_off_and_the_current_in_milliamperes(
    p30: KebaModbusEmulator, transports: Transports
) -> None:
    charger = KebaModbusCharger(options(p30), transports)
    await charger.set_current(7.3)
    await charger.set_enabled(False)
    suspended = await charger.read()
    await charger.set_enabled(True)
    resumed = await charger.read()
    assert p30.box.writes(api.REG_SET_CURRENT) == [7300]
    assert p30.box.writes(api.REG_ENABLE) == [0, 1]
    assert (suspended.energy_allowed, suspended.ev_requesting, suspended.plugged) == (False, False, True)
    assert resumed.energy_allowed and resumed.current_a == (7.3, 7.3, 7.3)
    with pytest.raises(DeviceRefused, match=r"current 17 A outside 6\.\.16 A"):
        await charger.set_current(17)
    assert p30.box.writes(api.REG_SET_CURRENT) == [7300]  # nothing sent
    await charger.set_phases(1)
    assert p30.box.writes(api.REG_SWITCH_PHASES) == [0] and (await charger.read()).current_a == (7.3, 0, 0)


async def test_a_p40_is_suspended_by_a_current_of_0(transports: Transports) -> None:
    async with keba_modbus(box(product=P40, firmware=10201, plugged=True)) as p40:
        charger = KebaModbusCharger(options(p40), transports)
        await charger.set_current(10)
        await charger.set_enabled(False)
        await charger.set_current(12)  # suspended: kept, not written (it would switch energy on)
        off = await charger.read()
        await charger.set_enabled(True)
        on = await charger.read()
    assert p40.box.writes(api.REG_SET_CURRENT) == [10000, 0, 12000]
    assert p40.box.writes(api.REG_ENABLE) == []
    assert not off.energy_allowed and on.energy_allowed and on.current_a == (12, 12, 12)
    assert on.energy_wh == round(p40.box.energy * 0.1, 1)  # 0.1 Wh from firmware 1.2.1


async def test_the_devices_error_replies_and_its_error_state(
    p30: KebaModbusEmulator, transports: Transports
) -> None:
    charger = KebaModbusCharger(options(p30), transports)
    with pytest.raises(DeviceRefused, match="exception 3, illegal data value"):
        await charger.unlock()  # only while suspended: it is charging
    await charger.set_enabled(False)
    await charger.unlock()
    assert p30.box.writes(api.REG_UNLOCK) == [0] and p30.box.cable() == api.CABLE_IN_EV
    # A register the map does not document, asked by someone else on the bus: exception 2.
    with pytest.raises(DeviceRefused, match="exception 2, illegal data address"):
        await transports.modbus(p30.url).read_holding_registers(UNIT, 1002, 2)
    with pytest.raises(DeviceRefused, match="exception 2"):
        await transports.modbus(p30.url).read_holding_registers(UNIT, 1000, 4)  # no block reads
    with pytest.raises(DeviceRefused, match="exception 1, illegal function"):
        await transports.modbus(p30.url).read_input_registers(UNIT, 1000, 2)
    p30.box.error_code = 262144
    reading = await charger.read()
    assert reading.fault is not None and reading.fault.kind is FaultKind.OTHER
    assert reading.fault.vendor_code == "262144 (0x40000)"
    assert not reading.energy_allowed


async def test_the_driver_paces_and_the_box_refuses_what_comes_too_soon(transports: Transports) -> None:
    async with keba_modbus(box(plugged=True, read_gap_s=0.05, write_gap_s=0.3)) as emu:
        charger = KebaModbusCharger(
            replace(options(emu), read_interval_s=0.05, write_interval_s=0.3), transports
        )
        await charger.read()
        await charger.set_current(8)
        await charger.set_current(9)
        writes = [a.at for a in emu.box.accesses if a.function_code == 6]
        assert emu.box.pacing_violations == []
        assert writes[1] - writes[0] >= 0.29
        reads = [a.at for a in emu.box.accesses if a.function_code == 3]
        assert min(b - a for a, b in itertools.pairwise(reads)) >= 0.049
        hasty = KebaModbusCharger(replace(options(emu), read_interval_s=0), transports)
        with pytest.raises(DeviceRefused, match="exception 6, device busy"):
            for _ in range(3):
                await hasty.read()
    assert emu.box.pacing_violations


async def test_the_bridge_takes_over_and_the_failsafe_is_set_refreshed_and_acts_when_the_bridge_dies(
    p30: KebaModbusEmulator, transports: Transports
) -> None:
    charger = KebaModbusCharger(options(p30, failsafe_timeout_s=5), transports)
    await charger.read()
    assert p30.box.writes(api.REG_SET_FAILSAFE_TIMEOUT) == []  # a probe (no listener) writes nothing
    charger.set_listener(lambda event: None)
    taken_over = await charger.read()
    assert p30.box.writes(api.REG_ENABLE) == [0] and not taken_over.energy_allowed  # the bridge decides
    await charger.set_enabled(True)
    await charger.read()  # no refresh before half the timeout
    assert p30.box.writes(api.REG_ENABLE) == [0, 1]
    assert p30.box.writes(api.REG_SET_FAILSAFE_CURRENT) == [0]
    assert p30.box.writes(api.REG_SET_FAILSAFE_TIMEOUT) == [5]
    assert p30.box.failsafe_persisted
    await asyncio.sleep(2.6)
    await charger.read()
    assert p30.box.writes(api.REG_SET_FAILSAFE_TIMEOUT) == [5, 5]  # refreshed at half the timeout
    assert p30.box.charging()
    await asyncio.sleep(5.2)  # the bridge is gone: nobody refreshes
    assert p30.box.failsafe_active and p30.box.state() == api.STATE_SUSPENDED
    looking = KebaModbusCharger(options(p30), transports)  # a probe: it refreshes nothing
    assert not (await looking.read()).energy_allowed


async def test_a_card_that_authorised_the_session_is_presented_once(
    p30: KebaModbusEmulator, transports: Transports
) -> None:
    events: list[DeviceEvent] = []
    p30.box.tap(0x0A0B0C0D)  # a session the box authorised before the bridge started
    charger = KebaModbusCharger(options(p30, failsafe_timeout_s=60), transports)
    charger.set_listener(events.append)
    await charger.read()
    assert events == []  # no tap: taken as one, it would stop that session's transaction
    p30.box.unplug()
    await charger.read()
    p30.box.plug()
    p30.box.tap(3570234960)
    await charger.read()
    await charger.read()
    assert events == [TagPresented("D4CD7650")]


async def test_an_outage_is_unreachable_and_the_box_comes_back(transports: Transports) -> None:
    async with keba_modbus(box(plugged=True)) as emu:
        charger = KebaModbusCharger(options(emu, failsafe_timeout_s=60), transports)
        charger.set_listener(lambda event: None)
        await charger.set_enabled(True)  # a transaction's: no take-over
        assert (await charger.read()).ev_requesting
        emu.box.silent = True
        with pytest.raises(DeviceUnreachable, match=r"no answer within 0\.5 s"):
            await charger.read()
        emu.box.silent = False
        assert (await charger.read()).ev_requesting
        await emu.stop()
        with pytest.raises(DeviceUnreachable, match="cannot connect"):
            await charger.read()
        await emu.start()  # the same port
        assert (await charger.read()).ev_requesting
    # Set at the first reading, and again after each absence (the box may have rebooted).
    assert emu.box.writes(api.REG_SET_FAILSAFE_TIMEOUT) == [60, 60, 60]
    assert emu.box.writes(api.REG_ENABLE) == [1]


async def test_the_default_unit_id_is_the_guides_255(p30: KebaModbusEmulator, transports: Transports) -> None:
    charger = KebaModbusCharger(KebaModbusOptions(modbus=p30.url), transports)
    assert charger.options.device_id == 255
    await charger.start()  # the product code read on unit 255
    assert charger.capabilities.has_meter


# -- configuration ------------------------------------------------------------------------------------

CONFIG = """\
state_dir: ./state
charge_points:
  - id: KEBA-1
    csms_url: ws://127.0.0.1:9000/ocpp
    connectors:
      - id: 1
        charger:
          type: keba-modbus
          modbus: {modbus}
          failsafe_timeout_s: {timeout}
          failsafe_current_a: {failsafe}
"""


def test_the_options_are_checked_with_line_numbers() -> None:
    good = parse_config(CONFIG.format(modbus="tcp://192.0.2.9", timeout=30, failsafe=0), "keba.yaml")
    (connector,) = good.charge_points[0].connectors
    assert connector.charger.options == KebaModbusOptions(modbus="tcp://192.0.2.9")
    bad = CONFIG.format(modbus="rtu:///dev/ttyUSB0", timeout=700, failsafe=3)
    with pytest.raises(ConfigError) as info:
        parse_config(bad, "keba.yaml")
    found = {p.path.rsplit(".", 1)[-1]: (p.line, p.message) for p in info.value.problems}
    lines = bad.splitlines()
    for key, words in [
        ("modbus", "tcp://HOST"),
        ("failsafe_timeout_s", "5 to 600"),
        ("failsafe_current_a", "0 (suspend) or 6 to 32 A"),
    ]:
        line, message = found[key]
        assert lines[line - 1].strip().startswith(key + ":") and words in message, (key, line, message)


# -- ocpp-bridge probe --------------------------------------------------------------------------------


async def test_probe_describes_the_box_and_writes_nothing(p30: KebaModbusEmulator, tmp_path: Path) -> None:
    doc = {
        "state_dir": str(tmp_path / "state"),
        "charge_points": [{
            "id": "KEBA-1", "csms_url": "ws://127.0.0.1:9/ocpp",
            "connectors": [{"id": 1, "charger": {
                "type": "keba-modbus", "modbus": p30.url, "device_id": UNIT,
                "read_interval_s": 0.01, "write_interval_s": 0.05,
            }}],
        }],
    }  # fmt: skip
    lines: list[str] = []
    code = await probe(parse_config(yaml.safe_dump(doc)), lines.append, timeout_s=5)
    assert code == 0, lines
    assert lines == [
        "KEBA-1 connector 1: KEBA at 127.0.0.1",
        "  plugged: yes; vehicle asks for energy: yes; energy allowed: yes",
        f"  energy register: {p30.box.reported_energy_wh[-1]:.1f} Wh; power: 11040 W; current: 16/16/16 A; "
        "voltage: 230/230/230 V",
        "  can: plug sensing yes, unlock yes, fixed cable no, phase switching yes, reset no, meter yes, "
        "card reader yes; 3 phase(s), current 6..16 A in steps of 0.001 A",
        "  OK",
        "1 of 1 device setups answer",
    ]
    assert [a for a in p30.box.accesses if a.function_code == 6] == []
