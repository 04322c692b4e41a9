"""The configuration file: YAML in, frozen and validated dataclasses out.

Theory
------
A configuration error should be fixed in one round: the loader never stops at the first problem but
collects every one as a `Problem(path, line, message)` and raises them together in a `ConfigError`,
rendered one per line as `<file>:<line>: <path>: <message>`.

Line numbers come from the YAML node tree. `_MarkingLoader` composes the document, walks the nodes once
to record where every mapping key and every value starts, by path (`charge_points[0].connectors[1]
.charger.phases`), and only then constructs plain Python objects. Validation works on the plain objects
and names paths; a path is turned into a line at the end, falling back to the nearest enclosing entry
for things that are missing.

One small validator (`_Checker`) turns mappings into dataclasses by their type hints: unknown keys are
errors (with the allowed ones and the closest match), wrong types name the expected type, missing
fields are named. It builds our own dataclasses and every driver's `Options`, so a driver declares
its configuration block as a dataclass and gets the same messages for free; its `validate()` adds
the checks a type cannot express. (No pydantic: it is a compiled dependency without armv6 wheels.)

The `ocpp:` block holds initial values of standard configuration keys; `bridge.core.config_keys`
knows them. Values the central system sets later win over the file after a restart (the store keeps
them); the file says where a charge point starts.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import math
import os
import re
import types
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

from adapters.registry import CHARGER_TYPES, METER_TYPES, UnknownDriver, charger_class, meter_class
from bridge.core import config_keys

# -- the result -------------------------------------------------------------


@dataclass(frozen=True)
class ApiConfig:
    listen: tuple[str, int] | None = ("127.0.0.1", 8080)  # None: no local HTTP API
    token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ReconnectConfig:
    initial_s: float = 1.0  # first wait after a lost connection; the waits grow up to max_s
    max_s: float = 60.0


@dataclass(frozen=True)
class ChargerConfig:
    type: str
    options: Any  # an instance of the driver's Options dataclass


@dataclass(frozen=True)
class MeterConfig:
    type: str
    options: Any  # an instance of the meter driver's Options dataclass


@dataclass(frozen=True)
class ConnectorConfig:
    id: int
    charger: ChargerConfig
    meter: MeterConfig | None = None  # a meter of record: session energy from it, control through the charger
    poll_interval_s: float = 1.0  # how often the devices are read
    faulted_after_failed_polls: int = 3  # consecutive failed reads before the connector is Faulted
    nominal_voltage_v: float = 230.0  # phase to neutral: converts W limits to A (smart charging)


@dataclass(frozen=True, kw_only=True)
class ChargePointConfig:
    id: str
    csms_url: str  # without a trailing slash; the id is appended as the last path segment
    vendor: str = "ocpp-bridge"
    model: str = "ocpp-bridge"
    serial_number: str | None = None
    firmware_version: str | None = None
    meter_type: str | None = None
    meter_serial_number: str | None = None
    password: str | None = field(default=None, repr=False)
    password_format: Literal["plain", "hex"] = "plain"
    boot_on_reconnect: bool = False
    reconnect: ReconnectConfig = field(default_factory=ReconnectConfig)
    max_queued_messages: int = 50_000  # outbox bound; beyond it the oldest MeterValues are dropped
    # The largest frame taken from the central system (websockets closes the link with 1009 above
    # it). 4 MiB: a SendLocalList of 10,000 entries (~1.3 MB) fits three times over.
    max_frame_bytes: int = 4 * 1024 * 1024
    ocpp: Mapping[str, str] = field(default_factory=dict)  # canonical key names, wire values
    connectors: tuple[ConnectorConfig, ...]


MIN_FRAME_BYTES = 64 * 1024  # a 96-period charging profile is ~5 KB; below this real frames would not fit
MAX_FRAME_BYTES = 64 * 1024 * 1024  # a Pi keeps up to 16 frames of this size queued


@dataclass(frozen=True)
class MqttStateConfig:
    """The `mqtt:` block: state published to an MQTT broker, with Home Assistant discovery."""

    broker: str = field(repr=False)  # mqtt://[user:password@]host[:port] or mqtts://...; holds the password
    topic_prefix: str = "ocpp-bridge"
    discovery: bool = True  # Home Assistant MQTT discovery configs under discovery_prefix
    discovery_prefix: str = "homeassistant"
    interval_s: float = 60.0  # everything is published again this often (changes go out within a second)
    retain: bool = True  # state topics retained (availability and discovery configs always are)


@dataclass(frozen=True)
class Config:
    state_dir: Path
    api: ApiConfig
    charge_points: tuple[ChargePointConfig, ...]
    source: str  # the file it came from, for messages
    mqtt: MqttStateConfig | None = None  # None: no MQTT state publishing


@dataclass(frozen=True)
class Problem:
    path: str  # e.g. "charge_points[0].connectors[0].charger.phases"; "" for the whole file
    line: int | None  # 1-based
    message: str


class ConfigError(Exception):
    """Every problem found in one configuration, one per line when printed."""

    def __init__(self, problems: list[Problem], source: str = "<string>") -> None:
        self.problems = problems
        self.source = source
        super().__init__("\n".join(self._render(p) for p in problems))

    def _render(self, problem: Problem) -> str:
        where = self.source if problem.line is None else f"{self.source}:{problem.line}"
        path = f"{problem.path}: " if problem.path else ""
        return f"{where}: {path}{problem.message}"


# -- YAML with line numbers ---------------------------------------------------


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _parent(path: str) -> str:
    if path.endswith("]"):
        return path[: path.rindex("[")]
    return path[: max(path.rfind("."), 0)]


class _MarkingLoader(yaml.SafeLoader):
    """A SafeLoader that records the line of every mapping key and value by path."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.key_lines: dict[str, int] = {}
        self.value_lines: dict[str, int] = {}
        self.duplicates: list[Problem] = []  # keys given twice in one mapping

    def construct_yaml_int(self, node: yaml.ScalarNode) -> Any:
        """Numbers YAML 1.1 reads as octal (010 = 8) or base 60 (1:30 = 90) stay text, as meant."""
        text = str(self.construct_scalar(node))
        if re.fullmatch(r"[-+]?0[0-9_]+", text) or ":" in text:
            return text
        return super().construct_yaml_int(node)

    def load_marked(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        self._mark(node, "", set())
        return self.construct_document(node)

    def _mark(self, node: yaml.Node, path: str, active: set[int]) -> None:
        if id(node) in active:  # a recursive alias
            return
        active = active | {id(node)}
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                sub = _join(path, str(key_node.value))
                if sub in self.key_lines:
                    message = f"given twice (first on line {self.key_lines[sub]}); keep one"
                    self.duplicates.append(Problem(sub, key_node.start_mark.line + 1, message))
                    continue
                self.key_lines[sub] = key_node.start_mark.line + 1
                self.value_lines[sub] = value_node.start_mark.line + 1
                self._mark(value_node, sub, active)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                sub = f"{path}[{index}]"
                self.value_lines[sub] = item.start_mark.line + 1
                self._mark(item, sub, active)


_MarkingLoader.add_constructor("tag:yaml.org,2002:int", _MarkingLoader.construct_yaml_int)


# -- collecting problems --------------------------------------------------------

_BAD: Any = object()  # a value that failed validation; its problem is already recorded


class _Invalid(Exception):
    """A scalar does not fit a type; the message says what was expected."""


def _got(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, datetime | date):
        return f"a date ({value}); quote it to make it text"
    return type(value).__name__


def _expected(tp: Any) -> str:
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    if tp is Path:
        return "a path"
    if tp is type(None):
        return "null"
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_expected(a) for a in get_args(tp))
    if origin in (tuple, list):
        return "a list"
    if dataclasses.is_dataclass(tp) or origin in (dict, Mapping):
        return "a mapping"
    return str(tp)


