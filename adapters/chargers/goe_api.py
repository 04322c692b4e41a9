"""The go-e Charger's API as data and pure functions: its keys with their units, an answer mapped to a
ChargerReading, and the wire formats of HTTP API v2 and MQTT. No I/O: the driver (goe.py) does it.

Docs: https://github.com/goecharger/go-eCharger-API-v2 (apikeys-en.md, http-en.md, mqtt-de.md) and
https://github.com/goecharger/go-eCharger-API-v1 (the legacy `/status`); summarised in
docs/devices/goe.md. Values are in API v2 types and units throughout: `v1_to_v2` converts a v1 answer
(every value a string; 0.1 kWh, 0.1 A, 0.1 kW and 0.01 kW) at the edge.
"""

from __future__ import annotations

import contextlib
import json
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from adapters.base import ID_TAG_MAX as ID_TAG_MAX  # re-exported: goe.py checks card tags with it
from adapters.base import ChargerReading, DeviceUnreachable, Fault, FaultKind

# -- API keys (v2 names, types and units) ----------------------------------------------------------

KEY_CAR = "car"  # car state, CAR_* below; null: go-e has no connection to its charge controller
KEY_ERR = "err"  # error number, ERRORS_V2 below (v1: ERRORS_V1); 0: none
KEY_ALW = "alw"  # bool: energy allowed now; read-only in v2 (v1: "1"/"0", and its energy command)
KEY_FRC = "frc"  # force state, FRC_* below: v2's energy command
KEY_ACU = "acu"  # A: the current the car may draw now; absent on v1 and some firmware
KEY_AMP = "amp"  # A, whole: the requested current, v2's current command (kept in flash)
KEY_AMX = "amx"  # A, whole: v1's current command, not kept in flash; shows as amp in the status
KEY_NRG = "nrg"  # 16 numbers: voltages, currents, powers, power factors (NRG_* below)
KEY_ETO = "eto"  # Wh: total energy, the charger's lifetime register, never reset (v1: 0.1 kWh)
KEY_TRX = "trx"  # the session's card: null none, 0 without card, n the card in slot n (v1: uby)
KEY_UBY = "uby"  # v1: the slot of the card that unlocked the session, 0 none
KEY_FHZ = "fhz"  # Hz: grid frequency (v2 only)
KEY_FWV = "fwv"  # firmware version text, e.g. "053.1"
KEY_OCPPE = "ocppe"  # bool: go-e's own OCPP client is on
KEY_PSM = "psm"  # phase switch mode, PSM_* below; absent where the firmware cannot switch phases
KEY_RST = "rst"  # written: the charger reboots
KEY_CARDS = "cards"  # [{"name": ..., ...}] one per card slot (firmware before 60.0)


def key_card_name(slot: int) -> str:
    """The key of card `slot`'s name from firmware 60.0 on: c0n for slot 1, ... c9n for slot 10."""
    return f"c{slot - 1}n"


# car: IEC 61851 state as go-e names it (fw 60.4 adds Initializing)
CAR_UNKNOWN, CAR_IDLE, CAR_CHARGING, CAR_WAIT_CAR, CAR_COMPLETE, CAR_ERROR, CAR_INITIALIZING = range(7)
FRC_NEUTRAL, FRC_OFF, FRC_ON = 0, 1, 2  # frc: go-e's own logic decides / energy off / energy on
PSM_AUTO, PSM_FORCE_1, PSM_FORCE_3 = 0, 1, 2  # psm: go-e decides / 1 phase / 3 phases
RST_REBOOT = 1
AMP_MIN_A, AMP_MAX_A = 6, 32  # A: what amp takes (ama, the variant's own limit, may be lower: 16 A at 11 kW)

# nrg indices: four voltages, three currents, four powers, the total power, four power factors
NRG_VOLTAGE = 0  # V: L1, L2, L3, N at 0..3
NRG_CURRENT = 4  # A: L1, L2, L3 at 4..6 (v1: 0.1 A)
NRG_POWER = 7  # W: L1, L2, L3, N at 7..10 (v1: 0.1 kW)
NRG_POWER_TOTAL = 11  # W (v1: 0.01 kW)
NRG_POWER_FACTOR = 12  # %: L1, L2, L3, N at 12..15
NRG_END = 16
NRG_MIN_LEN = NRG_POWER_TOTAL + 1  # what a reading needs: everything up to the total power

