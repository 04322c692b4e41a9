"""evcc (the EV charge controller) as a data source: its MQTT API on a real broker and its REST API on a
free 127.0.0.1 port, over loadpoints that a test drives (a car connects, evcc charges it).

Follows ../shared/reference/devices.md §10, quirks included:
- MQTT, prefix `evcc`: every value retained, one topic per key, plain text: bools `true`/`false`,
  floats `%.3f` with trailing zeros trimmed, ints as ints, durations in seconds; nil deletes the
  retained value (an empty payload). 3-element float slices (`chargeCurrents`, `chargeVoltages`) as
  `<key>/l1..l3` plus their sum on `<key>`. Values are published when they change, once per cycle.
- `evcc/status` `online` after connecting, `offline` as the retained last will (`power_cut()`) and at a
  clean stop, which first deletes every retained topic under the prefix (evcc's `Cleanup`), as it also
  does at start. evcc publishes `evcc/status` only when it runs as a service: `service=False` is evcc
  run by hand, with no status topic and no last will. `evcc/updated` (unix time) once per cycle;
  `evcc/loadpoints` = their count.
- Loadpoint ids are 1-based on MQTT and in the REST setters, 0-based in `/api/state`'s array.
- Setters: `evcc/loadpoints/<n>/<key>/set`, then an empty retained payload on that topic. Taken here:
  `mode` (off|now|minpv|pv), `maxCurrent`, `minCurrent` (float A). There is no setter for `enabled`
  (evcc derives it from the mode): such a message is left alone, like any unknown key.
- `chargeTotalImport` (kWh) only when the charger's meter has an energy total and it is > 0
  (`has_total_import=False`: never published, absent from `/api/state`); `sessionEnergy` in Wh.
- REST: `GET /api/state` is the bare state (no `{"result": ...}` since v0.207.0), with `?jq=<path>`
  for a simple path (`.loadpoints[0].chargePower`). `POST /api/loadpoints/{id}/mode/{mode}` and
  `/maxcurrent/{A}` answer the new value; a bad value is `400 {"error": "..."}`, as is a maximum below
  the loadpoint's minimum ("max current must be greater or equal than min current", evcc's
  `SetMaxCurrent`; over MQTT the same value is logged and dropped); an unknown loadpoint has no route
  (404, gorilla/mux's text).

The car: `plug()` connects it; in mode `now` evcc enables the charger at once and the car draws
`phases * 230 V * maxCurrent` (`minCurrent` in `minpv`; `pv` finds no surplus here, `off` stops);
`car_full()` stops the drawing while evcc keeps the charger enabled.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import aiomqtt
from aiohttp import web

VOLTAGE_V = 230.0
MODES = ("off", "now", "minpv", "pv")


def encode(value: Any) -> str:
    """A value as evcc's MQTT publisher writes it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = f"{value:.3f}".rstrip("0").rstrip(".")
        return "0" if text in ("", "-0") else text
    return str(value)


