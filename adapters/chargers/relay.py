"""Relay retrofit: a plain ("dumb") wallbox whose supply is switched by a metering relay.

Two relays are supported: a Shelly Gen2+ switch over its HTTP RPC API (`type: shelly`) and a
Tasmota device over MQTT (`type: tasmota`). Docs: docs/devices/relay.md; each device's API is linked,
with the fields the driver reads, at the head of its section below (protocol facts: devices.md §6).

Theory
------
The relay sees two things only: whether it is closed, and the power flowing through it. It cannot
see the control pilot, so it knows neither whether a vehicle is plugged in nor whether the vehicle
asks for energy.

- The plug is never reported: `plugged` is always None and `can_sense_plug` False. The bridge then
  takes the connector as free while no transaction runs and as plugged while one does: an
  authorized start closes the relay at once, and an unplug (which cannot be seen) never ends a
  transaction. Power through a closed relay does prove a vehicle, but reporting that as `True`
  and going back to unknown when the relay opens would mix sensed and unsensed readings in one
  session; the proof is carried by `ev_requesting` instead.
- "EV requesting" is inferred from the power draw by `DrawInference` (pure, time passed in). Relay
  open: not drawing. Relay closed: power above `charging_above_w` means the vehicle draws (OCPP
  Charging), at once; power below `idle_below_w` for `idle_after_s` without a break means it
  stopped drawing (SuspendedEV: full, or its own timer). Between the two thresholds the last
  decision stands (hysteresis), so a ramping or pausing vehicle does not flap. A vehicle that stops
  drawing looks exactly like one that left: an unplug is never claimed.

The relay cannot set a current: it switches whatever the wallbox offers (`max_current_a`, the
wallbox's own setting) on or off. Capabilities say so (min = max = that current); `set_current`
accepts that very value and refuses any other with NotSupportedByDevice.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from adapters.base import (
    Charger,
    ChargerCapabilities,
    ChargerReading,
    DeviceFault,
    DeviceRefused,
    DeviceUnreachable,
    NotSupportedByDevice,
    StateChanged,
)
from adapters.transports.pool import Transports
from adapters.transports.urls import http_address_problem

if TYPE_CHECKING:
    from adapters.transports.mqtt import MqttBroker

log = logging.getLogger("adapters.relay")  # the name log lines have always shown

Clock = Callable[[], float]  # monotonic seconds


# -- the inference (pure) ------------------------------------------------------------------------
class DrawInference:
    """Whether the vehicle draws energy, from the relay state and its power, with hysteresis and an
    idle delay. Feed it every reading: `update(relay_on, power_w, now_s)`."""

    def __init__(self, charging_above_w: float, idle_below_w: float, idle_after_s: float) -> None:
        self.charging_above_w = charging_above_w
        self.idle_below_w = idle_below_w
        self.idle_after_s = idle_after_s
        self._drawing = False
        self._low_since: float | None = None

    def update(self, relay_on: bool, power_w: float | None, now_s: float) -> bool:
        if not relay_on:
            # Nothing flows, nothing can be seen; the next closing starts from scratch.
            self._drawing = False
            self._low_since = None
        elif power_w is not None:  # no measurement this time: the last decision stands
            self._step(power_w, now_s)
        return self._drawing

    def _step(self, power_w: float, now_s: float) -> None:
        if power_w > self.charging_above_w:
            self._drawing = True
            self._low_since = None
        elif power_w < self.idle_below_w:
            if self._low_since is None:
                self._low_since = now_s
            if self._drawing and now_s - self._low_since >= self.idle_after_s:
                self._drawing = False
        else:
            self._low_since = None  # in the band: not idle, not proof of charging either


# -- options ----------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class RelayOptions:
    """What both relay drivers share: the wallbox behind the relay and the draw thresholds."""

    type: str
    phases: int = 1  # phases wired to the vehicle, for reporting (the relay measures one line)
    max_current_a: float = 16.0  # the current the wallbox offers by its own setting; never set
    infer_from_power: bool = True  # False: the relay does not see the wallbox's power (contactor coil)
    charging_above_w: float = 50.0
    idle_below_w: float = 25.0
    idle_after_s: float = 60.0

    def _relay_problems(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        if self.phases not in (1, 3):
            problems.append(("phases", "must be 1 or 3"))
        if not 0 < self.max_current_a <= 80:
            problems.append(("max_current_a", "must be above 0 and at most 80 (the wallbox's own setting)"))
        if self.idle_below_w < 0:
            problems.append(("idle_below_w", "must be 0 or more"))
        if self.charging_above_w <= self.idle_below_w:
            problems.append(
                ("charging_above_w", "must be above idle_below_w (the gap between them is the hysteresis)")
            )
        if self.idle_after_s < 0:
            problems.append(("idle_after_s", "must be 0 or more"))
        return problems


@dataclass(frozen=True, kw_only=True)
class ShellyOptions(RelayOptions):
    """The `charger: {type: shelly, ...}` block."""

    type: str = "shelly"
    url: str  # http://HOST or http://HOST:PORT
    switch_id: int = 0
    timeout_s: float = 5.0
    username: str = "admin"  # Gen2+ devices know only the user "admin"
    password: str | None = field(default=None, repr=False)  # HTTP digest auth, when set on the device

    def validate(self) -> list[tuple[str, str]]:
        problems = self._relay_problems()
        url_problem = http_address_problem(self.url)
        if url_problem is not None:
            problems.append(("url", url_problem))
        if self.switch_id < 0:
            problems.append(("switch_id", "must be 0 or more (0 is the first switch)"))
        if not 0 < self.timeout_s <= 60:
            problems.append(("timeout_s", "must be above 0 and at most 60"))
        if not self.username or ":" in self.username:
            problems.append(("username", "must not be empty nor contain ':' (Shelly Gen2+ uses admin)"))
        if self.password is not None and self.password == "":
            problems.append(("password", "must not be empty (leave it out when the device has none)"))
        elif self.password is not None and not _has_digest_auth():
            problems.append(("password", "needs aiohttp 3.12 or later (HTTP digest auth); upgrade aiohttp"))
        return problems


@dataclass(frozen=True, kw_only=True)
class TasmotaOptions(RelayOptions):
    """The `charger: {type: tasmota, ...}` block."""

    type: str = "tasmota"
    broker: str  # mqtt://[user:password@]host[:port]
    topic: str  # the device's %topic%, e.g. tasmota_A1B2C3
    relay: int = 1  # 1 is POWER (or POWER1), n is POWERn
    timeout_s: float = 5.0
    stale_after_s: float = 10.0  # older power/energy values are asked for again before a read answers

    def validate(self) -> list[tuple[str, str]]:
        from adapters.transports.mqtt import BrokerAddress

        problems = self._relay_problems()
        try:
            BrokerAddress.parse(self.broker)
        except ValueError as error:
            problems.append(("broker", str(error)))
        if not self.topic or any(c in self.topic for c in "/+# "):
            problems.append(
                ("topic", "must be the device's Topic (as in its MQTT settings): no '/', '+', '#' or space")
            )
        if not 1 <= self.relay <= 32:
            problems.append(("relay", "must be from 1 to 32 (1 is POWER / POWER1)"))
        if not 0 < self.timeout_s <= 60:
            problems.append(("timeout_s", "must be above 0 and at most 60"))
        if not 1 <= self.stale_after_s <= 3600:
            problems.append(("stale_after_s", "must be from 1 to 3600 seconds"))
        return problems


def _has_digest_auth() -> bool:
    import aiohttp

    return hasattr(aiohttp, "DigestAuthMiddleware")


# -- the shared driver ------------------------------------------------------------------------------
@dataclass(frozen=True)
class RelayStatus:
    """What a relay reports, in the bridge's units."""

    on: bool
    power_w: float | None = None
    energy_wh: float | None = None
    voltage_v: float | None = None
    current_a: float | None = None
    frequency_hz: float | None = None
    fault: DeviceFault | None = None


