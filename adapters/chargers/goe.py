"""go-e Charger (V3, V4, V5, Pro) over HTTP API v2, HTTP API v1 (legacy) or MQTT.

Facts: goecharger/go-eCharger-API-v2 (http-en.md, mqtt-de.md, apikeys), go-eCharger-API-v1,
summarised in docs/devices/goe.md.

Theory
------
The box speaks in API keys (`car`, `err`, `nrg`, `eto`, `frc`, `amp`, `trx`, ...). Whatever the
transport, the driver turns each answer into a dict of keys with v2 types and units (`v1_to_v2`
converts the legacy strings and 0.1 kWh / 0.1 A / 0.01 kW units) and one pure function,
`reading_from`, makes the ChargerReading. The three transports differ only in how keys are read and
written:

- HTTP v2: `GET /api/status?filter=...` (two filter syntaxes, chosen at the probe: `car,alw` from
  firmware 051.4 on, `["car","alw"]` before) and `GET /api/set?key=<JSON>`, answered per key with
  `true` or an error text (HTTP 500 for read-only keys).
- HTTP v1: `GET /status` (every value a string) and `GET /mqtt?payload=key=value`, answered with the
  full status: a refused command shows only as an unchanged value.
- MQTT (v2): retained topics `<prefix>/<serial>/<key>`; a write is published to `<key>/set` and
  answered on `<key>/result` with `success` or an error text. The latest values are kept; they are
  stale when nothing arrived for `stale_after_s` (go-e republishes `rbt`, its uptime, every second).

The bridge owns the decision to charge: once the bridge operates the charger (it has set a listener;
`ocpp-bridge probe` does not, and switches nothing), the first read sets force state Off (`frc=1`), so
that go-e's own logic does not charge a plugged car before a transaction allows it; `set_enabled`
writes `frc=2`/`frc=1` (v1: `alw=1/0`).

A card tap shows as `trx` (v1: `uby`) changing to the card's slot number; the card's UID is not
exposed, so the id tag is taken from `card_tags` or the card's name (`tag_for_card`).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
import logging
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from adapters.base import (
    Charger,
    ChargerCapabilities,
    ChargerReading,
    DeviceFault,
    DeviceRefused,
    DeviceUnreachable,
    Listener,
    NotSupportedByDevice,
    StateChanged,
    TagPresented,
)
from adapters.transports.pool import Transports
from adapters.transports.urls import http_address_problem

if TYPE_CHECKING:
    from adapters.transports.mqtt import MqttBroker

log = logging.getLogger("adapters.goe")  # the name log lines have always shown

# -- options ----------------------------------------------------------------------------------------

ID_TAG_MAX = 20  # OCPP 1.6 IdToken is CiString20


@dataclass(frozen=True)
class GoeOptions:
    """The `charger: {type: goe, ...}` block."""

    type: str = "goe"
    url: str | None = None  # http://HOST of the charger (transport http)
    api: str = "v2"  # "v2" (/api/status), or "v1" for old firmware with only the legacy /status API
    transport: str = "http"  # "http" or "mqtt" (API v2 only)
    broker: str | None = None  # mqtt://[user:password@]host[:port] (transport mqtt)
    serial: str | None = None  # the charger's serial number `sse`, in quotes (transport mqtt)
    topic_prefix: str = "go-eCharger"  # older firmware publishes under "/go-eCharger"
    timeout_s: float = 5.0  # per HTTP request, and for an MQTT write's result
    stale_after_s: float = 30.0  # MQTT: no message for this long means the charger is gone
    phases: int = 3  # phases wired to the vehicle
    min_current_a: float = 6.0
    max_current_a: float = 16.0  # at most the variant's limit (11 kW: 16 A, 22 kW: 32 A)
    fixed_cable: bool = False  # a tethered cable (the bridge cannot unlock go-e's socket anyway)
    card_tags: dict[str, str] = field(default_factory=dict)  # card name or slot "1".."10" -> idTag

    def validate(self) -> list[tuple[str, str]]:
        """(field, problem) pairs; empty when the options make sense."""
        problems: list[tuple[str, str]] = []
        if self.api not in ("v1", "v2"):
            problems.append(("api", 'must be "v2" (/api/status) or "v1" (old firmware: legacy /status API)'))
        if self.transport not in ("http", "mqtt"):
            problems.append(("transport", 'must be "http" or "mqtt"'))
        elif self.transport == "http":
            problems += _http_url_problems(self.url)
        else:
            problems += self._mqtt_problems()
        if not 0 < self.timeout_s <= 60:
            problems.append(("timeout_s", "must be above 0 and at most 60 seconds"))
        if self.stale_after_s < 2:
            problems.append(
                ("stale_after_s", "must be at least 2 seconds (go-e publishes about every second)")
            )
        if self.phases not in (1, 3):
            problems.append(("phases", "must be 1 or 3"))
        if not 6 <= self.min_current_a <= self.max_current_a <= 32:
            problems.append(
                ("min_current_a", "go-e takes 6 to 32 A: need 6 <= min_current_a <= max_current_a <= 32")
            )
        for key, tag in self.card_tags.items():
            if not 0 < len(tag) <= ID_TAG_MAX:
                problems.append((f"card_tags.{key}", f"an id tag has 1 to {ID_TAG_MAX} characters"))
        return problems

    def _mqtt_problems(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        if self.api != "v2":
            problems.append(
                ("transport", 'MQTT is supported with api: "v2" only (the v1 MQTT interface is not)')
            )
        from adapters.transports.mqtt import BrokerAddress  # only here: aiomqtt is not loaded for HTTP setups

        try:
            BrokerAddress.parse(self.broker or "")
        except ValueError:
            problems.append(
                ("broker", "transport mqtt needs broker: mqtt://host[:port] (the broker go-e uses)")
            )
        if not self.serial:
            problems.append(
                ("serial", 'transport mqtt needs serial: the charger\'s serial number, e.g. "072246"')
            )
        elif any(c in self.serial for c in "/+# "):
            problems.append(("serial", "must not contain '/', '+', '#' or spaces"))
        if (
            any(c in self.topic_prefix for c in "+#")
            or self.topic_prefix.endswith("/")
            or not self.topic_prefix
        ):
            problems.append(
                ("topic_prefix", 'must be a topic like "go-eCharger" (no wildcards, no trailing /)')
            )
        return problems


def _http_url_problems(url: str | None) -> list[tuple[str, str]]:
    if not url:
        return [("url", "transport http needs url: http://<address of the charger>")]
    problem = http_address_problem(url, path_allowed=True)
    return [("url", problem)] if problem else []


# -- pure mapping: go-e keys -> reading -------------------------------------------------------------

CAR_IDLE, CAR_CHARGING, CAR_WAIT_CAR, CAR_COMPLETE, CAR_ERROR, CAR_INITIALIZING = 1, 2, 3, 4, 5, 6

# `err` as numbered by the firmware exports (59.4 .. 60.4), the better source than apikeys-en.md:
# number -> (go-e name, OCPP 1.6 ChargePointErrorCode, short info)
ERRORS_V2: dict[int, tuple[str, str, str]] = {
    1: ("FiAc", "GroundFailure", "residual current (AC)"),
    2: ("FiDc", "GroundFailure", "residual current (DC)"),
    3: ("Phase", "OtherError", "phase fault"),
    4: ("Overvolt", "OverVoltage", "overvoltage"),
    5: ("Overamp", "OverCurrentFailure", "overcurrent"),
    6: ("Diode", "EVCommunicationError", "vehicle diode check failed"),
    7: ("PpInvalid", "EVCommunicationError", "invalid proximity pilot (cable)"),
    8: ("GndInvalid", "GroundFailure", "protective earth missing or invalid"),
    9: ("ContactorStuck", "PowerSwitchFailure", "contactor stuck closed"),
    10: ("ContactorMiss", "PowerSwitchFailure", "contactor did not close"),
    12: ("StatusLockStuckOpen", "ConnectorLockFailure", "cable lock stuck open"),
    13: ("StatusLockStuckLocked", "ConnectorLockFailure", "cable lock stuck locked"),
    14: ("FiUnknown", "GroundFailure", "residual current device fault"),
    15: ("Unknown", "OtherError", "unknown error"),
    16: ("Overtemp", "HighTemperature", "overtemperature"),
    17: ("NoComm", "InternalError", "no communication with charge controller"),
    18: ("CpInvalid", "EVCommunicationError", "invalid control pilot signal"),
    23: ("RdcSelfTestFailed", "InternalError", "DC residual current self-test failed"),
}
# API v1 (firmware 033) numbers its errors differently.
ERRORS_V1: dict[int, tuple[str, str, str]] = {
    1: ("RCCB", "GroundFailure", "residual current"),
    3: ("PHASE", "OtherError", "phase fault"),
    8: ("NO_GROUND", "GroundFailure", "protective earth missing"),
    10: ("INTERNAL", "InternalError", "internal error"),
}


def fault_from(err: Any, car: Any, table: Mapping[int, tuple[str, str, str]]) -> DeviceFault | None:
    """The OCPP fault for go-e's `err` (and the car state Error when `err` says nothing)."""
    number = as_int(err)
    if number:
        name, code, info = table.get(number, ("?", "OtherError", "go-e error"))
        return DeviceFault(code, info, f"err={number} {name}")
    if as_int(car) in (0, CAR_ERROR):
        return DeviceFault("OtherError", "go-e reports car state Error", f"car={as_int(car)}")
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
        "car": as_int(status.get("car")),
        "err": as_int(status.get("err")),
        "alw": as_bool(status.get("alw")),
        "amp": as_int(status.get("amp")),
        "trx": as_int(status.get("uby")),  # v1 "unlocked by card n", 0 = none
    }
    eto = as_float(status.get("eto"))
    out["eto"] = None if eto is None else eto * 100.0  # 0.1 kWh -> Wh
    nrg = status.get("nrg")
    if isinstance(nrg, list) and len(nrg) >= 12:
        values = [as_float(v) or 0.0 for v in nrg]
        volts, amps = values[0:4], [a / 10 for a in values[4:7]]  # 0.1 A -> A
        phase_w = [p * 100 for p in values[7:11]]  # 0.1 kW -> W
        out["nrg"] = [*volts, *amps, *phase_w, values[11] * 10, *values[12:16]]  # 0.01 kW -> W
    return {k: v for k, v in out.items() if v is not None or k in ("car", "trx")}


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
    if values.get("car") is None:
        raise DeviceUnreachable("go-e has no connection to its charge controller (car=null)")
    car = as_int(values.get("car"))
    state = car_state(car)
    plugged = was_plugged if state.plugged is None else state.plugged
    allowed = as_bool(values.get("alw"))
    if allowed is None:  # not in the answer: what we forced
        allowed = as_int(values.get("frc")) == 2
    nrg = values.get("nrg")
    voltage = current = None
    power = None
    if isinstance(nrg, list) and len(nrg) >= 12:
        floats = [as_float(v) or 0.0 for v in nrg]
        voltage, current, power = tuple(floats[0:phases]), tuple(floats[4 : 4 + phases]), floats[11]
    offered = 0.0
    if allowed:  # acu: what the car may take now; absent on v1 and some firmware
        offered = as_float(values.get("acu")) or as_float(values.get("amp")) or 0.0
    # WaitCar while go-e holds energy back says nothing of the car's wish: count it as asking, as
    # IEC state B would be, so that allowing energy reads Charging at once rather than SuspendedEV.
    requesting = state.ev_requesting or (car == CAR_WAIT_CAR and not allowed)
    return ChargerReading(
        plugged=plugged,
        ev_requesting=requesting,
        energy_allowed=allowed,
        energy_wh=as_float(values.get("eto")),
        power_w=power,
        current_a=current,
        voltage_v=voltage,
        frequency_hz=as_float(values.get("fhz")),
        current_offered_a=offered,
        fault=fault_from(values.get("err"), car, ERRORS_V1 if legacy_errors else ERRORS_V2),
    )