def _scalar(tp: Any, value: Any) -> Any:
    """`value` as type `tp` (scalars, Literal, unions of them); _Invalid if it does not fit."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in get_args(tp):
            return None
        for option in get_args(tp):
            if option is not type(None):
                try:
                    return _scalar(option, value)
                except _Invalid:
                    pass
    elif origin is Literal:
        # `type(a) is type(value)`: YAML's true must not match a Literal 1.
        if any(value == a and type(a) is type(value) for a in get_args(tp)):
            return value
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise _Invalid("expected a finite number")
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float):  # `id: 0001` reads as the number 1
            raise _Invalid(f"expected a string, got {_got(value)}; put it in quotes")
    elif tp is Path:
        if isinstance(value, str) and value:
            return Path(value)
    else:
        raise TypeError(f"the configuration validator does not handle {tp!r}")
    raise _Invalid(f"expected {_expected(tp)}, got {_got(value)}")


Handler = Callable[[Any, str], Any]


class _Checker:
    """Collects problems while turning plain YAML data into dataclasses."""

    def __init__(self) -> None:
        self.problems: list[tuple[str, str, bool]] = []  # (path, message, about the key itself)

    def add(self, path: str, message: str, *, at_key: bool = False) -> None:
        self.problems.append((path, message, at_key))

    def convert(self, tp: Any, value: Any, path: str) -> Any:
        origin = get_origin(tp)
        args = get_args(tp)
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            return self.build(tp, value, path)
        if origin in (tuple, list) and (origin is list or args[1:] == (Ellipsis,)):
            if not isinstance(value, list):
                self.add(path, f"expected a list, got {_got(value)}")
                return _BAD
            items = [self.convert(args[0], item, f"{path}[{i}]") for i, item in enumerate(value)]
            if any(item is _BAD for item in items):
                return _BAD
            return tuple(items) if origin is tuple else items
        if origin in (dict, Mapping):
            if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
                self.add(path, f"expected a mapping with text keys, got {_got(value)}")
                return _BAD
            converted = {k: self.convert(args[1], v, _join(path, k)) for k, v in value.items()}
            return _BAD if _BAD in converted.values() else converted
        try:
            return _scalar(tp, value)
        except _Invalid as invalid:
            self.add(path, str(invalid))
            return _BAD

    def check_keys(self, raw: Any, allowed: list[str], path: str, what: str) -> bool:
        """True when `raw` is a mapping with only allowed keys; records what is wrong otherwise."""
        if not isinstance(raw, dict):
            self.add(path, f"expected a mapping ({what}: {', '.join(allowed)}), got {_got(raw)}")
            return False
        ok = True
        for key in raw:
            if not isinstance(key, str) or key not in allowed:
                ok = False
                hint = difflib.get_close_matches(str(key), allowed, n=1)
                text = f"unknown key {key!r}" + (f"; did you mean {hint[0]!r}?" if hint else "")
                self.add(_join(path, str(key)), f"{text} ({what}: {', '.join(allowed)})", at_key=True)
        return ok

    def build(
        self,
        cls: type[Any],
        raw: Any,
        path: str,
        special: Mapping[str, Handler] | None = None,
        also: tuple[str, ...] = (),
    ) -> Any:
        """An instance of dataclass `cls` from mapping `raw`, or _BAD; keys in `also` are allowed, unused.

        Unknown keys are recorded but do not stop the build: the instance still gets its own checks,
        so one run reports everything (the recorded problem fails the whole configuration anyway).
        """
        fields = [f for f in dataclasses.fields(cls) if f.init]
        self.check_keys(raw, [*also, *(f.name for f in fields)], path, "allowed keys")
        if not isinstance(raw, dict):
            return _BAD
        ok = True
        hints = get_type_hints(cls)
        kwargs: dict[str, Any] = {}
        for f in fields:
            sub = _join(path, f.name)
            if f.name in raw:
                handler = (special or {}).get(f.name)
                raw_value = raw[f.name]
                value = handler(raw_value, sub) if handler else self.convert(hints[f.name], raw_value, sub)
                if value is _BAD:
                    ok = False
                else:
                    kwargs[f.name] = value
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                self.add(sub, "required")
                ok = False
        if not ok:
            return _BAD
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as error:
            self.add(path, str(error))
            return _BAD


# -- the rules of each part -----------------------------------------------------

_CP_ID_MAX = 48
_BOOT_LIMITS = {  # BootNotification field lengths (CiStringN)
    "vendor": 20,
    "model": 20,
    "serial_number": 25,
    "meter_type": 25,
    "meter_serial_number": 25,
    "firmware_version": 50,
}
_HEX_PASSWORD = re.compile(r"(?:[0-9A-Fa-f]{2}){16,20}")


def _listen(ck: _Checker, raw: Any, path: str) -> Any:
    if raw is None:
        return None
    if not isinstance(raw, str):
        ck.add(path, f'expected "host:port" (or "[v6 address]:port") or null, got {_got(raw)}')
        return _BAD
    match = re.fullmatch(r"\[([^\]]+)\]:([0-9]+)|([^:\[\]]+):([0-9]+)", raw.strip())
    if match is None:
        hint = "; write IPv6 addresses in brackets, e.g. [::1]:8080" if raw.count(":") > 1 else ""
        ck.add(path, f'expected "host:port", got {raw!r}{hint}')
        return _BAD
    host = match[1] or match[3]
    port = int(match[2] or match[4])
    if not 1 <= port <= 65535:
        ck.add(path, f"port must be from 1 to 65535, not {port}")
        return _BAD
    return (host, port)


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve anywhere


def _api(ck: _Checker, raw: Any) -> Any:
    api = ck.build(ApiConfig, {} if raw is None else raw, "api", {"listen": lambda v, p: _listen(ck, v, p)})
    if api is _BAD:
        return _BAD
    if api.token is not None and api.token.strip() == "":
        ck.add("api.token", "must not be empty")
        return _BAD
    if api.listen is not None and not _is_loopback(api.listen[0]) and api.token is None:
        ck.add("api.listen", "listening beyond loopback requires api.token")
        return _BAD
    return api


def _mqtt(ck: _Checker, raw: Any) -> Any:
    if raw is None:
        return None
    if isinstance(raw, str):  # not echoed: it may be the broker URL with its password
        ck.add("mqtt", "expected a mapping, got a string; write the URL as `broker:` inside `mqtt:`")
        return _BAD
    special: dict[str, Handler] = {
        "broker": lambda v, p: _broker_url(ck, v, p),
        "topic_prefix": _text(ck, _topic_problem),
        "discovery_prefix": _text(ck, _topic_problem),
    }
    mqtt = ck.build(MqttStateConfig, raw, "mqtt", special)
    if mqtt is not _BAD and not 1 <= mqtt.interval_s <= 86400:
        ck.add("mqtt.interval_s", "must be from 1 to 86400 seconds")
        return _BAD
    return mqtt


def _broker_url(ck: _Checker, raw: Any, path: str) -> Any:
    """A broker URL as adapters.transports.mqtt reads it; problems never show its password."""
    # only here: aiomqtt is not loaded without an mqtt: block
    from adapters.transports.mqtt import BrokerAddress

    if not isinstance(raw, str):
        ck.add(path, f"expected mqtt://[user:password@]host[:port] or mqtts://..., got {_got(raw)}")
        return _BAD
    try:
        BrokerAddress.parse(raw)
    except ValueError as error:
        ck.add(path, str(error))
        return _BAD
    return raw


def _topic_problem(value: str) -> str | None:
    if not value:
        return "must not be empty"
    if "+" in value or "#" in value:
        return "must not contain the MQTT wildcards + or #"
    if value.startswith("/") or value.endswith("/") or "//" in value:
        return "must not start or end with '/' or hold an empty level ('//')"
    if value.startswith("$"):
        return "must not start with '$' (brokers reserve such topics)"
    if any(c.isspace() or not c.isprintable() for c in value):
        return "must not contain spaces or control characters"
    return None


def _csms_url(ck: _Checker, raw: Any, path: str) -> Any:
    if not isinstance(raw, str):
        ck.add(path, f"expected a ws:// or wss:// URL, got {_got(raw)}")
        return _BAD
    url = raw[:-1] if raw.endswith("/") else raw  # the id is appended after one "/"
    problem = _url_problem(url)
    if problem is not None:
        ck.add(path, f"{raw!r} {problem}")
        return _BAD
    return url


def _url_problem(url: str) -> str | None:
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a bad port
    except ValueError as error:
        return f"is not a valid URL ({error})"
    if parts.scheme.lower() not in ("ws", "wss"):
        return "must start with ws:// or wss://"
    if not parts.hostname:
        return "has no host"
    if parts.username is not None or parts.password is not None:
        return "must not hold credentials; set password: instead"
    if parts.query or parts.fragment:
        return "must not have a query or fragment: the charge point id is appended to its path"
    if url.endswith("/"):
        return "ends with more than one '/'"
    if any(c.isspace() for c in url):
        return "must not contain spaces"
    return None


def _ocpp(ck: _Checker, raw: Any, path: str) -> Any:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        ck.add(path, f"expected a mapping of OCPP configuration keys to values, got {_got(raw)}")
        return _BAD
    values: dict[str, str] = {}
    ok = True
    for name, value in raw.items():
        sub = _join(path, str(name))
        message, at_key = _ocpp_entry(str(name), value, values)
        if message is None:
            continue
        ok = False
        ck.add(sub, message, at_key=at_key)
    return values if ok else _BAD


def _ocpp_entry(name: str, value: Any, values: dict[str, str]) -> tuple[str | None, bool]:
    """Adds one `ocpp:` entry to `values`; returns (problem, whether it is about the key) or (None, _)."""
    spec = config_keys.lookup(name)
    if spec is None:
        hint = config_keys.suggest(name)
        return f"unknown OCPP configuration key {name!r}" + (f"; did you mean {hint}?" if hint else ""), True
    if spec.name == "AuthorizationKey":
        return "set `password:` instead", True
    if spec.derived:
        return f"{spec.name} is computed by the bridge, remove it", True
    if spec.feature is not None and spec.feature not in config_keys.IMPLEMENTED_FEATURES:
        return f"{spec.name} is not supported by this version (feature {spec.feature!r})", True
    if spec.name in values:
        return f"{spec.name} is given twice", True
    if isinstance(value, list) and spec.kind == "csl" and all(isinstance(v, str) for v in value):
        value = ",".join(value)
    elif value is None and spec.kind in ("csl", "str"):
        value = ""
    if not isinstance(value, str | int | float):
        return f"{spec.name} needs a single value, got {_got(value)}", False
    try:
        values[spec.name] = config_keys.validate_file_value(spec.name, value)
    except config_keys.KeyValueError as error:
        return str(error), False
    return None, False


def _driver(ck: _Checker, raw: Any, path: str, kind: str) -> Any:
    """A `charger:` or `meter:` block: its type, then its options checked against the driver's own."""
    table, load, result = (
        (CHARGER_TYPES, charger_class, ChargerConfig)
        if kind == "charger"
        else (METER_TYPES, meter_class, MeterConfig)
    )
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
        known = ", ".join(sorted(table))
        ck.add(_join(path, "type") if isinstance(raw, dict) else path, f"needs a type (one of: {known})")
        return _BAD
    type_name = raw["type"]
    try:
        options_cls = load(type_name).Options
    except UnknownDriver as error:
        hint = difflib.get_close_matches(type_name, list(table), n=1)
        ck.add(_join(path, "type"), str(error) + (f"; did you mean {hint[0]!r}?" if hint else ""))
        return _BAD
    except ImportError as error:  # a driver whose optional dependency is not installed
        ck.add(_join(path, "type"), f"the {type_name} driver cannot be loaded: {error}")
        return _BAD
    has_type = any(f.name == "type" for f in dataclasses.fields(options_cls))
    options = ck.build(options_cls, raw, path, also=() if has_type else ("type",))
    if options is _BAD:
        return _BAD
    validate = getattr(options, "validate", None)
    problems = validate() if callable(validate) else []
    for field_name, problem in problems:
        ck.add(_join(path, field_name), problem)
    return _BAD if problems else result(type_name, options)


