"""A KEBA P30 over Modbus TCP described generically (tests/helpers/generic.py's keba_block) passes the
scenarios of a built-in driver through the whole bridge against the strict central system: a whole
session, a charging profile's limit reaching the box in mA, an outage (Faulted, recovery, one
transaction) and the box's own error; and its exception replies as refusals.

The generic device does not pace its requests, so the box here does not ask for pacing (the built-in
keba-modbus driver keeps KEBA's gaps)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.base import DeviceRefused, DeviceUnreachable, NotSupportedByDevice
from adapters.generic.device import GenericCharger
from adapters.generic.options import ModbusSource
from adapters.generic.sources import ModbusReader, blocks
from adapters.transports.pool import Transports
from tests.conftest import running
from tests.csms import StrictCentralSystem
from tests.emulators.keba_modbus import KebaBox, KebaModbusEmulator, keba_modbus
from tests.emulators.phoenix import PhoenixBox, phoenix
from tests.helpers.generic import (
    CP,
    ENERGY,
    POWER,
    bridge_config,
    check_energy,
    first_reading,
    keba_block,
    options,
    profile,
    remote_start,
    remote_stop,
    sampled,
    set_profile,
    statuses,
)

REG_ENABLE, REG_SET_CURRENT = 5014, 5004


@pytest.fixture
async def emu() -> AsyncIterator[KebaModbusEmulator]:
    box = KebaBox(read_gap_s=0, write_gap_s=0, time_scale=100)
    async with keba_modbus(box) as emulator:
        yield emulator


async def test_a_whole_session(emu: KebaModbusEmulator, csms: StrictCentralSystem, tmp_path: Path) -> None:
    async with running(bridge_config(csms, tmp_path, keba_block(emu.url))) as daemon:
        await first_reading(csms, daemon)
        emu.box.plug()
        await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Preparing")
        await csms.wait_until(lambda: not emu.box.charging(), what="the box held until a transaction")
        start = await remote_start(csms)
        assert emu.box.charging()
        await csms.wait_for_call(
            CP, "MeterValues", lambda p: sampled(p, ENERGY) > start["meterStart"], timeout=10
        )
        stop = await remote_stop(csms)
        assert not emu.box.charging()
    check_energy(emu.box.reported_energy_wh, csms, start, stop)
    powers = [sampled(p, POWER) for p in csms.calls(CP, "MeterValues")]
    assert all(w in emu.box.reported_power_w for w in powers) and max(powers) == 11040  # mW to W
    assert emu.box.writes(REG_ENABLE)[-2:] == [1, 0]
    assert statuses(csms) == ["Available", "Preparing", "Charging", "Finishing"]


async def test_a_charging_profiles_limit_reaches_the_box_in_milliamperes(
    emu: KebaModbusEmulator, csms: StrictCentralSystem, tmp_path: Path
) -> None:
    async with running(bridge_config(csms, tmp_path, keba_block(emu.url))) as daemon:
        await first_reading(csms, daemon)
        await set_profile(csms, 0, profile(1, "TxDefaultProfile", 10))
        emu.box.plug()
        await remote_start(csms)
        await csms.wait_until(lambda: emu.box.current_ma == 10000, what="10 A at the box", timeout=10)
        await set_profile(csms, 1, profile(2, "TxProfile", 7.5, transactionId=csms.last_transaction_id))
        await csms.wait_until(lambda: emu.box.current_ma == 7500, what="7.5 A at the box", timeout=10)
        assert emu.box.currents_ma() == [7500, 7500, 7500] and emu.box.charging()
        await remote_stop(csms)
    assert set(emu.box.writes(REG_SET_CURRENT)) <= {16000, 10000, 7500}


async def test_an_outage_of_the_box_faults_and_recovers_in_one_transaction(
    emu: KebaModbusEmulator, csms: StrictCentralSystem, tmp_path: Path
) -> None:
    async with running(bridge_config(csms, tmp_path, keba_block(emu.url))) as daemon:
        await first_reading(csms, daemon)
        emu.box.plug()
        start = await remote_start(csms)
        await csms.wait_for_call(CP, "MeterValues")
        emu.box.silent = True
        faulted = await csms.wait_for_call(
            CP, "StatusNotification", lambda p: p["status"] == "Faulted", timeout=10
        )
        emu.box.silent = False
        await csms.wait_for_call(
            CP, "StatusNotification", lambda p: p["status"] == "Charging", count=2, timeout=10
        )
        assert emu.box.charging()
        stop = await remote_stop(csms)
    assert (faulted["errorCode"], faulted["vendorErrorCode"]) == ("OtherError", "DeviceUnreachable")
    assert faulted["info"].startswith("KEBA (generic)")
    assert len(csms.calls(CP, "StartTransaction")) == 1 and stop["transactionId"] == csms.last_transaction_id
    check_energy(emu.box.reported_energy_wh, csms, start, stop)
    assert statuses(csms) == ["Available", "Preparing", "Charging", "Faulted", "Charging", "Finishing"]


async def test_the_boxs_own_error_is_a_fault_with_its_code(
    emu: KebaModbusEmulator, csms: StrictCentralSystem, tmp_path: Path
) -> None:
    async with running(bridge_config(csms, tmp_path, keba_block(emu.url))) as daemon:
        await first_reading(csms, daemon)
        emu.box.plug()
        await remote_start(csms)
        emu.box.error_code = 7
        faulted = await csms.wait_for_call(
            CP, "StatusNotification", lambda p: p["status"] == "Faulted", timeout=10
        )
        emu.box.error_code = 0
        await csms.wait_for_call(
            CP, "StatusNotification", lambda p: p["status"] == "Charging", count=2, timeout=10
        )
        await remote_stop(csms)
    assert faulted["vendorErrorCode"] == "error 7"
    assert len(csms.calls(CP, "StartTransaction")) == 1


async def test_exception_replies_are_refusals_and_silence_is_unreachable(
    emu: KebaModbusEmulator, transports: Transports, tmp_path: Path
) -> None:
    driver = GenericCharger(options(tmp_path, charger=keba_block(emu.url)), transports)
    await driver.start()
    assert driver.capabilities.has_meter and not driver.capabilities.can_switch_phases
    with pytest.raises(DeviceRefused, match="write register 0x138C: exception 3, illegal data value"):
        await driver.set_current(5)  # 5000 mA: below what the box takes
    block = keba_block(emu.url)
    block["read"]["error"]["modbus"]["register"] = 1007  # no such register
    with pytest.raises(DeviceRefused, match="exception 2, illegal data address"):
        await GenericCharger(options(tmp_path, charger=block), transports).read()
    emu.box.silent = True
    with pytest.raises(DeviceUnreachable, match=r"no answer within 0\.5 s"):
        await driver.read()


async def test_a_write_map_gives_the_registers_value(
    emu: KebaModbusEmulator, transports: Transports, tmp_path: Path
) -> None:
    block = keba_block(emu.url)
    block["write"]["phases"] = {
        "modbus": {"url": emu.url, "unit": 255, "register": 5052},
        "map": {"1": 0, "3": 1},
    }
    driver = GenericCharger(options(tmp_path, charger=block), transports)
    await driver.start()
    assert driver.capabilities.can_switch_phases
    await driver.set_phases(1)
    assert not emu.box.three_phases and emu.box.writes(5052) == [0]
    await driver.set_phases(3)
    assert emu.box.three_phases and emu.box.writes(5052) == [0, 1]
    with pytest.raises(NotSupportedByDevice, match=r"write\.phases\.map has no value for 2"):
        await driver.set_phases(2)


async def test_coils_are_read_and_written_as_one_bit(transports: Transports, tmp_path: Path) -> None:
    """A Phoenix EV-CC described generically (docs/devices/generic.md, the reference's evcc example):
    the state letter from input 100, charging enabled as coil 400, read with FC01 and written with FC05."""
    async with phoenix(PhoenixBox()) as emulator:
        unit = emulator.box.unit_id
        bus = {"url": emulator.url, "unit": unit}
        block = {
            "type": "generic",
            "read": {
                "status": {"modbus": {**bus, "register": 100, "function": "input", "bitmask": 0xFF},
                           "map": {"65": "A", "66": "B", "67": "C"}},
                "enabled": {"modbus": {**bus, "register": 400, "function": "coil", "type": "bool"}},
            },
            "write": {"enable": {"modbus": {**bus, "register": 400, "function": "coil", "type": "bool"}}},
        }  # fmt: skip
        driver = GenericCharger(options(tmp_path, charger=block), transports)
        await driver.start()
        emulator.box.plug()
        reading = await driver.read()
        assert (reading.plugged, reading.ev_requesting, reading.energy_allowed) == (True, True, True)
        await driver.set_enabled(False)
        assert not emulator.box.enabled
        reading = await driver.read()
        assert (reading.plugged, reading.ev_requesting, reading.energy_allowed) == (True, False, False)
        await driver.set_enabled(True)
        assert emulator.box.enabled and (await driver.read()).energy_allowed


def test_registers_that_follow_each_other_are_read_in_one_request(transports: Transports) -> None:
    """`join_registers` (docs/devices/generic.md): neighbours and overlaps join, a gap or another unit or
    function does not, and no request covers more than the protocol's 125 registers."""

    def reader(register: int, type_: str = "float32", unit: int = 1, function: str = "input") -> ModbusReader:
        modbus = ModbusSource(
            url="tcp://127.0.0.1:1502", register=register, unit=unit, function=function, type=type_
        )  # type: ignore[arg-type]
        return ModbusReader(modbus, transports)

    def spans(members: list[ModbusReader]) -> list[list[int]]:
        return sorted([r.modbus.register for r in block] for block in blocks(members))  # type: ignore[attr-defined]

    currents = [reader(6), reader(8), reader(10)]
    assert spans([*currents, reader(0x48)]) == [[6, 8, 10], [0x48]]
    assert spans([reader(0, "uint16"), reader(2, "uint16")]) == [[0], [2]]  # register 1 between: never read
    assert spans([reader(0, "float64"), reader(2)]) == [[0, 2]]  # overlapping
    assert spans([reader(0), reader(2, unit=2), reader(2, function="holding")]) == [[0], [2], [2]]
    far = [reader(r) for r in range(0, 130, 2)]  # 130 registers in a row
    assert [len(b) for b in blocks(far)] == [62, 3]  # 124 registers, then the rest
    assert all(len(b) == 1 for b in blocks([reader(400, "bool", function="coil")]))


async def test_a_value_beyond_the_registers_type_is_refused_before_it_is_sent(
    emu: KebaModbusEmulator, transports: Transports, tmp_path: Path
) -> None:
    for type_name, scale, words in (
        ("float32", 1e-300, "does not fit a float32"),
        ("int32", 1e-320, "finite"),
    ):
        block = keba_block(emu.url)
        block["write"]["phases"] = {
            "modbus": {"url": emu.url, "unit": 255, "register": 5052, "type": type_name},
            "scale": scale,
        }  # 3 phases are 3e300 (more than a float32 holds), or infinite
        driver = GenericCharger(options(tmp_path, charger=block), transports)
        with pytest.raises(DeviceRefused, match=rf"register 5052 on .*: .*{words}"):
            await driver.set_phases(3)
    assert emu.box.writes(5052) == []