class RelayCharger(Charger):
    """A wallbox behind a relay: energy on/off is the relay; plug and draw are inferred from power."""

    options: RelayOptions

    def __init__(self, options: RelayOptions, clock: Clock) -> None:
        super().__init__()
        self.options = options
        self._clock = clock
        self._inference = DrawInference(options.charging_above_w, options.idle_below_w, options.idle_after_s)

    @property
    def capabilities(self) -> ChargerCapabilities:
        o = self.options
        return ChargerCapabilities(
            can_sense_plug=False,
            can_unlock=False,
            fixed_cable=False,  # unknown to the relay; nothing it could unlock either way
            can_switch_phases=False,
            can_reset=False,  # rebooting the relay would not reset the wallbox (docs/devices/relay.md)
            has_meter=True,
            has_rfid=False,
            phases=o.phases,
            min_current_a=o.max_current_a,  # on or off: the wallbox's own current, nothing in between
            max_current_a=o.max_current_a,
            current_step_a=o.max_current_a,
        )

    @abc.abstractmethod
    async def _status(self) -> RelayStatus: ...

    @abc.abstractmethod
    async def _switch(self, on: bool) -> None: ...

    async def read(self) -> ChargerReading:
        s = await self._status()
        if self.options.infer_from_power:
            drawing = self._inference.update(s.on, s.power_w, self._clock())
        else:  # the relay's power says nothing about the vehicle: assume it draws while switched on
            drawing = s.on
        return ChargerReading(
            plugged=None,  # cannot be sensed (see the module's theory)
            ev_requesting=drawing,
            energy_allowed=s.on,
            energy_wh=s.energy_wh,
            power_w=s.power_w,
            # The relay measures the one line it switches; it is reported as L1.
            current_a=(s.current_a,) if s.current_a is not None else None,
            voltage_v=(s.voltage_v,) if s.voltage_v is not None else None,
            frequency_hz=s.frequency_hz,
            current_offered_a=self.options.max_current_a if s.on else 0.0,
            fault=s.fault,
        )

    async def set_enabled(self, enabled: bool) -> None:
        await self._switch(enabled)

    async def set_current(self, amps: float) -> None:
        if not math.isclose(amps, self.options.max_current_a):
            raise NotSupportedByDevice(
                f"a relay cannot set a current: it switches the wallbox's own "
                f"{self.options.max_current_a:g} A on or off"
            )


