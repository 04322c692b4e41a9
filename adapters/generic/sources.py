"""The readers and writers of a generic device's sources, on the shared transports
(adapters/transports/pool.py): an HTTP request, the last message of an MQTT topic, a Modbus register,
a constant. A reader gives what the source holds (text, JSON, a number); the pipeline makes it a value.

Errors are the driver contract's: no answer or no connection is DeviceUnreachable, an HTTP status of
400 or more or a Modbus exception reply is DeviceRefused. Messages name the source (an HTTP URL with
its credentials and secret-looking query values masked, a topic, a register) and never a password.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
import re
import time
import urllib.parse
from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any

from adapters.base import DeviceRefused, DeviceUnreachable
from adapters.generic import registers
from adapters.generic.expression import ExpressionError, Setter, Value
from adapters.generic.options import HttpSource, ModbusSource, MqttSource, Source
from adapters.transports.http import basic_auth, request
from adapters.transports.urls import without_password

if TYPE_CHECKING:
    from adapters.transports.mqtt import MqttBroker
    from adapters.transports.pool import Transports

Clock = Callable[[], float]
OnChange = Callable[[], None]
SECRET_WORDS = ("pass", "pwd", "token", "key", "secret", "auth", "sig")
MQTT_CONNECT_S = 2.0  # how long a first use waits for the broker
MAX_PAYLOAD = 64 * 1024  # bytes of an MQTT message a reader takes (a device's value is a few hundred)
SHOWN_ANSWER = 80  # characters of a refusal's body in its message


def shown_url(url: str) -> str:
    """`url` fit for a message: no password, and the values of secret-looking query keys masked."""
    parts = urllib.parse.urlsplit(without_password(url))
    if not parts.query:
        return parts.geturl()
    query = [
        (k, "***" if any(w in k.lower() for w in SECRET_WORDS) else v)
        for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    ]
    masked = urllib.parse.urlencode(query, safe='*[]",')
    return parts._replace(query=masked).geturl()


def _headers(http: HttpSource) -> dict[str, str]:
    headers = dict(http.headers)
    auth = http.auth
    if auth.token is not None:
        headers["Authorization"] = f"Bearer {auth.token}"
    elif auth.user is not None and auth.password is not None:
        headers["Authorization"] = basic_auth(auth.user, auth.password)
    return headers


async def _http(transports: Transports, http: HttpSource, method: str, url: str, body: str | None) -> Any:
    where = f"{method} {shown_url(url)}"
    status, answer = await request(
        transports.http(), method, url, where=where, timeout_s=http.timeout_s,
        headers=_headers(http), data=None if body is None else body.encode(),
    )  # fmt: skip
    if status >= 400:
        text = answer if isinstance(answer, str) else str(answer)
        text = " ".join(text.split())[:SHOWN_ANSWER]
        raise DeviceRefused(f"{where} answered HTTP {status}" + (f": {text}" if text else ""))
    return answer


# -- readers ------------------------------------------------------------------------------------


class Reader(abc.ABC):
    """One source read. Readers of one `group` (a host, a bus) are read one after the other, groups at
    the same time; readers with the same `key` make one request per reading."""

    group: str
    key: Hashable

    async def start(self, on_change: OnChange) -> None:  # noqa: B027 - most readers need nothing
        """Subscribe, connect: whatever must happen before the first read."""

    async def close(self) -> None:  # noqa: B027
        """Release what `start` took."""

    @abc.abstractmethod
    async def fetch(self) -> Any: ...


class ConstReader(Reader):
    def __init__(self, value: Any) -> None:
        self.value = value
        self.group = "const"
        self.key = ("const", id(self))

    async def fetch(self) -> Any:
        return self.value


class HttpReader(Reader):
    def __init__(self, http: HttpSource, transports: Transports) -> None:
        self.http = http
        self._transports = transports
        self.method = http.method or ("POST" if http.body is not None else "GET")
        parts = urllib.parse.urlsplit(http.url)
        self.group = f"http {parts.hostname}:{parts.port}"
        self.key = ("http", self.method, http.url, tuple(sorted(http.headers.items())), http.body)

    async def fetch(self) -> Any:
        return await _http(self._transports, self.http, self.method, self.http.url, self.http.body)


class MqttReader(Reader):
    """The topic's last message (a retained one counts); a new one calls `on_change`."""

    def __init__(self, mqtt: MqttSource, transports: Transports, clock: Clock = time.monotonic) -> None:
        self.mqtt = mqtt
        self._transports = transports
        self._clock = clock
        self._broker: MqttBroker | None = None
        self._on_change: OnChange | None = None
        self.last: str | None = None
        self.last_at: float | None = None
        self.oversize: int | None = None  # the size of the last message, when it was too large
        self.heard = asyncio.Event()  # the first message came
        self._new = asyncio.Event()  # a message came since a waiter looked
        self.group = "mqtt"  # no I/O at a read
        self.key = ("mqtt", mqtt.broker, mqtt.topic)

    async def start(self, on_change: OnChange) -> None:
        self._on_change = on_change
        if self._broker is None:
            self._broker = self._transports.mqtt(self.mqtt.broker)
            await self._broker.subscribe(self.mqtt.topic, self._heard)
            await self._broker.wait_connected(MQTT_CONNECT_S)

    async def close(self) -> None:
        if self._broker is not None:
            self._broker.unsubscribe(self._heard)
            self._broker = None

    def _heard(self, topic: str, payload: bytes) -> None:
        # A message too large is not kept (nor decoded): fetch refuses it until a fitting one comes.
        self.oversize = len(payload) if len(payload) > MAX_PAYLOAD else None
        text = None if self.oversize is not None else payload.decode("utf-8", "replace")
        changed = text != self.last or text is None
        self.last, self.last_at = text, self._clock()
        self.heard.set()
        self._new.set()
        if changed and self._on_change is not None:
            self._on_change()

    async def wait_for(self, accept: Callable[[str], bool], timeout_s: float) -> bool:
        """Whether the topic shows a message `accept` takes within `timeout_s` (a command confirmed)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while self.last is None or not accept(self.last):
                    self._new.clear()
                    await self._new.wait()
                return True
        return False

    async def fetch(self) -> Any:
        broker, topic = self._broker, self.mqtt.topic
        if broker is None:
            raise DeviceUnreachable(f"MQTT topic {topic}: not subscribed (the device was not started)")
        if not broker.connected:
            raise DeviceUnreachable(f"MQTT broker {broker.address} not connected ({broker.last_error})")
        if self.last_at is None:
            raise DeviceUnreachable(f"no message on MQTT topic {topic} yet")
        age = self._clock() - self.last_at
        if self.mqtt.max_age_s is not None and age > self.mqtt.max_age_s:
            raise DeviceUnreachable(
                f"no message on MQTT topic {topic} for {age:.0f} s (max_age_s {self.mqtt.max_age_s:g})"
            )
        if self.last is None:  # heard, but too large to keep
            limit = f"{MAX_PAYLOAD // 1024} KiB"
            raise DeviceRefused(
                f"MQTT topic {topic}: a message of {self.oversize} bytes, larger than {limit}"
            )
        return self.last


class ModbusReader(Reader):
    def __init__(self, modbus: ModbusSource, transports: Transports) -> None:
        self.modbus = modbus
        self.bus = transports.modbus(modbus.url)
        self.bus.keep_gap(modbus.gap_s)
        self.count = registers.count(modbus.type)
        self.group = f"modbus {self.bus.url}"
        m = modbus
        self.key = ("modbus", self.bus.url, m.unit, m.function, m.register, m.type, m.word_order, m.bitmask)

    @property
    def words(self) -> tuple[int, int] | None:
        """The registers it reads, [first, end), where one request may read them with its neighbours'."""
        if self.modbus.function in ("coil", "discrete"):
            return None
        return self.modbus.register, self.modbus.register + self.count

    async def fetch(self) -> Any:
        m = self.modbus
        if m.function in ("coil", "discrete"):  # one bit: on or off
            bits = self.bus.read_coils if m.function == "coil" else self.bus.read_discrete_inputs
            return (await bits(m.unit, m.register, 1, timeout_s=m.timeout_s))[0]
        return self.decode(await self.read_words(m.register, self.count))

    async def read_words(self, first: int, count: int) -> list[int]:
        m = self.modbus
        read = self.bus.read_input_registers if m.function == "input" else self.bus.read_holding_registers
        return await read(m.unit, first, count, timeout_s=m.timeout_s)

    def decode(self, words: Sequence[int]) -> Any:
        m = self.modbus
        return registers.decode(words, m.type, m.word_order, m.bitmask)