class Loadpoint:
    """One evcc loadpoint and the car at it."""

    def __init__(
        self,
        *,
        title: str = "Garage",
        phases: int = 3,
        mode: str = "pv",
        min_current: float = 6.0,
        max_current: float = 16.0,
        total_import_kwh: float = 1234.5,
        has_total_import: bool = True,
        time_scale: float = 1.0,  # energy accrues this many times faster than real time
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.title, self.phases, self.mode = title, phases, mode
        self.min_current, self.max_current = min_current, max_current
        self.has_total_import = has_total_import
        self.time_scale = time_scale
        self.connected = False
        self.full = False
        self.session_energy_wh = 0.0
        self._total_wh = total_import_kwh * 1000.0
        self._clock = clock
        self._last = clock()
        self._connected_at = 0.0

    # -- what evcc decides ----------------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        return self.connected and self.mode in ("now", "minpv")

    @property
    def offered_current(self) -> float:
        if not self.enabled:
            return 0.0
        return self.max_current if self.mode == "now" else self.min_current

    @property
    def charging(self) -> bool:
        return self.enabled and not self.full

    @property
    def currents(self) -> list[float]:
        amps = self.offered_current if self.charging else 0.0
        return [amps if n < self.phases else 0.0 for n in range(3)]

    @property
    def power_w(self) -> float:
        return sum(self.currents) * VOLTAGE_V

    @property
    def total_import_kwh(self) -> float:
        self.advance()
        return self._total_wh / 1000.0

    def advance(self) -> None:
        now = self._clock()
        added = self.power_w * max(0.0, now - self._last) * self.time_scale / 3600.0
        self._total_wh += added
        self.session_energy_wh += added
        self._last = now

    # -- what a person does (each first books the energy of the time before it) -------------------
    def plug(self) -> None:
        self.advance()
        self.connected, self.full, self.session_energy_wh = True, False, 0.0
        self._connected_at = self._clock()

    def unplug(self) -> None:
        self.advance()
        self.connected = False

    def car_full(self) -> None:
        self.advance()
        self.full = True

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"invalid mode: {mode}")
        self.advance()
        self.mode = mode

    def set_max_current(self, amps: float) -> None:
        if amps < self.min_current:
            raise ValueError("max current must be greater or equal than min current")
        self.advance()
        self.max_current = amps

    def set_min_current(self, amps: float) -> None:
        if amps > self.max_current:
            raise ValueError("min current must be smaller or equal than max current")
        self.advance()
        self.min_current = amps

    def state(self) -> dict[str, Any]:
        """The loadpoint's keys, as `/api/state` carries them (absent = nil)."""
        volts = [VOLTAGE_V if n < self.phases else 0.0 for n in range(3)]
        out: dict[str, Any] = {
            "title": self.title, "mode": self.mode, "connected": self.connected,
            "charging": self.charging, "enabled": self.enabled, "chargePower": self.power_w,
            "chargeCurrents": self.currents, "chargeVoltages": volts,
            "offeredCurrent": self.offered_current, "minCurrent": self.min_current,
            "maxCurrent": self.max_current, "effectiveMaxCurrent": self.max_current,
            "phasesActive": self.phases, "phasesConfigured": self.phases,
            "sessionEnergy": round(self.session_energy_wh, 3),
            "connectedDuration": int(self._clock() - self._connected_at) if self.connected else 0,
            "vehicleName": "",
        }  # fmt: skip
        total = self.total_import_kwh
        if self.has_total_import and total > 0:
            out["chargeTotalImport"] = round(total, 3)
        return out


