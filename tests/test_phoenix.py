"""The Phoenix Contact EV-CC / EM-CP-PP driver against its emulator (tests/emulators/phoenix.py) over a
real socket: the probe and capabilities, readings in the device's units, energy on and off with coil
400, the current in whole amperes (or 0.1 A on Wallbe's firmware), its error replies and error states,
an outage; its configuration checked with line numbers; and `ocpp-bridge probe` against it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.base import DeviceRefused, DeviceUnreachable, FaultKind
from adapters.chargers import phoenix_api as api
from adapters.chargers.phoenix import PhoenixCharger, PhoenixOptions
from adapters.transports.pool import Transports
from bridge.config import ConfigError, parse_config
from bridge.probe import probe
from tests.emulators.phoenix import PhoenixBox, PhoenixEmulator, phoenix

READ_COIL, READ_HOLDING, READ_INPUTS, WRITE_COIL, WRITE_REGISTER = 1, 3, 4, 5, 6


def options(emu: PhoenixEmulator, **fields: Any) -> PhoenixOptions:
    return PhoenixOptions(modbus=emu.url, model=emu.box.model, timeout_s=0.5, **fields)  # type: ignore[arg-type]


@pytest.fixture
async def ev_cc() -> AsyncIterator[PhoenixEmulator]:
    async with phoenix(PhoenixBox(plugged=True)) as emu:
        yield emu


async def test_the_capabilities_are_what_the_controller_documents(
    ev_cc: PhoenixEmulator, transports: Transports
) -> None:
    charger = PhoenixCharger(options(ev_cc), transports)
    await charger.start()
    caps = charger.capabilities
    assert (caps.can_sense_plug, caps.can_unlock, caps.can_switch_phases, caps.can_reset) == (
        True, False, False, False,
    )  # fmt: skip
    assert (caps.has_meter, caps.has_rfid, caps.fixed_cable) == (False, False, False)
    assert (caps.min_current_a, caps.max_current_a, caps.current_step_a) == (6, 16, 1)
    assert charger.description == "Phoenix EV-CC at 127.0.0.1"
    metered = PhoenixCharger(options(ev_cc, meter=True, fixed_cable=True, max_current_a=32), transports)
    caps = metered.capabilities
    assert (caps.has_meter, caps.fixed_cable, caps.max_current_a) == (True, True, 32)
    # Wallbe's extended firmware: the current register reads 160 (16.0 A), so it counts 0.1 A.
    async with phoenix(PhoenixBox(wallbe=True)) as wallbe:
        charger = PhoenixCharger(options(wallbe), transports)
        await charger.start()
        assert charger.capabilities.current_step_a == 0.1


async def test_a_reading_and_energy_on_and_off_with_coil_400(
    ev_cc: PhoenixEmulator, transports: Transports
) -> None:
    charger = PhoenixCharger(options(ev_cc, meter=True), transports)
    charging = await charger.read()
    assert (charging.plugged, charging.ev_requesting, charging.energy_allowed) == (True, True, True)
    assert charging.energy_wh == ev_cc.box.reported_energy_wh[-1]  # holding 904, Wh
    # Inputs 108..121 in V, A, W (evcc reads them on an EV-CC unscaled): 16 A on three phases.
    assert (charging.voltage_v, charging.current_a) == ((230.0, 230.0, 230.0), (16.0, 16.0, 16.0))
    assert charging.power_w == ev_cc.box.reported_power_w[-1] == 11040.0
    assert charging.fault is None
    await charger.set_enabled(False)
    off = await charger.read()
    await charger.set_enabled(True)
    on = await charger.read()
    assert ev_cc.box.writes(WRITE_COIL, api.COIL_ENABLE) == [0, 1]
    assert (off.plugged, off.ev_requesting, off.energy_allowed) == (True, False, False)  # state B
    assert on.ev_requesting and on.energy_allowed
    ev_cc.box.unplug()
    idle = await charger.read()
    assert (idle.plugged, idle.ev_requesting) == (False, False)
    before = len(ev_cc.box.accesses)
    await charger.read()
    polled = [(a.function_code, a.register) for a in ev_cc.box.accesses[before:]]
    assert polled == [(READ_INPUTS, 100), (READ_COIL, 400), (READ_INPUTS, 108), (READ_HOLDING, 904)]


async def test_wallbe_firmware_energy_is_the_64_bit_register_and_never_wraps(transports: Transports) -> None:
    # Wallbe's firmware keeps 904 to 16 bits; its energy counter is holding 2980..2983 (uint64 Wh).
    async with phoenix(PhoenixBox(wallbe=True, plugged=True, energy_wh=65530.0)) as wallbe:
        charger = PhoenixCharger(options(wallbe, meter=True), transports)
        before = await charger.read()
        wallbe.box.energy_wh = 65540.0  # past what 16 bits hold: 904 now reads 4
        after = await charger.read()
        wallbe.box.energy_wh = 5_000_000_000.0  # past 32 bits too
        later = await charger.read()
        polled = [(a.function_code, a.register) for a in wallbe.box.accesses[-4:]]
    assert (before.energy_wh, after.energy_wh, later.energy_wh) == (65530.0, 65540.0, 5_000_000_000.0)
    assert polled == [(READ_INPUTS, 100), (READ_COIL, 400), (READ_INPUTS, 108), (READ_HOLDING, 2980)]


async def test_the_current_in_amperes_and_in_tenths_on_wallbe_firmware(
    ev_cc: PhoenixEmulator, transports: Transports
) -> None:
    charger = PhoenixCharger(options(ev_cc, max_current_a=32), transports)
    await charger.set_current(10)
    await charger.set_current(13.7)  # a step of 1 A: never more than asked
    assert ev_cc.box.writes(WRITE_REGISTER, 528) == [10, 13]
    async with phoenix(PhoenixBox(wallbe=True)) as wallbe:
        charger = PhoenixCharger(options(wallbe), transports)
        await charger.set_current(7.5)
        assert wallbe.box.writes(WRITE_REGISTER, 528) == [75] and wallbe.box.current_a() == 7.5


async def test_an_em_cp_pp_on_unit_180_with_its_meter(transports: Transports) -> None:
    async with phoenix(PhoenixBox(model="em-cp-pp", plugged=True)) as em:
        charger = PhoenixCharger(options(em, meter=True, phases=3), transports)
        assert charger.options.unit_id == 180
        await charger.set_current(10)
        reading = await charger.read()
        assert em.box.writes(WRITE_REGISTER, 300) == [10]
    assert reading.voltage_v == (230.0, 230.0, 230.0)  # 23000 in 0.01 V
    assert reading.current_a == (10.0, 10.0, 10.0)  # 10000 in 0.001 A
    assert reading.power_w == em.box.reported_power_w[-1] == 6900.0  # 690 in 10 W
    assert reading.energy_wh == em.box.reported_energy_wh[-1]  # 0.01 kWh
    assert reading.energy_wh is not None and reading.energy_wh % 10 == 0


async def test_the_devices_error_replies_and_its_error_states(
    ev_cc: PhoenixEmulator, transports: Transports
) -> None:
    # The box's own limit is below the bridge's: exception 3, illegal data value.
    ev_cc.box.max_current_a = 12
    charger = PhoenixCharger(options(ev_cc, max_current_a=16), transports)
    with pytest.raises(DeviceRefused, match="exception 3, illegal data value"):
        await charger.set_current(16)
    assert ev_cc.box.current == 16  # unchanged
    # A meter configured where none is wired: exception 2 on register 904.
    unmetered = PhoenixCharger(options(ev_cc, meter=True), transports)
    ev_cc.box.meter = False
    with pytest.raises(DeviceRefused, match="exception 2, illegal data address"):
        await unmetered.read()
    bus = transports.modbus(ev_cc.url)
    with pytest.raises(DeviceRefused, match="exception 1, illegal function"):
        await bus.write_registers(255, 528, [10])  # the map names function 06 only
    # The controller's error states are faults; the plug is then unknown, energy not allowed.
    ev_cc.box.error = "F"
    reading = await charger.read()
    assert reading.fault is not None and reading.fault.kind is FaultKind.INTERNAL
    assert reading.fault.vendor_code == "status F"
    assert (reading.plugged, reading.energy_allowed) == (None, False)
    ev_cc.box.error = "E"
    reading = await charger.read()
    assert reading.fault is not None and reading.fault.kind is FaultKind.EV_COMMUNICATION
    ev_cc.box.error = ""
    assert (await charger.read()).fault is None


async def test_the_bridge_takes_the_decision_over_and_a_probe_writes_nothing(
    ev_cc: PhoenixEmulator, transports: Transports
) -> None:
    looking = PhoenixCharger(options(ev_cc), transports)
    assert (await looking.read()).energy_allowed  # the box charges the plugged car by itself
    assert ev_cc.box.writes(WRITE_COIL, 400) == []
    charger = PhoenixCharger(options(ev_cc), transports)
    charger.set_listener(lambda event: None)
    taken_over = await charger.read()
    assert not taken_over.energy_allowed and ev_cc.box.writes(WRITE_COIL, 400) == [0]
    await charger.set_enabled(True)
    assert (await charger.read()).energy_allowed
    assert ev_cc.box.writes(WRITE_COIL, 400) == [0, 1]  # once only


async def test_an_outage_is_unreachable_and_the_box_comes_back(transports: Transports) -> None:
    async with phoenix(PhoenixBox(plugged=True)) as emu:
        charger = PhoenixCharger(options(emu), transports)
        assert (await charger.read()).ev_requesting
        emu.box.silent = True
        with pytest.raises(DeviceUnreachable, match=r"no answer within 0\.5 s"):
            await charger.read()
        with pytest.raises(DeviceUnreachable, match=r"no answer within 0\.5 s"):
            await charger.set_enabled(False)  # a coil write as well
        emu.box.silent = False
        heard = await charger.read()  # the box carried the write out; only its answer was lost
        assert (heard.plugged, heard.energy_allowed) == (True, False)
        await charger.set_enabled(True)
        assert (await charger.read()).ev_requesting
        await emu.stop()
        with pytest.raises(DeviceUnreachable):  # the open connection's request, then none at all
            await charger.read()
        with pytest.raises(DeviceUnreachable, match="cannot connect"):
            await charger.read()
        await emu.start()  # the same port
        assert (await charger.read()).ev_requesting


async def test_a_box_back_from_an_outage_is_told_the_bridges_last_word_again(
    transports: Transports,
) -> None:
    async with phoenix(PhoenixBox(plugged=True)) as emu:
        charger = PhoenixCharger(options(emu), transports)
        charger.set_listener(lambda event: None)
        await charger.set_current(10)
        await charger.read()  # taken over: coil off
        await charger.read()
        assert emu.box.writes(WRITE_COIL, 400) == [0]  # once, while the box answers
        await emu.stop()
        with pytest.raises(DeviceUnreachable):
            await charger.read()
        emu.box.enabled, emu.box.current = True, 16  # it rebooted with its own settings
        await emu.start()
        back = await charger.read()
        await charger.read()
    assert not back.energy_allowed and not emu.box.charging()
    assert emu.box.writes(WRITE_COIL, 400) == [0, 0] and emu.box.writes(WRITE_REGISTER, 528) == [10, 10]


async def test_a_box_that_is_no_phoenix_controller_is_refused_at_the_probe(transports: Transports) -> None:
    async with phoenix(PhoenixBox(model="em-cp-pp")) as em:
        # The EM-CP-PP's map read as an EV-CC's: unit 255 is silent.
        wrong = PhoenixCharger(PhoenixOptions(modbus=em.url, timeout_s=0.3), transports)
        with pytest.raises(DeviceUnreachable, match="device 255"):
            await wrong.start()
        em.box.error = "x"  # register 100 holds no state letter
        charger = PhoenixCharger(options(em), transports)
        with pytest.raises(DeviceRefused, match="no IEC 61851 state letter"):
            await charger.start()


# -- configuration ------------------------------------------------------------------------------------

CONFIG = """\
state_dir: ./state
charge_points:
  - id: PHX-1
    csms_url: ws://127.0.0.1:9000/ocpp
    connectors:
      - id: 1
        charger:
          type: phoenix
          modbus: {modbus}
          model: {model}
          phases: {phases}
          min_current_a: {low}
