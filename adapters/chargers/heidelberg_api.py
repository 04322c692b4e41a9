"""Heidelberg (Amperfied) Energy Control over Modbus RTU, as data and pure functions: the register map
with its units, the charging state decoded, register values mapped to a ChargerReading. No I/O: the
driver (heidelberg.py) does it.

Source: the Amperfied "ModBus-Register-Tabelle" (2021-02-22) as summarised in docs/devices/heidelberg.md
(and devices.md §5.1). Wire addresses are the documented numbers. Input registers are read with
function code 04, holding registers with 03 and written with 16 (as evcc does; the box takes 06 too).
Every value is a UINT16, big-endian; the two energy counters are UINT32, high word first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from adapters.base import ChargerReading, Fault, FaultKind

UNIT_ID = 1  # set by DIP switches on the box; evcc's default
BAUDRATE = 19200  # the box's line: 19200 baud, 8 data bits, even parity, 1 stop bit
REQUEST_GAP_S = 0.1  # evcc keeps 100 ms between requests; faster, the boxes miss frames

# -- input registers (FC04) ------------------------------------------------------------------------
REG_LAYOUT = 4  # register-layout version: 0x0100 = 1.0.0, 0x0108 = 1.0.8
REG_STATE = 5  # charging state, STATE_* below
REG_CURRENTS = (6, 7, 8)  # 0.1 A RMS: L1, L2, L3
REG_TEMPERATURE = 9  # int16, 0.1 degC, the PCB's
REG_VOLTAGES = (10, 11, 12)  # V: L1, L2, L3
REG_EXTERNAL_LOCK = 13  # 0 = locked (the key switch / input), 1 = unlocked
REG_POWER = 14  # VA, L1+L2+L3 (layout 1.0.4 and later)
REG_ENERGY_SINCE_POWER_ON = 15  # UINT32 (15, 16), VAh
REG_ENERGY_SINCE_INSTALLATION = 17  # UINT32 (17, 18), VAh (layout 1.0.7 and later)
REG_HW_MAX_CURRENT = 100  # A
REG_HW_MIN_CURRENT = 101  # A

# A poll reads from the charging state up to the energy counter the layout has (in two blocks where
# the layout lacks register 14).
POLL_FIRST = REG_STATE

# -- holding registers (FC03 read, FC16 write) -----------------------------------------------------
REG_WATCHDOG_MS = 257  # ms without Modbus traffic before the failsafe current applies; 0 = off
REG_STANDBY = 258  # STANDBY_* below
REG_REMOTE_LOCK = 259  # 0 = locked, 1 = unlocked (only while the external lock is unlocked)
REG_MAX_CURRENT = 261  # 0.1 A: 0 (no charging) or 60..160
REG_FAILSAFE_CURRENT = 262  # 0.1 A: 0 or 60..160
SETTINGS_FIRST, SETTINGS_COUNT = 257, 6  # 257..262 read as one block (260 is reserved)

STANDBY_ENABLED = 0  # the box sleeps ~13 min after unplug and then no longer answers a vehicle
STANDBY_DISABLED = 4
REMOTE_UNLOCKED = 1

# -- charging states (register 5): IEC 61851 state, suffix 1 = the box does not allow charging ---------
STATE_A1, STATE_A2, STATE_B1, STATE_B2, STATE_C1, STATE_C2 = 2, 3, 4, 5, 6, 7
STATE_DERATING, STATE_E, STATE_F, STATE_ERROR = 8, 9, 10, 11
NOT_PLUGGED = frozenset({STATE_A1, STATE_A2})
PLUGGED = frozenset({STATE_B1, STATE_B2, STATE_C1, STATE_C2, STATE_DERATING})
REQUESTING = frozenset({STATE_C1, STATE_C2, STATE_DERATING})
ALLOWED = frozenset({STATE_A2, STATE_B2, STATE_C2, STATE_DERATING})
STATE_NAMES = {
    2: "A1", 3: "A2", 4: "B1", 5: "B2", 6: "C1", 7: "C2", 8: "derating", 9: "E", 10: "F", 11: "error",
}  # fmt: skip

CURRENT_MIN_DA, CURRENT_MAX_DA = 60, 160  # 0.1 A: what 261 and 262 take besides 0


def layout_text(raw: int) -> str:
    """0x0108 -> "1.0.8" (one nibble per digit)."""
    return f"{(raw >> 8) & 0xF}.{(raw >> 4) & 0xF}.{raw & 0xF}"


def has_power(layout: int) -> bool:
    return layout >= 0x0104


def energy_register(layout: int) -> int:
    """The counter to report: since installation where the layout has it (monotonic across power
    cuts), else since power-on."""
    return REG_ENERGY_SINCE_INSTALLATION if layout >= 0x0107 else REG_ENERGY_SINCE_POWER_ON


def poll_blocks(layout: int) -> list[tuple[int, int]]:
    """(first register, count) of each request of a poll: one block from POLL_FIRST up to the energy
    counter's low word, split around register 14 where the layout does not have it."""
    end = energy_register(layout) + 2
    if has_power(layout):
        return [(POLL_FIRST, end - POLL_FIRST)]
    return [(POLL_FIRST, REG_POWER - POLL_FIRST), (REG_POWER + 1, end - REG_POWER - 1)]