# API v1 units, as multiples or fractions of the v2 ones
V1_ETO_WH = 100.0  # Wh per unit of v1 eto (0.1 kWh)
V1_NRG_CURRENT_PER_A = 10  # units of a v1 nrg current per A (0.1 A)
V1_NRG_POWER_W = 100  # W per unit of a v1 nrg phase power (0.1 kW)
V1_NRG_POWER_TOTAL_W = 10  # W per unit of v1 nrg total power (0.01 kW)

# What a poll asks for (at most 10 keys: firmware before 051.4 answers no more), and the probe.
POLL_KEYS = (KEY_CAR, KEY_ERR, KEY_ALW, KEY_FRC, KEY_ACU, KEY_AMP, KEY_NRG, KEY_ETO, KEY_TRX, KEY_FHZ)
PROBE_KEYS = (KEY_CAR, KEY_ERR, KEY_ALW, KEY_FRC, KEY_AMP, KEY_ETO, KEY_TRX, KEY_FWV, KEY_OCPPE, KEY_PSM)

# -- pure mapping: go-e keys -> reading -------------------------------------------------------------

# `err` as numbered by the firmware exports (59.4 .. 60.4), the better source than apikeys-en.md:
# number -> (go-e name, what kind of fault it is, short info)
ERRORS_V2: dict[int, tuple[str, FaultKind, str]] = {
    1: ("FiAc", FaultKind.RESIDUAL_CURRENT, "residual current (AC)"),
    2: ("FiDc", FaultKind.RESIDUAL_CURRENT, "residual current (DC)"),
    3: ("Phase", FaultKind.PHASE, "phase fault"),
    4: ("Overvolt", FaultKind.OVER_VOLTAGE, "overvoltage"),
    5: ("Overamp", FaultKind.OVER_CURRENT, "overcurrent"),
    6: ("Diode", FaultKind.EV_COMMUNICATION, "vehicle diode check failed"),
    7: ("PpInvalid", FaultKind.EV_COMMUNICATION, "invalid proximity pilot (cable)"),
    8: ("GndInvalid", FaultKind.GROUND_FAULT, "protective earth missing or invalid"),
    9: ("ContactorStuck", FaultKind.POWER_SWITCH, "contactor stuck closed"),
    10: ("ContactorMiss", FaultKind.POWER_SWITCH, "contactor did not close"),
    12: ("StatusLockStuckOpen", FaultKind.CABLE_LOCK, "cable lock stuck open"),
    13: ("StatusLockStuckLocked", FaultKind.CABLE_LOCK, "cable lock stuck locked"),
    14: ("FiUnknown", FaultKind.RESIDUAL_CURRENT, "residual current device fault"),
    15: ("Unknown", FaultKind.OTHER, "unknown error"),
    16: ("Overtemp", FaultKind.OVER_TEMPERATURE, "overtemperature"),
    17: ("NoComm", FaultKind.INTERNAL, "no communication with charge controller"),
    18: ("CpInvalid", FaultKind.EV_COMMUNICATION, "invalid control pilot signal"),
    23: ("RdcSelfTestFailed", FaultKind.INTERNAL, "DC residual current self-test failed"),
}
# API v1 (firmware 033) numbers its errors differently.
ERRORS_V1: dict[int, tuple[str, FaultKind, str]] = {
    1: ("RCCB", FaultKind.RESIDUAL_CURRENT, "residual current"),
    3: ("PHASE", FaultKind.PHASE, "phase fault"),
    8: ("NO_GROUND", FaultKind.GROUND_FAULT, "protective earth missing"),
    10: ("INTERNAL", FaultKind.INTERNAL, "internal error"),
}


