"""KEBA KeContact P30 c-/x-series and P40 over Modbus TCP, as data and pure functions: the register map
with its units, the product code decoded, register values mapped to a ChargerReading. No I/O: the
driver (keba_modbus.py) does it.

Sources: KEBA "KeContact P30 Modbus TCP Programmers Guide" V1.02 and "KeContact P40 Modbus TCP
Programmers Guide" V1.02, as summarised in docs/devices/keba-modbus.md (and devices.md §9). Every
readable value is a UINT32 in two holding registers, high word first, read alone (function code 03,
count 2); every writable one a UINT16 written with function code 06. Wire addresses are the
documented numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from adapters.base import ChargerReading, Fault, FaultKind

UNIT_ID = 255  # the guides' fixed unit id
READ_COUNT = 2  # registers per read: one UINT32, never more (no block reads)

# -- read registers (UINT32, FC03, count 2) --------------------------------------------------------
REG_STATE = 1000  # charging state, STATE_* below
REG_CABLE = 1004  # cable state, CABLE_* below
REG_ERROR = 1006  # error code, 0 = none
REG_CURRENTS = (1008, 1010, 1012)  # mA: L1, L2, L3
REG_SERIAL = 1014  # decimal
REG_PRODUCT = 1016  # product code, decimal digits (ProductCode below)
REG_FIRMWARE = 1018  # P30: bytes 0xMMmmpp00; P40: decimal MMmmpp (10201 = 1.2.1)
REG_POWER = 1020  # mW
REG_ENERGY = 1036  # total energy: 0.1 Wh (P30, P40 from 1.2.1), Wh (P40 before 1.2.1)
REG_VOLTAGES = (1040, 1042, 1044)  # V: L1, L2, L3 (0 unless charging)
REG_MAX_SUPPORTED = 1110  # mA: what the hardware supports (DIP switches, cable)
REG_RFID = 1500  # the first 4 bytes of the UID of the card that authorised the session; 0 = none
REG_PHASE_SOURCE = 1550  # who may switch phases: PHASE_SOURCE_MODBUS = this interface
REG_PHASE_STATE = 1552  # P30: 0 = 1 phase, 1 = 3 phases; P40: 1 / 3
REG_FAILSAFE_CURRENT = 1600  # mA, active setting
REG_FAILSAFE_TIMEOUT = 1602  # s, active setting

READ_REGISTERS = frozenset({
    REG_STATE, REG_CABLE, REG_ERROR, *REG_CURRENTS, REG_SERIAL, REG_PRODUCT, REG_FIRMWARE, REG_POWER,
    1046, REG_ENERGY, *REG_VOLTAGES, 1100, REG_MAX_SUPPORTED, 1200, REG_RFID, 1502, REG_PHASE_SOURCE,
    REG_PHASE_STATE, REG_FAILSAFE_CURRENT, REG_FAILSAFE_TIMEOUT, 1700,
})  # fmt: skip

# -- write registers (UINT16, FC06) ----------------------------------------------------------------
REG_SET_CURRENT = 5004  # mA: P30 6000..63000; P40 0 (suspend) or 6000..32000
REG_SET_ENERGY = 5010  # 10 Wh
REG_UNLOCK = 5012  # only while suspended
REG_ENABLE = 5014  # 1 = enabled, 0 = suspended
REG_SET_FAILSAFE_CURRENT = 5016  # mA: 0 = suspend when the EMS falls silent, else 6000..32000
REG_SET_FAILSAFE_TIMEOUT = 5018  # s: 0 = off, else 5..600
REG_FAILSAFE_PERSIST = 5020  # 1 = keep 5016/5018 across a reboot
REG_SET_PHASE_SOURCE = 5050  # 0 off, 1 OCPP/profiles, 2 REST, 3 Modbus
REG_SWITCH_PHASES = 5052  # 0 = 1 phase, 1 = 3 phases
REG_FAST_CHARGING = 5200  # P40: 1 = on

WRITE_REGISTERS = frozenset({
    REG_SET_CURRENT, REG_SET_ENERGY, REG_UNLOCK, REG_ENABLE, REG_SET_FAILSAFE_CURRENT,
    REG_SET_FAILSAFE_TIMEOUT, REG_FAILSAFE_PERSIST, REG_SET_PHASE_SOURCE, REG_SWITCH_PHASES,
    REG_FAST_CHARGING,
})  # fmt: skip

STATE_STARTING, STATE_NOT_READY, STATE_READY, STATE_CHARGING, STATE_ERROR, STATE_SUSPENDED = range(6)
CABLE_NONE, CABLE_AT_STATION, CABLE_LOCKED, CABLE_IN_EV, CABLE_IN_EV_LOCKED = 0, 1, 3, 5, 7
CABLE_EV_BIT = 4  # cable state bit 2: the cable is in the vehicle
PHASE_SOURCE_MODBUS = 3

CURRENT_MIN_MA = 6000
CURRENT_MAX_MA = {"P30": 63000, "P40": 32000}
FAILSAFE_TIMEOUT_RANGE_S = (5, 600)
FAILSAFE_CURRENT_MAX_MA = 32000


def uint32(registers: Sequence[int]) -> int:
    """A UINT32 from its two registers, high word first."""
    if len(registers) != READ_COUNT:
        raise ValueError(f"a UINT32 takes two registers, not {len(registers)}")
    return (registers[0] << 16) | registers[1]


def to_registers(value: int) -> list[int]:
    """The two registers of a UINT32, high word first (the emulator's side)."""
    return [(value >> 16) & 0xFFFF, value & 0xFFFF]


@dataclass(frozen=True)
class ProductCode:
    """Register 1016 decoded: P30 "3 c n s m r" (family 3, cable, current code, series, meter, RFID);
    P40 "4 i c p m r b" (family 4, current, connector, phases, meter, RFID, button)."""

    code: int
    family: str  # "P30" or "P40"
    fixed_cable: bool
    c_series: bool  # P30: c-series (phase switching writable over Modbus); P40: False
    has_meter: bool
    has_rfid: bool

    @classmethod
    def parse(cls, code: int) -> ProductCode:
        digits = str(code)
        if len(digits) == 6 and digits[0] == "3":
            return cls(code, "P30", digits[1] == "1", digits[3] == "1", digits[4] != "0", digits[5] == "1")
        if len(digits) == 7 and digits[0] == "4":
            return cls(code, "P40", digits[2] == "1", False, digits[4] != "0", digits[5] == "1")
        raise ValueError(
            f"product code {code} is neither a P30 (6 digits from 3) nor a P40 (7 digits from 4)"
        )

    @property
    def max_current_ma(self) -> int:
        return CURRENT_MAX_MA[self.family]


def firmware_text(family: str, raw: int) -> str:
    """P30: 0x030A0D00 -> "3.10.13"; P40: 10201 -> "1.2.1"."""
    if family == "P30":
        return f"{(raw >> 24) & 0xFF}.{(raw >> 16) & 0xFF}.{(raw >> 8) & 0xFF}"
    return f"{raw // 10000}.{raw // 100 % 100}.{raw % 100}"


def energy_unit_wh(family: str, raw_firmware: int) -> float:
    """Wh per unit of registers 1036/1502: 0.1, but 1 on a P40 before firmware 1.2.1."""
    return 1.0 if family == "P40" and raw_firmware < 10201 else 0.1


def fault_of(error_code: int) -> Fault:
    """Register 1006 as a Fault: the guides give the code's group (its hex digits), not its meaning."""
    return Fault(
        FaultKind.OTHER,
        info=f"KEBA error {error_code}",
        vendor_code=f"{error_code} (0x{error_code:X})",
    )


@dataclass(frozen=True)
class Registers:
    """The values one poll read; None where it did not read them."""

    state: int
    cable: int
    error: int | None = None
    power_mw: int | None = None
    energy: int | None = None  # in the unit of `energy_unit_wh`
    currents_ma: tuple[int, ...] | None = None
    voltages_v: tuple[int, ...] | None = None


def reading_from(r: Registers, *, energy_unit: float, phases: int) -> ChargerReading:
    """The reading the registers stand for."""
    fault = None
    if r.state == STATE_ERROR:
        fault = fault_of(r.error or 0)
    return ChargerReading(
        plugged=bool(r.cable & CABLE_EV_BIT),
        ev_requesting=r.state == STATE_CHARGING,
        energy_allowed=r.state in (STATE_READY, STATE_CHARGING),
        energy_wh=None if r.energy is None else round(r.energy * energy_unit, 1),
        power_w=None if r.power_mw is None else r.power_mw / 1000,
        current_a=None if r.currents_ma is None else tuple(ma / 1000 for ma in r.currents_ma[:phases]),
        voltage_v=None if r.voltages_v is None else tuple(float(v) for v in r.voltages_v[:phases]),
        fault=fault,
    )


def milliamps(amps: float) -> int:
    """Whole mA, never more than asked (7.3 A -> 7300, not 7299 from 7.3 * 1000's rounding)."""
    return int(round(amps * 1000, 6) // 1)
