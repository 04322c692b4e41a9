"""An OpenEVSE WiFi gateway's MQTT side, as an MQTT client on a real broker (a test helper, not
production code). The station itself (claims, priorities, physics) is the HTTP emulator's model,
`OpenEvseEmulator` (tests/emulators/openevse.py), used here without its web server: `emu.box`.

Follows ../shared/reference/devices.md §2.2 and §2.3:
- Announce `openevse/announce/<last 4 of id>`, retained: `{"state":"connected","id":…,"name":…,
  "mqtt":"<base>","http":…}` after connecting; the same with `"state":"disconnected"` (no `mqtt`) is the
  last will, which the broker publishes when the gateway vanishes (`power_cut()`).
- Status values as sub-topics `<base>/<field>` (`amp` mA, `total_energy` kWh, `state`, `status`, ...),
  each as its text, published when it changes (event-driven; the gateway's loop is `tick_s`), retained
  only with `mqtt_retained` (`retained=`).
- Retained documents `<base>/claim` (the MQTT service's claim: `{"priority":500,…}`, `{"state":"null"}`
  when none) and `<base>/override` (`{"state":"null"}` when none), republished when they change.
- Commands: `<base>/claim/set` JSON | `release` (client 0x0001000B, priority 500 like HTTP);
  `<base>/override/set` JSON | `clear`; `<base>/restart` `{"device":"gateway|evse"}`. The
  acknowledgement is the republished retained document; a command the gateway cannot carry out (bad
  JSON, ten claims held) gets no answer at all.
- A gateway restart forgets the claims (they live in its memory): it drops off the broker (last will),
  comes back, announces itself and publishes `<base>/claim` `{"state":"null"}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from typing import Any
from urllib.parse import urlsplit

import aiomqtt

from tests.emulators.openevse import OVERRIDE_CLIENT, OpenEvseEmulator

MQTT_CLIENT = 0x0001000B  # EvseClient_OpenEVSE_MQTT
PRIORITY_MQTT = 500  # EvseManager_Priority_MQTT
NONE_DOC = {"state": "null"}
RESTART_PAUSE_S = 0.3  # how long a restarting gateway is away (made up; a real one takes seconds)


def as_text(value: Any) -> str:
    """How the gateway writes a status value as a payload (ArduinoJson's as<String>)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


class OpenEvseMqttEmulator:
    def __init__(
        self,
        broker_url: str,
        base_topic: str = "openevse-55ad",
        *,
        box: OpenEvseEmulator | None = None,
        device_id: str = "c44f330d55ad",
        retained: bool = True,
        tick_s: float = 0.1,
    ) -> None:
        parts = urlsplit(broker_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 1883
        self.base = base_topic
        self.box = box or OpenEvseEmulator()
        self.device_id = device_id
        self.announce_topic = f"openevse/announce/{device_id[-4:]}"
        self.retained = retained
        self.tick_s = tick_s
        self.silent = False  # stays connected (announced) but publishes and answers nothing
        self.commands: list[tuple[str, str]] = []  # (sub-topic, payload) as received
        self.reported_energy_wh: list[float] = []  # every total_energy published, in Wh
        self.reported_power_w: list[float] = []
        self.connected = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self.published: dict[str, str] = {}  # sub-topic -> the payload published last
        self._restarts: set[asyncio.Task[None]] = set()

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> OpenEvseMqttEmulator:
        self._task = asyncio.create_task(self._run(), name=f"openevse {self.base}")
        await asyncio.wait_for(self.connected.wait(), 10)
        return self

    async def power_cut(self) -> None:
        """Gone without a word (power, WiFi): the socket closes, the broker publishes the last will."""
        if self._client is not None:
            sock = self._client._client.socket()
            if isinstance(sock, socket.socket):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        await self._end()

    async def stop(self) -> None:
        for task in list(self._restarts):
            task.cancel()
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

    async def __aenter__(self) -> OpenEvseMqttEmulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _t(self, name: str) -> str:
        return f"{self.base}/{name}"

    async def _run(self) -> None:
        gone = {"state": "disconnected", "id": self.device_id, "name": self.base}
        will = aiomqtt.Will(self.announce_topic, json.dumps(gone), qos=1, retain=True)
        client = aiomqtt.Client(self.host, self.port, identifier=self.base, will=will, keepalive=30)
        async with client:
            self._client = client
            for name in ("claim/set", "override/set", "restart"):
                await client.subscribe(self._t(name), qos=1)
            hello = {**gone, "state": "connected", "mqtt": self.base, "http": "http://192.0.2.60/"}
            await client.publish(self.announce_topic, json.dumps(hello), qos=1, retain=True)
            self.published = {}  # a new connection publishes everything once
            await self.publish_changes()
            self.connected.set()
            ticker = asyncio.create_task(self._tick())
            try:
                async for message in client.messages:
                    payload = message.payload if isinstance(message.payload, bytes) else b""
                    await self._command(message.topic.value[len(self.base) + 1 :], payload.decode())
            finally:
                ticker.cancel()
                self._client = None

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            await self.publish_changes()

    async def _publish(self, name: str, text: str, retain: bool) -> None:
        if self._client is not None and not self.silent:
            await self._client.publish(self._t(name), text, qos=1, retain=retain)
            self.published[name] = text

    async def publish_changes(self) -> None:
        """The documents and status values that differ from what was published last."""
        if self.silent:
            return
        for name, doc in (("claim", self.claim_doc()), ("override", self.override_doc())):
            text = json.dumps(doc, separators=(",", ":"))
            if self.published.get(name) != text:
                await self._publish(name, text, retain=True)
        for name, value in self.box.status().items():
            text = as_text(value)
            if self.published.get(name) != text:
                await self._publish(name, text, retain=self.retained)
                if name == "total_energy":
                    self.reported_energy_wh.append(round(float(value) * 1000.0, 3))
                elif name == "power":
                    self.reported_power_w.append(float(value))

    def claim_doc(self) -> dict[str, Any]:
        if MQTT_CLIENT not in self.box.claims:
            return dict(NONE_DOC)
        priority, props = self.box.claims[MQTT_CLIENT]
        return {"priority": priority, **props}

    def override_doc(self) -> dict[str, Any]:
        if OVERRIDE_CLIENT not in self.box.claims:
            return dict(NONE_DOC)
        return dict(self.box.claims[OVERRIDE_CLIENT][1])

    # -- commands ---------------------------------------------------------------------------------
    async def _command(self, name: str, payload: str) -> None:
        self.commands.append((name, payload))
        if self.silent:
            return
        if name == "claim/set":
            if payload == "release":
                self.box.claims.pop(MQTT_CLIENT, None)
            else:
                props = _object(payload)
                if props is None or not self.box.claim(MQTT_CLIENT, PRIORITY_MQTT, props):
                    return  # the gateway answers nothing
        elif name == "override/set":
            if payload == "clear":
                self.box.override(None)
            elif (props := _object(payload)) is not None:
                self.box.override(props)
        elif name == "restart":
            device = (_object(payload) or {}).get("device")
            if device in ("gateway", "evse"):
                self.box.restarts.append(device)
            if device == "gateway":
                task = asyncio.create_task(self._reboot())
                self._restarts.add(task)
                task.add_done_callback(self._restarts.discard)
            return
        # The retained document first (the acknowledgement), then the status it changes.
        await self.publish_changes()

    async def _reboot(self) -> None:
        await asyncio.sleep(0.05)  # the reboot follows the command
        await self.power_cut()
        self.box.claims.clear()  # claims live in the gateway's memory
        await asyncio.sleep(RESTART_PAUSE_S)
        await self.start()


def _object(payload: str) -> dict[str, Any] | None:
    try:
        value = json.loads(payload)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
