"""A Victron EV Charging Station (EVCS) over Modbus TCP, on a real pymodbus server on loopback.

The register map is Victron's published one: the `com.victronenergy.evcharger` rows (3800..3841) of the
GX Modbus-TCP register list (CCGX-Modbus-TCP-register-list.xlsx, generated from `attributes.csv` in
github.com/victronenergy/dbus_modbustcp); evcc's `victron` driver reads the same registers on unit 100
(the EVCS's own Modbus TCP server; through a GX it is the EVCS's unit id there). In that list a value
on the wire is the physical value times the row's scale:
- 3814 MaxCurrent A (W), 3815 Mode 0 manual / 1 auto (W), 3816 Session/Energy uint32 kWh x100,
  3818..3820 Ac/L1..L3/Power W, 3821 Ac/Power W, 3822 ChargingTime s x0.01, 3823 Current A,
  3824 Status (0 disconnected, 1 connected, 2 charging, 3 charged, 4 waiting for sun, 5 waiting for
  RFID, 6 waiting for start, 7 low SOC, 8..14 faults: ground test, welded contacts, CP shorted,
  residual current, undervoltage, overvoltage, overheating; 20 charging limit, 21 start charging,
  22/23 switching to 3/1 phase, 24 stop charging), 3825 SetCurrent A (W), 3826 StartStop 0/1 (W),
  3827 Position, 3828 Session/Time uint32 s, 3836 Ac/Energy/Forward uint32 kWh x100 (the lifetime
  total). uint32 values high word first. All are holding registers (FC03 reads, FC06/FC16 writes).
- Refusals: a register outside the rows, a read-only row written, or another function code:
  exception 2 (illegal data address) / 1 (illegal function); a unit id that is not the EVCS's:
  exception 10 (gateway path unavailable), as the GX answers for a unit it does not map. SetCurrent
  above MaxCurrent, or a StartStop/Mode other than its listed values, is exception 3: the list gives
  the ranges but not the answer to a value outside them, so exception 3 is this emulator's choice.
- Manual mode (evcc requires it): StartStop starts and stops, SetCurrent sets the current. In auto
  mode the station follows its own (solar) logic, modelled here as "waiting for sun": writes are taken
  but nothing flows.
`silent`: the station answers nothing. The test drives the car (`plug`, `unplug`, `car_full`) and
faults (`fault = 11`).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.simulator import DataType, SimData, SimDevice

from tests.emulators.modbus_serving import TcpDeviceServer, started

UNIT_ID = 100
FIRST, LAST = 3800, 3842
REG_MAX_CURRENT, REG_MODE, REG_SESSION_ENERGY = 3814, 3815, 3816
REG_POWER_L1, REG_POWER, REG_CHARGING_TIME, REG_CURRENT = 3818, 3821, 3822, 3823
REG_STATUS, REG_SET_CURRENT, REG_START_STOP, REG_POSITION = 3824, 3825, 3826, 3827
REG_SESSION_TIME, REG_ENERGY_FORWARD = 3828, 3836
WRITABLE = {REG_MAX_CURRENT, REG_MODE, REG_SET_CURRENT, REG_START_STOP, REG_POSITION}
UINT32 = {REG_SESSION_ENERGY, REG_SESSION_TIME, 3830, 3832, 3834, REG_ENERGY_FORWARD}
VOLTS = 230.0


@dataclass
class Station:
    unit_id: int = UNIT_ID
    phases: int = 3
    max_current: int = 32
    time_scale: float = 1.0  # energy flows this many times faster than real time
    # the car and the station's state
    plugged: bool = False
    full: bool = False
    fault: int = 0  # a status 8..14 while a fault is raised
    silent: bool = False
    mode: int = 0  # manual
    start: bool = False  # StartStop
    set_current: int = 6
    energy_wh: float = 2_345_670.0  # the lifetime total
    session_wh: float = 0.0
    writes: list[tuple[int, int]] = field(default_factory=list)  # (register, value) taken
    refused: list[tuple[int, int, int]] = field(default_factory=list)  # (function code, register, code)
    reported_energy_wh: list[float] = field(default_factory=list)
    _flow_at: float = field(default_factory=time.monotonic)
    _session_start: float = 0.0

    # -- the test's side --
    def plug(self) -> None:
        self._flow()
        self.plugged, self.full, self.session_wh = True, False, 0.0
        self._session_start = time.monotonic()

    def unplug(self) -> None:
        self._flow()
        self.plugged = False

    def car_full(self) -> None:
        self._flow()
        self.full = True

    # -- what the station does --
    def charging(self) -> bool:
        return self.plugged and not self.full and not self.fault and self.mode == 0 and self.start

    def status(self) -> int:
        if self.fault:
            return self.fault
        if not self.plugged:
            return 0
        if self.mode != 0:
            return 4  # auto: waiting for sun
        if not self.start:
            return 6  # waiting for start
        return 3 if self.full else 2

    def amps(self) -> int:
        return min(self.set_current, self.max_current) if self.charging() else 0

    def phase_power(self) -> list[int]:
        watts = int(self.amps() * VOLTS)
        return [watts if n < self.phases else 0 for n in range(3)]

    def _flow(self) -> None:
        now = time.monotonic()
        wh = sum(self.phase_power()) * (now - self._flow_at) * self.time_scale / 3600
        self.energy_wh += wh
        self.session_wh += wh
        self._flow_at = now

    def value(self, register: int) -> int:
        """A register's value on the wire (uint32: the whole value)."""
        self._flow()
        powers = self.phase_power()
        if register == REG_ENERGY_FORWARD:
            raw = int(self.energy_wh / 10)  # kWh x 100
            self.reported_energy_wh.append(raw * 10.0)
            return raw
        session_s = int(time.monotonic() - self._session_start) if self.plugged else 0
        values = {
            REG_MAX_CURRENT: self.max_current, REG_MODE: self.mode,
            REG_SESSION_ENERGY: int(self.session_wh / 10), REG_POWER: sum(powers),
            REG_CHARGING_TIME: session_s // 100, REG_CURRENT: self.amps(), REG_STATUS: self.status(),
            REG_SET_CURRENT: self.set_current, REG_START_STOP: int(self.start), REG_POSITION: 1,
            REG_SESSION_TIME: session_s, 3800: 0xC024, 3802: 0x00010203,
        }  # fmt: skip
        if REG_POWER_L1 <= register < REG_POWER_L1 + 3:
            return powers[register - REG_POWER_L1]
        return values.get(register, 0)

    def _words(self, address: int, count: int) -> dict[int, int]:
        """The words of the registers a read covers (both words of a uint32 it touches)."""
        words: dict[int, int] = {}
        for reg in range(address - 1, address + count):
            if reg in UINT32:
                value = self.value(reg)
                words[reg], words[reg + 1] = (value >> 16) & 0xFFFF, value & 0xFFFF
            elif reg >= address and reg not in words:
                words[reg] = self.value(reg) & 0xFFFF
        return words

    def write(self, register: int, value: int) -> ExcCodes | None:
        self._flow()
        if register not in WRITABLE:
            return ExcCodes.ILLEGAL_ADDRESS
        if register == REG_START_STOP and value in (0, 1):
            self.start = bool(value)
        elif register == REG_MODE and value in (0, 1):
            self.mode = value
        elif register == REG_SET_CURRENT and 0 <= value <= self.max_current:
            self.set_current = value
        elif register == REG_MAX_CURRENT and 6 <= value <= 32:
            self.max_current = value
        elif register == REG_POSITION and value in (0, 1, 2):
            pass
        else:
            return ExcCodes.ILLEGAL_VALUE
        self.writes.append((register, value))
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
        if function_code in (6, 16) and set_values is None:
            return None  # pymodbus reading back what a write set, for its answer
        if function_code == 3:
            words = self._words(address, count)
            offset = address - start_address
            registers[offset : offset + count] = [words[reg] for reg in range(address, address + count)]
            return None
        if function_code in (6, 16) and set_values is not None:
            for n, raw in enumerate(set_values):
                refused = self.write(address + n, int(raw))
                if refused is not None:
                    self.refused.append((function_code, address + n, int(refused)))
                    return refused
            return None
        self.refused.append((function_code, address, int(ExcCodes.ILLEGAL_FUNCTION)))
        return ExcCodes.ILLEGAL_FUNCTION

    def on_packet(self, sending: bool, packet: bytes) -> bytes:
        """A silent station's replies never leave."""
        return b"" if sending and self.silent else packet

    def sim_devices(self) -> list[SimDevice]:
        def block() -> list[SimData]:
            return [SimData(FIRST, count=LAST - FIRST, values=0, datatype=DataType.REGISTERS)]

        async def no_such_unit(*_: Any) -> ExcCodes | None:
            return ExcCodes.GATEWAY_PATH_UNAVIABLE

        return [
            SimDevice(self.unit_id, block(), action=partial(Station._action, self)),
            SimDevice(0, block(), action=no_such_unit),
        ]


class VictronEvcsEmulator(TcpDeviceServer):
    """The station behind a Modbus TCP server on loopback (TcpDeviceServer: stop and start make an outage)."""

    def __init__(self, station: Station) -> None:
        super().__init__(station.sim_devices, station.on_packet)
        self.station = station


def victron_evcs(station: Station) -> contextlib.AbstractAsyncContextManager[VictronEvcsEmulator]:
    """The station served on a free loopback port, stopped at the end."""
    return started(VictronEvcsEmulator(station))