def card_name(values: Mapping[str, Any], slot: int) -> str | None:
    """The name given to card `slot` (1-based): `cards[slot-1].name` (before 60.0) or `c<slot-1>n`."""
    cards = values.get("cards")
    if isinstance(cards, list) and 0 < slot <= len(cards) and isinstance(cards[slot - 1], dict):
        name = cards[slot - 1].get("name")
        if isinstance(name, str) and name:
            return name
    name = values.get(f"c{slot - 1}n")
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


OCPPE_ON = (
    "go-e's own OCPP client is enabled (ocppe=true); two OCPP clients would fight over the charger. "
    "Switch it off in the go-e app's OCPP settings, or with GET {url}/api/set?ocppe=false"
)

# -- transports -------------------------------------------------------------------------------------

POLL_KEYS = ("car", "err", "alw", "frc", "acu", "amp", "nrg", "eto", "trx", "fhz")  # <= 10: old filter
PROBE_KEYS = ("car", "err", "alw", "frc", "amp", "eto", "trx", "fwv", "ocppe", "psm")


class _Link(abc.ABC):
    """How keys are read and written; one subclass per transport. Values come back as v2 keys."""

    legacy_errors = False  # True: `err` uses the API v1 numbering

    @abc.abstractmethod
    async def probe(self) -> dict[str, Any]:
        """Find out how to talk to the box; returns the probe keys it answered with."""

    @abc.abstractmethod
    async def read(self) -> dict[str, Any]: ...

    @abc.abstractmethod
    async def read_keys(self, keys: Iterable[str]) -> dict[str, Any]: ...

    @abc.abstractmethod
    async def write(self, key: str, value: Any) -> None: ...

    async def close(self) -> None:  # noqa: B027 - only MQTT has something to release
        pass


