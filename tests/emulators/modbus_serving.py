"""Serving emulated Modbus devices (pymodbus's simulator) to the bridge: over TCP on loopback, or over
RTU on one end of a socat pseudo-terminal pair. The Eastron meters and the generic register devices
both use it; each supplies its devices and its packet hooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer

from tests.processes import child_env, stop_process

SOCAT = shutil.which("socat") or "/usr/bin/socat"

Hook = Callable[..., Any]


@contextlib.asynccontextmanager
async def serving_tcp(
    devices: Any, *, rtu_framing: bool, port: int, trace_packet: Hook, trace_connect: Hook | None = None
) -> AsyncIterator[tuple[str, int]]:
    """A Modbus TCP server on loopback (a free port unless `port` is given); rtu_framing: a transparent
    serial server. Yields the bridge's URL for it and its port."""
    server = ModbusTcpServer(
        devices,
        framer=FramerType.RTU if rtu_framing else FramerType.SOCKET,
        address=("127.0.0.1", port),
        trace_packet=trace_packet,
        trace_connect=trace_connect,
    )
    await server.serve_forever(background=True)
    try:
        listening = server.transport
        assert isinstance(listening, asyncio.Server)  # the port the system chose
        port = listening.sockets[0].getsockname()[1]
        yield f"{'rtu+tcp' if rtu_framing else 'tcp'}://127.0.0.1:{port}", port
    finally:
        await server.shutdown()


class TcpDeviceServer:
    """Emulated devices behind a Modbus TCP server on loopback; `stop` and `start` again on the same port
    make an outage in which connections are refused. `devices` makes the simulator's devices afresh at
    each start; `trace_packet` is the devices' packet hook (their error replies, their silence)."""

    def __init__(self, devices: Callable[[], Any], trace_packet: Hook) -> None:
        self._devices = devices
        self._trace_packet = trace_packet
        self.url = ""
        self.port = 0
        self._stack: contextlib.AsyncExitStack | None = None

    async def start(self) -> str:
        stack = contextlib.AsyncExitStack()
        serving = serving_tcp(
            self._devices(), rtu_framing=False, port=self.port, trace_packet=self._trace_packet
        )
        self.url, self.port = await stack.enter_async_context(serving)
        self._stack = stack
        return self.url

    async def stop(self) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()


S = TypeVar("S", bound=TcpDeviceServer)


@contextlib.asynccontextmanager
async def started(server: S) -> AsyncIterator[S]:
    """`server` serving on a free loopback port, stopped at the end."""
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@contextlib.asynccontextmanager
async def serving_rtu(
    tmp_path: Path, devices: Any, *, baudrate: int, trace_packet: Hook, trace_connect: Hook | None = None
) -> AsyncIterator[str]:
    """Devices on one end of a socat pseudo-terminal pair; yields the bridge's URL for the other end
    (parity N: a PTY rejects even parity, and parity means nothing on it anyway)."""
    async with socat_pair(tmp_path) as (device_end, bridge_end):
        server = ModbusSerialServer(
            devices,
            framer=FramerType.RTU,
            port=str(device_end),
            baudrate=baudrate,
            parity="N",
            trace_packet=trace_packet,
            trace_connect=trace_connect,
        )
        await server.serve_forever(background=True)
        try:
            yield f"rtu://{bridge_end}?baudrate={baudrate}&parity=N"
        finally:
            await server.shutdown()


@contextlib.asynccontextmanager
async def socat_pair(tmp_path: Path, timeout_s: float = 5.0) -> AsyncIterator[tuple[Path, Path]]:
    """Two linked pseudo-terminals (links in `tmp_path`); socat is stopped by its pid at the end."""
    first, second = tmp_path / "ttyMETER", tmp_path / "ttyBRIDGE"
    log = tmp_path / "socat.log"
    with log.open("wb") as sink:
        proc = await asyncio.create_subprocess_exec(
            SOCAT, "-d", "-d",
            f"pty,raw,echo=0,link={first}", f"pty,raw,echo=0,link={second}",
            env=child_env(), stdin=asyncio.subprocess.DEVNULL, stdout=sink, stderr=sink,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + timeout_s
        while not (first.exists() and second.exists()):
            if proc.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError(f"socat made no PTY pair: {log.read_text(errors='replace')}")
            await asyncio.sleep(0.02)
        yield first, second
    finally:
        await stop_process(proc)