# -- Shelly Gen2+ over HTTP RPC ----------------------------------------------------------------------
# Docs: https://shelly-api-docs.shelly.cloud/gen2/ComponentsAndServices/Switch (GET /rpc/<method>?<params>)
SHELLY_GET_STATUS = "Switch.GetStatus"  # id=<switch>: the switch's status, fields below
SHELLY_SET = "Switch.Set"  # id=<switch>&on=true|false; answers {"was_on": bool}
SHELLY_OUTPUT = "output"  # bool: the relay is closed
SHELLY_APOWER = "apower"  # W: active power through the switch
SHELLY_VOLTAGE = "voltage"  # V
SHELLY_CURRENT = "current"  # A
SHELLY_FREQ = "freq"  # Hz
SHELLY_AENERGY = "aenergy"  # the active energy counters: {"total": Wh, ...}
SHELLY_AENERGY_TOTAL = "total"  # Wh since the device was made (a reset only by hand)
SHELLY_PROTECTIONS = "errors"  # [str]: the protections that tripped, present only while one has
SHELLY_WAS_ON = "was_on"  # bool, Switch.Set's answer: the state before the command

# Switch status `errors` (Shelly Gen2 API, Switch component) in OCPP's error vocabulary.
SHELLY_ERRORS = {
    "overtemp": "HighTemperature",
    "overpower": "OverCurrentFailure",
    "overcurrent": "OverCurrentFailure",
    "overvoltage": "OverVoltage",
    "undervoltage": "UnderVoltage",
}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def shelly_status(answer: Any) -> RelayStatus:
    """A Switch.GetStatus answer (apower W, voltage V, current A, aenergy.total Wh) as a RelayStatus."""
    if not isinstance(answer, dict) or not isinstance(answer.get(SHELLY_OUTPUT), bool):
        raise DeviceRefused(f"unexpected Switch.GetStatus answer: {str(answer)[:120]}")
    energy = answer.get(SHELLY_AENERGY)
    listed = answer.get(SHELLY_PROTECTIONS)  # only present while a protection tripped
    errors = [e for e in listed if isinstance(e, str)] if isinstance(listed, list) else []
    fault = None
    if errors:
        fault = DeviceFault(
            error_code=SHELLY_ERRORS.get(errors[0], "OtherError"),
            info=f"Shelly switch protection: {', '.join(errors)}"[:50],
            vendor_error_code=errors[0][:50],
        )
    return RelayStatus(
        on=answer[SHELLY_OUTPUT],
        power_w=_number(answer.get(SHELLY_APOWER)),
        energy_wh=_number(energy.get(SHELLY_AENERGY_TOTAL)) if isinstance(energy, dict) else None,
        voltage_v=_number(answer.get(SHELLY_VOLTAGE)),
        current_a=_number(answer.get(SHELLY_CURRENT)),
        frequency_hz=_number(answer.get(SHELLY_FREQ)),
        fault=fault,
    )


