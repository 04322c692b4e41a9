"""OpenEVSE's API in pure functions, for both transports: the status fields and their units, the EVSE
states, the claim a command becomes and what an answer means. openevse.py does the I/O over HTTP
(`/status`, `/claims`), openevse_mqtt.py over MQTT (the same fields as `<base>/<field>` topics, the
claim on `<base>/claim/set`).

Source: OpenEVSE/openevse_esp32_firmware (`api.yml`, `models/Properties.yaml`,
`src/web_server_claims.cpp`, `src/evse_man.h`, `docs/mqtt.md`), summarised in docs/devices/openevse.md.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adapters.base import ChargerReading, DeviceRefused, DeviceUnreachable, Fault, FaultKind

# `GET /status` fields, with their units.
F_AMP = "amp"  # charge current, mA (AMPS_SCALE_FACTOR 1000 in the ESP32 build)
F_VOLTAGE = "voltage"  # V
F_POWER = "power"  # W
F_PILOT = "pilot"  # A advertised to the vehicle
F_STATE = "state"  # the EVSE state, int (below)
F_STATUS = "status"  # "active" | "disabled"
F_VEHICLE = "vehicle"  # 0/1: a vehicle is connected
F_EVSE_CONNECTED = "evse_connected"  # 0/1: the gateway hears its EVSE controller
F_TOTAL_ENERGY = "total_energy"  # kWh, the lifetime register
F_SESSION_ENERGY = "session_energy"  # Wh
F_FREQUENCY = "frequency"  # 0.01 Hz, present only where measured
F_MANUAL_OVERRIDE = "manual_override"  # 0/1
F_MAX_CURRENT = "max_current"  # A, the current after the claims

STATUS_ACTIVE, STATUS_DISABLED = "active", "disabled"

# EVSE `state` values (src/evse_man.h, RAPI).
STATE_STARTING = 0
STATE_NOT_CONNECTED = 1
STATE_CONNECTED = 2
STATE_CHARGING = 3
STATE_SLEEPING = 254
STATE_DISABLED = 255
STATE_FAULTS: dict[int, tuple[FaultKind, str, str]] = {
    4: (FaultKind.OTHER, "ventilation required", "vent required"),
    5: (FaultKind.EV_COMMUNICATION, "vehicle diode check failed", "diode check failed"),
    6: (FaultKind.RESIDUAL_CURRENT, "GFCI (residual current) tripped", "GFCI fault"),
    7: (FaultKind.GROUND_FAULT, "no ground", "no ground"),
    8: (FaultKind.POWER_SWITCH, "relay stuck closed", "stuck relay"),
    9: (FaultKind.RESIDUAL_CURRENT, "GFCI self-test failed", "GFCI self-test failure"),
    10: (FaultKind.OVER_TEMPERATURE, "over temperature", "over temperature"),
    11: (FaultKind.OVER_CURRENT, "over current", "over current"),
}

# Claim properties (models/Properties.yaml); charge_current and max_current are whole amperes.
P_STATE = "state"
P_CHARGE_CURRENT = "charge_current"
P_MAX_CURRENT = "max_current"
P_AUTO_RELEASE = "auto_release"
PROPERTIES = (P_STATE, P_CHARGE_CURRENT, P_MAX_CURRENT)
CURRENT_MIN_A = 6  # IEC 61851's lowest pilot; OpenEVSE's own minimum
CURRENT_MAX_A = 80  # the highest OpenEVSE hardware (the configured maximum may be lower)
CLIENT_MAX = 0xFFFFFFFF  # a client id is a 32-bit integer (EvseClient)


def current_problems(min_current_a: float, max_current_a: float) -> list[tuple[str, str]]:
    """The (option, problem) of a configured current range OpenEVSE cannot offer; empty when it can."""
    if CURRENT_MIN_A <= min_current_a <= max_current_a <= CURRENT_MAX_A:
        return []
    return [(
        "max_current_a" if max_current_a > CURRENT_MAX_A else "min_current_a",
        f"OpenEVSE takes {CURRENT_MIN_A} to {CURRENT_MAX_A} A: "
        f"need {CURRENT_MIN_A} <= min_current_a <= max_current_a <= {CURRENT_MAX_A}",
    )]  # fmt: skip


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def fault_from(state: int | None) -> Fault | None:
    """The fault an EVSE state reports, None for a state that is not one."""
    if state is None or state not in STATE_FAULTS:
        return None
    kind, info, name = STATE_FAULTS[state]
    return Fault(kind, info, f"state={state} {name}")


def reading_from(status: Mapping[str, Any], *, phases: int, was_plugged: bool) -> ChargerReading:
    """A `/status` answer as a reading. `was_plugged` holds while the state says nothing of the plug."""
    if status.get(F_EVSE_CONNECTED) == 0:
        raise DeviceUnreachable("the WiFi gateway has lost its EVSE controller (evse_connected=0)")
    raw_state = status.get(F_STATE)
    if not isinstance(raw_state, int) or isinstance(raw_state, bool):
        raise DeviceRefused(f"/status has no EVSE state: {str(dict(status))[:100]}")
    vehicle = status.get(F_VEHICLE)
    if raw_state == STATE_NOT_CONNECTED:
        plugged = False
    elif raw_state == STATE_CHARGING:
        plugged = True
    elif vehicle in (0, 1):  # evcc: 2, 254, 255 are B with vehicle=1, else A; faults say it too
        plugged = vehicle == 1
    else:
        plugged = was_plugged  # starting up, and no vehicle field
    fault = fault_from(raw_state)
    allowed = status.get(F_STATUS) == STATUS_ACTIVE and fault is None and raw_state != STATE_STARTING
    if raw_state == STATE_CHARGING:
        requesting = True
    elif raw_state == STATE_CONNECTED:
        requesting = False  # offered, not taken: the vehicle does not ask (IEC state B)
    else:
        # Sleeping or disabled with a vehicle: the pilot is off, so its wish is unknown; it is
        # taken to ask (SuspendedEVSE, not SuspendedEV) until energy is offered.
        requesting = plugged and fault is None and raw_state != STATE_STARTING
    kwh = _number(status.get(F_TOTAL_ENERGY))
    amp_ma = _number(status.get(F_AMP))
    volts = _number(status.get(F_VOLTAGE))
    hz = _number(status.get(F_FREQUENCY))
    pilot = _number(status.get(F_PILOT))
    # One current and one voltage are measured; on three phases OpenEVSE takes them to be the same on each.
    return ChargerReading(
        plugged=plugged,
        ev_requesting=requesting,
        energy_allowed=allowed,
        energy_wh=None if kwh is None else round(kwh * 1000.0, 3),
        power_w=_number(status.get(F_POWER)),
        current_a=None if amp_ma is None else (round(amp_ma / 1000.0, 3),) * phases,
        voltage_v=None if volts is None else (volts,) * phases,
        frequency_hz=None if hz is None else round(hz / 100.0, 2),
        current_offered_a=(pilot if allowed else 0.0) if pilot is not None else None,
        fault=fault,
    )


@dataclass(frozen=True)
class Claim:
    """What the bridge asks of the box: None for a property it has not decided yet."""

    state: str | None = None
    current_a: int | None = None

    def body(self) -> dict[str, Any]:
        """The claim's JSON; the current both as the offer and as the cap, so that a lower-priority
        claim's charge_current can never offer more than the bridge allows."""
        body: dict[str, Any] = {P_AUTO_RELEASE: False}  # the bridge, not the plug, ends its claim
        if self.state is not None:
            body[P_STATE] = self.state
        if self.current_a is not None:
            body[P_CHARGE_CURRENT] = self.current_a
            body[P_MAX_CURRENT] = self.current_a
        return body

    def fields(self) -> list[str]:
        """The properties this claim must win."""
        out = [P_STATE] if self.state is not None else []
        return out + ([P_CHARGE_CURRENT, P_MAX_CURRENT] if self.current_a is not None else [])


