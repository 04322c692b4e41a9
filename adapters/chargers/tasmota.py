"""Tasmota relay over MQTT (`type: tasmota`): a relay retrofit (relay.py's theory).

Docs: https://tasmota.github.io/docs/MQTT/ and https://tasmota.github.io/docs/Commands/, summarised in
docs/devices/relay.md. Topics: cmnd/<topic>/<command> (ours), stat/<topic>/<answer>,
tele/<topic>/<telemetry>. The driver keeps what the device last said (the relay state, its ENERGY
object, its last will) and asks again only for what is older than `stale_after_s`: Tasmota's TelePeriod
is 300 s by default.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from adapters.base import DeviceRefused, DeviceUnreachable, StateChanged
from adapters.chargers.relay import Clock, RelayCharger, RelayOptions, RelayStatus, as_number
from adapters.transports.pool import Transports

if TYPE_CHECKING:
    from adapters.transports.mqtt import MqttBroker

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


def _on_off(text: str) -> bool | None:
    """Tasmota's default state texts; anything else is not a power state."""
    return {TASMOTA_ON: True, TASMOTA_OFF: False}.get(text.strip().upper())


def _channel(value: Any, index: int) -> float | None:
    """A value of Tasmota's ENERGY object: a number, or one per channel on multi-channel devices."""
    if isinstance(value, list):
        return as_number(value[index]) if index < len(value) else None
    return as_number(value)


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

    @property
    def online(self) -> bool | None:
        """What tele/<topic>/LWT last said (None: not heard)."""
        return self._online

    @property
    def last_energy(self) -> Mapping[str, Any] | None:
        """The last ENERGY object heard (SENSOR or STATUS8); None before the first or without metering."""
        return self._energy

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
        total_kwh = as_number(e.get(TASMOTA_ENERGY_TOTAL))
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