MAX_BLOCK = 125  # registers one read may cover (function codes 03 and 04)


def blocks(members: Sequence[Reader]) -> list[list[Reader]]:
    """`members` (of one bus) in the requests that read them: Modbus registers of one device and function
    that follow each other without a gap, or overlap, are read together (a device's three currents in
    one request, not three); a register between two values is never read, since a device may refuse
    an address it does not have. Everything else is a request of its own, in the order given."""
    runs: dict[Hashable, list[ModbusReader]] = {}
    out: list[list[Reader]] = []
    for member in members:
        if isinstance(member, ModbusReader) and member.words is not None:
            m = member.modbus
            runs.setdefault((m.unit, m.function, m.timeout_s), []).append(member)
        else:
            out.append([member])
    for run in runs.values():
        run.sort(key=lambda r: r.modbus.register)
        block: list[Reader] = []
        first = end = 0
        for reader in run:
            start, stop = reader.words or (0, 0)
            if block and start <= end and max(end, stop) - first <= MAX_BLOCK:
                block.append(reader)
                end = max(end, stop)
            else:
                if block:
                    out.append(block)
                block, first, end = [reader], start, stop
        out.append(block)
    return out


async def _read_block(block: list[Reader], answers: dict[Hashable, Any]) -> None:
    if len(block) == 1:
        answers[block[0].key] = await block[0].fetch()
        return
    spans = [(r, r.words or (0, 0)) for r in block if isinstance(r, ModbusReader)]
    first = min(start for _, (start, _) in spans)
    end = max(stop for _, (_, stop) in spans)
    words = await spans[0][0].read_words(first, end - first)
    for reader, (start, stop) in spans:
        answers[reader.key] = reader.decode(words[start - first : stop - first])


