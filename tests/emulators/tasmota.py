"""A Tasmota metering relay (Sonoff POW-like) as an MQTT client on a real broker.

Follows ../shared/reference/devices.md §6.2, quirks included:
- FullTopic `%prefix%/%topic%/`: commands on `cmnd/<topic>/<Command>` (command names are not case
  sensitive), answers on `stat/<topic>/...`, telemetry on `tele/<topic>/...`.
- `POWER` (single relay) or `POWER<n>` with `ON|OFF|TOGGLE`, `1|0|2`, `true|false`; an empty payload
  asks for the state. Every answer is published twice: `stat/<topic>/RESULT {"POWER":"ON"}` and the
  plain `stat/<topic>/POWER ON` (retained only with PowerRetain 1). A relay switched at the device
  (button) is announced the same way.
- `Status 8` → `stat/<topic>/STATUS8 {"StatusSNS":{"Time":...,"ENERGY":{...}}}`.
- Every TelePeriod (300 s by default; `TelePeriod <s>` sets it): `tele/<topic>/STATE` with the
  power state and `tele/<topic>/SENSOR {"Time":...,"ENERGY":{...}}`. ENERGY: Total/Yesterday/Today
  kWh, Period Wh, Power W, Voltage V, Current A; arrays per channel on multi-relay devices.
- LWT `tele/<topic>/LWT`: `Online` published retained after connecting, `Offline` as the retained
  last will, which the broker sends when the device vanishes (`power_cut()`).

The load behind relay 1 is an `EvLoad` (tests/emulators/shelly.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import aiomqtt

from tests.emulators.shelly import EvLoad

_ON = {"ON": True, "1": True, "TRUE": True, "OFF": False, "0": False, "FALSE": False}
_TOGGLE = {"TOGGLE", "2"}


def _now() -> str:
    return datetime.now().strftime("%Y-%m-%dT%H:%M:%S")


class TasmotaEmulator:
    def __init__(
        self,
        broker_url: str,
        topic: str = "tasmota_A1B2C3",
        *,
        load: EvLoad | None = None,
        relays: int = 1,  # the load hangs on relay 1
        tele_period_s: float = 300.0,
        power_retain: bool = False,
        metering: bool = True,
    ) -> None:
        parts = urlsplit(broker_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 1883
        self.topic = topic
        self.load = load or EvLoad()
        self.power = [False] * relays
        self.tele_period_s = tele_period_s
        self.power_retain = power_retain
        self.metering = metering
        self.silent = False  # stays connected (LWT Online) but answers nothing
        self.commands: list[tuple[str, str]] = []  # (command, payload) as received
        # What ENERGY objects carried for relay 1 (Status 8 answers and telemetry): Total in Wh, Power W.
        self.reported_energy_wh: list[float] = []
        self.reported_power_w: list[float] = []
        self.connected = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._started_at = 0.0

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> TasmotaEmulator:
        self._started_at = asyncio.get_running_loop().time()
        self._task = asyncio.create_task(self._run(), name=f"tasmota {self.topic}")
        await asyncio.wait_for(self.connected.wait(), 10)
        return self

    async def stop(self) -> None:
        """A clean restart: Tasmota says Offline itself, then disconnects."""
        if self._client is not None and self.connected.is_set():
            with contextlib.suppress(aiomqtt.MqttError):
                await self._client.publish(self._t("tele", "LWT"), "Offline", qos=1, retain=True)
        await self._end()

    async def power_cut(self) -> None:
        """Gone without a word: the socket closes, the broker publishes the last will (Offline)."""
        if self._client is not None:
            sock = self._client._client.socket()
            if isinstance(sock, socket.socket):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        await self._end()

    async def _end(self) -> None:
        task, self._task = self._task, None
        # Cancelled again until done: on Python 3.11, asyncio.wait_for (inside aiomqtt's publish and
        # disconnect) loses a cancellation that arrives together with what it waits for.
        while task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.5)
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                task.result()
        self.connected.clear()

    async def __aenter__(self) -> TasmotaEmulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _t(self, prefix: str, name: str) -> str:
        return f"{prefix}/{self.topic}/{name}"

    async def _run(self) -> None:
        will = aiomqtt.Will(self._t("tele", "LWT"), "Offline", qos=1, retain=True)
        client = aiomqtt.Client(
            self.host, self.port, identifier=f"DVES_{self.topic}", will=will, keepalive=30
        )
        async with client:
            self._client = client
            await client.subscribe(f"cmnd/{self.topic}/#", qos=1)
            await client.publish(self._t("tele", "LWT"), "Online", qos=1, retain=True)
            self.connected.set()
            telemetry = asyncio.create_task(self._telemetry())
            try:
                async for message in client.messages:
                    payload = message.payload if isinstance(message.payload, bytes) else b""
                    await self._command(message.topic.value.rsplit("/", 1)[-1], payload.decode())
            finally:
                telemetry.cancel()
                self._client = None

    async def _publish(self, topic: str, payload: Any, retain: bool = False) -> None:
        text = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
        if self._client is not None:
            await self._client.publish(topic, text, qos=1, retain=retain)

    # -- commands --------------------------------------------------------------------------------
    async def _command(self, command: str, payload: str) -> None:
        self.commands.append((command, payload))
        if self.silent:
            return
        name = command.upper()
        power = re.fullmatch(r"POWER(\d*)", name)
        if power is not None:
            await self._power_command(int(power[1] or 1), payload.strip().upper())
        elif name == "STATUS" and payload.strip() == "8":
            await self._publish(self._t("stat", "STATUS8"), {"StatusSNS": self._sensors()})
        elif name == "TELEPERIOD" and payload.strip():
            self.tele_period_s = max(10.0, min(3600.0, float(payload)))
            await self._publish(self._t("stat", "RESULT"), {"TelePeriod": int(self.tele_period_s)})
        else:
            await self._publish(self._t("stat", "RESULT"), {"Command": "Unknown"})

    async def _power_command(self, relay: int, payload: str) -> None:
        if not 1 <= relay <= len(self.power):
            await self._publish(self._t("stat", "RESULT"), {"Command": "Unknown"})
            return
        if payload in _TOGGLE:
            self._set(relay, not self.power[relay - 1])
        elif payload in _ON:
            self._set(relay, _ON[payload])
        await self.announce(relay)  # also for a query (empty payload) or an unknown value

    def _set(self, relay: int, on: bool) -> None:
        self.power[relay - 1] = on
        if relay == 1:
            self.load.switch(on)

    def _key(self, relay: int) -> str:
        return "POWER" if len(self.power) == 1 else f"POWER{relay}"

    async def announce(self, relay: int = 1) -> None:
        """The state of a relay, in both forms Tasmota uses."""
        key, state = self._key(relay), "ON" if self.power[relay - 1] else "OFF"
        await self._publish(self._t("stat", "RESULT"), {key: state})
        await self._publish(self._t("stat", key), state, retain=self.power_retain)

    async def press_button(self, relay: int = 1) -> None:
        """Switched at the device: announced like a command's answer."""
        self._set(relay, not self.power[relay - 1])
        await self.announce(relay)

    # -- telemetry -------------------------------------------------------------------------------
    def _energy(self) -> dict[str, Any]:
        load = self.load
        total_kwh = round(load.energy_wh / 1000.0, 3)
        power, current = round(load.power_w), round(load.current_a, 3)
        apparent = round(load.power_w / 0.99) if power else 0
        energy: dict[str, Any] = {
            "TotalStartTime": "2024-01-01T00:00:00", "Total": total_kwh, "Yesterday": 0.0,
            "Today": total_kwh, "Period": 0, "Power": power, "ApparentPower": apparent,
            "ReactivePower": round(apparent * 0.14), "Factor": 0.99 if power else 0.0,
            "Voltage": round(load.voltage_v), "Current": current,
        }  # fmt: skip
        self.reported_energy_wh.append(round(total_kwh * 1000.0, 3))
        self.reported_power_w.append(power)
        if len(self.power) > 1:  # multi-channel devices report one value per channel
            rest = [0] * (len(self.power) - 1)
            for key in ("Power", "ApparentPower", "ReactivePower", "Factor", "Current"):
                energy[key] = [energy[key], *rest]
        return energy

    def _sensors(self) -> dict[str, Any]:
        return {"Time": _now(), "ENERGY": self._energy()} if self.metering else {"Time": _now()}

    def _state(self) -> dict[str, Any]:
        uptime = int(asyncio.get_running_loop().time() - self._started_at)
        hours, rest = divmod(uptime, 3600)
        text = f"{hours // 24}T{hours % 24:02d}:{rest // 60:02d}:{rest % 60:02d}"
        state: dict[str, Any] = {"Time": _now(), "Uptime": text, "UptimeSec": uptime}
        for relay in range(1, len(self.power) + 1):
            state[self._key(relay)] = "ON" if self.power[relay - 1] else "OFF"
        return state

    async def _telemetry(self) -> None:
        while True:
            await asyncio.sleep(self.tele_period_s)
            if not self.silent:
                await self._publish(self._t("tele", "STATE"), self._state())
                await self._publish(self._t("tele", "SENSOR"), self._sensors())