def _connectors(ck: _Checker, raw: Any, path: str) -> Any:
    if not isinstance(raw, list) or not raw:
        ck.add(path, f"expected a non-empty list of connectors, got {_got(raw)}")
        return _BAD
    connectors = []
    for index, item in enumerate(raw):
        sub = f"{path}[{index}]"
        connector = ck.build(
            ConnectorConfig,
            item,
            sub,
            {
                "charger": lambda v, p: _driver(ck, v, p, "charger"),
                "meter": lambda v, p: None if v is None else _driver(ck, v, p, "meter"),
            },
        )
        if connector is not _BAD:
            if not 0.1 <= connector.poll_interval_s <= 3600:
                ck.add(_join(sub, "poll_interval_s"), "must be from 0.1 to 3600 seconds")
                connector = _BAD
            elif connector.faulted_after_failed_polls < 1:
                ck.add(_join(sub, "faulted_after_failed_polls"), "must be 1 or more")
                connector = _BAD
            elif not 100 <= connector.nominal_voltage_v <= 480:
                ck.add(
                    _join(sub, "nominal_voltage_v"), "must be from 100 to 480 V (phase to neutral, e.g. 230)"
                )
                connector = _BAD
        given = item.get("id") if isinstance(item, dict) else None
        if isinstance(given, int) and not isinstance(given, bool) and given != index + 1:
            ck.add(_join(sub, "id"), f"connector ids run 1, 2, 3, ... in order: expected {index + 1} here")
            connector = _BAD
        connectors.append(connector)
    return _BAD if _BAD in connectors else tuple(connectors)


