"""A KEBA KeContact P30 c-/x-series or P40 speaking Modbus TCP, on a real pymodbus server on loopback.

It follows the published register map (adapters/chargers/keba_modbus_api.py, docs/devices/keba-modbus.md):
- unit id 255; function code 03 reads one UINT32 (count 2, high word first) at a documented read
  register, 06 writes one UINT16 at a documented write register; anything else is refused: another
  function code with exception 1, an undocumented register, a read of other than 2 registers or a
  write to a read register with exception 2, a value out of its documented range with exception 3
  (as is an unlock while not suspended, and a phase switch while 1550 does not give it to Modbus);
- pacing: a read less than `read_gap_s` (0.5 s) after the last read, or a write less than
  `write_gap_s` (5 s) after the last write, is answered with exception 6 (device busy) and recorded in
  `pacing_violations`. The guides ask for the gaps but do not say what the box answers; busy is this
  emulator's choice, so that a driver that does not pace fails visibly;
- states: 1000 = 1 without a vehicle, 2 ready, 3 charging, 4 error (1006 has the code), 5 suspended
  (5014 = 0 on a P30, 5004 = 0 on a P40, or the failsafe with current 0); 1004 = 0/1 no vehicle
  (socket/tethered), 5 in the vehicle, 7 in the vehicle and locked;
- energy 1036 in 0.1 Wh (a P40 before firmware 1.2.1: Wh), power 1020 in mW, currents in mA, voltages
  in V (0 unless charging);
- failsafe: after 5018 is set, the box expects it written again within that many seconds; when it is
  not, it applies the failsafe current 5016 (0: suspends) until the next write of 5018.
A unit id other than the box's gets no answer at all. `silent`: the box hears and answers nothing.
The test side drives the vehicle (`plug`, `unplug`, `ev_wants`), a card (`tap`), faults (`error_code`).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.simulator import DataType, SimData, SimDevice

from adapters.chargers import keba_modbus_api as api
from tests.emulators.modbus_serving import TcpDeviceServer, started

FIRST, LAST = 1000, 5300  # the served block; the action refuses what the map does not document
P30_C_SERIES = 302121  # P30, socket, 16 A, c-series, MID meter, RFID
P30_X_TETHERED = 312021  # P30, tethered cable, 16 A, x-series, MID meter, RFID
# P40: family 4, then codes for current, connector (not 1: a socket), phases, meter, RFID, button
P40 = 4021211
VOLTS = 230


@dataclass(frozen=True)
class Access:
    function_code: int
    register: int
    value: int | None  # written, or read (None: refused)
    at: float  # time.monotonic()


@dataclass
class KebaBox:
    product: int = P30_C_SERIES
    firmware: int = 0x030A2A00  # 3.10.42
    serial: int = 18416854
    unit_id: int = api.UNIT_ID
    max_supported_ma: int = 16000
    phase_source: int = api.PHASE_SOURCE_MODBUS
    read_gap_s: float = 0.5
    write_gap_s: float = 5.0
    time_scale: float = 1.0  # energy flows this many times faster than real time
    ev_max_a: float = 16.0  # the vehicle draws at most this much per phase
    # what happens at the box
    plugged: bool = False
    ev_wants: bool = True  # the vehicle asks for energy once allowed
    error_code: int = 0
    rfid: int = 0
    silent: bool = False
    # what the box was told
    enabled: bool = True
    current_ma: int = 16000
    three_phases: bool = True
    unlocked: bool = False
    failsafe_current_ma: int = 0
    failsafe_timeout_s: int = 0
    failsafe_persisted: bool = False
    energy: int = 123456789  # the register's units (0.1 Wh)
    # records
    accesses: list[Access] = field(default_factory=list)
    pacing_violations: list[Access] = field(default_factory=list)
    reported_energy_wh: list[float] = field(default_factory=list)
    reported_power_w: list[float] = field(default_factory=list)
    _last_read: float = -1e9
    _last_write: float = -1e9
    _refreshed_at: float | None = None  # monotonic time of the last write of 5018
    _flow_at: float = field(default_factory=time.monotonic)

    # -- the test's side --
    def plug(self) -> None:
        self._flow()
        self.plugged, self.unlocked = True, False

    def unplug(self) -> None:
        self._flow()
        self.plugged, self.rfid = False, 0

    def tap(self, uid: int) -> None:
        """A card authorised the session: 1500 shows its first four UID bytes."""
        self.rfid = uid

    @property
    def family(self) -> str:
        return "P40" if str(self.product).startswith("4") else "P30"

    @property
    def fixed_cable(self) -> bool:
        return api.ProductCode.parse(self.product).fixed_cable

    @property
    def failsafe_active(self) -> bool:
        if not self.failsafe_timeout_s or self._refreshed_at is None:
            return False
        return time.monotonic() - self._refreshed_at > self.failsafe_timeout_s

    def offered_ma(self) -> int:
        """The current the box offers now."""
        if self.failsafe_active:
            return self.failsafe_current_ma
        current = self.current_ma if (self.enabled or self.family == "P40") else 0
        return min(current, self.max_supported_ma)

    def state(self) -> int:
        if self.error_code:
            return api.STATE_ERROR
        if not self.plugged:
            return api.STATE_NOT_READY
        if self.offered_ma() == 0:
            return api.STATE_SUSPENDED
        return api.STATE_CHARGING if self.ev_wants else api.STATE_READY

    def charging(self) -> bool:
        return self.state() == api.STATE_CHARGING

    def cable(self) -> int:
        if not self.plugged:
            return api.CABLE_AT_STATION if self.fixed_cable else api.CABLE_NONE
        return api.CABLE_IN_EV if self.unlocked else api.CABLE_IN_EV_LOCKED

    def currents_ma(self) -> list[int]:
        if not self.charging():
            return [0, 0, 0]
        amps = min(self.offered_ma(), int(self.ev_max_a * 1000))
        return [amps, amps, amps] if self.three_phases else [amps, 0, 0]

    def power_mw(self) -> int:
        return sum(ma * VOLTS for ma in self.currents_ma())  # mA x V = mW

    def energy_unit_wh(self) -> float:
        return api.energy_unit_wh(self.family, self.firmware)

    def _flow(self) -> None:
        now = time.monotonic()
        wh = self.power_mw() / 1000 * (now - self._flow_at) * self.time_scale / 3600
        self.energy += int(wh / self.energy_unit_wh())
        self._flow_at = now

    # -- the register map --
    def _value(self, register: int) -> int:
        self._flow()
        if register == api.REG_STATE:
            return self.state()
        if register == api.REG_CABLE:
            return self.cable()
        if register == api.REG_ERROR:
            return self.error_code
        if register in api.REG_CURRENTS:
            return self.currents_ma()[api.REG_CURRENTS.index(register)]
        if register in api.REG_VOLTAGES:
            return VOLTS if self.charging() else 0
        if register == api.REG_POWER:
            self.reported_power_w.append(self.power_mw() / 1000)
            return self.power_mw()
        if register == api.REG_ENERGY:
            self.reported_energy_wh.append(round(self.energy * self.energy_unit_wh(), 1))
            return self.energy
        fixed = {
            api.REG_SERIAL: self.serial, api.REG_PRODUCT: self.product, api.REG_FIRMWARE: self.firmware,
            api.REG_MAX_SUPPORTED: self.max_supported_ma, 1100: self.max_supported_ma,
            api.REG_RFID: self.rfid, api.REG_PHASE_SOURCE: self.phase_source,
            api.REG_FAILSAFE_CURRENT: self.failsafe_current_ma,
            api.REG_FAILSAFE_TIMEOUT: self.failsafe_timeout_s,
            api.REG_PHASE_STATE: self._phase_state(),
        }  # fmt: skip
        return fixed.get(register, 0)

    def _phase_state(self) -> int:
        if self.family == "P40":
            return 3 if self.three_phases else 1
        return int(self.three_phases)

    def _write(self, register: int, value: int) -> ExcCodes | None:
        """Carries out a write; the exception code of a refusal."""
        self._flow()
        p40 = self.family == "P40"
        if register == api.REG_SET_CURRENT:
            top = api.CURRENT_MAX_MA[self.family]
            if not (api.CURRENT_MIN_MA <= value <= top or (p40 and value == 0)):
                return ExcCodes.ILLEGAL_VALUE
            self.current_ma = value
        elif register == api.REG_ENABLE and not p40:
            if value not in (0, 1):
                return ExcCodes.ILLEGAL_VALUE
            self.enabled = bool(value)
        elif register == api.REG_UNLOCK:
            if self.state() != api.STATE_SUSPENDED or self.fixed_cable:
                return ExcCodes.ILLEGAL_VALUE
            self.unlocked = True
        elif register == api.REG_SET_FAILSAFE_CURRENT:
            if value != 0 and not api.CURRENT_MIN_MA <= value <= api.FAILSAFE_CURRENT_MAX_MA:
                return ExcCodes.ILLEGAL_VALUE
            self.failsafe_current_ma = value
        elif register == api.REG_SET_FAILSAFE_TIMEOUT:
            low, high = api.FAILSAFE_TIMEOUT_RANGE_S
            if value != 0 and not low <= value <= high:
                return ExcCodes.ILLEGAL_VALUE
            self.failsafe_timeout_s, self._refreshed_at = value, time.monotonic()
        elif register == api.REG_FAILSAFE_PERSIST:
            if value not in (0, 1):
                return ExcCodes.ILLEGAL_VALUE
            self.failsafe_persisted = bool(value)
        elif register == api.REG_SWITCH_PHASES:
            if value not in (0, 1) or self.phase_source != api.PHASE_SOURCE_MODBUS:
                return ExcCodes.ILLEGAL_VALUE
            self.three_phases = bool(value)
        elif register == api.REG_SET_PHASE_SOURCE:
            if value not in (0, 1, 2, 3):
                return ExcCodes.ILLEGAL_VALUE
            self.phase_source = value
        elif register == api.REG_SET_ENERGY or (register == api.REG_FAST_CHARGING and p40):
            pass  # taken, not modelled
        else:
            return ExcCodes.ILLEGAL_ADDRESS
        return None

    def writes(self, register: int) -> list[int]:
        """Every value written to `register` and taken, in order."""
        return [
            a.value
            for a in self.accesses
            if a.function_code == 6 and a.register == register and a.value is not None
        ]

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
        if function_code == 6 and set_values is None:
            return None  # pymodbus reading back what a write set, for its answer
        now = time.monotonic()
        if function_code == 3:
            if address not in api.READ_REGISTERS or count != api.READ_COUNT:
                return self._refused(3, address, ExcCodes.ILLEGAL_ADDRESS, now)
            if now - self._last_read < self.read_gap_s:
                self._last_read = now
                return self._refused(3, address, ExcCodes.DEVICE_BUSY, now, pacing=True)
            self._last_read = now
            value = self._value(address)
            offset = address - start_address
            registers[offset : offset + 2] = api.to_registers(value)
            self.accesses.append(Access(3, address, value, now))
            return None
        if function_code == 6 and set_values is not None:
            value = int(set_values[0])
            if address not in api.WRITE_REGISTERS:
                return self._refused(6, address, ExcCodes.ILLEGAL_ADDRESS, now)
            if now - self._last_write < self.write_gap_s:
                self._last_write = now
                return self._refused(6, address, ExcCodes.DEVICE_BUSY, now, pacing=True)
            self._last_write = now
            refused = self._write(address, value)
            if refused is not None:
                return self._refused(6, address, refused, now)
            self.accesses.append(Access(6, address, value, now))
            return None
        return self._refused(function_code, address, ExcCodes.ILLEGAL_FUNCTION, now)

    def _refused(
        self, function_code: int, address: int, code: ExcCodes, now: float, *, pacing: bool = False
    ) -> ExcCodes:
        access = Access(function_code, address, None, now)
        self.accesses.append(access)
        if pacing:
            self.pacing_violations.append(access)
        return code

    def _on_packet(self, sending: bool, packet: bytes) -> bytes:
        """Replies of a silent box, or to another unit id, never leave."""
        if sending and len(packet) > 6 and (self.silent or packet[6] != self.unit_id):
            return b""
        return packet

    def _sim_devices(self) -> list[SimDevice]:
        def block() -> list[SimData]:
            return [SimData(FIRST, count=LAST - FIRST, values=0, datatype=DataType.REGISTERS)]

        async def nobody(*_: Any) -> ExcCodes | None:
            return None  # its reply is dropped by _on_packet

        return [
            SimDevice(self.unit_id, block(), action=partial(KebaBox._action, self)),
            SimDevice(0, block(), action=nobody),
        ]


class KebaModbusEmulator(TcpDeviceServer):
    """The box behind a Modbus TCP server on loopback (TcpDeviceServer: stop and start make an outage)."""

    def __init__(self, box: KebaBox) -> None:
        super().__init__(box._sim_devices, box._on_packet)
        self.box = box


def keba_modbus(box: KebaBox) -> contextlib.AbstractAsyncContextManager[KebaModbusEmulator]:
    """The box served on a free loopback port, stopped at the end."""
    return started(KebaModbusEmulator(box))
