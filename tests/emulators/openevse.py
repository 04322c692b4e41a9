"""An OpenEVSE WiFi gateway (ESP32, firmware v4.x) as the bridge sees it on the network (a test
helper, not production code).

Follows ../shared/reference/devices.md §2:
- `GET /status`: `amp` in mA, `voltage` V, `power` W, `pilot` A, `max_current` A (after claims),
  `state` (1 not connected, 2 connected, 3 charging, 4..11 faults, 254 sleeping), `status`
  active/disabled, `vehicle` 0/1, `evse_connected`, `session_energy` Wh, `total_energy` kWh.
- Claims: `GET /claims`, `GET|POST|DELETE /claims/{client}` (HTTP claims have priority 500, the
  body cannot choose), `GET /claims/target` naming the winning client per property; at most 10 claims.
  Answers `{"msg":"done"}`; 400 `{"msg":"Could not parse JSON"}` / `{"msg":"Could not make claim"}`;
  404 `{"msg":"Not found"}`; 405 for `/claims` without a client id.
- Manual override (priority 1000): `GET /override` (404 when none), `POST`, `DELETE`.
- `POST /restart {"device":"gateway"|"evse"}` → `{"msg":"restart <device>"}`; the gateway's
  restart forgets the claims (they live in its memory).
- Optional HTTP basic auth: 401 with a Basic challenge, `{"msg":"auth"}` when the request says
  `X-Requested-With: OpenEVSE`; 429 `{"msg":"locked"}` after repeated failures (the count of
  failures before the lock, LOCK_AFTER_FAILURES, is made up: the sources give none).

Physics: a vehicle is plugged or not and asks for energy or not; the merged claims decide the state
and the current; energy flows while active, integrating into `total_energy`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

from aiohttp import web

from tests.processes import free_port

PRIORITY_HTTP = 500  # EvseManager_Priority_API
PRIORITY_OVERRIDE = 1000  # EvseManager_Priority_Manual
OVERRIDE_CLIENT = 0x00010007  # the manual override's client id (made up: any id other than ours)
CLAIMS_MAX = 10
LOCK_AFTER_FAILURES = 5  # made up
PROPERTIES = ("state", "charge_current", "max_current")


class OpenEvseEmulator:
    def __init__(
        self,
        *,
        total_kwh: float = 1234.567,
        voltage: float = 240.0,
        default_current_a: int = 32,  # the configured charge current without claims
        hard_max_a: int = 32,  # the station's hardware limit
        ev_max_a: float = 32.0,
        three_phase: bool = False,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self.voltage = voltage
        self.default_current_a = default_current_a
        self.hard_max_a = hard_max_a
        self.ev_max_a = ev_max_a
        self.three_phase = three_phase
        self.credentials = credentials
        self.energy_wh = total_kwh * 1000.0
        self.session_wh = 0.0
        self.plugged = False
        self.ev_requesting = True
        self.fault_state = 0  # 4..11: the EVSE reports that fault
        self.evse_connected = True
        self.claims: dict[int, tuple[int, dict[str, Any]]] = {}  # client -> (priority, properties)
        self.restarts: list[str] = []
        self.requests: list[tuple[str, str, str]] = []  # (method, path, body) as received
        self.reported_energy_wh: list[float] = []
        self.reported_power_w: list[float] = []
        self.auth_failures = 0
        self._speaking = asyncio.Event()
        self._speaking.set()
        self._last = time.monotonic()
        self._runner: web.AppRunner | None = None
        self.url = ""

    # -- what happens at the box ---------------------------------------------------------------
    def plug(self) -> None:
        self._advance()
        self.plugged, self.ev_requesting, self.session_wh = True, True, 0.0

    def unplug(self) -> None:
        self._advance()
        self.plugged = False
        for client, (_, props) in list(self.claims.items()):
            if props.get("auto_release"):
                del self.claims[client]

    def ev_request(self, requesting: bool) -> None:
        self._advance()
        self.ev_requesting = requesting

    def set_fault(self, state: int) -> None:
        """4..11 as the EVSE reports them; 0 clears."""
        assert state == 0 or 4 <= state <= 11
        self._advance()
        self.fault_state = state

    def override(self, properties: dict[str, Any] | None) -> None:
        """The manual override of the box's web page (priority 1000); None clears it."""
        self._advance()
        if properties is None:
            self.claims.pop(OVERRIDE_CLIENT, None)
        else:
            self.claims[OVERRIDE_CLIENT] = (PRIORITY_OVERRIDE, dict(properties))

    @property
    def silent(self) -> bool:
        return not self._speaking.is_set()

    @silent.setter
    def silent(self, silent: bool) -> None:
        if silent:
            self._speaking.clear()
        else:
            self._speaking.set()

    # -- claims and physics ---------------------------------------------------------------------
    def target(self) -> tuple[dict[str, Any], dict[str, int]]:
        """The merged properties and the winning client of each (evaluateClaims)."""
        props: dict[str, Any] = {}
        winners: dict[str, int] = {}
        ranked = sorted(self.claims.items(), key=lambda item: -item[1][0])
        for name in PROPERTIES:
            for client, (_, claim) in ranked:
                if name in claim:
                    props[name], winners[name] = claim[name], client
                    break
        props.setdefault("state", "active")  # the configured default state
        return props, winners

    def state_claimed(self) -> str:
        return str(self.target()[0]["state"])

    def current_a(self) -> int:
        """The current offered: min(charge_current, max_current, hardware limit)."""
        props = self.target()[0]
        return int(
            min(
                props.get("charge_current", self.default_current_a),
                props.get("max_current", 999),
                self.hard_max_a,
            )
        )

    def charging(self) -> bool:
        active = self.state_claimed() == "active" and not self.fault_state
        return active and self.plugged and self.ev_requesting and self.evse_connected

    def amps(self) -> float:
        return float(min(self.current_a(), self.ev_max_a)) if self.charging() else 0.0

    def power_w(self) -> float:
        return self.amps() * self.voltage * (3 if self.three_phase else 1)

    def _advance(self) -> None:
        now = time.monotonic()
        added = self.power_w() * (now - self._last) / 3600.0
        self.energy_wh += added
        self.session_wh += added
        self._last = now

    def evse_state(self) -> int:
        if self.fault_state:
            return self.fault_state
        if self.state_claimed() != "active":
            return 254  # sleeping
        if not self.plugged:
            return 1
        return 3 if self.charging() else 2

    def status(self) -> dict[str, Any]:
        self._advance()
        active = self.state_claimed() == "active"
        wh = int(self.energy_wh)  # reported in whole Wh (kWh with 3 decimals)
        power = round(self.power_w(), 1)
        return {
            "mode": 1, "wifi_client_connected": 1, "evse_connected": 1 if self.evse_connected else 0,
            "amp": int(self.amps() * 1000), "voltage": self.voltage, "power": power,
            "pilot": self.current_a(), "max_current": self.current_a(), "temp": 245, "temp1": False,
            "state": self.evse_state(), "status": "active" if active else "disabled",
            "flags": 0, "vehicle": 1 if self.plugged else 0,
            "manual_override": 1 if OVERRIDE_CLIENT in self.claims else 0,
            "session_energy": round(self.session_wh, 1), "total_energy": wh / 1000,
            "session_elapsed": 0, "elapsed": 0, "wattsec": int(self.session_wh * 3600),
            "claims_version": len(self.claims), "override_version": 1, "ocpp_connected": 0,
            "mqtt_connected": 0,
        }  # fmt: skip

    # -- HTTP -----------------------------------------------------------------------------------
    async def start(self) -> str:
        app = web.Application(middlewares=[self._gate])
        app.router.add_get("/status", self._get_status)
        app.router.add_get("/claims", self._list_claims)
        app.router.add_post("/claims", self._no_client)
        app.router.add_get("/claims/target", self._target)
        app.router.add_route("*", "/claims/{client}", self._claim)
        app.router.add_route("*", "/override", self._override)
        app.router.add_post("/restart", self._restart)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, handle_signals=False)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    @web.middleware
    async def _gate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Records the request, hangs while silent, checks basic auth."""
        body = await request.text()
        self.requests.append((request.method, request.path, body))
        await self._speaking.wait()
        if self.credentials is not None:
            if self.auth_failures >= LOCK_AFTER_FAILURES:
                return web.json_response({"msg": "locked"}, status=429)
            user, password = self.credentials
            expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
            if request.headers.get("Authorization") != expected:
                self.auth_failures += 1
                if request.headers.get("X-Requested-With") == "OpenEVSE":
                    return web.json_response({"msg": "auth"}, status=401)
                return web.Response(
                    status=401, headers={"WWW-Authenticate": 'Basic realm="openevse"'}, text="Unauthorized"
                )
            self.auth_failures = 0
        return await handler(request)

    async def _get_status(self, request: web.Request) -> web.Response:
        values = self.status()
        self.reported_energy_wh.append(values["total_energy"] * 1000)
        self.reported_power_w.append(values["power"])
        return web.json_response(values)

    async def _list_claims(self, request: web.Request) -> web.Response:
        return web.json_response(
            [{"client": c, "priority": p, "properties": props} for c, (p, props) in self.claims.items()]
        )

    async def _no_client(self, request: web.Request) -> web.Response:
        return web.json_response({"msg": "Method not allowed"}, status=405)  # text made up

    async def _target(self, request: web.Request) -> web.Response:
        props, winners = self.target()
        return web.json_response({"properties": props, "claims": winners})

    async def _claim(self, request: web.Request) -> web.Response:
        try:
            client = int(request.match_info["client"], 0)
        except ValueError:
            return web.json_response({"msg": "Not found"}, status=404)
        if request.method == "GET":
            if client not in self.claims:
                return web.json_response({"msg": "Not found"}, status=404)
            priority, props = self.claims[client]
            return web.json_response({"client": client, "priority": priority, "properties": props})
        if request.method == "DELETE":
            self._advance()
            if self.claims.pop(client, None) is None:
                return web.json_response({"msg": "Not found"}, status=404)
            return web.json_response({"msg": "done"})
        if request.method != "POST":
            return web.json_response({"msg": "Method not allowed"}, status=405)  # text made up
        props = await self._properties(request)
        if props is None:
            return web.json_response({"msg": "Could not parse JSON"}, status=400)
        if not self.claim(client, PRIORITY_HTTP, props):
            return web.json_response({"msg": "Could not make claim"}, status=400)
        return web.json_response({"msg": "done"})

    def claim(self, client: int, priority: int, props: dict[str, Any]) -> bool:
        """A claim of `client` (EvseManager::claim): a partial update of its properties, "clear"
        removing one; False when it cannot be made (invalid, or ten claims held already). The HTTP
        API and the MQTT side (tests/emulators/openevse_mqtt.py) both claim through this."""
        if (client not in self.claims and len(self.claims) >= CLAIMS_MAX) or not self._valid(props):
            return False
        self._advance()
        merged = dict(self.claims.get(client, (priority, {}))[1])
        for name, value in props.items():
            if value == "clear":
                merged.pop(name, None)
            else:
                merged[name] = value
        self.claims[client] = (priority, merged)
        return True

    @staticmethod
    async def _properties(request: web.Request) -> dict[str, Any] | None:
        try:
            props = json.loads(await request.text())
        except ValueError:
            return None
        return props if isinstance(props, dict) else None

    @staticmethod
    def _valid(props: dict[str, Any]) -> bool:
        for name, value in props.items():
            if value == "clear":
                continue
            if name == "state" and value not in ("active", "disabled"):
                return False
            if name in ("charge_current", "max_current") and (
                not isinstance(value, int) or isinstance(value, bool) or value < 0
            ):
                return False
            if name == "auto_release" and not isinstance(value, bool):
                return False
        return True

    async def _override(self, request: web.Request) -> web.Response:
        if request.method == "GET":
            if OVERRIDE_CLIENT not in self.claims:
                return web.json_response({"msg": "Not found"}, status=404)
            return web.json_response(self.claims[OVERRIDE_CLIENT][1])
        if request.method == "DELETE":
            self.override(None)
            return web.json_response({"msg": "done"})
        props = await self._properties(request)
        if props is None:
            return web.json_response({"msg": "Could not parse JSON"}, status=400)
        self.override(props)
        return web.json_response({"msg": "done"})

    async def _restart(self, request: web.Request) -> web.Response:
        props = await self._properties(request)
        device = (props or {}).get("device")
        if device not in ("gateway", "evse"):
            return web.json_response({"msg": "Could not parse JSON"}, status=400)
        self._advance()
        self.restarts.append(device)
        if device == "gateway":
            self.claims.clear()  # claims live in the gateway's memory
        return web.json_response({"msg": f"restart {device}"})

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