def _reconnect(ck: _Checker, raw: Any, path: str) -> Any:
    reconnect = ck.build(ReconnectConfig, raw, path)
    if reconnect is _BAD:
        return _BAD
    problems = []
    if reconnect.initial_s <= 0:
        problems.append(("initial_s", "must be above 0"))
    elif reconnect.initial_s > reconnect.max_s:
        problems.append(("initial_s", "must be at most max_s"))
    if reconnect.max_s > 3600:
        problems.append(("max_s", "must be at most 3600"))
    for name, problem in problems:
        ck.add(_join(path, name), problem)
    return _BAD if problems else reconnect


def _text(ck: _Checker, problem: Callable[[str], str | None]) -> Handler:
    """A handler for a string field with a check of its own (None: fine)."""

    def handle(raw: Any, path: str) -> Any:
        value = ck.convert(str, raw, path)
        message = None if value is _BAD else problem(value)
        if message is not None:
            ck.add(path, message)
        return _BAD if message is not None else value

    return handle


def _optional(handler: Handler) -> Handler:
    """null is as good as leaving an optional field out."""
    return lambda raw, path: None if raw is None else handler(raw, path)


def _id_problem(cp_id: str) -> str | None:
    if not cp_id:
        return "must not be empty"
    if len(cp_id) > _CP_ID_MAX:
        return f"must be at most {_CP_ID_MAX} characters, not {len(cp_id)}"
    if "/" in cp_id or any(c.isspace() or not c.isprintable() for c in cp_id):
        return "must not contain '/', spaces or control characters"
    return None


