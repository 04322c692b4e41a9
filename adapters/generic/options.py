"""The configuration of a generic device (docs/devices/generic.md, "The shape"): dataclasses the
configuration checker builds field by field with line numbers, and `validate()` for what spans
fields (exactly one source kind, a status or plugged source, lists of 1 or 3, regexes, JMESPath
expressions and setter templates that compile). Every problem is (field path, what is wrong and the
fix).

An absent source is the shared `NO_SOURCE` (the checker builds a nested dataclass, not an optional
one), and an absent kind inside a source the shared `NO_HTTP`, `NO_MQTT` or `NO_MODBUS`: compare with
`is`.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from adapters.generic import registers
from adapters.generic.expression import ExpressionError, Setter
from adapters.generic.pipeline import Pipeline, PipelineError, compile_regex
from adapters.transports.modbus import TcpAddress, parse_bus_url

Problems = list[tuple[str, str]]


@dataclass(frozen=True)
class HttpAuth:
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)  # a bearer token


@dataclass(frozen=True)
class HttpSource:
    url: str
    method: Literal["GET", "POST", "PUT"] | None = None  # GET; POST for a write with a body
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    auth: HttpAuth = field(default_factory=HttpAuth)
    timeout_s: float = 2.0
    expect: str | None = None  # write: a regex the answer must match, else it is a refusal


@dataclass(frozen=True)
class MqttSource:
    broker: str
    topic: str
    max_age_s: float | None = None  # read: older than this is unreachable
    payload: str | None = None  # write: a setter template, `{{ value }}` by default
    retained: bool = False  # write


@dataclass(frozen=True)
class ModbusSource:
    url: str
    register: int  # the wire address
    unit: int = 1
    function: Literal["holding", "input", "coil", "discrete"] = "holding"
    type: Literal["int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64", "bool"] = (
        "uint16"
    )
    word_order: Literal["big", "little"] = "big"
    bitmask: int | None = None
    timeout_s: float = 1.0
    gap_s: float = 0.0  # the least quiet time between two requests on the bus (some RS485 devices)


NO_HTTP = HttpSource(url="")
NO_MQTT = MqttSource(broker="", topic="")
NO_MODBUS = ModbusSource(url="", register=-1)


@dataclass(frozen=True)
class Source:
    """Where one value is read or written, and its pipeline."""

    http: HttpSource = NO_HTTP
    mqtt: MqttSource = NO_MQTT
    modbus: ModbusSource = NO_MODBUS
    const: Any = None
    regex: str | None = None
    jmespath: str | None = None
    map: Any = None  # {raw value: value}
    scale: float = 1.0
    offset: float = 0.0
    unit: str | None = None

    @property
    def kinds(self) -> list[str]:
        present = [
            ("http", self.http is not NO_HTTP),
            ("mqtt", self.mqtt is not NO_MQTT),
            ("modbus", self.modbus is not NO_MODBUS),
            ("const", self.const is not None),
        ]
        return [name for name, there in present if there]

    @property
    def kind(self) -> str:
        return self.kinds[0]

    def pipeline(self, family: str | None = None) -> Pipeline:
        """The compiled pipeline; PipelineError when a step is wrong (validate() found it already)."""
        return Pipeline.build(
            regex=self.regex, jmespath=self.jmespath, mapping=self.map,
            scale=self.scale, offset=self.offset, unit=self.unit, family=family,
        )  # fmt: skip


NO_SOURCE = Source()


@dataclass(frozen=True)
class ChargerRead:
    status: Source = NO_SOURCE  # IEC 61851 letter A..F
    plugged: Source = NO_SOURCE  # bool
    charging: Source = NO_SOURCE  # bool: the vehicle draws
    enabled: Source = NO_SOURCE  # bool: the device lets energy flow
    energy_wh: Source = NO_SOURCE
    power_w: Source = NO_SOURCE
    currents: tuple[Source, ...] = ()
    voltages: tuple[Source, ...] = ()
    frequency_hz: Source = NO_SOURCE
    current_offered_a: Source = NO_SOURCE
    error: Source = NO_SOURCE  # the device's error code: anything but 0, "", false, null is a fault
    id_tag: Source = NO_SOURCE  # text


@dataclass(frozen=True)
class ChargerWrite:
    enable: Source = NO_SOURCE  # bool
    current: Source = NO_SOURCE  # A
    phases: Source = NO_SOURCE  # 1 or 3


@dataclass(frozen=True)
class MeterRead:
    energy_wh: Source = NO_SOURCE
    power_w: Source = NO_SOURCE
    currents: tuple[Source, ...] = ()
    voltages: tuple[Source, ...] = ()
    frequency_hz: Source = NO_SOURCE


# capability -> (kind of value, unit family)
READ_KINDS: dict[str, tuple[str, str | None]] = {
    "status": ("status", None),
    "plugged": ("bool", None),
    "charging": ("bool", None),
    "enabled": ("bool", None),
    "energy_wh": ("number", "energy"),
    "power_w": ("number", "power"),
    "currents": ("number", "current"),
    "voltages": ("number", "voltage"),
    "frequency_hz": ("number", None),
    "current_offered_a": ("number", "current"),
    "error": ("text", None),
    "id_tag": ("text", None),
}
WRITE_KINDS: dict[str, tuple[str, str | None]] = {
    "enable": ("bool", None),
    "current": ("number", "current"),
    "phases": ("number", None),
}


def read_sources(read: ChargerRead | MeterRead) -> list[tuple[str, str, Source]]:
    """(field path under read, capability, source) of every source present."""
    found: list[tuple[str, str, Source]] = []
    for name in READ_KINDS:
        value = getattr(read, name, None)
        if isinstance(value, tuple):
            found.extend((f"{name}[{i}]", name, s) for i, s in enumerate(value))
        elif isinstance(value, Source) and value is not NO_SOURCE:
            found.append((name, name, value))
    return found


def _http_problems(http: HttpSource, path: str, write: bool) -> Problems:
    problems: Problems = []
    try:
        parts = urllib.parse.urlsplit(http.url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as error:
        return [(f"{path}.url", f"{http.url!r} is not a URL ({error})")]
    if parts.scheme not in ("http", "https") or not parts.hostname:
        problems.append((f"{path}.url", "expected http://HOST[:PORT]/path?query or https://..."))
    if parts.username is not None or parts.password is not None:
        problems.append(
            (f"{path}.url", "must not hold credentials (user:password@): use auth: {user, password}")
        )
    auth = http.auth
    if auth.token is not None and (auth.user is not None or auth.password is not None):
        problems.append((f"{path}.auth", "either {user, password} (basic) or {token} (bearer), not both"))
    elif (auth.user is None) != (auth.password is None) and auth.token is None:
        problems.append((f"{path}.auth", "basic auth needs both user and password"))
    if http.expect is not None:
        if not write:
            problems.append((f"{path}.expect", "only a write's answer is checked: remove it"))
        try:
            compile_regex(http.expect)
        except PipelineError as error:
            problems.append((f"{path}.expect", str(error)))
    if not 0.1 <= http.timeout_s <= 30:
        problems.append((f"{path}.timeout_s", "must be from 0.1 to 30 seconds"))
    for key in ("url", "body"):
        text = getattr(http, key)
        if text is None:
            continue
        try:
            setter = Setter(text)
        except ExpressionError as error:
            problems.append((f"{path}.{key}", f"{error}; see 'Setter templates' in docs/devices/generic.md"))
            continue
        if setter.uses_value and not write:
            problems.append((f"{path}.{key}", "a read has no value: remove the {{ ... }}"))
    return problems


def _mqtt_problems(mqtt: MqttSource, path: str, write: bool) -> Problems:
    from adapters.transports.mqtt import BrokerAddress

    problems: Problems = []
    try:
        BrokerAddress.parse(mqtt.broker)
    except ValueError as error:
        problems.append((f"{path}.broker", str(error)))
    if not mqtt.topic or (write and ("+" in mqtt.topic or "#" in mqtt.topic)):
        problems.append((f"{path}.topic", "needs a topic (a write's without the wildcards + and #)"))
    if mqtt.max_age_s is not None and (write or mqtt.max_age_s <= 0):
        problems.append((f"{path}.max_age_s", "a read's maximum age in seconds, above 0"))
    if mqtt.payload is not None:
        if not write:
            problems.append((f"{path}.payload", "a read has no payload: remove it"))
        else:
            try:
                Setter(mqtt.payload)
            except ExpressionError as error:
                problems.append((f"{path}.payload", str(error)))
    if mqtt.retained and not write:
        problems.append((f"{path}.retained", "only a write publishes: remove it"))
    return problems


def _modbus_problems(modbus: ModbusSource, path: str, write: bool) -> Problems:
    problems: Problems = []
    highest = 247
    try:
        address = parse_bus_url(modbus.url)
    except ValueError as error:
        problems.append((f"{path}.url", str(error)))
    else:
        highest = 255 if isinstance(address, TcpAddress) and not address.rtu_framing else 247
    if not 1 <= modbus.unit <= highest:
        problems.append((f"{path}.unit", f"a Modbus unit id is 1 to {highest} on this bus"))
    if not 0 <= modbus.register <= 0xFFFF:
        problems.append((f"{path}.register", "a register's wire address is 0 to 65535 (0xFFFF)"))
    if write and modbus.function not in ("holding", "coil"):
        problems.append(
            (f"{path}.function", "a write goes to holding registers or a coil: function: holding or coil")
        )
    if modbus.function in ("coil", "discrete") and modbus.type != "bool":
        problems.append((f"{path}.type", f"a {modbus.function} holds one bit: type: bool"))
    if modbus.bitmask is not None and (modbus.type not in registers.BITMASK_TYPES or write):
        problems.append((f"{path}.bitmask", "a bitmask applies to a read of int16, uint16 or bool only"))
    if not 0.05 <= modbus.timeout_s <= 10:
        problems.append((f"{path}.timeout_s", "must be from 0.05 to 10 seconds"))
    if not 0 <= modbus.gap_s <= 2:
        problems.append((f"{path}.gap_s", "must be from 0 to 2 seconds (the device's least quiet time)"))
    return problems


def source_problems(source: Source, path: str, kind: str, family: str | None, write: bool) -> Problems:
    """What is wrong with one source at `path` (e.g. 'read.status')."""
    kinds = source.kinds
    if len(kinds) != 1:
        given = f"got {', '.join(kinds)}" if kinds else "got none"
        return [(path, f"needs exactly one of http, mqtt, modbus or const ({given})")]
    problems: Problems = []
    if write:
        if source.const is not None:
            problems.append((f"{path}.const", "a write needs a device to write to: http, mqtt or modbus"))
        for key in ("regex", "jmespath"):
            if getattr(source, key) is not None:
                problems.append((f"{path}.{key}", f"{key} is for reads; a write's text is its template"))
    if source.map is not None and (
        not isinstance(source.map, dict)
        or not all(isinstance(k, str | int | float | bool) for k in source.map)
    ):
        problems.append((f"{path}.map", 'expected a mapping of raw values to values, e.g. {"1": A, "2": C}'))
        return problems
    if kind != "number":
        for key, default in (("scale", 1.0), ("offset", 0.0)):
            if getattr(source, key) != default:
                problems.append((f"{path}.{key}", f"only numbers are scaled; remove {key}"))
    steps: list[tuple[str, dict[str, Any]]] = [
        ("regex", {"regex": source.regex}),
        ("jmespath", {"jmespath": source.jmespath}),
        ("unit", {"unit": source.unit, "family": family if kind == "number" else None}),
        ("scale", {"scale": source.scale}),
    ]
    for step, step_keys in steps:
        if getattr(source, step) is None:
            continue
        try:
            Pipeline.build(**step_keys)
        except PipelineError as error:
            problems.append((f"{path}.{step}", str(error)))
    checks: dict[str, Callable[[Any, str, bool], Problems]] = {
        "http": _http_problems,
        "mqtt": _mqtt_problems,
        "modbus": _modbus_problems,
    }
    check = checks.get(source.kind)
    if check is not None:
        problems.extend(check(getattr(source, source.kind), f"{path}.{source.kind}", write))
    return problems


def _reads_problems(read: ChargerRead | MeterRead) -> Problems:
    problems: Problems = []
    for sub, capability, source in read_sources(read):
        kind, family = READ_KINDS[capability]
        problems.extend(source_problems(source, f"read.{sub}", kind, family, write=False))
    for name in ("currents", "voltages"):
        if len(getattr(read, name)) not in (0, 1, 3):
            problems.append((f"read.{name}", "exactly 1 or 3 sources: L1, or L1, L2, L3"))
    return problems


@dataclass(frozen=True)
class GenericChargerOptions:
    """The `charger: {type: generic, ...}` block."""

    type: str = "generic"
    name: str | None = None
    phases: int = 3
    min_current_a: float = 6.0
    max_current_a: float = 16.0
    current_step_a: float = 1.0
    # Registers that follow each other read in one request (most meters allow it; KEBA's wallboxes
    # answer only reads of exactly one value's registers, so it is asked for, not assumed).
    join_registers: bool = False
    read: ChargerRead = field(default_factory=ChargerRead)
    write: ChargerWrite = field(default_factory=ChargerWrite)

    @property
    def report_only(self) -> bool:
        """No write.enable: the device decides when energy flows; the bridge only reports."""
        return self.write.enable is NO_SOURCE

    @property
    def reads_tags(self) -> bool:
        """A read.id_tag source: the device presents the cards tapped at it."""
        return self.read.id_tag is not NO_SOURCE

    @property
    def senses_plug(self) -> bool:
        """A status or plugged source; without, the device is a switch that cannot see the plug."""
        return self.read.status is not NO_SOURCE or self.read.plugged is not NO_SOURCE

    def validate(self) -> Problems:
        problems = _reads_problems(self.read)
        r, w = self.read, self.write
        if r.status is NO_SOURCE and r.plugged is NO_SOURCE and r.enabled is NO_SOURCE:
            problems.append(("read", "needs read.status or read.plugged (or read.enabled for a switch "
                                     "that cannot sense the plug)"))  # fmt: skip
        if w.enable is NO_SOURCE:
            # Report only: a limit the bridge could not back by switching off is not offered.
            for name in ("current", "phases"):
                if getattr(w, name) is not NO_SOURCE:
                    problems.append((f"write.{name}", (
                        "needs write.enable: without it the device is report only (it decides when energy"
                        f" flows) and the bridge cannot stop what it limits; add write.enable or remove"
                        f" write.{name}"
                    )))  # fmt: skip
        for name, (kind, family) in WRITE_KINDS.items():
            source = getattr(w, name)
            if source is not NO_SOURCE:
                problems.extend(source_problems(source, f"write.{name}", kind, family, write=True))
        if self.phases not in (1, 3):
            problems.append(("phases", "must be 1 or 3"))
        if not 0 < self.max_current_a <= 80:
            problems.append(("max_current_a", "must be above 0 and at most 80"))
        if w.current is not NO_SOURCE:
            if not 0 < self.min_current_a <= self.max_current_a:
                problems.append(("min_current_a", "must be above 0 and at most max_current_a"))
            if not 0 < self.current_step_a <= self.max_current_a:
                problems.append(("current_step_a", "must be above 0 and at most max_current_a"))
        return problems


@dataclass(frozen=True)
class GenericMeterOptions:
    """The `meter: {type: generic, ...}` block."""

    type: str = "generic"
    name: str | None = None
    # Registers that follow each other read in one request (most meters allow it; KEBA's wallboxes
    # answer only reads of exactly one value's registers, so it is asked for, not assumed).
    join_registers: bool = False
    read: MeterRead = field(default_factory=MeterRead)

    def validate(self) -> Problems:
        problems = _reads_problems(self.read)
        if not read_sources(self.read):
            problems.append(
                ("read", "needs at least one of energy_wh, power_w, currents, voltages, frequency_hz")
            )
        return problems
