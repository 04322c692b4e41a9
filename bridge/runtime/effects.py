"""Carrying out one connector's core decisions, in the order they were taken.

Effects are queued the moment they are decided (`apply` is synchronous) and one worker per connector
carries them out in that order. Ordering by a lock alone is not enough: a decision taken in one task
and carried out in another could be overtaken by a later one (a stop persisted before its start).
`lock` is held while a batch is carried out; the meter sampler writes under it too, so a MeterValues
is never queued between a StopTransaction's decision and its persisting.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any

from bridge.core.connector import Effect

log = logging.getLogger("bridge.chargepoint")

Spawn = Callable[[Coroutine[Any, Any, None], str], asyncio.Task[None]]


class EffectRunner:
    def __init__(
        self,
        name: str,
        execute: Callable[[Effect], Awaitable[None]],
        after_batch: Callable[[], None],
        spawn: Spawn,
    ) -> None:
        self._name = name
        self._execute = execute
        self._after_batch = after_batch  # e.g. report the status the batch led to
        self._spawn = spawn
        self.lock = asyncio.Lock()
        self._pending: deque[tuple[list[Effect], asyncio.Future[None]]] = deque()
        self._worker: asyncio.Task[None] | None = None

    def apply(self, effects: Iterable[Effect]) -> asyncio.Future[None]:
        """Queue `effects`; await the result to wait until they (and all before them) are carried out."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((list(effects), done))
        if self._worker is None or self._worker.done():
            self._worker = self._spawn(self._carry_out(), f"{self._name}: effects")
        return done

    async def drain(self, timeout_s: float) -> bool:
        """Wait (at most `timeout_s`) until what was decided has been carried out; True if it has.

        A graceful stop waits for this before cancelling: a stop decided but not yet persisted would
        otherwise be lost, and the next start would end that transaction with PowerLoss."""
        worker = self._worker
        if worker is None or worker.done():
            return True
        await asyncio.wait({worker}, timeout=timeout_s)
        return worker.done()

    async def _carry_out(self) -> None:
        while self._pending:
            effects, done = self._pending.popleft()
            try:
                async with self.lock:
                    for effect in effects:
                        await self._execute(effect)
                    self._after_batch()
            except Exception:
                log.exception("%s: carrying out %s failed", self._name, effects)
            finally:
                if not done.done():
                    done.set_result(None)