class _Http:
    def __init__(self, url: str, transports: Transports, timeout_s: float) -> None:
        self.base = url.rstrip("/")
        self._transports = transports
        self._timeout_s = timeout_s

    async def get(self, path_and_query: str) -> tuple[int, Any]:
        """(HTTP status, decoded JSON or the text); DeviceUnreachable for no or a late answer."""
        import aiohttp
        import yarl

        url = yarl.URL(self.base + path_and_query, encoded=True)
        try:
            async with self._transports.http().get(
                url, timeout=aiohttp.ClientTimeout(total=self._timeout_s)
            ) as response:
                body = await response.read()
                status = response.status
        except TimeoutError as exc:
            raise DeviceUnreachable(f"no answer from {self.base} within {self._timeout_s:g} s") from exc
        except aiohttp.ClientError as exc:
            raise DeviceUnreachable(f"{self.base}: {str(exc) or type(exc).__name__}") from exc
        text = body.decode("utf-8", "replace")
        try:
            return status, json.loads(text)
        except ValueError:  # the caller names what it expected; the text is kept for its message
            return status, text


class _HttpV2(_Link):
    def __init__(self, http: _Http) -> None:
        self.http = http
        self.syntax: str | None = None

    async def probe(self) -> dict[str, Any]:
        answer: Any = None
        for syntax in (FILTER_CSV, FILTER_JSON):  # newer firmware first
            status, answer = await self.http.get("/api/status?" + filter_query(PROBE_KEYS, syntax))
            if status == 200 and isinstance(answer, dict) and "car" in answer:
                self.syntax = syntax
                return answer
        raise DeviceRefused(
            f"{self.http.base}/api/status did not answer with the charger's values ({str(answer)[:80]!r}); "
            "enable the HTTP API v2 in the go-e app (hai), or set api: v1 for old firmware"
        )

    async def read(self) -> dict[str, Any]:
        return await self.read_keys(POLL_KEYS)

    async def read_keys(self, keys: Iterable[str]) -> dict[str, Any]:
        assert self.syntax is not None, "probe first"
        status, answer = await self.http.get("/api/status?" + filter_query(keys, self.syntax))
        if status != 200 or not isinstance(answer, dict):
            raise DeviceRefused(f"/api/status answered HTTP {status}: {str(answer)[:100]}")
        return answer

    async def write(self, key: str, value: Any) -> None:
        status, answer = await self.http.get("/api/set?" + set_query(key, value))
        problem = set_answer_problem(key, status, answer)
        if problem is not None:
            raise DeviceRefused(f"go-e refused {key}={json.dumps(value)}: {problem}")