def _length_problem(limit: int) -> Callable[[str], str | None]:
    def problem(value: str) -> str | None:
        if 0 < len(value) <= limit:
            return None
        return f"must be 1 to {limit} characters (BootNotification), not {len(value)}"

    return problem


def _charge_point(ck: _Checker, raw: Any, path: str) -> Any:
    special: dict[str, Handler] = {
        "id": _text(ck, _id_problem),
        "csms_url": lambda v, p: _csms_url(ck, v, p),
        "password": _text(ck, lambda v: None if v else "must not be empty (leave it out for no password)"),
        "ocpp": lambda v, p: _ocpp(ck, v, p),
        "connectors": lambda v, p: _connectors(ck, v, p),
        "reconnect": lambda v, p: _reconnect(ck, v, p),
        "max_queued_messages": lambda v, p: _at_least(ck, v, p, 100),
        "max_frame_bytes": lambda v, p: _between(ck, v, p, MIN_FRAME_BYTES, MAX_FRAME_BYTES),
    }
    for name, limit in _BOOT_LIMITS.items():
        handler = _text(ck, _length_problem(limit))
        special[name] = handler if name in ("vendor", "model") else _optional(handler)
    cp = ck.build(ChargePointConfig, raw, path, special)
    # Checked on the raw mapping, so they are reported even when another field is wrong.
    problems = _password_problems(raw) if isinstance(raw, dict) else []
    for name, problem in problems:
        ck.add(_join(path, name), problem)
    return _BAD if problems else cp