class ShellyCharger(RelayCharger):
    Options = ShellyOptions
    options: ShellyOptions

    def __init__(self, options: ShellyOptions, transports: Transports, clock: Clock = time.monotonic) -> None:
        super().__init__(options, clock)
        self._transports = transports
        self._base = options.url.rstrip("/")
        self._digest: Any = None  # one DigestAuthMiddleware per device: it keeps the nonce count

    @property
    def description(self) -> str:
        return f"Shelly at {self._base} switch {self.options.switch_id}"

    async def start(self) -> None:
        answer = await self._rpc(SHELLY_GET_STATUS, id=str(self.options.switch_id))
        status = shelly_status(answer)
        if self.options.infer_from_power and status.power_w is None:
            raise DeviceRefused(
                f"switch {self.options.switch_id} reports no power (a model without metering?): "
                "set infer_from_power: false and add a meter: block"
            )

    async def _status(self) -> RelayStatus:
        return shelly_status(await self._rpc(SHELLY_GET_STATUS, id=str(self.options.switch_id)))

    async def _switch(self, on: bool) -> None:
        answer = await self._rpc(SHELLY_SET, id=str(self.options.switch_id), on="true" if on else "false")
        if not isinstance(answer, dict) or not isinstance(answer.get(SHELLY_WAS_ON), bool):
            raise DeviceRefused(f"unexpected Switch.Set answer: {str(answer)[:120]}")

    def _middlewares(self) -> tuple[Any, ...]:
        if self.options.password is None:
            return ()
        if self._digest is None:
            from aiohttp import DigestAuthMiddleware  # aiohttp 3.12 and later

            self._digest = DigestAuthMiddleware(self.options.username, self.options.password)
        return (self._digest,)

    async def _rpc(self, method: str, **params: str) -> Any:
        """GET /rpc/<method>?<params>: the answer's JSON, DeviceRefused for an error object."""
        import aiohttp

        timeout = aiohttp.ClientTimeout(total=self.options.timeout_s)
        try:
            async with self._transports.http().get(
                f"{self._base}/rpc/{method}", params=params, timeout=timeout, middlewares=self._middlewares()
            ) as response:
                status, body = response.status, await response.read()
        except TimeoutError as exc:
            raise DeviceUnreachable(f"no answer to {method} within {self.options.timeout_s:g} s") from exc
        except aiohttp.ClientError as exc:
            raise DeviceUnreachable(f"{method}: {exc or type(exc).__name__}") from exc
        return _shelly_answer(method, status, body)


def _shelly_answer(method: str, status: int, body: bytes) -> Any:
    try:
        answer = json.loads(body) if body else None
    except ValueError:
        answer = None
        if status < 400:
            raise DeviceRefused(f"{method}: the answer is not JSON: {body[:80]!r}") from None
    if status == 401:
        raise DeviceRefused(f"{method}: authentication failed (HTTP 401): check username and password")
    # An error is an object {"code": ..., "message": ...}, with an HTTP error status.
    if status >= 400 or (isinstance(answer, dict) and set(answer) == {"code", "message"}):
        if isinstance(answer, dict) and "message" in answer:
            raise DeviceRefused(f"{method}: {answer['message']} (code {answer.get('code')})")
        raise DeviceRefused(f"{method}: HTTP {status}")
    return answer


# -- Tasmota over MQTT ---------------------------------------------------------------------------------
# Docs: https://tasmota.github.io/docs/MQTT/ and https://tasmota.github.io/docs/Commands/
# Topics: cmnd/<topic>/<command> (ours), stat/<topic>/<answer>, tele/<topic>/<telemetry>.
TASMOTA_CMND, TASMOTA_STAT, TASMOTA_TELE = "cmnd", "stat", "tele"
TASMOTA_POWER = "POWER"  # relay n: POWERn (relay 1: POWER or POWER1); payload "ON" / "OFF"
TASMOTA_ON, TASMOTA_OFF = "ON", "OFF"  # the default state texts
TASMOTA_LWT = "LWT"  # tele: the last will, "Online" / "Offline"
TASMOTA_OFFLINE = "Offline"
TASMOTA_RESULT = "RESULT"  # stat: a command's answer, e.g. {"POWER": "ON"}
TASMOTA_STATE = "STATE"  # tele: periodic state, with the POWERn keys
TASMOTA_SENSOR = "SENSOR"  # tele: periodic sensors, with ENERGY on a metering device
TASMOTA_STATUS = "Status"  # the command; "Status 8" answers STATUS8 with the sensors
TASMOTA_STATUS_SENSORS = "8"
TASMOTA_STATUS8 = "STATUS8"  # stat: {"StatusSNS": {..., "ENERGY": {...}}}
TASMOTA_STATUS_SNS = "StatusSNS"
TASMOTA_ENERGY = "ENERGY"  # the meter's values; each a number, or a list with one per channel
TASMOTA_ENERGY_TOTAL = "Total"  # kWh, the lifetime register
TASMOTA_ENERGY_POWER = "Power"  # W
TASMOTA_ENERGY_VOLTAGE = "Voltage"  # V
TASMOTA_ENERGY_CURRENT = "Current"  # A
TASMOTA_ENERGY_FREQUENCY = "Frequency"  # Hz