def fault_from(err: Any, car: Any, table: Mapping[int, tuple[str, FaultKind, str]]) -> Fault | None:
    """The fault go-e's `err` names (and the car state Error when `err` says nothing)."""
    number = as_int(err)
    if number:
        name, kind, info = table.get(number, ("?", FaultKind.OTHER, "go-e error"))
        return Fault(kind, info, f"err={number} {name}")
    if as_int(car) in (CAR_UNKNOWN, CAR_ERROR):
        return Fault(FaultKind.OTHER, "go-e reports car state Error", f"car={as_int(car)}")
    return None


def as_int(value: Any) -> int | None:
    """go-e numbers arrive as JSON numbers (v2) or strings (v1); None when absent or not a number."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def as_float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def as_bool(value: Any) -> bool | None:
    """`true`/`false` (v2) or "1"/"0" (v1)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    number = as_int(value)
    return None if number is None else number != 0


def v1_to_v2(status: Mapping[str, Any]) -> dict[str, Any]:
    """A v1 `/status` answer (strings, 0.1 kWh, 0.1 A, 0.1/0.01 kW) as v2 keys, types and units."""
    out: dict[str, Any] = {
        KEY_CAR: as_int(status.get(KEY_CAR)),
        KEY_ERR: as_int(status.get(KEY_ERR)),
        KEY_ALW: as_bool(status.get(KEY_ALW)),
        KEY_AMP: as_int(status.get(KEY_AMP)),
        KEY_TRX: as_int(status.get(KEY_UBY)),  # v1 "unlocked by card n", 0 = none
    }
    eto = as_float(status.get(KEY_ETO))
    out[KEY_ETO] = None if eto is None else eto * V1_ETO_WH
    nrg = status.get(KEY_NRG)
    if isinstance(nrg, list) and len(nrg) >= NRG_MIN_LEN:
        values = [as_float(v) or 0.0 for v in nrg]
        volts = values[NRG_VOLTAGE:NRG_CURRENT]
        amps = [a / V1_NRG_CURRENT_PER_A for a in values[NRG_CURRENT:NRG_POWER]]
        phase_w = [p * V1_NRG_POWER_W for p in values[NRG_POWER:NRG_POWER_TOTAL]]
        total_w = values[NRG_POWER_TOTAL] * V1_NRG_POWER_TOTAL_W
        out[KEY_NRG] = [*volts, *amps, *phase_w, total_w, *values[NRG_POWER_FACTOR:NRG_END]]
    return {k: v for k, v in out.items() if v is not None or k in (KEY_CAR, KEY_TRX)}


@dataclass(frozen=True)
class CarState:
    plugged: bool | None  # None: go-e does not say (initializing, error): keep the last known
    ev_requesting: bool


def car_state(car: int | None) -> CarState:
    """IEC 61851 from go-e's `car`: 1 A, 2 C (charging), 3/4 B (waiting / complete)."""
    if car == CAR_IDLE:
        return CarState(False, False)
    if car == CAR_CHARGING:
        return CarState(True, True)
    if car in (CAR_WAIT_CAR, CAR_COMPLETE):
        return CarState(True, False)
    return CarState(None, False)


def reading_from(
    values: Mapping[str, Any], *, phases: int, was_plugged: bool, legacy_errors: bool = False
) -> ChargerReading:
    """One ChargerReading from go-e keys in v2 types and units.

    Raises DeviceUnreachable when `car` is null: go-e then has no connection to its charge
    controller, so nothing else it says about the vehicle can be trusted.
    """
    if values.get(KEY_CAR) is None:
        raise DeviceUnreachable("go-e has no connection to its charge controller (car=null)")
    car = as_int(values.get(KEY_CAR))
    state = car_state(car)
    plugged = was_plugged if state.plugged is None else state.plugged
    allowed = as_bool(values.get(KEY_ALW))
    if allowed is None:  # not in the answer: what we forced
        allowed = as_int(values.get(KEY_FRC)) == FRC_ON
    nrg = values.get(KEY_NRG)
    voltage = current = None
    power = None
    if isinstance(nrg, list) and len(nrg) >= NRG_MIN_LEN:
        floats = [as_float(v) or 0.0 for v in nrg]
        voltage = tuple(floats[NRG_VOLTAGE : NRG_VOLTAGE + phases])
        current = tuple(floats[NRG_CURRENT : NRG_CURRENT + phases])
        power = floats[NRG_POWER_TOTAL]
    offered = 0.0
    if allowed:  # acu: what the car may take now; absent on v1 and some firmware
        offered = as_float(values.get(KEY_ACU)) or as_float(values.get(KEY_AMP)) or 0.0
    # WaitCar while go-e holds energy back says nothing of the car's wish: count it as asking, as
    # IEC state B would be, so that allowing energy reads Charging at once rather than SuspendedEV.
    requesting = state.ev_requesting or (car == CAR_WAIT_CAR and not allowed)
    return ChargerReading(
        plugged=plugged,
        ev_requesting=requesting,
        energy_allowed=allowed,
        energy_wh=as_float(values.get(KEY_ETO)),
        power_w=power,
        current_a=current,
        voltage_v=voltage,
        frequency_hz=as_float(values.get(KEY_FHZ)),
        current_offered_a=offered,
        fault=fault_from(values.get(KEY_ERR), car, ERRORS_V1 if legacy_errors else ERRORS_V2),
    )


