"""The shared Modbus bus client and the Eastron meter drivers, against the emulator over real sockets
and a socat pseudo-terminal pair; one session end to end through the daemon."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from pymodbus.client import AsyncModbusTcpClient

from adapters.base import DeviceRefused, DeviceUnreachable, MeterReading
from adapters.meters.eastron import (
    SDM72,
    SDM120,
    SDM630,
    EastronMeter,
    EastronOptions,
    Sdm72,
    Sdm120,
    Sdm630,
    Span,
)
from adapters.transports.modbus import ModbusBus, decode_float32, exception_error
from adapters.transports.pool import Transports
from bridge.config import ConfigError, load_config, parse_config
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.emulators.eastron import EastronEmulator, EmulatedMeter, eastron_rtu, eastron_tcp
from tests.processes import free_port

ROOT = Path(__file__).resolve().parent.parent
DRIVERS: dict[str, type[EastronMeter]] = {"sdm630": Sdm630, "sdm120": Sdm120, "sdm72": Sdm72}
FLOAT32 = AsyncModbusTcpClient.DATATYPE.FLOAT32


def driver(kind: str, emu: EastronEmulator, transports: Transports, device_id: int = 1, **opts: Any) -> Any:
    return DRIVERS[kind](EastronOptions(kind, emu.url, device_id, **opts), transports)


# -- URLs and options ------------------------------------------------------------------------------


def test_same_bus_whatever_the_spelling() -> None:
    assert ModbusBus.key_of("rtu:///dev/ttyUSB0?parity=n&baudrate=9600") == ModbusBus.key_of(
        "rtu:///dev/ttyUSB0?baudrate=9600&stopbits=1&bytesize=8&parity=N"
    )
    assert (
        ModbusBus.key_of("rtu:///dev/ttyUSB0")
        == "rtu:///dev/ttyUSB0?baudrate=9600&parity=N&stopbits=1&bytesize=8"
    )
    assert ModbusBus.key_of("tcp://Gateway.lan") == ModbusBus.key_of("tcp://gateway.lan:502")
    assert ModbusBus.key_of("rtu:///dev/ttyUSB0?baudrate=2400") != ModbusBus.key_of("rtu:///dev/ttyUSB0")
    assert ModbusBus.key_of("tcp://[::1]:5020") == "tcp://[::1]:5020"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("/dev/ttyUSB0", "did you mean rtu:///dev/ttyUSB0"),
        ("rtu://dev/ttyUSB0", "three slashes"),
        ("modbus://192.0.2.1", "unknown bus type 'modbus'"),
        ("tcp://", "no host"),
        ("tcp://192.0.2.1:70000", "not a number from 1 to 65535"),
        ("tcp://192.0.2.1/x?unit=1", "only a host and a port"),
        ("rtu+tcp://192.0.2.1", "needs the port"),
        ("rtu:///dev/ttyUSB0?baud=9600", "unknown setting 'baud'"),
        ("rtu:///dev/ttyUSB0?baudrate=9601", "baudrate=9601 is not one of"),
        ("rtu:///dev/ttyUSB0?parity=X", "parity=X is not one of N (none), E (even), O (odd)"),
        ("rtu:///dev/ttyUSB0?stopbits=3", "stopbits=3"),
        ("rtu:///dev/ttyUSB0?bytesize=7", "Modbus RTU uses 8 data bits"),
        ("rtu:///dev/ttyUSB0?parity=N&parity=E", "parity is given twice"),
    ],
)
def test_bad_bus_urls_are_explained(url: str, says: str) -> None:
    problems = EastronOptions("sdm630", url).validate()
    assert [field for field, _ in problems] == ["modbus"]
    assert says in problems[0][1]


def test_device_id_and_timeout_bounds() -> None:
    assert EastronOptions("sdm630", "tcp://192.0.2.1", 247, 0.5).validate() == []
    for device_id in (0, 248):
        assert [f for f, _ in EastronOptions("sdm630", "tcp://h", device_id).validate()] == ["device_id"]
    assert [f for f, _ in EastronOptions("sdm630", "tcp://h", 1, 0).validate()] == ["timeout_s"]


def test_configuration_errors_name_the_meter_block(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        make_config(
            "ws://127.0.0.1:9/ocpp", tmp_path, meter={"type": "sdm630", "modbus": "COM3", "device_id": 0}
        )
    text = str(caught.value)
    assert "connectors[0].meter.modbus: expected tcp://HOST[:PORT]" in text
    assert "connectors[0].meter.device_id: must be 1 to 247" in text


def test_example_configuration_loads() -> None:
    config = load_config(ROOT / "config" / "eastron.yaml")
    meters = [c.meter for cp in config.charge_points for c in cp.connectors if c.meter is not None]
    assert meters and all(m.type in DRIVERS for m in meters)
    # Its two RTU meters name their bus differently and still share it.
    assert len({ModbusBus.key_of(m.options.modbus) for m in meters}) < len(meters)


# -- pure parts ------------------------------------------------------------------------------------


def test_read_plans_are_the_fewest_requests_within_the_documented_map() -> None:
    assert SDM630.plan == (Span(0x0000, 12), Span(0x0034, 2), Span(0x0046, 4))
    assert SDM120.plan == (Span(0x0000, 2), Span(0x0006, 2), Span(0x000C, 2), Span(0x0046, 4))
    assert SDM72.plan == (Span(0x0034, 2), Span(0x0048, 2))


def test_float32_word_order() -> None:
    # Registers as an SDM630 sends them (devices.md §8.4): high word first.
    assert decode_float32([17254, 6554], word_order="big") == pytest.approx([230.1])
    assert decode_float32([17254, 6554], word_order="little")[0] != pytest.approx(230.1)
    with pytest.raises(ValueError, match="two registers"):
        decode_float32([1, 2, 3])


def test_exception_codes_are_explained_and_typed() -> None:
    refused = exception_error(2, "device 1 on tcp://h:502, read input registers 0x0100")
    assert isinstance(refused, DeviceRefused)
    assert "exception 2, illegal data address" in str(refused)
    # A gateway that got no answer speaks for a silent device: unreachable, not refusing.
    assert isinstance(exception_error(11, "x"), DeviceUnreachable)
    assert isinstance(exception_error(10, "x"), DeviceUnreachable)
    assert isinstance(exception_error(99, "x"), DeviceRefused)


# -- each model, over TCP and RTU ------------------------------------------------------------------

EXPECTED = {
    "sdm630": MeterReading(
        energy_wh=1234567.0,
        power_w=7325.5,
        current_a=(10.5, 11.0, 9.75),
        voltage_v=(230.1, 231.2, 229.8),
        frequency_hz=49.98,
    ),
    "sdm120": MeterReading(
        energy_wh=1234567.0, power_w=7325.5, current_a=(10.5,), voltage_v=(230.1,), frequency_hz=49.98
    ),
    "sdm72": MeterReading(energy_wh=1234567.0, power_w=7325.5),
}


def emulated(kind: str, device_id: int = 1) -> EmulatedMeter:
    meter = EmulatedMeter(kind, device_id)
    phases = 3 if kind == "sdm630" else 1
    meter.set(energy_kwh=1234.567, power_w=7325.5)
    if kind != "sdm72":
        meter.set(
            voltage_v=(230.1, 231.2, 229.8)[:phases],
            current_a=(10.5, 11.0, 9.75)[:phases],
            frequency_hz=49.98,
        )
    return meter


@pytest.mark.parametrize("kind", ["sdm630", "sdm120", "sdm72"])
async def test_values_and_units_over_tcp(kind: str, transports: Transports) -> None:
    async with eastron_tcp(emulated(kind, 7)) as emu:
        meter = driver(kind, emu, transports, device_id=7)
        await meter.start()
        assert await meter.read() == EXPECTED[kind]
        assert meter.description == f"{kind.upper()} #7 on {emu.url}"
        reads = [(r.address, r.count) for r in emu.requests_to(7) if r.function_code == 4]
        assert reads[-len(meter.MODEL.plan) :] == [(s.address, s.count) for s in meter.MODEL.plan]


@pytest.mark.parametrize("kind", ["sdm630", "sdm120", "sdm72"])
async def test_values_and_units_over_rtu(kind: str, tmp_path: Path, transports: Transports) -> None:
    async with eastron_rtu(tmp_path, emulated(kind, 2), baudrate=19200) as emu:
        meter = driver(kind, emu, transports, device_id=2)
        assert await meter.read() == EXPECTED[kind]
        emu.meter(2).set(energy_kwh=1300.25)
        assert (await meter.read()).energy_wh == 1300250.0


async def test_rtu_frames_over_tcp(transports: Transports) -> None:
    async with eastron_tcp(emulated("sdm630"), rtu_framing=True) as emu:
        assert emu.url.startswith("rtu+tcp://")
        assert await driver("sdm630", emu, transports).read() == EXPECTED["sdm630"]


# -- one bus, several meters -----------------------------------------------------------------------


async def test_two_meters_on_one_rtu_bus_share_one_client_and_never_overlap(
    tmp_path: Path, transports: Transports
) -> None:
    async with eastron_rtu(tmp_path, emulated("sdm630", 1), emulated("sdm120", 2)) as emu:
        emu.latency_s = 0.01  # a meter's answer takes time: overlapping requests would be seen at once
        # The same bus, written differently in the two meter blocks.
        other_spelling = emu.url.replace("?baudrate=9600&parity=N", "?parity=n&stopbits=1&baudrate=9600")
        three_phase = Sdm630(EastronOptions("sdm630", emu.url, 1), transports)
        one_phase = Sdm120(EastronOptions("sdm120", other_spelling, 2), transports)
        assert three_phase.bus is one_phase.bus

        for _ in range(4):
            readings = await asyncio.gather(three_phase.read(), one_phase.read(), three_phase.read())
            assert list(readings) == [EXPECTED["sdm630"], EXPECTED["sdm120"], EXPECTED["sdm630"]]

        assert emu.max_in_flight == 1
        heard = sorted(emu.requests, key=lambda r: r.started)
        assert all(later.started >= earlier.finished for earlier, later in itertools.pairwise(heard))
        assert {r.device_id for r in heard} == {1, 2}
        assert len(heard) == 4 * (2 * 3 + 4)


async def test_the_overlap_check_can_fail(transports: Transports) -> None:
    """Control for the test above: two clients on a TCP gateway do overlap, and the emulator sees it."""
    async with eastron_tcp(emulated("sdm630", 1), emulated("sdm630", 2)) as emu:
        emu.latency_s = 0.05
        first, second = ModbusBus(emu.url), ModbusBus(emu.url)
        try:
            await asyncio.gather(first.read_input_registers(1, 0, 2), second.read_input_registers(2, 0, 2))
        finally:
            await first.close()
            await second.close()
        assert emu.max_in_flight == 2


# -- faults ----------------------------------------------------------------------------------------


async def test_silent_device_is_unreachable_in_bounded_time_and_recovers(
    tmp_path: Path, transports: Transports
) -> None:
    async with eastron_rtu(tmp_path, emulated("sdm630", 1), emulated("sdm120", 2)) as emu:
        silent = driver("sdm630", emu, transports, 1, timeout_s=0.3)
        neighbour = driver("sdm120", emu, transports, 2, timeout_s=0.3)
        assert await silent.read() == EXPECTED["sdm630"]

        emu.meter(1).silent = True
        started = time.monotonic()
        with pytest.raises(DeviceUnreachable) as caught:
            await silent.read()
        elapsed = time.monotonic() - started
        assert 0.25 < elapsed < 0.8  # one deadline: no retries stacked on it
        assert f"device 1 on {silent.bus.url}" in str(caught.value)
        assert "no answer within 0.3 s" in str(caught.value)
        assert await neighbour.read() == EXPECTED["sdm120"]  # the bus is not wedged by the silent one

        emu.meter(1).silent = False
        assert await silent.read() == EXPECTED["sdm630"]


async def test_gateway_reporting_a_silent_device(transports: Transports) -> None:
    async with eastron_tcp(emulated("sdm630", 1), gateway=True) as emu:
        meter = driver("sdm630", emu, transports)
        emu.meter(1).silent = True
        with pytest.raises(
            DeviceUnreachable, match="exception 11, the gateway got no answer from the device"
        ):
            await meter.read()
        with pytest.raises(DeviceUnreachable, match="exception 11"):
            await driver("sdm630", emu, transports, device_id=9).read()  # nobody has id 9
        emu.meter(1).silent = False
        assert await meter.read() == EXPECTED["sdm630"]


async def test_gateway_restart_reconnects(transports: Transports) -> None:
    meter_state = emulated("sdm72")
    async with eastron_tcp(meter_state) as emu:
        meter = driver("sdm72", emu, transports, timeout_s=0.5)
        assert await meter.read() == EXPECTED["sdm72"]
        port = int(emu.url.rsplit(":", 1)[1])
    # Give the client the moment it takes to see the connection closed (a request sent just before
    # that costs one timeout: it is lost with the connection).
    await asyncio.sleep(0.05)
    started = time.monotonic()
    with pytest.raises(DeviceUnreachable, match="cannot connect"):
        await meter.read()
    assert time.monotonic() - started < 0.5
    async with eastron_tcp(meter_state, port=port):
        assert await meter.read() == EXPECTED["sdm72"]


async def test_nothing_listening_and_no_serial_device(transports: Transports) -> None:
    url = f"tcp://127.0.0.1:{free_port()}"
    with pytest.raises(
        DeviceUnreachable, match=f"device 1 on {url}, read input registers .*: cannot connect"
    ):
        await Sdm630(EastronOptions("sdm630", url), transports).read()
    with pytest.raises(DeviceUnreachable, match="no serial device /dev/ttyNOTHERE"):
        await Sdm630(EastronOptions("sdm630", "rtu:///dev/ttyNOTHERE"), transports).start()


async def test_wrong_model_or_register_is_refused(transports: Transports) -> None:
    async with eastron_tcp(emulated("sdm72", 1)) as emu:
        wrong_model = driver("sdm630", emu, transports)
        with pytest.raises(
            DeviceRefused, match=r"read input registers 0x0000..0x000B: exception 2, illegal data"
        ):
            await wrong_model.start()
        with pytest.raises(DeviceRefused, match=r"0x0034\.\.0x0037: exception 2"):  # 0x0036 is none
            await wrong_model.bus.read_input_registers(1, 0x0034, 4)


async def test_a_cancelled_read_does_not_leave_its_answer_for_the_next(transports: Transports) -> None:
    async with eastron_tcp(emulated("sdm630", 1)) as emu:
        meter = driver("sdm630", emu, transports)
        emu.latency_s = 0.3
        task = asyncio.create_task(meter.bus.read_input_registers(1, 0x0048, 2))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        emu.latency_s = 0.0
        assert await meter.read() == EXPECTED["sdm630"]
        await asyncio.sleep(0.3)  # the late answer to the cancelled request would arrive by now
        assert await meter.read() == EXPECTED["sdm630"]


async def test_holding_registers_and_function_codes(transports: Transports) -> None:
    async with eastron_tcp(emulated("sdm630", 1)) as emu:
        bus = transports.modbus(emu.url)
        thirty = AsyncModbusTcpClient.convert_to_registers(30.0, FLOAT32)
        assert decode_float32(await bus.read_holding_registers(1, 0x0002, 2)) == [60.0]  # demand period
        await bus.write_registers(1, 0x0002, thirty)
        assert await bus.read_holding_registers(1, 0x0002, 2) == thirty
        with pytest.raises(DeviceRefused, match="exception 1, illegal function"):
            await bus.write_register(1, 0x0002, 5)  # Eastron meters take FC16 only
        with pytest.raises(DeviceRefused, match=r"device id is 1\.\.255, not 0"):
            await bus.read_input_registers(0, 0, 2)


# -- end to end ------------------------------------------------------------------------------------


async def test_session_energy_comes_from_the_meter(csms: StrictCentralSystem, tmp_path: Path) -> None:
    meter_state = emulated("sdm630")
    meter_state.set(energy_kwh=1234.5)
    async with eastron_tcp(meter_state) as emu:
        config = make_config(
            csms.url,
            tmp_path,
            charger={"initial_energy_wh": 5000},
            meter={"type": "sdm630", "modbus": emu.url, "device_id": 1},
        )
        async with running(config) as daemon:
            await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)
            metered: Any = daemon.charge_points["CP-1"].connectors[1].charger
            sim = metered.charger  # the simulated charger inside the MeteredCharger
            sim.plug()
            await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Preparing")
            sim.tap("TAG-1")
            start = await csms.wait_for_call("CP-1", "StartTransaction")
            await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Charging")

            meter_state.set(energy_kwh=1236.75)
            heard = len(emu.requests)
            await csms.wait_until(lambda: len(emu.requests) >= heard + 2 * 3, what="two more meter reads")
            sim.tap("TAG-1")
            stop = await csms.wait_for_call("CP-1", "StopTransaction")
    assert start["meterStart"] == 1234500  # the meter's register in Wh, not the charger's 5000
    assert stop["meterStop"] == 1236750


def test_config_yaml_round_trip_of_a_meter_block(tmp_path: Path) -> None:
    """The block as the docs show it (a YAML mapping) is accepted with every option."""
    block: dict[str, Any] = {
        "type": "sdm120",
        "modbus": "rtu:///dev/ttyUSB0?baudrate=2400",
        "device_id": 3,
        "timeout_s": 0.8,
    }
    doc = {
        "state_dir": str(tmp_path),
        "charge_points": [
            {"id": "CP-1", "csms_url": "ws://127.0.0.1:9/ocpp", "connectors": [
                {"id": 1, "charger": {"type": "simulated"}, "meter": block},
            ]},
        ],
    }  # fmt: skip
    meter = parse_config(yaml.safe_dump(doc)).charge_points[0].connectors[0].meter
    assert meter is not None and meter.options == EastronOptions(**block)