def answer_problem(what: str, status: int, answer: Any) -> str | None:
    """Why an answer is a refusal (the device's own `msg` where it gives one), None for success."""
    if 200 <= status < 300:  # {"msg":"done"}, or what a restart says ({"msg":"restart gateway"})
        return None
    msg = answer.get("msg") if isinstance(answer, dict) else None
    if status == 401:
        return f"{what}: authentication failed (HTTP 401): check username and password"
    if status == 429:
        return f"{what}: the box locks out logins after failed attempts (HTTP 429 {msg or ''}); wait"
    detail = msg if isinstance(msg, str) else str(answer)[:80]
    return f"{what}: HTTP {status} {detail}".rstrip()


def claim_losers(target: Any, claim: Claim, client: int) -> dict[str, Any]:
    """The properties of `claim` that another client's claim wins in a `/claims/target` answer
    (`{"claims": {"state": <client>, ...}}`), with that client."""
    winners = target.get("claims") if isinstance(target, dict) else None
    if not isinstance(winners, dict):
        raise DeviceRefused(f"/claims/target answered without its claims: {str(target)[:100]}")
    lost: dict[str, Any] = {}
    for name in claim.fields():
        winner = winners.get(name)
        try:
            ours = winner is not None and int(winner) == client
        except (TypeError, ValueError):
            ours = False
        if not ours:
            lost[name] = winner
    return lost