def reader_of(source: Source, transports: Transports, clock: Clock = time.monotonic) -> Reader:
    kind = source.kind
    if kind == "http":
        return HttpReader(source.http, transports)
    if kind == "mqtt":
        return MqttReader(source.mqtt, transports, clock)
    if kind == "modbus":
        return ModbusReader(source.modbus, transports)
    return ConstReader(source.const)


async def fetch_all(readers: Sequence[Reader], join: bool = False) -> list[Any]:
    """What each reader gives, in order: one request per key (`join`: per block of registers that follow
    each other, see `blocks`), the groups at the same time. The first DeviceError raised, once every
    request has ended."""
    unique: dict[Hashable, Reader] = {}
    for reader in readers:
        unique.setdefault(reader.key, reader)
    groups: dict[str, list[Reader]] = {}
    for reader in unique.values():
        groups.setdefault(reader.group, []).append(reader)
    answers: dict[Hashable, Any] = {}

    async def one_group(members: list[Reader]) -> None:
        for block in blocks(members) if join else [[m] for m in members]:  # one device, one bus
            await _read_block(block, answers)

    if len(groups) == 1:
        await one_group(next(iter(groups.values())))
    else:
        outcomes = await asyncio.gather(*(one_group(m) for m in groups.values()), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
    return [answers[r.key] for r in readers]


# -- writers ------------------------------------------------------------------------------------


class Writer(abc.ABC):
    async def start(self) -> None:  # noqa: B027
        """Connect: whatever must happen before the first write."""

    @abc.abstractmethod
    async def write(self, value: Value) -> None: ...


def _render(setter: Setter, value: Value, where: str) -> str:
    try:
        return setter.render(value)
    except ExpressionError as error:  # e.g. int() of a text: the configuration's, said as such
        raise DeviceRefused(f"{where}: {error}") from None
    except (ArithmeticError, RecursionError, MemoryError) as error:  # the evaluator's own bounds missed it
        raise DeviceRefused(f"{where}: the setter fails for {value!r} ({type(error).__name__})") from None


class HttpWriter(Writer):
    def __init__(self, http: HttpSource, transports: Transports) -> None:
        self.http = http
        self._transports = transports
        self.method = http.method or ("POST" if http.body is not None else "GET")
        self.url = Setter(http.url)
        self.body = None if http.body is None else Setter(http.body)
        self.expect = None if http.expect is None else re.compile(http.expect)

    async def write(self, value: Value) -> None:
        url = _render(self.url, value, shown_url(self.http.url))
        body = None if self.body is None else _render(self.body, value, shown_url(self.http.url))
        answer = await _http(self._transports, self.http, self.method, url, body)
        if self.expect is not None:
            text = answer if isinstance(answer, str) else json.dumps(answer)
            if not self.expect.search(text):  # the device's own "no" in a 200 answer
                shown = " ".join(text.split())[:SHOWN_ANSWER]
                raise DeviceRefused(f"{self.method} {shown_url(url)} answered {shown}")


class MqttWriter(Writer):
    def __init__(self, mqtt: MqttSource, transports: Transports) -> None:
        self.mqtt = mqtt
        self._transports = transports
        self.payload = Setter(mqtt.payload if mqtt.payload is not None else "{{ value }}")

    async def start(self) -> None:
        await self._transports.mqtt(self.mqtt.broker).wait_connected(MQTT_CONNECT_S)

    async def write(self, value: Value) -> None:
        broker = self._transports.mqtt(self.mqtt.broker)
        payload = _render(self.payload, value, f"MQTT topic {self.mqtt.topic}")
        await broker.publish(self.mqtt.topic, payload, retain=self.mqtt.retained)


class ModbusWriter(Writer):
    def __init__(self, modbus: ModbusSource, transports: Transports) -> None:
        self.modbus = modbus
        self.bus = transports.modbus(modbus.url)
        self.bus.keep_gap(modbus.gap_s)

    async def write(self, value: Value) -> None:
        m = self.modbus
        if not isinstance(value, bool | int | float):
            raise DeviceRefused(f"register {m.register} takes a number, not {value!r}")
        if m.function == "coil":  # FC05: any value but 0 switches the coil on
            await self.bus.write_coil(m.unit, m.register, bool(value), timeout_s=m.timeout_s)
            return
        try:
            words = registers.encode(value, m.type, m.word_order)
        except (ValueError, ArithmeticError) as error:  # ArithmeticError: encode's own checks missed it
            raise DeviceRefused(f"register {m.register} on {self.bus.url}: {error}") from None
        if len(words) == 1:
            await self.bus.write_register(m.unit, m.register, words[0], timeout_s=m.timeout_s)
        else:
            await self.bus.write_registers(m.unit, m.register, words, timeout_s=m.timeout_s)


def writer_of(source: Source, transports: Transports) -> Writer:
    kind = source.kind
    if kind == "http":
        return HttpWriter(source.http, transports)
    if kind == "mqtt":
        return MqttWriter(source.mqtt, transports)
    if kind == "modbus":
        return ModbusWriter(source.modbus, transports)
    raise ValueError(f"a write cannot go to a {kind} source")  # validate() refused it already