def card_name(values: Mapping[str, Any], slot: int) -> str | None:
    """The name given to card `slot` (1-based): `cards[slot-1].name` (before 60.0) or `c<slot-1>n`."""
    cards = values.get(KEY_CARDS)
    if isinstance(cards, list) and 0 < slot <= len(cards) and isinstance(cards[slot - 1], dict):
        name = cards[slot - 1].get("name")
        if isinstance(name, str) and name:
            return name
    name = values.get(key_card_name(slot))
    return name if isinstance(name, str) and name else None


def tag_for_card(slot: int, name: str | None, card_tags: Mapping[str, str]) -> str:
    """The OCPP id tag of a go-e card: go-e never exposes the card's UID, only its slot and name.

    `card_tags` by name, then by slot number; else the card's name; else "go-e card <slot>".
    """
    if name is not None and name in card_tags:
        return card_tags[name]
    if str(slot) in card_tags:
        return card_tags[str(slot)]
    return (name or f"go-e card {slot}")[:ID_TAG_MAX]


def new_card_slot(before: Any, after: Any) -> int | None:
    """The slot of a card just tapped: `trx` became n >= 1 (0 is "without card", null "none")."""
    slot = as_int(after)
    if slot is None or slot < 1 or as_int(before) == slot:
        return None
    return slot


# -- pure wire formats ----------------------------------------------------------------------------

FILTER_CSV = "csv"  # firmware >= 051.4: filter=car,alw
FILTER_JSON = "json"  # firmware <= 051.3: filter=["car","alw"], about 10 keys at most
LEGACY_FILTER_MAX = 10
_QUERY_SAFE = ',[]":'  # JSON punctuation stays readable on the wire; spaces and the rest are escaped


def filter_query(keys: Iterable[str], syntax: str) -> str:
    keys = list(keys)
    assert syntax == FILTER_CSV or len(keys) <= LEGACY_FILTER_MAX, "old firmware answers ~10 keys at most"
    text = ",".join(keys) if syntax == FILTER_CSV else json.dumps(keys, separators=(",", ":"))
    return "filter=" + urllib.parse.quote(text, safe=_QUERY_SAFE)


def set_query(key: str, value: Any) -> str:
    """`/api/set` takes every value JSON-encoded: amp=16, fna="name", dwo=null, bac=false."""
    return f"{key}=" + urllib.parse.quote(json.dumps(value), safe=_QUERY_SAFE)


def set_answer_problem(key: str, http_status: int, answer: Any) -> str | None:
    """None when `/api/set` took `key`; else the charger's reason, as it said it."""
    if isinstance(answer, dict) and key in answer:
        verdict = answer[key]
        if verdict is True:
            return None
        return verdict if isinstance(verdict, str) else f"{key}: {json.dumps(verdict)}"
    return f"HTTP {http_status} without a verdict on {key}: {str(answer)[:100]}"


def result_problem(payload: bytes) -> str | None:
    """None when an MQTT `<key>/result` says success; else its error text."""
    text = payload.decode("utf-8", "replace").strip()
    with contextlib.suppress(ValueError):
        decoded = json.loads(text)
        if isinstance(decoded, str):
            text = decoded
    return None if text == "success" else text