# -- MQTT (devices.md §2.2) ----------------------------------------------------------------------------
# Sub-topics of the gateway's base topic: every `/status` field above as `<base>/<field>`, and these.
T_CLAIM = "claim"  # retained: the MQTT service's claim, {"state": "null"} when it holds none
T_CLAIM_SET = "claim/set"  # JSON properties (priority 500, like HTTP), or "release"
T_OVERRIDE = "override"  # retained: the manual override (priority 1000), {"state": "null"} when none
T_RESTART = "restart"  # {"device": "gateway" | "evse"}; nothing answers it
ANNOUNCE_PREFIX = "openevse/announce/"  # + the last 4 of the id: retained, and the last will
ANNOUNCE_CONNECTED, ANNOUNCE_DISCONNECTED = "connected", "disconnected"
NO_CLAIM = "null"  # the `state` of the claim and override documents when there is none
MQTT_DOCUMENTS = frozenset({T_CLAIM, T_OVERRIDE, "config", "config_version", "schedule", "limit", "boost"})
# The fields whose change changes what a reading shows (not the ones that flow with the energy).
STATE_FIELDS = frozenset({F_STATE, F_STATUS, F_VEHICLE, F_EVSE_CONNECTED, F_PILOT, F_MAX_CURRENT})


def mqtt_value(payload: bytes) -> Any:
    """A status topic's payload: the gateway publishes each value as its text (`3`, `1234.567`,
    `false`, `active`); numbers and booleans as such, anything else as the text."""
    text = payload.decode("utf-8", "replace").strip()
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, int | float | bool) or value is None else text


def mqtt_document(payload: bytes) -> dict[str, Any] | None:
    """A retained JSON document (claim, override, announce); None for anything that is not an object."""
    try:
        doc = json.loads(payload)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def holds_claim(doc: Mapping[str, Any] | None) -> bool:
    """Whether a claim or override document holds one (`{"state": "null"}` says none)."""
    return doc is not None and doc.get(P_STATE) != NO_CLAIM and any(name in doc for name in PROPERTIES)


def shows_claim(doc: Mapping[str, Any] | None, claim: Claim) -> bool:
    """Whether the retained claim document (the acknowledgement) carries every property of `claim`."""
    if doc is None or not holds_claim(doc):
        return False
    return all(doc.get(name) == value for name, value in claim.body().items() if name in PROPERTIES)


def override_takes(override: Mapping[str, Any] | None, claim: Claim) -> list[str]:
    """The properties of `claim` that a manual override (priority 1000) sets, and so wins."""
    if not holds_claim(override):
        return []
    assert override is not None
    return [name for name in claim.fields() if name in override]


def claim_unmet(values: Mapping[str, Any], claim: Claim) -> list[str]:
    """What the box's status does not (yet) show of `claim`: `status` other than the claimed state,
    or an effective `max_current` above the claimed current."""
    unmet: list[str] = []
    if claim.state is not None and values.get(F_STATUS) != claim.state:
        unmet.append(f"status={values.get(F_STATUS)}")
    effective = _number(values.get(F_MAX_CURRENT))
    if claim.current_a is not None and (effective is None or effective > claim.current_a):
        unmet.append(f"max_current={values.get(F_MAX_CURRENT)}")
    return unmet


def announced(doc: Mapping[str, Any] | None) -> bool | None:
    """An announce document (`openevse/announce/<id>`): True for `connected`, False for `disconnected`
    (also the last will the broker publishes when the gateway vanishes), None for anything else."""
    state = doc.get("state") if doc is not None else None
    return (
        {ANNOUNCE_CONNECTED: True, ANNOUNCE_DISCONNECTED: False}.get(state)
        if isinstance(state, str)
        else None
    )
