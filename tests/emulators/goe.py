"""A go-e Charger as the bridge sees it on the network (a test helper, not production code).

Follows ../shared/reference/devices.md §1, quirks included:
- HTTP API v2: `/api/status` with the filter syntax of the emulated firmware (`car,alw` from 051.4,
  `["car","alw"]` with at most ~10 keys before; the other syntax matches no key, so the answer is `{}`),
  `/api/set` with JSON-encoded values answered per key with `true` or an error text (HTTP 500 and
  "tried to set api key without setter" for read-only keys; "invalid json InvalidInput" for bad JSON).
- HTTP API v1: `/status` with every value a string (eto 0.1 kWh, nrg 0.1 A / 0.1 kW / 0.01 kW) and
  `/mqtt?payload=k=v` answered with the full status; a refused command just leaves the value.
- MQTT: retained JSON per key on `<prefix>/<serial>/<key>`, `<key>/set` answered on the non-retained
  `<key>/result` with `success` or an error text, then the key republished; `rbt` every tick.

Texts the sources do not give (range errors, unknown keys) are made up here and marked so.

Physics: a car is plugged or not and requests energy or not; energy flows while go-e allows it
(force state On, or Neutral with open access or a card) and integrates into `eto`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
import urllib.parse
from typing import Any

import aiohttp
from aiohttp import web

WRITABLE = {"amp", "ama", "frc", "acs", "psm", "ocppe", "trx", "rst", "fna", "dwo", "ust", "cards"}
LEGACY_FILTER_MAX = 10


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class GoeEmulator:
    def __init__(
        self,
        *,
        legacy_filter: bool = False,  # firmware <= 051.3: filter=["car",...]
        has_psm: bool = True,  # psm was dropped from newer firmware's key list
        ocppe: bool = False,
        eto_wh: int = 123_456,
        serial: str = "072246",
        card_names: tuple[str, ...] = ("User 1", "User 2"),
        card_keys: str = "cards",  # "cards" (array, before 60.0) or "cNn" (c0n, c1n, ... from 60.0)
        ev_max_a: float = 16.0,
        mqtt_prefix: str = "go-eCharger",
        mqtt_writes_allowed: bool = True,
        publish_interval_s: float = 0.5,  # go-e: about 1 s
    ) -> None:
        self.legacy_filter = legacy_filter
        self.has_psm = has_psm
        self.serial = serial
        self.card_names = card_names
        self.card_keys = card_keys
        self.ev_max_a = ev_max_a
        self.mqtt_prefix = mqtt_prefix
        self.mqtt_writes_allowed = mqtt_writes_allowed
        self.publish_interval_s = publish_interval_s
        # Settable keys, in v2 types.
        self.keys: dict[str, Any] = {
            "amp": 16, "ama": 16, "frc": 0, "acs": 0, "ocppe": ocppe, "trx": None, "fna": "go-e",
            "dwo": None, "ust": 0,
        }  # fmt: skip
        if has_psm:
            self.keys["psm"] = 0
        # The box and the car.
        self.plugged = False
        self.ev_requesting = True
        self.err = 0
        self.controller_lost = False  # car=null: no connection to the charge controller
        self._speaking = asyncio.Event()  # cleared: silent (HTTP hangs, MQTT goes quiet)
        self._speaking.set()
        self.energy_wh = float(eto_wh)
        self.session_wh = 0.0
        self.rbc = 3
        self._boot = time.monotonic()
        self._last = time.monotonic()
        # What arrived: (key, value exactly as on the wire) and the raw request targets.
        self.received: list[tuple[str, str]] = []
        self.requests: list[str] = []
        # What left the box over HTTP v2 or MQTT, in order: `eto` (Wh) and the total power nrg[11] (W).
        self.reported_energy_wh: list[int] = []
        self.reported_power_w: list[float] = []
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.url = ""

    # -- what a person does at the box ---------------------------------------------------------
    def plug(self) -> None:
        self._advance()
        self.plugged, self.ev_requesting, self.session_wh = True, True, 0.0

    def unplug(self) -> None:
        self._advance()
        self.plugged = False
        self.keys["trx"] = None  # go-e ends its transaction with the session

    def ev_request(self, requesting: bool) -> None:
        self._advance()
        self.ev_requesting = requesting

    def tap(self, slot: int) -> None:
        """A known card (1-based slot = card index + 1) held to the reader."""
        assert 1 <= slot <= len(self.card_names)
        self._advance()
        self.keys["trx"] = slot

    @property
    def silent(self) -> bool:
        """Stop answering: HTTP requests hang, MQTT publishes nothing and answers no set."""
        return not self._speaking.is_set()

    @silent.setter
    def silent(self, silent: bool) -> None:
        if silent:
            self._speaking.clear()
        else:
            self._speaking.set()

    def set_error(self, err: int) -> None:
        self._advance()
        self.err = err

    # -- physics --------------------------------------------------------------------------------
    def allowed(self) -> bool:
        frc = self.keys["frc"]
        if frc == 2:
            return True
        return frc == 0 and (self.keys["acs"] == 0 or self.keys["trx"] is not None)

    def charging(self) -> bool:
        ok = self.plugged and self.ev_requesting and self.allowed()
        return ok and self.err == 0 and not self.controller_lost

    def phases_in_use(self) -> int:
        return 1 if self.keys.get("psm") == 1 else 3

    def amps(self) -> float:
        return float(min(self.keys["amp"], self.ev_max_a)) if self.charging() else 0.0

    def power_w(self) -> float:
        return self.amps() * 230.0 * self.phases_in_use()

    def _advance(self) -> None:
        now = time.monotonic()
        added = self.power_w() * (now - self._last) / 3600.0
        self.energy_wh += added
        self.session_wh += added
        self._last = now

    @property
    def eto(self) -> int:
        """The energy register `eto` as go-e publishes it (whole Wh)."""
        self._advance()
        return int(self.energy_wh)

    def car(self) -> int | None:
        if self.controller_lost:
            return None
        if self.err:
            return 5
        if not self.plugged:
            return 1
        if self.charging():
            return 2
        return 4 if self.allowed() else 3  # allowed but the car takes nothing: Complete

    def status(self) -> dict[str, Any]:
        """Every key in v2 types and units."""
        self._advance()
        amps, n = self.amps(), self.phases_in_use()
        currents = [amps if i < n else 0.0 for i in range(3)]
        powers = [round(a * 230.0, 1) for a in currents]
        values: dict[str, Any] = {
            **self.keys,
            "car": self.car(),
            "alw": self.allowed(),
            "acu": self.keys["amp"] if self.allowed() else None,
            "err": self.err,
            "eto": int(self.energy_wh),
            "wh": round(self.session_wh, 2),
            "nrg": [230, 231, 229, 0, *currents, *powers, 0, sum(powers), 99, 99, 99, 0],
            "fhz": 49.98,
            "rbc": self.rbc,
            "rbt": int((time.monotonic() - self._boot) * 1000),
            "fwv": "051.3" if self.legacy_filter else "056.2",
            "sse": self.serial,
            "var": 11,
            "modelStatus": 3 if self.charging() else 15,
        }
        values.pop("rst", None)
        if self.card_keys == "cards":
            values["cards"] = [{"name": n, "energy": 0, "cardId": True} for n in self.card_names]
        else:
            for i, name in enumerate(self.card_names):
                values[f"c{i}n"], values[f"c{i}e"], values[f"c{i}i"] = name, 0, True
        return values

    def status_v1(self) -> dict[str, Any]:
        """API v1: every value a string, legacy units; nrg a numeric array."""
        v = self.status()
        nrg = v["nrg"]
        return {
            "version": "B", "car": str(v["car"] or 0), "amp": str(v["amp"]), "err": str(v["err"]),
            "alw": "1" if v["alw"] else "0", "eto": str(int(self.energy_wh // 100)),
            "dws": str(int(self.session_wh * 360)), "uby": str(v["trx"] or 0), "ast": "0",
            "fwv": "033", "sse": self.serial,
            "nrg": [*nrg[0:4], *(round(a * 10) for a in nrg[4:7]), *(round(p / 100) for p in nrg[7:11]),
                    round(nrg[11] / 10), *nrg[12:16]],
        }  # fmt: skip

    def _reported(self, values: dict[str, Any]) -> dict[str, Any]:
        """Notes the energy and power in an answer or a publication, and hands it on."""
        if "eto" in values:
            self.reported_energy_wh.append(values["eto"])
        if isinstance(values.get("nrg"), list):
            self.reported_power_w.append(values["nrg"][11])
        return values

    # -- writes ---------------------------------------------------------------------------------
    def apply(self, key: str, raw: str) -> tuple[bool | str, bool]:
        """One `/api/set` or MQTT `<key>/set`: (True or the error text, whether it is HTTP 500)."""
        self.received.append((key, raw))
        try:
            value = json.loads(raw)
        except ValueError:
            return f"{key}: tried to set api key with invalid json InvalidInput ({raw})", False
        if key not in WRITABLE or (key == "psm" and not self.has_psm):
            if key in self.status():
                return f"{key}: tried to set api key without setter ({raw})", True
            return f"{key}: unknown api key", True  # made-up text: the sources show none
        problem = self._check(key, value)
        if problem is not None:
            return problem, False
        self._advance()
        if key == "rst":
            self.rbc += 1
            self._boot = time.monotonic()
        else:
            self.keys[key] = value
        return True, False

    def _check(self, key: str, value: Any) -> str | None:
        ranges = {"amp": (6, self.keys["ama"]), "ama": (6, 32), "frc": (0, 2), "acs": (0, 2), "psm": (0, 2)}
        if key in ranges:
            low, high = ranges[key]
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                return f"{key}: value out of range {low}..{high}"  # made-up text
        if key == "ocppe" and not isinstance(value, bool):
            return "value must be bool 0"  # shaped like the documented "value must be string 0"
        if key == "fna" and not isinstance(value, str):
            return "value must be string 0"
        return None

    def apply_v1(self, payload: str) -> None:
        """`/mqtt?payload=k=v`: takes what it understands, silently ignores the rest."""
        key, _, raw = payload.partition("=")
        self.received.append((key, raw))
        self._advance()
        if key == "alw" and raw in ("0", "1"):
            self.keys["frc"] = 2 if raw == "1" else 1
        elif key in ("amp", "amx") and raw.isdigit() and 6 <= int(raw) <= self.keys["ama"]:
            self.keys["amp"] = int(raw)

    # -- HTTP -----------------------------------------------------------------------------------
    async def start_http(self) -> str:
        app = web.Application()
        app.router.add_get("/api/status", self._api_status)
        app.router.add_get("/api/set", self._api_set)
        app.router.add_get("/status", self._v1_status)
        app.router.add_get("/mqtt", self._v1_mqtt)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, handle_signals=False)
        await self._runner.setup()
        port = _free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def _hang_while_silent(self) -> None:
        await self._speaking.wait()

    async def _api_status(self, request: web.Request) -> web.Response:
        self.requests.append(request.raw_path)
        await self._hang_while_silent()
        values = self.status()
        raw = request.query.get("filter")
        if raw is None:
            return web.json_response(self._reported(values))
        if self.legacy_filter:
            try:
                keys = json.loads(raw)
            except ValueError:
                keys = []
            keys = keys[:LEGACY_FILTER_MAX] if isinstance(keys, list) else []
        else:
            keys = raw.split(",")
        answer = {k: values[k] for k in keys if isinstance(k, str) and k in values}
        return web.json_response(self._reported(answer))

    async def _api_set(self, request: web.Request) -> web.Response:
        self.requests.append(request.raw_path)
        await self._hang_while_silent()
        # The raw query, so that a value is seen exactly as sent (percent-decoding only).
        answer: dict[str, bool | str] = {}
        server_error = False
        for key, raw in urllib.parse.parse_qsl(request.query_string, keep_blank_values=True):
            answer[key], failed = self.apply(key, raw)
            server_error |= failed
        return web.json_response(answer, status=500 if server_error else 200)

    async def _v1_status(self, request: web.Request) -> web.Response:
        self.requests.append(request.raw_path)
        await self._hang_while_silent()
        return web.json_response(self.status_v1())

    async def _v1_mqtt(self, request: web.Request) -> web.Response:
        self.requests.append(request.raw_path)
        await self._hang_while_silent()
        self.apply_v1(request.query.get("payload", ""))
        return web.json_response(self.status_v1())

    # -- MQTT -----------------------------------------------------------------------------------
    async def start_mqtt(self, broker_url: str) -> None:
        """Publish to the broker as go-e does; returns once the retained topics are out."""
        import aiomqtt

        parts = urllib.parse.urlsplit(broker_url)
        client = aiomqtt.Client(
            parts.hostname or "127.0.0.1", parts.port or 1883, identifier=f"goe-{self.serial}"
        )
        ready = asyncio.Event()
        self._tasks.append(asyncio.create_task(self._mqtt_run(client, ready)))
        await asyncio.wait_for(ready.wait(), 10)

    async def _mqtt_run(self, client: Any, ready: asyncio.Event) -> None:
        base = f"{self.mqtt_prefix}/{self.serial}/"
        async with client:
            await client.subscribe(base + "+/set", qos=1)
            published: dict[str, Any] = {}

            async def publish_changes() -> None:
                for key, value in self.status().items():
                    if key == "rbt" or published.get(key, object()) != value:
                        self._reported({key: value})
                        await client.publish(base + key, json.dumps(value), qos=1, retain=True)
                        published[key] = value

            await publish_changes()
            ready.set()
            ticker = asyncio.create_task(self._tick(publish_changes))
            try:
                async for message in client.messages:
                    if self.silent or not self.mqtt_writes_allowed:
                        continue  # a read-only MQTT setup (mcr) or a dead box answers nothing
                    key = message.topic.value[len(base) : -len("/set")]
                    raw = bytes(message.payload).decode()
                    verdict, _ = self.apply(key, raw)
                    text = "success" if verdict is True else str(verdict)
                    await client.publish(base + key + "/result", text, qos=1, retain=False)
                    await publish_changes()
            finally:
                ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ticker

    async def _tick(self, publish_changes: Any) -> None:
        while True:
            await asyncio.sleep(self.publish_interval_s)
            if not self.silent:
                await publish_changes()

    async def close(self) -> None:
        for task in self._tasks:
            # Cancelled again until done: on Python 3.11, asyncio.wait_for (inside aiomqtt's publish)
            # loses a cancellation that arrives together with the awaited PUBACK.
            while not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=0.5)
            with contextlib.suppress(asyncio.CancelledError, Exception):
                task.result()
        if self._runner is not None:
            await self._runner.cleanup()


async def get_json(url: str) -> Any:
    """What a test sees when it asks the emulator directly."""
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return await response.json(content_type=None)
