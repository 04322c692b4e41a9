"""Wiring and lifecycle: configuration → devices → charge points → local API.

Each charge point of the file gets its own websocket and session; they run
side by side and one failing device or central system never stops the
others. A stop (SIGTERM, SIGINT, or `stop()`) cancels everything and
closes connections and devices.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import itertools
import logging
import signal
from collections.abc import Callable

from adapters.base import Charger
from adapters.composed import MeteredCharger
from adapters.registry import charger_class, meter_class
from adapters.transports import Transports
from bridge.chargepoint import ChargePoint
from bridge.clock import Clock
from bridge.config import Config, ConnectorConfig
from bridge.store import Store

log = logging.getLogger("bridge.daemon")


def build_charger(connector: ConnectorConfig, transports: Transports) -> Charger:
    """The connector's charger driver, composed with its meter of record when one is configured."""
    cls = charger_class(connector.charger.type)
    charger: Charger = cls(connector.charger.options, transports)  # type: ignore[call-arg]
    if connector.meter is not None:
        meter = meter_class(connector.meter.type)(connector.meter.options, transports)  # type: ignore[call-arg]
        charger = MeteredCharger(charger, meter)
    return charger


class Daemon:
    def __init__(self, config: Config, clock: Clock | None = None) -> None:
        """Builds everything and opens the store (a few milliseconds of blocking file I/O: done
        before the daemon's work starts)."""
        self.config = config
        self.clock = clock or Clock()
        self.store = Store.open(config.state_dir)
        # One sequence for the whole database: local transaction ids are never reused.
        new_transaction_id = itertools.count(self.store.next_transaction_id()).__next__
        self.charge_points: dict[str, ChargePoint] = {}
        self.transports = Transports()
        for cp_cfg in config.charge_points:
            chargers = {c.id: build_charger(c, self.transports) for c in cp_cfg.connectors}
            self.charge_points[cp_cfg.id] = ChargePoint(
                cp_cfg, chargers, self.clock, self.store, new_transaction_id
            )
        self._stop = asyncio.Event()
        self.api_address: tuple[str, int] | None = None

    def stop(self) -> None:
        self._stop.set()

    async def run(self, on_ready: Callable[[], None] | None = None) -> None:
        try:
            await self._run(on_ready)
        finally:
            await asyncio.to_thread(self.store.close)

    async def _run(self, on_ready: Callable[[], None] | None) -> None:
        # First of all, so that a stop asked for during start-up is a clean one.
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop)
        for cp in self.charge_points.values():
            await cp.restore()
        tasks = [asyncio.create_task(cp.run(), name=cp.cfg.id) for cp in self.charge_points.values()]
        runner = None
        if self.config.api.listen is not None:
            # aiohttp takes ~0.1 s to import: done in a thread so that the sessions,
            # already connecting, are not held up by it.
            api = await asyncio.to_thread(importlib.import_module, "bridge.api.server")
            runner, self.api_address = await api.start_api(self, *self.config.api.listen)
            log.info("local API on http://%s:%d", *self.api_address)
        if on_ready is not None:
            on_ready()
        try:
            waiter = asyncio.create_task(self._stop.wait())
            done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not waiter and task.exception() is not None:
                    log.error("charge point %s stopped: %r", task.get_name(), task.exception())
        finally:
            log.info("stopping")
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
            for cp in self.charge_points.values():
                with contextlib.suppress(Exception):
                    await cp.session.close()
            for task in [*tasks, waiter]:
                task.cancel()
            await asyncio.gather(*tasks, waiter, return_exceptions=True)
            if runner is not None:
                await runner.cleanup()
            for cp in self.charge_points.values():
                for rt in cp.connectors.values():
                    with contextlib.suppress(Exception):
                        await rt.charger.close()
            with contextlib.suppress(Exception):
                await self.transports.close()
