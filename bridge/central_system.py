"""A small, well-behaved central system for the demo (not for production).

It accepts every charge point and every tag, numbers transactions from 1,
and lets the demo send calls of its own (RemoteStopTransaction). It speaks
through the same `Endpoint` as the charge point side, so its frames are
validated against the same schemas.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from ocpp.routing import on
from ocpp.v16 import call_result
from ocpp.v16.enums import Action
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from bridge.clock import iso
from bridge.ocpp.rpc import Endpoint


class _Handlers:
    def __init__(self, csms: DemoCentralSystem) -> None:
        self.csms = csms

    @on(Action.boot_notification)
    def boot(self, **_: Any) -> call_result.BootNotification:
        return call_result.BootNotification(
            current_time=iso(datetime.now(UTC)), interval=self.csms.heartbeat_interval, status="Accepted"
        )

    @on(Action.heartbeat)
    def heartbeat(self, **_: Any) -> call_result.Heartbeat:
        return call_result.Heartbeat(current_time=iso(datetime.now(UTC)))

    @on(Action.status_notification)
    def status(self, **_: Any) -> call_result.StatusNotification:
        return call_result.StatusNotification()

    @on(Action.authorize)
    def authorize(self, **_: Any) -> call_result.Authorize:
        return call_result.Authorize(id_tag_info={"status": "Accepted"})

    @on(Action.start_transaction)
    def start(self, **_: Any) -> call_result.StartTransaction:
        self.csms.next_transaction_id += 1
        return call_result.StartTransaction(
            transaction_id=self.csms.next_transaction_id - 1, id_tag_info={"status": "Accepted"}
        )

    @on(Action.stop_transaction)
    def stop(self, **_: Any) -> call_result.StopTransaction:
        return call_result.StopTransaction()

    @on(Action.meter_values)
    def meter_values(self, **_: Any) -> call_result.MeterValues:
        return call_result.MeterValues()


class DemoCentralSystem:
    def __init__(self, heartbeat_interval: int = 300) -> None:
        self.heartbeat_interval = heartbeat_interval
        self.next_transaction_id = 1
        self.endpoints: dict[str, Endpoint] = {}
        self._server: Server | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen; returns the endpoint URL charge points append their id to."""
        self._server = await serve(self._serve, host, port, subprotocols=["ocpp1.6"])  # type: ignore[list-item]
        bound = next(iter(self._server.sockets)).getsockname()
        return f"ws://{bound[0]}:{bound[1]}/ocpp"

    async def _serve(self, ws: ServerConnection) -> None:
        identity = unquote(ws.request.path.rstrip("/").rsplit("/", 1)[-1]) if ws.request else "?"
        endpoint = Endpoint(ws, _Handlers(self), name=f"csms/{identity}", timeout=lambda: 30.0)
        self.endpoints[identity] = endpoint
        with contextlib.suppress(ConnectionClosed):
            await endpoint.run()
        self.endpoints.pop(identity, None)

    async def call(self, identity: str, payload: Any) -> Any:
        return await self.endpoints[identity].call(payload)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(asyncio.CancelledError):
                await self._server.wait_closed()