class _HttpV1(_Link):
    legacy_errors = True
    _ECHO = {"amx": "amp"}  # amx (volatile current) shows in the status as amp

    def __init__(self, http: _Http) -> None:
        self.http = http

    async def _status(self, path_and_query: str) -> dict[str, Any]:
        status, answer = await self.http.get(path_and_query)
        if status != 200 or not isinstance(answer, dict) or "car" not in answer:
            raise DeviceRefused(
                f"{self.http.base}{path_and_query.split('?')[0]} answered HTTP {status}: {str(answer)[:80]}; "
                "enable the legacy HTTP API in the go-e app (hla), or use api: v2"
            )
        return answer

    async def probe(self) -> dict[str, Any]:
        raw = await self._status("/status")
        return {**v1_to_v2(raw), "fwv": raw.get("fwv"), "ocppe": raw.get("ocppe")}

    async def read(self) -> dict[str, Any]:
        return v1_to_v2(await self._status("/status"))

    async def read_keys(self, keys: Iterable[str]) -> dict[str, Any]:
        return {}  # v1 exposes no card names this driver knows of

    async def write(self, key: str, value: Any) -> None:
        wire = str(int(value)) if isinstance(value, bool | int) else str(value)
        answer = await self._status("/mqtt?payload=" + urllib.parse.quote(f"{key}={wire}", safe="="))
        echo = self._ECHO.get(key, key)
        if str(answer.get(echo)) != wire:  # v1 refuses by leaving the value as it was
            raise DeviceRefused(
                f"go-e did not take {key}={wire}: it still reports {echo}={answer.get(echo)!r}"
            )


