"""Shared fixtures: a strict central system, and the daemon running in-process."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import yaml

from adapters.transports.pool import Transports
from bridge.clock import Clock
from bridge.config import Config, parse_config
from bridge.daemon import Daemon
from bridge.store import Store
from tests.csms import StrictCentralSystem
from tests.helpers.parts import Tasks

# Intervals small enough for tests, large enough not to race on a loaded 2-core machine.
FAST_OCPP = {"MessageTimeout": 5, "WebSocketPingInterval": 0}


# Daemons run in-process here: were pytest itself started by a Type=notify unit, they must not
# tell that unit's systemd they are ready or stopping.
for _name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
    os.environ.pop(_name, None)


def make_config(
    csms_url: str,
    tmp_path: Any,
    *,
    cp_ids: tuple[str, ...] = ("CP-1",),
    connectors: int = 1,
    ocpp: dict[str, Any] | None = None,
    api: str | None = None,
    charger: dict[str, Any] | None = None,
    meter: dict[str, Any] | None = None,
    connector_fields: dict[str, Any] | None = None,
    **cp_fields: Any,
) -> Config:
    """A configuration built through the real loader, as a user's file would be."""
    doc = {
        "state_dir": str(tmp_path / "state"),
        "api": {"listen": api},
        "charge_points": [
            {
                "id": cp_id,
                "csms_url": csms_url,
                "reconnect": {"initial_s": 0.2, "max_s": 1.0},
                "ocpp": {**FAST_OCPP, **(ocpp or {})},
                "connectors": [
                    {
                        "id": n,
                        "charger": {"type": "simulated", **(charger or {})},
                        **({"meter": meter} if meter else {}),
                        **(connector_fields or {}),
                    }
                    for n in range(1, connectors + 1)
                ],
                **cp_fields,
            }
            for cp_id in cp_ids
        ],
    }
    return parse_config(yaml.safe_dump(doc), "test.yaml")


@contextlib.asynccontextmanager
async def running(config: Config, clock: Clock | None = None) -> AsyncIterator[Daemon]:
    """The daemon, started in this event loop and stopped (with every task) on exit; `clock`: one
    the test moves (Clock.move)."""
    daemon = Daemon(config, clock)
    ready = asyncio.Event()
    task = asyncio.create_task(daemon.run(on_ready=ready.set))
    await asyncio.wait([task, asyncio.create_task(ready.wait())], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()
    try:
        yield daemon
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 10)


@pytest.fixture
def state(tmp_path: Any) -> Any:
    """The state_dir `store` opens (the test's temporary directory's `state`)."""
    return tmp_path / "state"


@pytest.fixture
async def transports() -> AsyncIterator[Transports]:
    """The drivers' shared connections (HTTP session, MQTT brokers, Modbus buses), closed after."""
    pool = Transports()
    yield pool
    await pool.close()


@pytest.fixture
async def csms() -> AsyncIterator[StrictCentralSystem]:
    async with StrictCentralSystem() as cs:
        yield cs
        cs.assert_clean()


@pytest.fixture
async def broker(tmp_path: Any) -> AsyncIterator[Any]:
    """A real mosquitto broker on a free loopback port (tests.mosquitto.Broker)."""
    from tests.mosquitto import mosquitto

    async with mosquitto(tmp_path) as b:
        yield b


@pytest.fixture
def store(tmp_path: Any) -> Iterator[Store]:
    """A real store in the test's own state directory, closed after."""
    opened = Store.open(tmp_path / "state")
    yield opened
    opened.close()


@pytest.fixture
async def tasks() -> AsyncIterator[Tasks]:
    """The charge point's spawn, for a part tested alone: what still runs is cancelled after, and a
    background task that crashed fails the test."""
    spawned = Tasks()
    yield spawned
    await spawned.close()
