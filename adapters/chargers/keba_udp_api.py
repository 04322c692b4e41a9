"""KEBA KeContact P30/P40 over UDP (port 7090), as data and pure functions: the commands, the three
kinds of datagram the box sends, its report fields with their units, and a report mapped to a
ChargerReading. No I/O: the driver (keba_udp.py) does it.

Source: KEBA "KeContact P30 UDP Programmers Guide" V2.01 and evcc's keba-udp driver, as summarised
in docs/devices/keba-udp.md. Commands are plain ASCII without CR/LF. The box answers a command with
`TCH-OK :done` (the guide prints "TCH-OK: done": only the prefix is matched) and a report with a JSON
object whose "ID" is the report's number; on its own it sends JSON objects without "ID" holding the
fields that changed (State, Plug, Input, Enable sys, Max curr, E pres).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adapters.base import ChargerReading, Fault, FaultKind

PORT = 7090  # the box listens on it and answers to it, whatever the sender's port
MAX_DATAGRAM = 512  # the guide: replies are at most 512 bytes
OK_PREFIX = "TCH-OK"
ERR_PREFIX = "TCH-ERR"

# -- report 2 fields ------------------------------------------------------------------------------
STATE_STARTING, STATE_NOT_READY, STATE_READY, STATE_CHARGING, STATE_ERROR, STATE_INTERRUPTED = range(6)
PLUG_NONE, PLUG_STATION, PLUG_STATION_LOCKED, PLUG_EV, PLUG_EV_LOCKED = 0, 1, 3, 5, 7
# Pushed on their own when they change. E pres flows with the energy: not a change of state.
PUSHED = ("State", "Plug", "Input", "Enable sys", "Max curr", "E pres")
STATE_FIELDS = frozenset(PUSHED) - {"E pres"}
REPORT_2_FIELDS = frozenset({"State", "Plug", "Input", "Enable sys", "Max curr"})

# -- ranges ---------------------------------------------------------------------------------------
CURRENT_MIN_MA, CURRENT_MAX_MA = 6000, 63000  # curr, currtime, failsafe current (or 0)
FAILSAFE_TIMEOUT_RANGE_S = (10, 600)  # or 0: off
NO_TAG = frozenset({"", "0" * 16, "0" * 8})


# -- commands -------------------------------------------------------------------------------------
def report(number: int) -> str:
    return f"report {number}"


def ena(enabled: bool) -> str:
    return f"ena {1 if enabled else 0}"


def curr(milliamps: int) -> str:
    return f"curr {milliamps}"


def failsafe(timeout_s: int, milliamps: int, persist: bool) -> str:
    return f"failsafe {timeout_s} {milliamps} {1 if persist else 0}"


UNLOCK = "unlock"
DISABLE = ena(False)  # the box then wants 2 s before the next command


def milliamps(amps: float) -> int:
    """Whole mA, never more than asked (7.3 A -> 7300, not 7299 from 7.3 * 1000's rounding)."""
    return int(round(amps * 1000, 6) // 1)


# -- datagrams ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ack:
    """The answer to a command: TCH-OK, or anything else (TCH-ERR...), which is a refusal."""

    ok: bool
    text: str


@dataclass(frozen=True)
class Report:
    """The answer to `report N`."""

    number: str
    fields: Mapping[str, Any]


@dataclass(frozen=True)
class Push:
    """What the box sends on its own: the fields that changed."""

    fields: Mapping[str, Any]


Datagram = Ack | Report | Push


def parse(data: bytes) -> Datagram:
    """One datagram from the box; ValueError for what is none of the three."""
    text = data.decode("ascii", errors="replace").strip()
    if not text.startswith("{"):
        if text.startswith("TCH-"):
            return Ack(text.startswith(OK_PREFIX), text)
        raise ValueError(f"neither JSON nor TCH-: {text[:40]!r}")
    try:
        fields = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"bad JSON: {exc}") from None
    if not isinstance(fields, dict):
        raise ValueError("JSON that is not an object")
    if "ID" in fields:
        return Report(str(fields["ID"]), fields)
    return Push(fields)


def as_int(fields: Mapping[str, Any], key: str, default: int = 0) -> int:
    """A report's number (the box sends numbers; a string of digits is taken too)."""
    value = fields.get(key, default)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key}: not a number: {value!r}") from None


# -- report 2 + report 3 -> reading ---------------------------------------------------------------
def plugged(report2: Mapping[str, Any]) -> bool:
    """The cable is in the vehicle: Plug 5 or 7 (evcc: < 5 is IEC state A)."""
    return as_int(report2, "Plug") >= PLUG_EV


def fault_of(report2: Mapping[str, Any]) -> Fault:
    """State 4 as a Fault: the guide gives Error1/Error2 as codes, not their meaning."""
    e1, e2 = as_int(report2, "Error1"), as_int(report2, "Error2")
    return Fault(FaultKind.OTHER, info=f"KEBA error {e1}/{e2}", vendor_code=f"Error1={e1} Error2={e2}")


def reading_from(
    report2: Mapping[str, Any], report3: Mapping[str, Any] | None, *, phases: int
) -> ChargerReading:
    """The reading of report 2 (state) and report 3 (meter; None: no meter)."""
    state = as_int(report2, "State")
    enabled = as_int(report2, "Enable sys") == 1
    allowed = enabled and state in (STATE_READY, STATE_CHARGING)
    max_ma = as_int(report2, "Max curr")
    energy = power = currents = voltages = None
    if report3 is not None:
        energy = as_int(report3, "E total") / 10  # 0.1 Wh
        power = as_int(report3, "P") / 1000  # mW
        if state == STATE_CHARGING:
            currents = tuple(as_int(report3, f"I{n}") / 1000 for n in range(1, phases + 1))
            voltages = tuple(float(as_int(report3, f"U{n}")) for n in range(1, phases + 1))
    return ChargerReading(
        plugged=plugged(report2),
        ev_requesting=state == STATE_CHARGING,
        energy_allowed=allowed,
        energy_wh=energy,
        power_w=power,
        current_a=currents,
        voltage_v=voltages,
        current_offered_a=max_ma / 1000 if allowed else None,
        fault=fault_of(report2) if state == STATE_ERROR else None,
    )


def session_tag(report100: Mapping[str, Any]) -> tuple[int, str | None]:
    """Report 100 (the current or last session): its session id and the card that authorised it
    (None: none), in upper case as the box gives it (16 hex digits, 8 of them padding)."""
    tag = str(report100.get("RFID tag", "")).strip()
    session = as_int(report100, "Session ID", -1)
    if tag in NO_TAG:
        return session, None
    if len(tag) == 16 and tag.endswith("0" * 8):
        tag = tag[:8]  # a 4-byte UID padded to 8 bytes
    return session, tag.upper()


def describe(report1: Mapping[str, Any]) -> str:
    """Report 1 for the log: product, serial, firmware."""
    keys = ("Product", "Serial", "Firmware")
    return ", ".join(f"{k} {report1.get(k, '?')}" for k in keys)
