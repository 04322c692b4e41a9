"""A Phoenix Contact EV-CC-…-ETH (Wallbe) or EM-CP-PP-ETH charge controller speaking Modbus TCP, on a
real pymodbus server on loopback.

It follows the published register map (adapters/chargers/phoenix_api.py, devices.md §5.3):
- unit id 255 (EV-CC) or 180 (EM-CP-PP); a request for another unit id gets no answer at all;
- input 100 (function 04): the IEC 61851 state letter in the low byte: A no vehicle, B a vehicle that
  is not charging (coil off, or it asks for nothing), C charging, E/F when the test sets `error`;
- coil 400 (01 reads, 05 writes): charging enabled;
- the current register (03 reads, 06 writes): 528 on an EV-CC in A, or in 0.1 A with the Wallbe
  firmware (`wallbe`); 300 on an EM-CP-PP in A;
- meter, only where `meter` is wired, every 32-bit value two registers, low word first: inputs 108..119
  voltages and currents, 120 power, in V, A, W on an EV-CC (evcc reads them unscaled there) and in
  0.01 V, 0.001 A, 10 W on an EM-CP-PP; energy in holding 904/905 (uint32, Wh) on an EV-CC with
  Phoenix's firmware, in 904 alone (16 bits: the low 16 bits of the Wh, so it wraps) and in holding
  2980..2983 (uint64 Wh, lowest word first) with Wallbe's, in input 128 (0.01 kWh) on an EM-CP-PP;
  102 charge time (s) on an EM-CP-PP.
Error replies: a function code other than 01, 03, 04, 05, 06 → exception 1; a register the map does
not document (or a meter register with no meter wired) → 2; a current outside 6 A..`max_current_a`,
or a coil value other than on/off → 3. The sources document no pacing rule, so there is none here;
pymodbus answers one request after the other. `silent`: the box hears and answers nothing.
The test side drives the vehicle (`plug`, `unplug`, `ev_wants`) and faults (`error`).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.simulator import DataType, SimData, SimDevice

from adapters.chargers import phoenix_api as api
from tests.emulators.modbus_serving import TcpDeviceServer, started

VOLTS = 230
INPUTS = (100, 130)  # the served input block [first, last)
HOLDING = ((300, 906), (2980, 2984))  # the served holding blocks [first, last)
COILS = (400, 416)


@dataclass(frozen=True)
class Access:
    function_code: int
    register: int
    value: int | None  # written, or read (None: refused)
    at: float  # time.monotonic()


@dataclass
class PhoenixBox:
    model: str = "ev-cc"
    wallbe: bool = False  # the extended firmware: the current register counts 0.1 A
    meter: bool = True
    max_current_a: int = 32  # what the box's settings allow
    time_scale: float = 1.0  # energy flows this many times faster than real time
    ev_max_a: float = 32.0  # the vehicle draws at most this much per phase
    phases: int = 3
    # what happens at the box
    plugged: bool = False
    ev_wants: bool = True
    error: str = ""  # "E" or "F": the state the box reports
    silent: bool = False
    # what the box was told
    enabled: bool = True  # a box out of the factory charges a vehicle by itself
    current: int = 16  # the register's value (A, or 0.1 A with `wallbe`)
    energy_wh: float = 1234567.0
    charge_time_s: int = 0
    # records
    accesses: list[Access] = field(default_factory=list)
    reported_energy_wh: list[float] = field(default_factory=list)
    reported_power_w: list[float] = field(default_factory=list)
    _flow_at: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if self.wallbe and self.current < api.WALLBE_DECI_FROM:
            self.current *= 10

    @property
    def unit_id(self) -> int:
        return api.MODELS[self.model].unit_id

    @property
    def current_register(self) -> int:
        return api.MODELS[self.model].current_register

    # -- the test's side --
    def plug(self) -> None:
        self._flow()
        self.plugged = True

    def unplug(self) -> None:
        self._flow()
        self.plugged = False

    def current_a(self) -> float:
        return self.current / 10 if self.wallbe else float(self.current)

    def letter(self) -> str:
        if self.error:
            return self.error
        if not self.plugged:
            return "A"
        return "C" if self.enabled and self.ev_wants else "B"

    def charging(self) -> bool:
        return self.letter() == "C"

    def currents_a(self) -> list[float]:
        if not self.charging():
            return [0.0, 0.0, 0.0]
        amps = min(self.current_a(), self.ev_max_a)
        return [amps if i < self.phases else 0.0 for i in range(3)]

    def power_w(self) -> float:
        return sum(a * VOLTS for a in self.currents_a())

    def _flow(self) -> None:
        now = time.monotonic()
        self.energy_wh += self.power_w() * (now - self._flow_at) * self.time_scale / 3600
        if self.charging():
            self.charge_time_s += round((now - self._flow_at) * self.time_scale)
        self._flow_at = now

    def writes(self, function_code: int, register: int) -> list[int]:
        """Every value written with `function_code` to `register` and taken, in order."""
        return [
            a.value
            for a in self.accesses
            if a.function_code == function_code and a.register == register and a.value is not None
        ]

    # -- the register map --
    def _inputs(self) -> dict[int, int]:
        self._flow()
        values = {api.REG_STATUS: ord(self.letter())}
        if not self.meter:
            return values
        units = api.MODELS[self.model].units
        volts = [round(VOLTS / units.volt) if self.plugged else 0] * 3
        amps = [round(a / units.amp) for a in self.currents_a()]
        for first, series in ((api.REG_VOLTAGES, volts), (api.REG_CURRENTS, amps)):
            for i, value in enumerate(series):
                values.update(zip((first + 2 * i, first + 2 * i + 1), api.to_lsw(value), strict=True))
        values.update(zip((120, 121), api.to_lsw(self.power_units()), strict=True))
        if self.model == "em-cp-pp":
            values.update(zip((102, 103), api.to_lsw(self.charge_time_s), strict=True))
            values.update(zip((128, 129), api.to_lsw(int(self.energy_wh // 10)), strict=True))
        return values

    def power_units(self) -> int:
        return round(self.power_w() / api.MODELS[self.model].units.watt)

    def _holding(self) -> dict[int, int]:
        self._flow()
        values = {self.current_register: self.current}
        if self.model == "ev-cc" and self.meter:
            wh = int(self.energy_wh)
            if self.wallbe:
                values[904] = wh & 0xFFFF
                values.update(zip(range(2980, 2984), api.to_lsw64(wh), strict=True))
            else:
                values.update(zip((904, 905), api.to_lsw(wh), strict=True))
        return values

    def _record_reading(self, function_code: int, address: int, count: int) -> None:
        span = set(range(address, address + count))
        if function_code == 4 and {120, 121} <= span:
            self.reported_power_w.append(self.power_units() * api.MODELS[self.model].units.watt)
        if function_code == 4 and {128, 129} <= span:
            self.reported_energy_wh.append(float(int(self.energy_wh // 10) * 10))
        if function_code == 3 and ({904, 905} <= span or {2980, 2983} <= span):
            self.reported_energy_wh.append(float(int(self.energy_wh)))

    def _write_current(self, value: int) -> ExcCodes | None:
        unit = 10 if self.wallbe else 1
        if not api.CURRENT_MIN_A * unit <= value <= self.max_current_a * unit:
            return ExcCodes.ILLEGAL_VALUE
        self._flow()
        self.current = value
        return None

    # -- pymodbus's side --
    async def _action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        if function_code in (5, 6) and set_values is None:
            return None  # pymodbus reading back what a write set, for its answer
        now = time.monotonic()
        if function_code in (3, 4):
            table = self._inputs() if function_code == 4 else self._holding()
            wanted = range(address, address + count)
            if any(a not in table for a in wanted):
                return self._refused(function_code, address, ExcCodes.ILLEGAL_ADDRESS, now)
            offset = address - start_address
            registers[offset : offset + count] = [table[a] for a in wanted]
            self._record_reading(function_code, address, count)
            self.accesses.append(Access(function_code, address, table[address], now))
            return None
        if function_code == 1:
            if address != api.COIL_ENABLE or count != 1:
                return self._refused(1, address, ExcCodes.ILLEGAL_ADDRESS, now)
            word = address // 16 - start_address
            bit = 1 << (address % 16)
            registers[word] = (registers[word] | bit) if self.enabled else (registers[word] & ~bit)
            self.accesses.append(Access(1, address, int(self.enabled), now))
            return None
        if function_code == 5 and set_values is not None:
            if address != api.COIL_ENABLE:
                return self._refused(5, address, ExcCodes.ILLEGAL_ADDRESS, now)
            self._flow()
            self.enabled = bool(set_values[0])
            self.accesses.append(Access(5, address, int(self.enabled), now))
            return None
        if function_code == 6 and set_values is not None:
            value = int(set_values[0])
            if address != self.current_register:
                return self._refused(6, address, ExcCodes.ILLEGAL_ADDRESS, now)
            refused = self._write_current(value)
            if refused is not None:
                return self._refused(6, address, refused, now)
            self.accesses.append(Access(6, address, value, now))
            return None
        return self._refused(function_code, address, ExcCodes.ILLEGAL_FUNCTION, now)

    def _refused(self, function_code: int, address: int, code: ExcCodes, now: float) -> ExcCodes:
        self.accesses.append(Access(function_code, address, None, now))
        return code

    def _on_packet(self, sending: bool, packet: bytes) -> bytes:
        """Replies of a silent box, or to another unit id, never leave."""
        if sending and len(packet) > 6 and (self.silent or packet[6] != self.unit_id):
            return b""
        return packet

    def _sim_devices(self) -> list[SimDevice]:
        def tables() -> tuple[list[SimData], list[SimData], list[SimData], list[SimData]]:
            coils = [SimData(COILS[0], count=COILS[1] - COILS[0], values=False, datatype=DataType.BITS)]
            inputs = [SimData(INPUTS[0], count=INPUTS[1] - INPUTS[0], values=0, datatype=DataType.REGISTERS)]
            holding = [
                SimData(first, count=last - first, values=0, datatype=DataType.REGISTERS)
                for first, last in HOLDING
            ]
            return (coils, list(coils), holding, inputs)

        async def nobody(*_: Any) -> ExcCodes | None:
            return None  # its reply is dropped by _on_packet

        return [
            SimDevice(self.unit_id, tables(), action=partial(PhoenixBox._action, self)),
            SimDevice(0, tables(), action=nobody),
        ]


class PhoenixEmulator(TcpDeviceServer):
    """The box behind a Modbus TCP server on loopback (TcpDeviceServer: stop and start make an outage)."""

    def __init__(self, box: PhoenixBox) -> None:
        super().__init__(box._sim_devices, box._on_packet)
        self.box = box


def phoenix(box: PhoenixBox) -> contextlib.AbstractAsyncContextManager[PhoenixEmulator]:
    """The box served on a free loopback port, stopped at the end."""
    return started(PhoenixEmulator(box))
