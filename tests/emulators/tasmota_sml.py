"""A Tasmota SML reader (an IR head on a smart meter's optical port, e.g. Hichi) as an MQTT client on a
real broker.

tests/emulators/tasmota.py is a metering *relay*: its telemetry carries an `ENERGY` object only. An SML
reader publishes the fields its meter script names, under the script's meter name, so it is a module
of its own. Follows ../shared/reference/devices.md §6.2 and the Smart Meter Interface's documented
shape (evcc's page on the Tasmota SML reader names the fields the common scripts use):
- Every TelePeriod (300 s by default, 10..3600; `TelePeriod <s>` sets it): `tele/<topic>/SENSOR`
  `{"Time": "...", "SML": {"Total_in": kWh (4 decimals), "Total_out": kWh, "Power_curr": W (0
  decimals, negative while feeding in), "Meter_Id": "...", and optionally power_l1..l3 W,
  voltage_l1..l3 V, current_l1..l3 A (4 decimals)}}`; the group name is the script's (`SML` here).
- `cmnd/<topic>/Status 10` → `stat/<topic>/STATUS10 {"StatusSNS": {...the same...}}`.
- LWT `tele/<topic>/LWT`: `Online` retained after connecting, `Offline` as the retained last will
  (`power_cut()`), and said by the device itself at a clean stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import aiomqtt


class TasmotaSmlEmulator:
    def __init__(
        self,
        broker_url: str,
        topic: str = "tasmota_sml",
        *,
        group: str = "SML",
        total_in_kwh: float = 4321.1234,
        tele_period_s: float = 300.0,
        phases: bool = True,  # the script also names the per-phase values
        time_scale: float = 1.0,  # energy accrues this many times faster than real time (0: frozen)
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        parts = urlsplit(broker_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 1883
        self.topic, self.group = topic, group
        self.tele_period_s = tele_period_s
        self.phases = phases
        self.time_scale = time_scale
        self.power_w = [0.0, 0.0, 0.0]  # per phase; their sum is Power_curr
        self.voltage_v = [230.1, 229.8, 231.2]
        self.total_out_kwh = 12.5
        self.meter_id = "1ESY1161234567"
        self.sent: list[dict[str, Any]] = []  # every SML block published, in order
        self.connected = asyncio.Event()
        self._total_in_kwh = total_in_kwh
        self._clock = clock
        self._last = clock()
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None

    # -- the meter ---------------------------------------------------------------------------------
    def _advance(self) -> None:
        now = self._clock()
        self._total_in_kwh += sum(self.power_w) * max(0.0, now - self._last) * self.time_scale / 3.6e6
        self._last = now

    def set_power(self, l1: float, l2: float = 0.0, l3: float = 0.0) -> None:
        self._advance()
        self.power_w = [l1, l2, l3]

    def sml(self) -> dict[str, Any]:
        """The SML block as the script formats it (decimals per field)."""
        self._advance()
        block: dict[str, Any] = {
            "Total_in": round(self._total_in_kwh, 4),
            "Total_out": round(self.total_out_kwh, 4),
            "Power_curr": round(sum(self.power_w)),
            "Meter_Id": self.meter_id,
        }
        if self.phases:
            for n in range(3):
                block[f"power_l{n + 1}"] = round(self.power_w[n])
                block[f"voltage_l{n + 1}"] = round(self.voltage_v[n], 4)
                block[f"current_l{n + 1}"] = round(self.power_w[n] / self.voltage_v[n], 4)
        return block

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> TasmotaSmlEmulator:
        self._task = asyncio.create_task(self._run(), name=f"tasmota-sml {self.topic}")
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

    async def __aenter__(self) -> TasmotaSmlEmulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _t(self, prefix: str, name: str) -> str:
        return f"{prefix}/{self.topic}/{name}"

    async def _run(self) -> None:
        will = aiomqtt.Will(self._t("tele", "LWT"), "Offline", qos=1, retain=True)
        client = aiomqtt.Client(self.host, self.port, identifier=f"DVES_{self.topic}", will=will)
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

    async def _publish(self, topic: str, payload: dict[str, Any]) -> None:
        if self._client is not None:
            await self._client.publish(topic, json.dumps(payload, separators=(",", ":")), qos=1)

    def _sensors(self) -> dict[str, Any]:
        block = self.sml()
        self.sent.append(block)
        return {"Time": datetime.now().strftime("%Y-%m-%dT%H:%M:%S"), self.group: block}

    async def _command(self, command: str, payload: str) -> None:
        name, arg = command.upper(), payload.strip()
        if name == "STATUS" and arg == "10":
            await self._publish(self._t("stat", "STATUS10"), {"StatusSNS": self._sensors()})
        elif name == "TELEPERIOD" and arg:
            self.tele_period_s = max(10.0, min(3600.0, float(arg)))
            await self._publish(self._t("stat", "RESULT"), {"TelePeriod": int(self.tele_period_s)})
        else:
            await self._publish(self._t("stat", "RESULT"), {"Command": "Unknown"})

    async def publish_telemetry(self) -> None:
        """One SENSOR message now, as at the end of a TelePeriod."""
        await self._publish(self._t("tele", "SENSOR"), self._sensors())

    async def _telemetry(self) -> None:
        while True:
            await asyncio.sleep(self.tele_period_s)
            await self.publish_telemetry()