def _at_least(ck: _Checker, raw: Any, path: str, minimum: int) -> Any:
    if isinstance(raw, bool) or not isinstance(raw, int):
        ck.add(path, f"expected a whole number, got {_got(raw)}")
        return _BAD
    if raw < minimum:
        ck.add(path, f"must be at least {minimum}")
        return _BAD
    return raw


def _between(ck: _Checker, raw: Any, path: str, minimum: int, maximum: int) -> Any:
    value = _at_least(ck, raw, path, minimum)
    if value is not _BAD and value > maximum:
        ck.add(path, f"must be at most {maximum}")
        return _BAD
    return value


def _password_problems(raw: Mapping[str, Any]) -> list[tuple[str, str]]:
    password, cp_id = raw.get("password"), raw.get("id")
    if password is None:
        return [("password_format", "hex needs a password")] if raw.get("password_format") == "hex" else []
    if not isinstance(password, str):
        return []  # the type check has said so
    if raw.get("password_format") == "hex" and not _HEX_PASSWORD.fullmatch(password):
        # The password itself is never echoed.
        return [("password", "with password_format hex: 32 to 40 hex digits, an even number")]
    if isinstance(cp_id, str) and ":" in cp_id:
        return [("id", "must not contain ':' when a password is set (it is the HTTP basic-auth user)")]
    return []


