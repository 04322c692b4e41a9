"""Phoenix Contact EV-CC-…-ETH (also in Wallbe boxes) and EM-CP-PP-ETH charge controllers over Modbus
TCP, as data and pure functions: the register map of each model with its units, the status letter
decoded, register values mapped to a ChargerReading. No I/O: the driver (phoenix.py) does it.

Sources: devices.md §5.3 (evcc `charger/phoenix-ev-eth.go`, `phoenix-em-eth.go`; evcc-io/docs
`reference/modbus.md`). Both controllers:
- input register 100: the IEC 61851 state as an ASCII letter 'A'..'F' in its low byte (function 04);
- coil 400: charging enabled (function 05 writes 0xFF00 / 0x0000, function 01 reads it back);
- a holding register with the maximum current (function 06): 528 on an EV-CC (A, or 0.1 A on the
  extended Wallbe firmware, which shows as a value of 60 or more there), 300 on an EM-CP-PP (A).
Meters, only where one is wired, every 32-bit value two registers, low word first:
- EV-CC: energy in holding 904 (uint32, Wh) with Phoenix's firmware; Wallbe's firmware keeps only 16 bits
  there (one register, which would wrap at 65535 Wh) and counts energy in holding 2980..2983 (uint64,
  low word first, Wh) instead (evcc's `phxRegEnergyWh`, `phxRegEnergyWallbe`). Voltages in inputs
  108/110/112, currents 114/116/118, power 120 (int32), which evcc reads on the EV-CC unscaled:
  V, A, W.
- EM-CP-PP: inputs 108/110/112 voltages (0.01 V), 114/116/118 currents (0.001 A), 120 power (10 W) and
  128 energy (0.01 kWh).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from adapters.base import ChargerReading, Fault, FaultKind

REG_STATUS = 100  # input, low byte = ASCII 'A'..'F'
COIL_ENABLE = 400  # coil: 1 = charging enabled
COIL_ON, COIL_OFF = 0xFF00, 0x0000  # function 05's two values
WALLBE_DECI_FROM = 60  # a current register reading this or more: the Wallbe firmware's 0.1 A steps

# -- EV-CC-AC1-M3-…-ETH (Wallbe, ESL Walli, E3/DC Easy Connect, Compleo Pro) -----------------------
EV_CC_UNIT = 255
EV_CC_REG_CURRENT = 528  # holding: A (Wallbe firmware: 0.1 A)
EV_CC_REG_ENERGY = 904  # holding, uint32 low word first: Wh (Wallbe's firmware: 16 bits, not read)
WALLBE_REG_ENERGY = 2980  # holding, uint64 low word first (4 registers): Wh, on Wallbe's firmware

# -- both models: the meter's values (units per model, see MeterUnits) ------------------------------
REG_VOLTAGES = 108  # input, 3 x int32 low word first
REG_CURRENTS = 114  # input, 3 x int32 low word first
REG_POWER = 120  # input, int32 low word first

# -- EM-CP-PP-ETH ----------------------------------------------------------------------------------
EM_UNIT = 180
EM_REG_CHARGE_TIME = 102  # input, uint32 low word first: s
EM_REG_ENERGY = 128  # input, uint32 low word first: 0.01 kWh
EM_REG_CURRENT = 300  # holding: A

CURRENT_MIN_A = 6  # IEC 61851's least pilot current; evcc refuses less too


@dataclass(frozen=True)
class MeterUnits:
    """What one count of the meter's input registers is worth on a model."""

    volt: float  # 108..113
    amp: float  # 114..119
    watt: float  # 120..121


@dataclass(frozen=True)
class Model:
    """What differs between the two controllers."""

    name: str  # the `model:` option
    label: str  # for logs and the probe
    unit_id: int
    current_register: int  # holding
    units: MeterUnits
    energy_in_inputs: bool  # EM-CP-PP: input 128 (0.01 kWh); EV-CC: holding 904 or Wallbe's 2980


