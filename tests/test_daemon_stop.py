"""A stop is quick and final even when the central system no longer answers."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from typing import Any

from tests.conftest import make_config, running

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class DeadCentralSystem:
    """Accepts the websocket upgrade, then never reads or answers again (a hung server, a link that
    went dead without a FIN): a close handshake with it never completes."""

    def __init__(self) -> None:
        self.connections = 0
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> DeadCentralSystem:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        head = await reader.readuntil(b"\r\n\r\n")
        key = next(
            line.split(b":", 1)[1].strip()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        accept = base64.b64encode(hashlib.sha1(key + GUID.encode()).digest()).decode()
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + f"Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: ocpp1.6\r\n\r\n".encode()
        )
        await writer.drain()
        await asyncio.Event().wait()  # read nothing, answer nothing, until the test ends


async def test_a_stop_with_a_dead_central_system_is_bounded_and_does_not_reconnect(tmp_path: Any) -> None:
    async with DeadCentralSystem() as dead:
        config = make_config(f"ws://127.0.0.1:{dead.port}/ocpp", tmp_path, cp_ids=("CP-1", "CP-2", "CP-3"))
        daemon_cm = running(config)
        daemon = await daemon_cm.__aenter__()
        for _ in range(100):
            if all(cp.session.link.connected for cp in daemon.charge_points.values()):
                break
            await asyncio.sleep(0.05)
        assert dead.connections == 3
        began = time.monotonic()
        await daemon_cm.__aexit__(None, None, None)
        took = time.monotonic() - began
    # Three sessions closed side by side, each bounded at 2 s; none came back during the stop.
    assert took < 4.0, took
    assert dead.connections == 3
