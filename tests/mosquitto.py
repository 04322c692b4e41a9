"""A real mosquitto broker on a free loopback port, for MQTT drivers and their emulators."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

from tests.processes import child_env, free_port, stop_process

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


class Broker:
    def __init__(self, port: int, proc: asyncio.subprocess.Process, log: Path) -> None:
        self.port = port
        self.url = f"mqtt://127.0.0.1:{port}"
        self.proc = proc
        self.log = log

    async def stop(self) -> None:
        """Stops the broker (tests of a broker outage); `restart()` brings it back on the same port."""
        await stop_process(self.proc)

    async def restart(self) -> None:
        await self.stop()
        self.proc = await _spawn(self.port, self.log)
        await _wait_listening(self.port)


async def _spawn(port: int, log: Path) -> asyncio.subprocess.Process:
    conf = log.with_suffix(".conf")
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    with log.open("ab") as sink:
        return await asyncio.create_subprocess_exec(
            MOSQUITTO, "-c", str(conf), env=child_env(), stdin=asyncio.subprocess.DEVNULL,
            stdout=sink, stderr=sink,
        )  # fmt: skip


async def _wait_listening(port: int, timeout_s: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def mosquitto(tmp_path: Path) -> AsyncIterator[Broker]:
    port = free_port()
    log = tmp_path / f"mosquitto-{port}.log"
    proc = await _spawn(port, log)
    broker = Broker(port, proc, log)
    try:
        await _wait_listening(port)
        yield broker
    finally:
        await stop_process(broker.proc)