MODELS = {
    "ev-cc": Model("ev-cc", "Phoenix EV-CC", EV_CC_UNIT, EV_CC_REG_CURRENT, MeterUnits(1, 1, 1), False),
    "em-cp-pp": Model(
        "em-cp-pp", "Phoenix EM-CP-PP", EM_UNIT, EM_REG_CURRENT, MeterUnits(0.01, 0.001, 10), True
    ),
}


def uint32_lsw(registers: Sequence[int]) -> int:
    """A uint32 from its two registers, low word first."""
    if len(registers) != 2:
        raise ValueError(f"a 32-bit value takes two registers, not {len(registers)}")
    return (registers[1] << 16) | registers[0]


def int32_lsw(registers: Sequence[int]) -> int:
    value = uint32_lsw(registers)
    return value - (1 << 32) if value & 0x80000000 else value


def uint64_lsw(registers: Sequence[int]) -> int:
    """A uint64 from its four registers, lowest word first."""
    if len(registers) != 4:
        raise ValueError(f"a 64-bit value takes four registers, not {len(registers)}")
    return sum(word << (16 * i) for i, word in enumerate(registers))


def to_lsw64(value: int) -> list[int]:
    """The four registers of a uint64, lowest word first (the emulator's side)."""
    return [(value >> (16 * i)) & 0xFFFF for i in range(4)]


def to_lsw(value: int) -> list[int]:
    """The two registers of a 32-bit value, low word first (the emulator's side; negatives wrap)."""
    value &= 0xFFFFFFFF
    return [value & 0xFFFF, value >> 16]


def status_letter(register: int) -> str:
    """Register 100's low byte as its letter; '?' for a byte that is no printable character."""
    byte = register & 0xFF
    return chr(byte) if 0x20 < byte < 0x7F else "?"


# IEC 61851-1 states the controller reports as faults, in the hardware's terms.
FAULT_STATES = {
    "E": Fault(FaultKind.EV_COMMUNICATION, "control pilot shorted or no supply (state E)", "status E"),
    "F": Fault(FaultKind.INTERNAL, "charge controller not available (state F)", "status F"),
}


@dataclass(frozen=True)
class Registers:
    """The values one poll read; None where it did not read them (no meter, or not that model)."""

    status: int  # register 100 as read
    enabled: bool  # coil 400
    energy_wh: float | None = None
    power_w: float | None = None
    currents_a: tuple[float, ...] | None = None
    voltages_v: tuple[float, ...] | None = None


def reading_from(r: Registers) -> ChargerReading:
    """The reading the registers stand for. In a fault state the controller does not say whether a
    vehicle is plugged in, so `plugged` is None there: the bridge keeps what it knew (a transaction
    stays open through a fault rather than being ended as an unplug)."""
    letter = status_letter(r.status)
    fault = FAULT_STATES.get(letter)
    if fault is None and letter not in "ABCD":
        fault = Fault(FaultKind.OTHER, "unknown controller status", f"status 0x{r.status:04X}")
    return ChargerReading(
        plugged=None if fault is not None else letter != "A",
        ev_requesting=letter in ("C", "D"),
        energy_allowed=r.enabled and fault is None,
        energy_wh=r.energy_wh,
        power_w=r.power_w,
        current_a=r.currents_a,
        voltage_v=r.voltages_v,
        fault=fault,
    )


def current_value(amps: float, deci: bool) -> int:
    """The current register's value for `amps`, never more than asked: whole A, or 0.1 A steps."""
    scaled = round(amps * (10 if deci else 1), 6)
    return int(scaled // 1)


def per_phase(registers: Sequence[int], unit: float, phases: int) -> tuple[float, ...]:
    """Three int32 values (six registers, low word first) scaled by `unit`, the wired phases only."""
    values = [int32_lsw(registers[i : i + 2]) * unit for i in range(0, 6, 2)]
    return tuple(round(v, 3) for v in values[:phases])