class _Mqtt(_Link):
    def __init__(self, options: GoeOptions, transports: Transports) -> None:
        assert options.broker is not None and options.serial is not None
        self._options = options
        self._transports = transports
        self.base = f"{options.topic_prefix}/{options.serial}/"
        self.values: dict[str, Any] = {}
        self.last_message_at: float | None = None
        self._broker: MqttBroker | None = None
        self._results: dict[str, asyncio.Future[str | None]] = {}
        self._write_lock = asyncio.Lock()  # results carry no correlation id: one write at a time
        self._got_car = asyncio.Event()
        self.on_change: Callable[[str, Any, Any], None] = lambda key, old, new: None

    async def _connect(self) -> MqttBroker:
        if self._broker is None:
            self._broker = self._transports.mqtt(self._options.broker or "")
            await self._broker.subscribe(self.base + "+", self._on_message)
            await self._broker.subscribe(self.base + "+/result", self._on_message)
        if not await self._broker.wait_connected(self._options.timeout_s):
            raise DeviceUnreachable(
                f"MQTT broker {self._broker.address} not reachable: {self._broker.last_error}"
            )
        return self._broker

    def _on_message(self, topic: str, payload: bytes) -> None:
        if not topic.startswith(self.base):
            return
        key = topic[len(self.base) :]
        self.last_message_at = time.monotonic()
        if key.endswith("/result"):
            future = self._results.get(key[: -len("/result")])
            if future is not None and not future.done():
                future.set_result(result_problem(payload))
            return
        try:
            value = json.loads(payload)
        except ValueError:  # payloads are JSON; keep anything else as text
            value = payload.decode("utf-8", "replace")
        old = self.values.get(key)
        self.values[key] = value
        if key == "car":
            self._got_car.set()
        if old != value:
            self.on_change(key, old, value)

    async def probe(self) -> dict[str, Any]:
        await self._connect()
        try:
            async with asyncio.timeout(self._options.timeout_s):  # unlike wait_for, never loses a cancel
                await self._got_car.wait()
        except TimeoutError:
            raise DeviceUnreachable(
                f"no go-e values on {self.base}car: check serial, topic_prefix and that MQTT is enabled "
                "on the charger (mce)"
            ) from None
        await self._settle()
        return dict(self.values)

    async def _settle(self, quiet_s: float = 0.2, max_s: float = 1.5) -> None:
        """Retained topics arrive in a burst in any order: wait for the burst to end (psm, ocppe...)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_s
        while loop.time() < deadline:
            seen = self.last_message_at or 0.0
            await asyncio.sleep(quiet_s)
            if self.last_message_at == seen:
                return

    async def read(self) -> dict[str, Any]:
        broker = self._broker
        if broker is None or not broker.connected:
            raise DeviceUnreachable(
                f"MQTT broker not connected ({broker.last_error if broker else 'not started'})"
            )
        if "car" not in self.values or self.last_message_at is None:
            raise DeviceUnreachable(f"no go-e values received on {self.base}car yet")
        age = time.monotonic() - self.last_message_at
        if age > self._options.stale_after_s:
            raise DeviceUnreachable(f"no message from go-e on {self.base}+ for {age:.0f} s")
        return dict(self.values)

    async def read_keys(self, keys: Iterable[str]) -> dict[str, Any]:
        return {k: self.values[k] for k in keys if k in self.values}

    async def write(self, key: str, value: Any) -> None:
        broker = await self._connect()
        async with self._write_lock:
            future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
            self._results[key] = future
            try:
                async with asyncio.timeout(self._options.timeout_s):
                    await broker.publish(f"{self.base}{key}/set", json.dumps(value))
                    problem = await future
            except TimeoutError:
                raise DeviceUnreachable(
                    f"no answer on {self.base}{key}/result within {self._options.timeout_s:g} s "
                    "(are MQTT writes allowed on the charger? firmware 051.5+ needs that, and mcr off)"
                ) from None
            finally:
                self._results.pop(key, None)
        if problem is not None:
            raise DeviceRefused(f"go-e refused {key}={json.dumps(value)}: {problem}")

    async def close(self) -> None:
        if self._broker is not None:
            self._broker.unsubscribe(self._on_message)


# -- the driver -------------------------------------------------------------------------------------


class GoeCharger(Charger):
    Options = GoeOptions

    def __init__(self, options: GoeOptions, transports: Transports) -> None:
        super().__init__()
        self.options = options
        self._link: _Link
        if options.transport == "mqtt":
            mqtt = _Mqtt(options, transports)
            mqtt.on_change = self._on_mqtt_change
            self._link = mqtt
        else:
            http = _Http(options.url or "", transports, options.timeout_s)
            self._link = _HttpV2(http) if options.api == "v2" else _HttpV1(http)
        self._probed = False
        self._probe_lock = asyncio.Lock()
        self._commanded = False  # set_enabled was called
        self._take_over = False  # force energy off at the next read
        self._energy_lock = asyncio.Lock()
        self._has_psm = False
        self._plugged = False
        self._trx: Any = None  # the last transaction slot seen; a change to n >= 1 is a card tap

    @property
    def capabilities(self) -> ChargerCapabilities:
        o = self.options
        return ChargerCapabilities(
            can_sense_plug=True,
            can_unlock=False,  # no documented unlock command (ust is a mode, not an action)
            fixed_cable=o.fixed_cable,
            can_switch_phases=self._has_psm,
            can_reset=o.api == "v2",
            has_meter=True,
            has_rfid=True,
            phases=o.phases,
            min_current_a=o.min_current_a,
            max_current_a=o.max_current_a,
            current_step_a=1.0,
        )

    @property
    def description(self) -> str:
        o = self.options
        if o.transport == "mqtt":
            return f"go-e {o.serial} via MQTT"
        return f"go-e at {urllib.parse.urlsplit(o.url or '').hostname}"

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        await self._ensure_probed()

    async def _ensure_probed(self) -> None:
        """Probe once it succeeds; until then every use tries again (the box may come later)."""
        async with self._probe_lock:  # a read and a command may both find the box unprobed
            if not self._probed:
                await self._probe()

    async def _probe(self) -> None:
        values = await self._link.probe()
        if as_bool(values.get("ocppe")):
            raise DeviceRefused(OCPPE_ON.format(url=self.options.url or "http://<charger>"))
        self._has_psm = "psm" in values
        self._trx = values.get("trx")
        log.info(
            "%s: firmware %s, %s; phase switching (psm) %s",
            self.description, values.get("fwv", "?"), self._how(), "available" if self._has_psm else "absent",
        )  # fmt: skip
        self._probed = True

    def set_listener(self, listener: Listener | None) -> None:
        # A listener means the bridge operates the charger (a probe sets none): take over at the next read.
        super().set_listener(listener)
        self._take_over = listener is not None and not self._commanded

    async def _hold_energy(self, values: Mapping[str, Any]) -> bool:
        """Force state Off unless the bridge has commanded already: go-e's own logic (force state
        neutral) would charge a plugged car on its own, without a transaction. True when it did."""
        async with self._energy_lock:  # a set_enabled racing this read wins: it comes after, or first
            if not self._take_over:
                return False
            if self.options.api == "v1":
                if as_bool(values.get("alw")) is not False:
                    await self._link.write("alw", 0)
            elif as_int(values.get("frc")) != 1:
                await self._link.write("frc", 1)
            self._take_over = False
            return True

    def _how(self) -> str:
        link = self._link
        if isinstance(link, _HttpV2):
            return f"HTTP API v2, filter syntax {'car,alw' if link.syntax == FILTER_CSV else '[...]'}"
        return "HTTP API v1" if isinstance(link, _HttpV1) else "MQTT"

    async def close(self) -> None:
        await self._link.close()

    # -- reading ----------------------------------------------------------------------------------
    async def read(self) -> ChargerReading:
        await self._ensure_probed()
        values = await self._link.read()
        if self._take_over and await self._hold_energy(values):
            values = {**values, "frc": 1, "alw": False}  # the answer was read before the force-off
        reading = reading_from(
            values,
            phases=self.options.phases,
            was_plugged=self._plugged,
            legacy_errors=self._link.legacy_errors,
        )
        self._plugged = bool(reading.plugged)
        if not isinstance(self._link, _Mqtt):  # MQTT reports taps as they arrive
            await self._check_tap(values.get("trx"))
        return reading

    async def _check_tap(self, trx: Any) -> None:
        slot = new_card_slot(self._trx, trx)
        self._trx = trx
        if slot is None:
            return
        name = None
        with contextlib.suppress(DeviceUnreachable, DeviceRefused):  # the tag falls back to the slot
            name = card_name(await self._link.read_keys(("cards", f"c{slot - 1}n")), slot)
        self._emit(TagPresented(tag_for_card(slot, name, self.options.card_tags)))

    def _on_mqtt_change(self, key: str, old: Any, new: Any) -> None:
        if key in ("car", "err"):
            if key == "car" and (plugged := car_state(as_int(new)).plugged) is not None:
                self._plugged = plugged
            self._emit(StateChanged())
        elif key == "trx" and self._probed:
            slot = new_card_slot(self._trx, new)
            self._trx = new
            if slot is not None:
                values = self._link.values if isinstance(self._link, _Mqtt) else {}
                self._emit(TagPresented(tag_for_card(slot, card_name(values, slot), self.options.card_tags)))

    # -- commands ---------------------------------------------------------------------------------
    async def _write(self, key: str, value: Any) -> None:
        await self._ensure_probed()
        await self._link.write(key, value)

    async def set_enabled(self, enabled: bool) -> None:
        async with self._energy_lock:
            self._commanded, self._take_over = True, False  # the bridge's word from now on
            if self.options.api == "v1":
                await self._write("alw", 1 if enabled else 0)
            else:
                await self._write("frc", 2 if enabled else 1)  # force On / force Off

    async def set_current(self, amps: float) -> None:
        o = self.options
        if not o.min_current_a <= amps <= o.max_current_a:
            raise DeviceRefused(f"current {amps:g} A outside {o.min_current_a:g}..{o.max_current_a:g} A")
        whole = int(amps)  # go-e takes whole amperes; never offer more than asked
        await self._write("amx" if o.api == "v1" else "amp", whole)

    async def set_phases(self, phases: int) -> None:
        await self._ensure_probed()
        if not self._has_psm:
            raise NotSupportedByDevice("this go-e firmware has no phase switching key (psm)")
        if phases not in (1, 3):
            raise DeviceRefused(f"go-e switches between 1 and 3 phases, not {phases}")
        await self._write("psm", 1 if phases == 1 else 2)  # Force_1 / Force_3

    async def unlock(self) -> None:
        raise NotSupportedByDevice("go-e documents no command that unlocks the cable now")

    async def reset(self, hard: bool) -> None:
        if self.options.api != "v2":
            raise NotSupportedByDevice("go-e API v1 documents no reboot command")
        await self._write("rst", 1)
