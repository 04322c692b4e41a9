"""A Shelly Pro 3EM (three-phase energy meter, Gen2 RPC) on a free 127.0.0.1 port.

Follows ../shared/reference/devices.md §6.1 and Shelly's Gen2 component pages (EM, EMData):
- `GET /rpc/<Method>?<params>` (query values read as JSON where they parse) or `POST /rpc` with a
  JSON-RPC frame answered `{"id", "src", "dst", "result"}` or `{..., "error": {code, message}}`.
- `EM.GetStatus?id=0`: per phase `a_`/`b_`/`c_` + `current` A, `voltage` V, `act_power` W,
  `aprt_power` VA, `pf`, `freq` Hz; `n_current` (null without a neutral sensor), `total_current`,
  `total_act_power`, `total_aprt_power`, `user_calibrated_phase`; `errors` only while one is raised.
- `EMData.GetStatus?id=0`: `a_total_act_energy`, `a_total_act_ret_energy` (... b_, c_) and
  `total_act`, `total_act_ret`, all in **Wh** (evcc PR #7335).
- Errors: a bare `{"code", "message"}` with an HTTP error status: -103 (400) for a missing or bad
  argument, -105 (400) for an unknown component id, 404 "No handler for <Method>".

Each phase draws a power the test sets (`set_power`), at 230 V and power factor 1 unless told; the
energy counters integrate it (`time_scale` faster than real time; 0 freezes them, for exact
comparisons). No digest authentication (the switch emulator in shelly.py has it).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

PHASES = ("a", "b", "c")


class RpcError(Exception):
    def __init__(self, http_status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.http_status, self.code, self.message = http_status, code, message


def _query_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


class ShellyPro3EmEmulator:
    def __init__(
        self,
        *,
        energy_wh: tuple[float, float, float] = (1000.0, 2000.0, 3000.0),
        voltage_v: tuple[float, float, float] = (230.0, 231.0, 229.0),
        time_scale: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        device_id: str = "shellypro3em-c8f09e8a1b2c",
    ) -> None:
        self.power_w = [0.0, 0.0, 0.0]
        self.voltage_v = list(voltage_v)
        self.pf = [1.0, 1.0, 1.0]
        self.errors: list[str] = []
        self.device_id = device_id
        self.time_scale = time_scale
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.port = 0
        self._energy = list(energy_wh)
        self._clock = clock
        self._last = clock()
        self._talking = asyncio.Event()
        self._talking.set()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def silent(self) -> bool:
        return not self._talking.is_set()

    @silent.setter
    def silent(self, value: bool) -> None:
        if value:
            self._talking.clear()
        else:
            self._talking.set()

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> ShellyPro3EmEmulator:
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

    async def __aenter__(self) -> ShellyPro3EmEmulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- the load ---------------------------------------------------------------------------------
    def _advance(self) -> None:
        now = self._clock()
        for n in range(3):
            self._energy[n] += self.power_w[n] * max(0.0, now - self._last) * self.time_scale / 3600.0
        self._last = now

    def set_power(self, a: float, b: float, c: float) -> None:
        self._advance()
        self.power_w = [a, b, c]

    @property
    def energy_wh(self) -> list[float]:
        self._advance()
        return list(self._energy)

    def current_a(self, n: int) -> float:
        return self.power_w[n] / (self.voltage_v[n] * self.pf[n]) if self.power_w[n] else 0.0

    # -- HTTP ---------------------------------------------------------------------------------------
    async def _device_info(self, request: web.Request) -> web.Response:
        return web.json_response(self._info())

    def _info(self) -> dict[str, Any]:
        return {
            "name": None, "id": self.device_id, "mac": self.device_id.rsplit("-", 1)[-1].upper(),
            "slot": 0, "model": "SPEM-003CEBEU", "gen": 2, "fw_id": "20241011-114455/1.4.4-g6d2a586",
            "ver": "1.4.4", "app": "Pro3EM", "auth_en": False, "auth_domain": None, "profile": "triphase",
        }  # fmt: skip

    async def _get_rpc(self, request: web.Request) -> web.Response:
        await self._talking.wait()  # a silent meter: the request hangs until the client gives up
        params = {k: _query_value(v) for k, v in request.query.items()}
        try:
            return web.json_response(self.call(request.match_info["method"], params))
        except RpcError as e:
            return web.json_response({"code": e.code, "message": e.message}, status=e.http_status)

    async def _post_rpc(self, request: web.Request) -> web.Response:
        await self._talking.wait()
        frame = await request.json()
        head = {"id": frame.get("id"), "src": self.device_id, "dst": frame.get("src")}
        try:
            result = self.call(str(frame.get("method")), dict(frame.get("params") or {}))
        except RpcError as e:
            return web.json_response({**head, "error": {"code": e.code, "message": e.message}})
        return web.json_response({**head, "result": result})

    # -- RPC methods ------------------------------------------------------------------------------
    def call(self, method: str, params: dict[str, Any]) -> Any:
        handlers: dict[str, Callable[[dict[str, Any]], Any]] = {
            "EM.GetStatus": self._em_status,
            "EMData.GetStatus": self._emdata_status,
            "Shelly.GetDeviceInfo": lambda _: self._info(),
        }
        handler = handlers.get(method)
        if handler is None:
            raise RpcError(404, 404, f"No handler for {method}")
        self.calls.append((method, params))
        return handler(params)

    @staticmethod
    def _check_id(params: dict[str, Any]) -> int:
        if "id" not in params:
            raise RpcError(400, -103, "Missing required argument 'id'!")
        cid = params["id"]
        if isinstance(cid, bool) or not isinstance(cid, int):
            raise RpcError(400, -103, "Invalid argument 'id': expected number!")
        if cid != 0:
            raise RpcError(400, -105, f"Argument 'id', value {cid} not found!")
        return cid

    def _em_status(self, params: dict[str, Any]) -> dict[str, Any]:
        status: dict[str, Any] = {"id": self._check_id(params)}
        for n, p in enumerate(PHASES):
            power = round(self.power_w[n], 1)
            status.update({
                f"{p}_current": round(self.current_a(n), 3), f"{p}_voltage": round(self.voltage_v[n], 1),
                f"{p}_act_power": power, f"{p}_aprt_power": round(power / self.pf[n], 1),
                f"{p}_pf": self.pf[n] if power else 0.0, f"{p}_freq": 50.0,
            })  # fmt: skip
        status.update(
            n_current=None,
            total_current=round(sum(self.current_a(n) for n in range(3)), 3),
            total_act_power=round(sum(self.power_w), 3),
            total_aprt_power=round(sum(self.power_w[n] / self.pf[n] for n in range(3)), 3),
            user_calibrated_phase=[],
        )
        if self.errors:
            status["errors"] = list(self.errors)
        return status

    def _emdata_status(self, params: dict[str, Any]) -> dict[str, Any]:
        status: dict[str, Any] = {"id": self._check_id(params)}
        energy = self.energy_wh
        for n, p in enumerate(PHASES):
            status[f"{p}_total_act_energy"] = round(energy[n], 2)
            status[f"{p}_total_act_ret_energy"] = 0.0
        status["total_act"] = round(sum(energy), 2)
        status["total_act_ret"] = 0.0
        return status
