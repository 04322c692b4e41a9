"""A Shelly Gen2+ metering switch (Pro 1PM-like) on a free 127.0.0.1 port, over its HTTP RPC API.

Follows ../shared/reference/devices.md §6.1, quirks included:
- `GET /rpc/<Method>?<params>`: query values are read as JSON where they parse (`on=true` is a
  bool, `id=0` a number), else as text. `POST /rpc` takes a JSON-RPC frame and answers
  `{"id", "src", "result"}` or `{"id", "src", "error": {...}}`.
- `Switch.Set` answers `{"was_on": <bool>}` (the state *before*), as does `Switch.Toggle`.
- `Switch.GetStatus`: `apower` W, `voltage` V, `current` A, `freq` Hz, `aenergy.total` Wh,
  `aenergy.by_minute` mWh for the last 3 minutes, `minute_ts` unix seconds; `errors` only while a
  protection tripped (which also switches the output off, as the device does).
- An error is a bare object `{"code": ..., "message": ...}` with an HTTP error status: -103 for a
  missing or bad argument, -105 for an unknown component id (HTTP 400, as seen in third-party
  integrations), 404 "No handler for <Method>" for an unknown method.
- With a password: HTTP digest auth (RFC 7616), user "admin", realm = the device id, SHA-256,
  qop=auth, as Gen2 devices do; `/shelly` stays open and says `auth_en`.

The wallbox behind the relay is an `EvLoad` (shared with the Tasmota emulator): while the relay is
closed it draws its standby power, plus the vehicle's power when one is plugged and not suspended;
the energy counter integrates that power.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

VOLTAGE_V = 230.0


class EvLoad:
    """A plain wallbox and a vehicle behind a relay: the power that flows and the energy it adds up."""

    def __init__(
        self,
        *,
        ev_power_w: float = 3680.0,  # 16 A on one phase
        standby_w: float = 2.5,  # the wallbox's own electronics
        voltage_v: float = VOLTAGE_V,
        energy_wh: float = 0.0,
        plugged: bool = False,
        time_scale: float = 1.0,  # energy accrues this many times faster than real time
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ev_power_w = ev_power_w
        self.standby_w = standby_w
        self.voltage_v = voltage_v
        self.plugged = plugged
        self.suspended = False  # the vehicle stops drawing (full, or its own timer)
        self.relay_on = False
        self.time_scale = time_scale
        self._clock = clock
        self._energy_wh = energy_wh
        self._last = clock()

    @property
    def power_w(self) -> float:
        if not self.relay_on:
            return 0.0
        drawing = self.plugged and not self.suspended
        return self.standby_w + (self.ev_power_w if drawing else 0.0)

    @property
    def current_a(self) -> float:
        return self.power_w / self.voltage_v

    @property
    def energy_wh(self) -> float:
        self._advance()
        return self._energy_wh

    def _advance(self) -> None:
        now = self._clock()
        self._energy_wh += self.power_w * max(0.0, now - self._last) * self.time_scale / 3600.0
        self._last = now

    # Every change first books the energy of the time before it.
    def switch(self, on: bool) -> None:
        self._advance()
        self.relay_on = on

    def plug(self) -> None:
        self._advance()
        self.plugged, self.suspended = True, False

    def unplug(self) -> None:
        self._advance()
        self.plugged = False

    def suspend(self) -> None:
        self._advance()
        self.suspended = True

    def resume(self) -> None:
        self._advance()
        self.suspended = False

    def set_ev_power(self, watts: float) -> None:
        self._advance()
        self.ev_power_w = watts


class RpcError(Exception):
    def __init__(self, http_status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.http_status, self.code, self.message = http_status, code, message


def _query_value(text: str) -> Any:
    """Gen2 reads GET parameters as JSON where they parse: on=true is a bool, id=0 a number."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class ShellyEmulator:
    def __init__(
        self,
        *,
        load: EvLoad | None = None,
        switches: int = 1,  # the load hangs on switch 0
        password: str | None = None,
        metering: bool = True,  # False: a Plus 1 without power metering
        device_id: str = "shellypro1pm-a8032ab720ac",
    ) -> None:
        self.load = load or EvLoad()
        self.outputs = [False] * switches
        self.sources = ["init"] * switches
        self.password = password
        self.metering = metering
        self.device_id = device_id
        self.errors: list[str] = []  # tripped protections of switch 0
        self._talking = asyncio.Event()  # cleared: silent, accepts connections but never answers
        self._talking.set()
        self.latency_s = 0.0  # how long each answer takes (a busy device, a slow Wi-Fi link)
        self.calls: list[tuple[str, dict[str, Any]]] = []  # every RPC that reached a method
        # What switch 0's status answers carried: aenergy.total (Wh) and apower (W), in order.
        self.reported_energy_wh: list[float] = []
        self.reported_power_w: list[float] = []
        self._nonces: set[str] = set()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def silent(self) -> bool:
        return not self._talking.is_set()

    @silent.setter
    def silent(self, value: bool) -> None:
        if value:
            self._talking.clear()
        else:
            self._talking.set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> ShellyEmulator:
        app = web.Application()
        app.router.add_get("/shelly", self._device_info)
        app.router.add_get("/rpc/{method}", self._get_rpc)
        app.router.add_post("/rpc", self._post_rpc)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)  # the same port again after stop()
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        """Gone from the network (connection refused); start() brings it back on the same port."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> ShellyEmulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- what happens at the device ---------------------------------------------------------------
    def set_output(self, switch_id: int, on: bool, source: str) -> bool:
        was_on = self.outputs[switch_id]
        self.outputs[switch_id] = on
        self.sources[switch_id] = source
        if switch_id == 0:
            self.load.switch(on)
        return was_on

    def trip(self, error: str = "overpower") -> None:
        """A protection trips: the output opens and the status lists the error until cleared."""
        self.errors = [error]
        self.set_output(0, False, error)

    def clear_errors(self) -> None:
        self.errors = []

    # -- HTTP -----------------------------------------------------------------------------------------
    async def _device_info(self, request: web.Request) -> web.Response:
        return web.json_response(self._info())

    def _info(self) -> dict[str, Any]:
        return {
            "name": None, "id": self.device_id, "mac": self.device_id.rsplit("-", 1)[-1].upper(),
            "slot": 0, "model": "SPSW-201PE16EU", "gen": 2, "fw_id": "20240625-122917/1.3.3-gbdfd9b3",
            "ver": "1.3.3", "app": "Pro1PM", "auth_en": self.password is not None,
            "auth_domain": self.device_id if self.password is not None else None,
        }  # fmt: skip

    async def _get_rpc(self, request: web.Request) -> web.Response:
        await self._hold_if_silent()
        denied = self._check_auth(request)
        if denied is not None:
            return denied
        params = {k: _query_value(v) for k, v in request.query.items()}
        try:
            return web.json_response(self.call(request.match_info["method"], params))
        except RpcError as e:
            return web.json_response({"code": e.code, "message": e.message}, status=e.http_status)

    async def _post_rpc(self, request: web.Request) -> web.Response:
        await self._hold_if_silent()
        denied = self._check_auth(request)
        if denied is not None:
            return denied
        frame = await request.json()
        head = {"id": frame.get("id"), "src": self.device_id, "dst": frame.get("src")}
        try:
            result = self.call(str(frame.get("method")), dict(frame.get("params") or {}))
        except RpcError as e:
            return web.json_response({**head, "error": {"code": e.code, "message": e.message}})
        return web.json_response({**head, "result": result})

    async def _hold_if_silent(self) -> None:
        await self._talking.wait()  # a silent switch: the request hangs until the client gives up
        if self.latency_s:
            await asyncio.sleep(self.latency_s)

    def _check_auth(self, request: web.Request) -> web.Response | None:
        if self.password is None or self._digest_ok(request):
            return None
        nonce = secrets.token_hex(8)
        self._nonces.add(nonce)
        challenge = f'Digest qop="auth", realm="{self.device_id}", nonce="{nonce}", algorithm=SHA-256'
        return web.json_response(
            {"code": 401, "message": "Unauthorized"}, status=401, headers={"WWW-Authenticate": challenge}
        )

    def _digest_ok(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Digest "):
            return False
        fields: dict[str, str] = {}
        for part in header[len("Digest ") :].split(","):
            key, _, value = part.strip().partition("=")
            fields[key] = value.strip('"')
        if fields.get("username") != "admin" or fields.get("nonce") not in self._nonces:
            return False
        if fields.get("uri") != request.raw_path or fields.get("realm") != self.device_id:
            return False
        ha1 = _sha256(f"admin:{self.device_id}:{self.password}")
        ha2 = _sha256(f"{request.method}:{fields['uri']}")
        expected = _sha256(f"{ha1}:{fields['nonce']}:{fields.get('nc')}:{fields.get('cnonce')}:auth:{ha2}")
        return secrets.compare_digest(expected, fields.get("response", ""))

    # -- RPC methods ------------------------------------------------------------------------------
    def call(self, method: str, params: dict[str, Any]) -> Any:
        handlers: dict[str, Callable[[dict[str, Any]], Any]] = {
            "Switch.GetStatus": self._switch_status,
            "Switch.Set": self._switch_set,
            "Switch.Toggle": self._switch_toggle,
            "Shelly.GetDeviceInfo": lambda _: self._info(),
        }
        handler = handlers.get(method)
        if handler is None:
            raise RpcError(404, 404, f"No handler for {method}")
        self.calls.append((method, params))
        return handler(params)

    def _switch_id(self, params: dict[str, Any]) -> int:
        if "id" not in params:
            raise RpcError(400, -103, "Missing required argument 'id'!")
        sid = params["id"]
        if isinstance(sid, bool) or not isinstance(sid, int):
            raise RpcError(400, -103, "Invalid argument 'id': expected number!")
        if not 0 <= sid < len(self.outputs):
            raise RpcError(400, -105, f"Argument 'id', value {sid} not found!")
        return sid

    def _switch_set(self, params: dict[str, Any]) -> dict[str, Any]:
        sid = self._switch_id(params)
        on = params.get("on")
        if not isinstance(on, bool):
            raise RpcError(400, -103, "Invalid argument 'on': expected boolean!")
        return {"was_on": self.set_output(sid, on, "HTTP_in")}

    def _switch_toggle(self, params: dict[str, Any]) -> dict[str, Any]:
        sid = self._switch_id(params)
        return {"was_on": self.set_output(sid, not self.outputs[sid], "HTTP_in")}

    def _switch_status(self, params: dict[str, Any]) -> dict[str, Any]:
        sid = self._switch_id(params)
        status: dict[str, Any] = {"id": sid, "source": self.sources[sid], "output": self.outputs[sid]}
        if self.metering:
            load = self.load if sid == 0 else EvLoad(voltage_v=self.load.voltage_v)
            minute_mwh = round(load.power_w * 60 / 3.6, 3)  # as if the last minutes drew what flows now
            status.update(
                apower=round(load.power_w, 1),
                voltage=round(load.voltage_v, 1),
                freq=50.0,
                current=round(load.current_a, 3),
                pf=0.99 if load.power_w > 0 else 0.0,
                aenergy={
                    "total": round(load.energy_wh, 3),
                    "by_minute": [minute_mwh] * 3,
                    "minute_ts": int(time.time()) // 60 * 60,
                },
            )
            if sid == 0:
                self.reported_energy_wh.append(status["aenergy"]["total"])
                self.reported_power_w.append(status["apower"])
        status["temperature"] = {"tC": 41.3, "tF": 106.3}
        if sid == 0 and self.errors:
            status["errors"] = list(self.errors)
        return status
