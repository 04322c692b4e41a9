"""The benchmarks' bare central system (bench/*.py): a websockets server that answers every CALL at once.

No `ocpp` routing and no validation, so it adds as little as it can to what a benchmark measures.
It listens on 127.0.0.1 on a port the kernel picks (one listener per `start`, plain or TLS), speaks
the ocpp1.6 subprotocol and answers each CALL with the standard answer of `answer` (every Boot
Accepted, every id tag Accepted, a transaction id from `transaction_id`). A benchmark subclasses it
and overrides the hooks it needs:

- `record(call)`: each CALL as it arrived (time from `clock`, action, payload, the charge point id
  from the path), before it is answered;
- `answered(call, at)`: the same CALL once its answer was sent;
- `result(cp_id, unique_id, payload, arrived)`: a CALLRESULT to a CALL the benchmark sent (`call`);
- `transaction_id(call)`: the id a StartTransaction gets (by default 1, 2, 3, ... per server).

Frames that are not JSON, not a list or a CALL without its four fields are dropped unanswered.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed


def now_iso() -> str:
    """The current UTC time as OCPP writes it, to the millisecond."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Call:
    """One CALL the central system received."""

    cp_id: str  # the last part of the websocket's path
    unique_id: str
    action: str
    payload: Any
    arrived: float  # the central system's clock when the frame was read
    size: int  # characters of the frame as sent

    @property
    def frame(self) -> list[Any]:
        return [2, self.unique_id, self.action, self.payload]


class BareCentralSystem:
    """Answers every CALL at once; `url` is the first listener's, `urls` has one per scheme."""

    def __init__(self, *, clock: Callable[[], float] = time.perf_counter, interval: int = 300,
                 **serve_options: Any) -> None:  # fmt: skip
        self.url = ""
        self.urls: dict[str, str] = {}
        self.links: dict[str, ServerConnection] = {}  # the open connection of each charge point id
        self.interval = interval  # the BootNotification's heartbeat interval, seconds
        self._clock = clock
        self._serve_options = serve_options  # websockets' serve(): compression, ping_interval, ...
        self._servers: list[Server] = []
        self._tx = 0

    async def start(self, tls: ssl.SSLContext | None = None) -> str:
        """Listens on a new free port (wss:// with `tls`) and returns its URL."""
        server = await serve(self._serve, "127.0.0.1", 0, subprotocols=["ocpp1.6"], ssl=tls,  # type: ignore[list-item]
                             **self._serve_options)  # fmt: skip
        self._servers.append(server)
        scheme = "ws" if tls is None else "wss"
        port = next(iter(server.sockets)).getsockname()[1]
        url = f"{scheme}://127.0.0.1:{port}/ocpp"
        self.urls[scheme] = url
        self.url = self.url or url
        return url

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
            await server.wait_closed()
        self._servers.clear()

    async def call(self, cp_id: str, unique_id: str, action: str, payload: dict[str, Any]) -> None:
        """Sends a CALL to a connected charge point; its answer comes to `result`."""
        link = self.links.get(cp_id)
        if link is None:
            raise RuntimeError(f"charge point {cp_id!r} is not connected to the bare central system")
        await link.send(json.dumps([2, unique_id, action, payload]))

    # -- the hooks -----------------------------------------------------------------------------

    def record(self, call: Call) -> None:
        """A CALL arrived; it is answered after this returns."""

    def answered(self, call: Call, at: float) -> None:
        """The CALL's answer was sent at `at` (the clock's time)."""

    def result(self, cp_id: str, unique_id: str, payload: Any, arrived: float) -> None:
        """A CALLRESULT arrived for a CALL sent with `call`."""

    def transaction_id(self, call: Call) -> int:
        self._tx += 1
        return self._tx

    def answer(self, call: Call) -> dict[str, Any]:
        """The standard answer to a CALL: everything Accepted, nothing asked back."""
        if call.action == "BootNotification":
            return {"currentTime": now_iso(), "interval": self.interval, "status": "Accepted"}
        if call.action == "Heartbeat":
            return {"currentTime": now_iso()}
        if call.action == "Authorize":
            return {"idTagInfo": {"status": "Accepted"}}
        if call.action == "StartTransaction":
            return {"transactionId": self.transaction_id(call), "idTagInfo": {"status": "Accepted"}}
        return {}  # StatusNotification, MeterValues, StopTransaction (idTagInfo is optional), ...

    # -- the connection --------------------------------------------------------------------------

    async def _serve(self, ws: ServerConnection) -> None:
        cp_id = ws.request.path.rstrip("/").rsplit("/", 1)[-1] if ws.request else "?"
        self.links[cp_id] = ws
        try:
            with contextlib.suppress(ConnectionClosed):
                async for raw in ws:
                    arrived = self._clock()
                    try:
                        message = json.loads(raw)
                    except ValueError:
                        continue
                    if not isinstance(message, list) or len(message) < 3:
                        continue
                    if message[0] == 3:
                        self.result(cp_id, str(message[1]), message[2], arrived)
                        continue
                    if message[0] != 2 or len(message) != 4:
                        continue
                    call = Call(cp_id, str(message[1]), str(message[2]), message[3], arrived, len(raw))
                    self.record(call)
                    await ws.send(json.dumps([3, message[1], self.answer(call)]))
                    self.answered(call, self._clock())
        finally:
            if self.links.get(cp_id) is ws:
                del self.links[cp_id]