def _state_dir(ck: _Checker, raw: Any, env: Mapping[str, str]) -> Path | None:
    if raw is None:
        # systemd's StateDirectory= sets $STATE_DIRECTORY, a colon-separated list when several are given.
        raw = env.get("STATE_DIRECTORY", "").split(":")[0] or "./state"
    if not isinstance(raw, str) or not raw.strip():
        ck.add("state_dir", f"expected a directory path, got {_got(raw)}")
        return None
    path = Path(raw).expanduser()
    if path.is_absolute():
        return path
    # Relative: under the service's StateDirectory when systemd gives one (its working directory is
    # "/", read-only there), else under the current directory.
    base = env.get("STATE_DIRECTORY", "").split(":")[0]
    return (Path(base) if base else Path.cwd()) / path


_TOP_KEYS = ["state_dir", "api", "charge_points", "mqtt"]


def _config(data: Any, ck: _Checker, source: str, env: Mapping[str, str]) -> Config | None:
    if data is None:
        ck.add("", "the file is empty; it needs at least charge_points")
        return None
    if not isinstance(data, dict):
        ck.add("", f"the top level must be a mapping with {', '.join(_TOP_KEYS)}, not {_got(data)}")
        return None
    ck.check_keys(data, _TOP_KEYS, "", "allowed top-level keys")
    state_dir = _state_dir(ck, data.get("state_dir"), env)
    api = _api(ck, data.get("api"))
    mqtt = _mqtt(ck, data.get("mqtt"))
    raw_cps = data.get("charge_points")
    if "charge_points" not in data:
        ck.add("charge_points", "required: a list of charge points")
        return None
    if not isinstance(raw_cps, list) or not raw_cps:
        ck.add("charge_points", f"expected a non-empty list of charge points, got {_got(raw_cps)}")
        return None
    cps = [_charge_point(ck, raw, f"charge_points[{i}]") for i, raw in enumerate(raw_cps)]
    # From the raw ids, so a duplicate is found even in a charge point with other problems.
    first: dict[str, int] = {}
    for index, raw in enumerate(raw_cps):
        cp_id = raw.get("id") if isinstance(raw, dict) else None
        if isinstance(cp_id, str) and cp_id:
            earlier = first.setdefault(cp_id.lower(), index)
            if earlier != index:
                ck.add(f"charge_points[{index}].id", f"{cp_id!r} is already used by charge_points[{earlier}]")
    if ck.problems or state_dir is None or api is _BAD or mqtt is _BAD:
        return None
    return Config(state_dir=state_dir, api=api, charge_points=tuple(cps), source=source, mqtt=mqtt)