def deciamps(amps: float) -> int:
    """Whole 0.1 A, never more than asked (7.39 A -> 73)."""
    return int(round(amps * 10, 6) // 1)


def uint32(high: int, low: int) -> int:
    return (high << 16) | low


def fault_of(state: int) -> Fault | None:
    """What a charging state says is wrong, if anything."""
    if state == STATE_E:
        return Fault(FaultKind.EV_COMMUNICATION, info="IEC 61851 state E (control pilot)",
                     vendor_code=f"state {state} (E)")  # fmt: skip
    if state == STATE_F:
        return Fault(FaultKind.INTERNAL, info="IEC 61851 state F: the box is not available",
                     vendor_code=f"state {state} (F)")  # fmt: skip
    if state == STATE_ERROR:
        return Fault(FaultKind.INTERNAL, info="the box reports an error", vendor_code=f"state {state}")
    if state not in STATE_NAMES:
        return Fault(FaultKind.OTHER, info=f"unknown charging state {state}", vendor_code=f"state {state}")
    return None


@dataclass(frozen=True)
class Registers:
    """One poll's input registers, by address."""

    values: dict[int, int]
    layout: int

    def at(self, register: int) -> int:
        return self.values[register]


def reading_from(r: Registers, *, phases: int, plugged_before: bool) -> ChargerReading:
    """The reading the registers stand for. In states E, F and error the box does not say whether a
    vehicle is plugged: the plug is taken as it was (`plugged_before`), so that a fault does not look
    like an unplug that ends the transaction."""
    state = r.at(REG_STATE)
    plugged = state in PLUGGED if state in PLUGGED | NOT_PLUGGED else plugged_before
    energy_at = energy_register(r.layout)
    return ChargerReading(
        plugged=plugged,
        ev_requesting=state in REQUESTING,
        energy_allowed=state in ALLOWED,
        energy_wh=float(uint32(r.at(energy_at), r.at(energy_at + 1))),
        power_w=float(r.at(REG_POWER)) if has_power(r.layout) else None,
        current_a=tuple(r.at(reg) / 10 for reg in REG_CURRENTS[:phases]),
        voltage_v=tuple(float(r.at(reg)) for reg in REG_VOLTAGES[:phases]),
        fault=fault_of(state),
    )


def settings(watchdog_ms: int, max_current_da: int, failsafe_da: int) -> list[int]:
    """Registers 257..262 as the driver wants them (260, reserved, as 0)."""
    return [watchdog_ms, STANDBY_DISABLED, REMOTE_UNLOCKED, 0, max_current_da, failsafe_da]


def settings_differ(wanted: Sequence[int], read: Sequence[int]) -> list[int]:
    """The registers of 257..262 that do not hold what the driver wrote (260 is not compared)."""
    return [
        SETTINGS_FIRST + i
        for i, (w, r) in enumerate(zip(wanted, read, strict=True))
        if SETTINGS_FIRST + i != 260 and w != r
    ]