def _on_off(text: str) -> bool | None:
    """Tasmota's default state texts; anything else is not a power state."""
    return {TASMOTA_ON: True, TASMOTA_OFF: False}.get(text.strip().upper())


def _channel(value: Any, index: int) -> float | None:
    """A value of Tasmota's ENERGY object: a number, or one per channel on multi-channel devices."""
    if isinstance(value, list):
        return _number(value[index]) if index < len(value) else None
    return _number(value)


@dataclass
class _Waiter:
    wanted: Callable[[Any], bool]
    future: asyncio.Future[Any]


class TasmotaCharger(RelayCharger):
    Options = TasmotaOptions
    options: TasmotaOptions

    def __init__(
        self, options: TasmotaOptions, transports: Transports, clock: Clock = time.monotonic
    ) -> None:
        super().__init__(options, clock)
        self._transports = transports
        self._broker: MqttBroker | None = None
        t = options.topic
        self._cmnd = f"{TASMOTA_CMND}/{t}/"
        self._stat = f"{TASMOTA_STAT}/{t}/"
        self._tele = f"{TASMOTA_TELE}/{t}/"
        # Relay 1 answers as POWER on single-relay devices, as POWER1 on multi-relay ones.
        n = options.relay
        self._power_keys = (TASMOTA_POWER, f"{TASMOTA_POWER}1") if n == 1 else (f"{TASMOTA_POWER}{n}",)
        self._command = TASMOTA_POWER if n == 1 else f"{TASMOTA_POWER}{n}"
        self._online: bool | None = None  # from tele/<topic>/LWT; None: not heard
        self._on: bool | None = None
        self._on_at: float | None = None
        self._energy: dict[str, Any] | None = None
        self._energy_at: float | None = None
        self._waiters: dict[str, list[_Waiter]] = {"power": [], "energy": []}

    @property
    def description(self) -> str:
        return f"Tasmota {self.options.topic} relay {self.options.relay}"

    # -- connection and messages ---------------------------------------------------------------
    async def _connection(self) -> MqttBroker:
        """The shared broker connection; the first use waits (timeout_s) for it to come up."""
        if self._broker is None:
            broker = self._transports.mqtt(self.options.broker)
            self._broker = broker
            await broker.subscribe(self._stat + "+", self._on_message)
            await broker.subscribe(self._tele + "+", self._on_message)
            await broker.wait_connected(self.options.timeout_s)
        return self._broker

    async def start(self) -> None:
        status = await self._status()
        if self.options.infer_from_power and status.power_w is None:
            raise DeviceRefused(
                "Status 8 shows no ENERGY (a device without metering?): "
                "set infer_from_power: false and add a meter: block"
            )

    async def close(self) -> None:
        if self._broker is not None:
            self._broker.unsubscribe(self._on_message)
            self._broker = None

    def _on_message(self, topic: str, payload: bytes) -> None:
        text = payload.decode("utf-8", "replace")
        if topic == self._tele + TASMOTA_LWT:
            self._online = text.strip() != TASMOTA_OFFLINE
            return
        name = topic.rsplit("/", 1)[-1]
        if topic.startswith(self._stat) and name in self._power_keys:
            self._power_heard(_on_off(text))
        elif name in (TASMOTA_RESULT, TASMOTA_STATE, TASMOTA_SENSOR, TASMOTA_STATUS8):
            with contextlib.suppress(ValueError):
                self._json_heard(name, json.loads(text))

    def _json_heard(self, name: str, data: Any) -> None:
        if not isinstance(data, dict):
            return
        if name in (TASMOTA_RESULT, TASMOTA_STATE):
            for key in self._power_keys:
                if isinstance(data.get(key), str):
                    self._power_heard(_on_off(data[key]))
        sensors = data if name == TASMOTA_SENSOR else None
        if name == TASMOTA_STATUS8:
            sensors = data.get(TASMOTA_STATUS_SNS)
        if not isinstance(sensors, dict):
            return
        energy = sensors.get(TASMOTA_ENERGY)
        # STATUS8 is the answer to our question even without ENERGY (a device without metering);
        # SENSOR telemetry without it is some other sensor's.
        if name == TASMOTA_STATUS8 or isinstance(energy, dict):
            self._energy = energy if isinstance(energy, dict) else None
            self._energy_at = self._clock()
            self._wake("energy", self._energy)

    def _power_heard(self, on: bool | None) -> None:
        if on is None:
            return
        changed = self._on is not None and on != self._on
        self._on, self._on_at = on, self._clock()
        self._wake("power", on)
        if changed:  # switched at the device (button, its own rules): have the bridge read now
            self._emit(StateChanged())

    def _wake(self, kind: str, value: Any) -> None:
        for waiter in list(self._waiters[kind]):
            if not waiter.future.done() and waiter.wanted(value):
                waiter.future.set_result(value)

    async def _ask(self, kind: str, command: str, payload: str, wanted: Callable[[Any], bool]) -> Any:
        """Publish a command and wait for the message it brings; DeviceUnreachable after timeout_s."""
        broker = await self._connection()
        waiter = _Waiter(wanted, asyncio.get_running_loop().create_future())
        self._waiters[kind].append(waiter)
        try:
            await broker.publish(self._cmnd + command, payload)
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for drops a cancellation that arrives
            # together with the answer, and the cancelled caller would go on.
            async with asyncio.timeout(self.options.timeout_s):
                return await waiter.future
        except TimeoutError:
            raise DeviceUnreachable(
                f"no answer to {command} {payload or '(query)'} within {self.options.timeout_s:g} s"
            ) from None
        finally:
            self._waiters[kind].remove(waiter)

    # -- the driver contract -----------------------------------------------------------------
    async def _status(self) -> RelayStatus:
        broker = await self._connection()
        if not broker.connected:
            self._on_at = self._energy_at = None  # what we knew may have changed while away
            raise DeviceUnreachable(f"MQTT broker {broker.address} not connected ({broker.last_error})")
        if self._online is False:
            raise DeviceUnreachable(f"offline: its last will on {self._tele}LWT says Offline")
        now = self._clock()
        stale = self.options.stale_after_s
        asks = []
        if self._on_at is None or now - self._on_at > stale:
            asks.append(self._ask("power", self._command, "", lambda _: True))
        if self._energy_at is None or now - self._energy_at > stale:
            # TelePeriod is 300 s by default: ask for the energy rather than wait for it.
            asks.append(self._ask("energy", TASMOTA_STATUS, TASMOTA_STATUS_SENSORS, lambda _: True))
        # Both questions at once; every outcome is awaited so that no failure goes unretrieved.
        for outcome in await asyncio.gather(*asks, return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise outcome
        return self._relay_status()

    def _relay_status(self) -> RelayStatus:
        if self._on is None:
            raise DeviceUnreachable("its power state is not known yet")
        e = self._energy or {}
        index = self.options.relay - 1
        total_kwh = _number(e.get(TASMOTA_ENERGY_TOTAL))
        return RelayStatus(
            on=self._on,
            power_w=_channel(e.get(TASMOTA_ENERGY_POWER), index),
            energy_wh=round(total_kwh * 1000.0, 3) if total_kwh is not None else None,
            voltage_v=_channel(e.get(TASMOTA_ENERGY_VOLTAGE), index),
            current_a=_channel(e.get(TASMOTA_ENERGY_CURRENT), index),
            frequency_hz=_channel(e.get(TASMOTA_ENERGY_FREQUENCY), index),
        )

    async def _switch(self, on: bool) -> None:
        wanted = TASMOTA_ON if on else TASMOTA_OFF
        heard: list[bool] = []

        def confirms(state: Any) -> bool:
            heard.append(state)
            return bool(state == on)

        try:
            await self._ask("power", self._command, wanted, confirms)
        except DeviceUnreachable as exc:
            if heard:  # it answered, but with the other state (an interlock, a PulseTime rule, ...)
                raise DeviceRefused(
                    f"{self._command} {wanted}: the relay stayed {TASMOTA_ON if heard[-1] else TASMOTA_OFF}"
                ) from exc
            raise