# -- entry points -------------------------------------------------------------------


def _line(
    path: str, at_key: bool, key_lines: Mapping[str, int], value_lines: Mapping[str, int]
) -> int | None:
    """The line of `path`: its key's for problems with the key, else its value's or its parent's."""
    if at_key and path in key_lines:
        return key_lines[path]
    while path:
        if path in value_lines:
            return value_lines[path]
        path = _parent(path)
    return None


def parse_config(text: str, source: str = "<string>", env: Mapping[str, str] | None = None) -> Config:
    """The configuration in `text`; ConfigError with every problem otherwise."""
    loader: _MarkingLoader | None = None
    try:
        loader = _MarkingLoader(text)
        data = loader.load_marked()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        what = error.problem or error.context or "invalid YAML"
        line = None if mark is None else mark.line + 1
        column = "" if mark is None else f" (column {mark.column + 1})"
        raise ConfigError([Problem("", line, f"YAML syntax error: {what}{column}")], source) from None
    except yaml.YAMLError as error:
        raise ConfigError([Problem("", None, f"YAML error: {error}")], source) from None
    finally:
        if loader is not None:
            loader.dispose()
    ck = _Checker()
    config = _config(data, ck, source, os.environ if env is None else env)
    if config is None or ck.problems or loader.duplicates:
        problems = loader.duplicates + [
            Problem(path, _line(path, at_key, loader.key_lines, loader.value_lines), message)
            for path, message, at_key in ck.problems
        ]
        problems.sort(key=lambda p: (p.line is None, p.line or 0))
        raise ConfigError(problems, source)
    return config


def load_config(path: str | Path) -> Config:
    """The configuration in the file at `path`; ConfigError with every problem otherwise.

    A file that cannot be read raises OSError as it is (the caller words "cannot read").
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError([Problem("", None, f"not UTF-8 text: {error}")], source) from None
    return parse_config(text, source)


def default_config(csms_url: str, state_dir: str | Path) -> Config:
    """The demo's configuration: charge point DEMO-1 with one simulated connector."""
    connector = {"id": 1, "charger": {"type": "simulated"}}
    data = {
        "state_dir": str(state_dir),
        "charge_points": [{"id": "DEMO-1", "csms_url": csms_url, "connectors": [connector]}],
    }
    ck = _Checker()
    config = _config(data, ck, "<demo>", {})
    if config is None or ck.problems:
        raise ConfigError([Problem(path, None, message) for path, message, _ in ck.problems], "<demo>")
    return config
