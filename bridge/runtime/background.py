"""A charge point's background tasks: each referenced until it is done (asyncio keeps only a weak
reference), each failure logged (nobody awaits them), and all cancelled together at the stop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger("bridge.chargepoint")


class Background:
    def __init__(self, owner: str) -> None:
        self._owner = owner  # "CP-1": prefixes task names and log lines
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Coroutine[Any, Any, None], what: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro, name=f"{self._owner}/{what}")
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("%s/%s failed", self._owner, what, exc_info=t.exception())

        task.add_done_callback(done)
        return task

    async def cancel_all(self) -> None:
        """Cancel what still runs and wait until it has ended."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
