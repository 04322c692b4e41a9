"""Eastron SDM630 / SDM120 / SDM72 meters on a Modbus bus, emulated with a pymodbus server.

The register maps are written out here from devices.md §4, on purpose not
taken from adapters/meters/eastron.py: a wrong address or word order in the driver
must show up as a failing test, not be copied into its own emulator. Values
are encoded with pymodbus's converter, again independent of the driver's
decoder.

What is emulated, as the meters do it:
- measurements are input registers (function code 04), float32, high word
  first, at the documented addresses; a register outside the documented map
  is answered with exception 2 (illegal address) (no run of documented
  registers is longer than the meters' limit of 80 per request, so that
  limit needs no rule of its own);
- holding registers (03 read, 16 write) for the configuration: demand
  period (0x0002) and system type (0x000A); other function codes get
  exception 1;
- several meters on one bus, each with its own device id; a device id that
  nobody has stays silent (pymodbus would answer exception 4: the reply is
  dropped on its way out), and a meter can be made silent for fault tests;
- over TCP (a Modbus TCP gateway or a meter with Ethernet), over TCP with
  RTU framing (a serial server in transparent mode), and over RTU on one end
  of a socat pseudo-terminal pair; in "gateway" mode a silent device is
  answered with exception 11 (gateway target failed to respond), as Modbus
  TCP gateways do.

The emulator records every request a meter hears and the most requests it
ever had in hand at once (with `latency_s`, the time a meter takes to
answer, requests that overlap are caught).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.constants import ExcCodes
from pymodbus.simulator import DataType, SimAction, SimData, SimDevice

from tests.emulators.modbus_serving import serving_rtu, serving_tcp
from tests.emulators.shelly import EvLoad

FLOAT32 = AsyncModbusTcpClient.DATATYPE.FLOAT32

# Input registers per model: quantity name → address (devices.md §4). Names with a phase suffix are
# per phase; "power" is the total (SDM630, SDM72) or the only phase's power (SDM120).
_SDM630_QUANTITIES = {
    "voltage_l1": 0x0000,
    "voltage_l2": 0x0002,
    "voltage_l3": 0x0004,
    "current_l1": 0x0006,
    "current_l2": 0x0008,
    "current_l3": 0x000A,
    "power_l1": 0x000C,
    "power_l2": 0x000E,
    "power_l3": 0x0010,
    "power": 0x0034,
    "frequency": 0x0046,
    "import_kwh": 0x0048,
    "export_kwh": 0x004A,
    "total_kwh": 0x0156,
}
# Documented parameters the tests do not set: they read as 0.
_SDM630_OTHERS = (
    *range(0x0012, 0x0024, 2),  # VA, VAr, power factor per phase
    0x0038,  # total VA
    0x003C,  # total VAr
    0x003E,  # total power factor
    0x004C,  # import kVArh
    0x004E,  # export kVArh
    *range(0x015A, 0x0166, 2),  # import and export kWh per phase
)
_SDM120_QUANTITIES = {
    "voltage_l1": 0x0000,
    "current_l1": 0x0006,
    "power": 0x000C,
    "frequency": 0x0046,
    "import_kwh": 0x0048,
    "export_kwh": 0x004A,
    "total_kwh": 0x0156,
}
_SDM120_OTHERS = (0x0012, 0x0018, 0x001E)  # VA, VAr, power factor
_SDM72_QUANTITIES = {"power": 0x0034, "import_kwh": 0x0048, "export_kwh": 0x004A, "total_kwh": 0x0156}

MODELS: dict[str, tuple[dict[str, int], tuple[int, ...]]] = {
    "sdm630": (_SDM630_QUANTITIES, _SDM630_OTHERS),
    "sdm120": (_SDM120_QUANTITIES, _SDM120_OTHERS),
    "sdm72": (_SDM72_QUANTITIES, ()),
}
# Holding registers (configuration), float32: demand period in minutes, system type (3 = 3-phase 4-wire).
DEMAND_PERIOD = 0x0002
SYSTEM_TYPE = 0x000A


@dataclass(frozen=True)
class Request:
    device_id: int
    function_code: int
    address: int
    count: int
    started: float  # time.monotonic()
    finished: float


class EmulatedMeter:
    """One meter: its model, device id and the values its registers show."""

    def __init__(self, model: str = "sdm630", device_id: int = 1) -> None:
        if model not in MODELS:
            raise ValueError(f"unknown model {model!r}")
        self.model = model
        self.device_id = device_id
        self.silent = False  # True: hears requests, answers none (a broken wire, a wrong baud rate)
        self.quantities, self._others = MODELS[model]
        self.values: dict[str, float] = dict.fromkeys(self.quantities, 0.0)
        defaults = {"voltage": 230.0, "frequency": 50.0}
        for name in self.values:
            self.values[name] = defaults.get(name.partition("_")[0], 0.0)
        self._load: EvLoad | None = None  # what the meter measures, when it follows a load
        self._load_wh_at_start = 0.0
        self._energy_kwh_at_start = 0.0
        # What the registers showed at each read, in order: import energy in Wh, power in W.
        self.reported_energy_wh: list[float] = []
        self.reported_power_w: list[float] = []

    def set(
        self,
        *,
        energy_kwh: float | None = None,
        power_w: float | None = None,
        voltage_v: Sequence[float] | None = None,
        current_a: Sequence[float] | None = None,
        frequency_hz: float | None = None,
    ) -> None:
        """Changes what the registers show from the next request on (per phase values L1, L2, L3)."""
        if energy_kwh is not None:
            self._put("import_kwh", energy_kwh)
            self._put("total_kwh", energy_kwh + self.values["export_kwh"])
        if power_w is not None:
            self._put("power", power_w)
        for kind, per_phase in (("voltage", voltage_v), ("current", current_a)):
            if per_phase is not None:
                for phase, value in enumerate(per_phase, start=1):
                    self._put(f"{kind}_l{phase}", value)
        if frequency_hz is not None:
            self._put("frequency", frequency_hz)

    def measure(self, load: EvLoad, *, energy_kwh: float) -> None:
        """From now on the registers show what flows to `load` (a wallbox on L1, behind a relay):
        its power, current and voltage, and the energy it draws added to `energy_kwh`, counted in
        whole steps of 0.01 kWh as the meter's display does."""
        self._load = load
        self._load_wh_at_start = load.energy_wh
        self._energy_kwh_at_start = energy_kwh

    def _follow_load(self) -> None:
        load = self._load
        if load is None:
            return
        steps = int((load.energy_wh - self._load_wh_at_start) // 10)  # 0.01 kWh each
        self.set(energy_kwh=round(self._energy_kwh_at_start + steps / 100, 2), power_w=round(load.power_w, 1))
        if "current_l1" in self.quantities:
            self.set(current_a=[round(load.current_a, 3)], voltage_v=[round(load.voltage_v, 1)])

    def _put(self, name: str, value: float) -> None:
        if name not in self.quantities:
            raise ValueError(f"an {self.model} has no {name} register")
        self.values[name] = value

    def device(self, action: SimAction) -> SimDevice:
        """The pymodbus device: input and holding tables (one coil and one discrete input for pymodbus)."""
        inputs = [SimData(a, values=0.0, datatype=DataType.FLOAT32) for a in self.quantities.values()]
        inputs += [SimData(a, values=0.0, datatype=DataType.FLOAT32) for a in self._others]
        holding = [
            SimData(DEMAND_PERIOD, values=60.0, datatype=DataType.FLOAT32),
            SimData(SYSTEM_TYPE, values=3.0, datatype=DataType.FLOAT32),
        ]
        bits = [SimData(0, values=False, datatype=DataType.BITS)]
        return SimDevice(self.device_id, (bits, list(bits), holding, inputs), action=action)

    def write_into(self, start_address: int, registers: list[int]) -> None:
        """Puts the current values into pymodbus's input table (which starts at `start_address`)."""
        self._follow_load()
        self.reported_energy_wh.append(round(self.values["import_kwh"] * 1000, 3))
        self.reported_power_w.append(self.values["power"])
        for name, address in self.quantities.items():
            offset = address - start_address
            registers[offset : offset + 2] = AsyncModbusTcpClient.convert_to_registers(
                self.values[name], FLOAT32
            )


@dataclass
class EastronEmulator:
    """A bus of emulated meters; `url` is what a driver's `modbus:` option names."""

    meters: dict[int, EmulatedMeter]
    gateway: bool = False  # TCP only: a silent device is answered with exception 11, not silence
    latency_s: float = 0.0  # how long a meter takes to answer
    url: str = ""
    requests: list[Request] = field(default_factory=list)
    max_in_flight: int = 0
    _in_flight: int = 0
    unit_id_offset: int = 6  # where the device id sits in a frame: 6 (after the MBAP header) or 0 (RTU)

    def meter(self, device_id: int = 1) -> EmulatedMeter:
        return self.meters[device_id]

    def requests_to(self, device_id: int) -> list[Request]:
        return [r for r in self.requests if r.device_id == device_id]

    def devices(self) -> list[SimDevice]:
        devices = [m.device(partial(self._action, m.device_id)) for m in self.meters.values()]
        # Device id 0 stands for every id nobody has (pymodbus would log a traceback and answer 4).
        nobody = SimDevice(
            0, [SimData(0, values=0, datatype=DataType.REGISTERS)], action=partial(self._action, 0)
        )
        return [*devices, nobody]

    async def _action(
        self,
        device_id: int,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """Called by pymodbus for every request that got past its address check, before it answers."""
        started = time.monotonic()
        self._in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            if self.latency_s:
                await asyncio.sleep(self.latency_s)
            meter = self.meters.get(device_id)
            if function_code not in (3, 4, 16):
                return ExcCodes.ILLEGAL_FUNCTION
            if meter is not None and function_code == 4:
                meter.write_into(start_address, registers)
            return None
        finally:
            self._in_flight -= 1
            self.requests.append(Request(device_id, function_code, address, count, started, time.monotonic()))

    def _silence(self, sending: bool, packet: bytes) -> bytes:
        """pymodbus's hook on every packet: replies of absent or silent devices never leave, or, from
        a gateway, become exception 11 (the gateway's own timeout is not waited for)."""
        if not sending or len(packet) <= self.unit_id_offset + 1:
            return packet
        unit = packet[self.unit_id_offset]
        meter = self.meters.get(unit)
        if meter is not None and not meter.silent:
            return packet
        if not self.gateway:
            return b""
        function_code = packet[self.unit_id_offset + 1] & 0x7F
        # MBAP header: transaction id, protocol id, length of what follows (unit, function, code).
        return packet[:4] + (3).to_bytes(2, "big") + bytes([unit, function_code | 0x80, 11])


@contextlib.asynccontextmanager
async def eastron_tcp(
    *meters: EmulatedMeter, gateway: bool = False, rtu_framing: bool = False, port: int = 0
) -> AsyncIterator[EastronEmulator]:
    """Meters behind a Modbus TCP server on loopback, on a free port unless `port` is given (a restart);
    rtu_framing: a transparent serial server."""
    if gateway and rtu_framing:
        raise ValueError("a transparent serial server forwards frames; it does not answer for devices")
    emulator = EastronEmulator(
        {m.device_id: m for m in meters}, gateway=gateway, unit_id_offset=0 if rtu_framing else 6
    )
    serving = serving_tcp(
        emulator.devices(), rtu_framing=rtu_framing, port=port, trace_packet=emulator._silence
    )
    async with serving as (emulator.url, _):
        yield emulator


@contextlib.asynccontextmanager
async def eastron_rtu(
    tmp_path: Path, *meters: EmulatedMeter, baudrate: int = 9600
) -> AsyncIterator[EastronEmulator]:
    """Meters on one end of a socat pseudo-terminal pair; `url` names the other end (parity N: see
    libraries.md §5)."""
    emulator = EastronEmulator({m.device_id: m for m in meters}, unit_id_offset=0)
    serving = serving_rtu(tmp_path, emulator.devices(), baudrate=baudrate, trace_packet=emulator._silence)
    async with serving as emulator.url:
        yield emulator