"""


def test_the_options_are_checked_with_line_numbers() -> None:
    good = parse_config(
        CONFIG.format(modbus="tcp://192.0.2.9", model="em-cp-pp", phases=1, low=6), "phoenix.yaml"
    )
    (connector,) = good.charge_points[0].connectors
    assert connector.charger.options == PhoenixOptions(modbus="tcp://192.0.2.9", model="em-cp-pp", phases=1)
    assert connector.charger.options.unit_id == 180
    bad = CONFIG.format(modbus="rtu:///dev/ttyUSB0", model="ev-cd", phases=2, low=5)
    with pytest.raises(ConfigError) as info:
        parse_config(bad, "phoenix.yaml")
    found = {p.path.rsplit(".", 1)[-1]: (p.line, p.message) for p in info.value.problems}
    lines = bad.splitlines()
    line, message = found["model"]
    assert lines[line - 1].strip() == "model: ev-cd" and "'ev-cc'" in message and "'em-cp-pp'" in message
    # The driver's own checks run once every field has its type.
    bad = CONFIG.format(modbus="rtu:///dev/ttyUSB0", model="ev-cc", phases=2, low=5)
    with pytest.raises(ConfigError) as info:
        parse_config(bad, "phoenix.yaml")
    found = {p.path.rsplit(".", 1)[-1]: (p.line, p.message) for p in info.value.problems}
    for key, words in [("modbus", "tcp://HOST"), ("phases", "1 or 3"), ("min_current_a", "6 <=")]:
        line, message = found[key]
        assert lines[line - 1].strip().startswith(key + ":") and words in message, (key, line, message)


# -- ocpp-bridge probe --------------------------------------------------------------------------------


async def test_probe_describes_the_box_and_writes_nothing(ev_cc: PhoenixEmulator, tmp_path: Path) -> None:
    doc = {
        "state_dir": str(tmp_path / "state"),
        "charge_points": [{
            "id": "PHX-1", "csms_url": "ws://127.0.0.1:9/ocpp",
            "connectors": [{"id": 1, "charger": {"type": "phoenix", "modbus": ev_cc.url, "meter": True}}],
        }],
    }  # fmt: skip
    lines: list[str] = []
    code = await probe(parse_config(yaml.safe_dump(doc)), lines.append, timeout_s=5)
    assert code == 0, lines
    assert lines == [
        "PHX-1 connector 1: Phoenix EV-CC at 127.0.0.1",
        "  plugged: yes; vehicle asks for energy: yes; energy allowed: yes",
        f"  energy register: {ev_cc.box.reported_energy_wh[-1]:.0f} Wh; power: 11040 W; "
        "current: 16/16/16 A; voltage: 230/230/230 V",
        "  can: plug sensing yes, unlock no, fixed cable no, phase switching no, reset no, meter yes, "
        "card reader no; 3 phase(s), current 6..16 A in steps of 1 A",
        "  OK",
        "1 of 1 device setups answer",
    ]
    assert [a for a in ev_cc.box.accesses if a.function_code in (WRITE_COIL, WRITE_REGISTER)] == []