class EvccEmulator:
    """evcc with its loadpoints: MQTT (when `broker_url` is given) and REST (`url`)."""

    def __init__(
        self,
        loadpoints: list[Loadpoint] | None = None,
        *,
        broker_url: str | None = None,
        prefix: str = "evcc",
        interval_s: float = 0.2,  # evcc's cycle (30 s by default)
        service: bool = True,  # False: run by hand, no `status` topic (devices.md §10.1)
    ) -> None:
        self.loadpoints = loadpoints or [Loadpoint()]
        self.service = service
        self.broker_url = broker_url
        self.prefix = prefix
        self.interval_s = interval_s
        self.port = 0
        self.requests: list[tuple[str, str]] = []  # (method, path) of every REST request
        self.setters: list[tuple[str, str]] = []  # (topic, payload) of every MQTT set message
        self.published: dict[str, str] = {}  # what this evcc last published per topic
        self.mqtt_connected = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        self._mqtt_task: asyncio.Task[None] | None = None
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> EvccEmulator:
        await self.start_rest()
        if self.broker_url is not None:
            await self.start_mqtt()
        return self

    async def stop(self) -> None:
        await self.stop_mqtt()
        await self.stop_rest()

    async def __aenter__(self) -> EvccEmulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start_rest(self) -> None:
        app = web.Application()
        app.router.add_get("/api/state", self._get_state)
        for n in range(1, len(self.loadpoints) + 1):  # one route per loadpoint, as evcc registers them
            app.router.add_post(f"/api/loadpoints/{n}/{{key}}/{{value}}", self._post_setter)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)  # the same port again after a stop
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop_rest(self) -> None:
        """REST gone (connection refused); start_rest() brings it back on the same port."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def start_mqtt(self) -> None:
        self.published.clear()
        self._mqtt_task = asyncio.create_task(self._run_mqtt(), name="evcc mqtt")
        await asyncio.wait_for(self.mqtt_connected.wait(), 10)

    async def stop_mqtt(self) -> None:
        """A clean shutdown: every retained topic deleted (Cleanup), then `evcc/status offline`."""
        if self._client is not None and self.mqtt_connected.is_set():
            with contextlib.suppress(aiomqtt.MqttError):
                for topic in list(self.published):
                    await self._client.publish(topic, b"", qos=1, retain=True)
                if self.service:
                    await self._client.publish(f"{self.prefix}/status", "offline", qos=1, retain=True)
        await self._end_mqtt()

    async def power_cut(self) -> None:
        """Gone without a word: REST refuses connections, the MQTT socket closes and the broker
        publishes the last will (`offline`); the retained values stay as they were."""
        await self.stop_rest()
        if self._client is not None:
            sock = self._client._client.socket()
            if isinstance(sock, socket.socket):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        await self._end_mqtt()

    async def restore(self) -> None:
        """Back after a power cut, on the same ports."""
        await self.start_rest()
        if self.broker_url is not None:
            await self.start_mqtt()

    async def _end_mqtt(self) -> None:
        task, self._mqtt_task = self._mqtt_task, None
        # Cancelled again until done: on Python 3.11, asyncio.wait_for (inside aiomqtt's publish and
        # disconnect) loses a cancellation that arrives together with what it waits for.
        while task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.5)
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                task.result()
        self.mqtt_connected.clear()

    # -- MQTT -----------------------------------------------------------------------------------
    async def _run_mqtt(self) -> None:
        assert self.broker_url is not None
        parts = urlsplit(self.broker_url)
        will = aiomqtt.Will(f"{self.prefix}/status", "offline", qos=1, retain=True) if self.service else None
        client = aiomqtt.Client(
            parts.hostname or "127.0.0.1", parts.port or 1883, identifier="evcc-emulator", will=will
        )
        async with client:
            self._client = client
            await self._cleanup(client)
            for key in ("mode", "maxCurrent", "minCurrent"):
                await client.subscribe(f"{self.prefix}/loadpoints/+/{key}/set", qos=1)
            if self.service:
                await client.publish(f"{self.prefix}/status", "online", qos=1, retain=True)
            await self._publish_cycle()
            self.mqtt_connected.set()
            cycle = asyncio.create_task(self._cycle())
            try:
                async for message in client.messages:
                    payload = message.payload if isinstance(message.payload, bytes) else b""
                    await self._setter(message.topic.value, payload.decode())
            finally:
                cycle.cancel()
                self._client = None

    async def _cleanup(self, client: aiomqtt.Client) -> None:
        """evcc deletes what an earlier run left retained under its prefix."""
        await client.subscribe(f"{self.prefix}/loadpoints/#", qos=1)
        stale: set[str] = set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.2):
                async for message in client.messages:
                    if message.payload:
                        stale.add(message.topic.value)
        await client.unsubscribe(f"{self.prefix}/loadpoints/#")
        for topic in stale:
            await client.publish(topic, b"", qos=1, retain=True)

    async def _setter(self, topic: str, payload: str) -> None:
        if not payload or not topic.endswith("/set"):
            return  # our own clearing of the set topic, or a retained value queued before cleanup
        self.setters.append((topic, payload))
        match = re.fullmatch(rf"{re.escape(self.prefix)}/loadpoints/(\d+)/(\w+)/set", topic)
        if match is not None and 1 <= int(match[1]) <= len(self.loadpoints):
            with contextlib.suppress(ValueError):  # evcc logs a bad value and carries on
                self._apply(self.loadpoints[int(match[1]) - 1], match[2].lower(), payload.strip())
        if self._client is not None:
            await self._client.publish(topic, b"", qos=1, retain=True)
        await self._publish_cycle()

    async def _cycle(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self._publish_cycle()

    async def _publish_cycle(self) -> None:
        values: dict[str, Any] = {f"{self.prefix}/loadpoints": len(self.loadpoints)}
        for n, lp in enumerate(self.loadpoints, start=1):
            state = lp.state()
            for key, value in state.items():
                base = f"{self.prefix}/loadpoints/{n}/{key}"
                if isinstance(value, list):
                    for phase, item in enumerate(value, start=1):
                        values[f"{base}/l{phase}"] = float(item)
                    values[base] = float(sum(value))
                else:
                    values[base] = value
            if "chargeTotalImport" not in state:
                values[f"{self.prefix}/loadpoints/{n}/chargeTotalImport"] = None
        for topic, value in values.items():
            text = encode(value)
            if self.published.get(topic, "") != text and self._client is not None:
                await self._client.publish(topic, text.encode(), qos=1, retain=True)
                self.published[topic] = text
        if self._client is not None:
            await self._client.publish(f"{self.prefix}/updated", str(int(time.time())), qos=1, retain=True)

    # -- REST ------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "siteTitle": "Home", "version": "0.300.0", "interval": self.interval_s,
            "loadpoints": [lp.state() for lp in self.loadpoints],
        }  # fmt: skip

    async def _get_state(self, request: web.Request) -> web.Response:
        self.requests.append(("GET", request.path_qs))
        state: Any = self.state()
        jq = request.query.get("jq")
        if jq is not None:
            try:
                state = _path(state, jq)
            except (AttributeError, TypeError, ValueError) as e:
                return web.json_response({"error": f"invalid jq query: {e}"}, status=400)
        return web.json_response(state)

    async def _post_setter(self, request: web.Request) -> web.Response:
        self.requests.append(("POST", request.path))
        n = int(request.path.split("/")[3])
        key, value = request.match_info["key"], request.match_info["value"]
        if key not in ("mode", "maxcurrent", "mincurrent"):
            return web.Response(status=404, text="404 page not found\n")
        try:
            answer = self._apply(self.loadpoints[n - 1], key, value)
        except ValueError as e:
            return web.json_response({"error": str(e)}, status=400)
        if self._client is not None:
            await self._publish_cycle()
        return web.json_response(answer)

    def _apply(self, lp: Loadpoint, key: str, value: str) -> Any:
        """One setter, as the MQTT and REST handlers share it; raises ValueError naming a bad value."""
        if key == "mode":
            lp.set_mode(value)
            return lp.mode
        try:
            amps = float(value)
        except ValueError:
            raise ValueError(f"strconv.ParseFloat: parsing {value!r}: invalid syntax") from None
        if key == "maxcurrent":
            lp.set_max_current(amps)
            return amps
        lp.set_min_current(amps)
        return amps


def _path(doc: Any, jq: str) -> Any:
    """A simple jq path (`.loadpoints[0].chargePower`, `.loadpoints[2-1]`: gojq takes arithmetic in an
    index); a leading `.result` is stripped, as evcc does."""
    jq = jq.removeprefix(".result")
    if not re.fullmatch(r"(\.\w+|\[\d+(-\d+)?\])*", jq):
        raise ValueError(f"unsupported path {jq!r}")
    for name, index, minus in re.findall(r"\.(\w+)|\[(\d+)(?:-(\d+))?\]", jq):
        if doc is None:
            return None  # jq: .a on null is null
        if name:
            doc = doc.get(name)
        else:
            at = int(index) - int(minus or 0)
            doc = doc[at] if 0 <= at < len(doc) else None  # jq: an index past the end is null
    return doc
