"""A flag tasks wait on: asyncio.Event's set / clear / is_set / wait, without its deque.

An asyncio.Event holds a deque from birth (0.6 KiB), and a charge point has eight of them, nearly always
idle: at 5,000 charge points that was 24 MiB of empty deques. A Flag holds a future only while a task
waits on it.
"""

from __future__ import annotations

import asyncio


class Flag:
    __slots__ = ("_value", "_waiters")

    def __init__(self) -> None:
        self._value = False
        self._waiters: list[asyncio.Future[None]] | None = None  # only while someone waits

    def is_set(self) -> bool:
        return self._value

    def set(self) -> None:
        """Set it and wake every waiter (each wakes even if the flag is cleared again before it runs)."""
        if self._value:
            return
        self._value = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._value = False

    async def wait_at_most(self, timeout_s: float | None) -> bool:
        """Until it is set or `timeout_s` has passed (None: no limit); whether it is set.

        One future and one timer per wait: no task (as asyncio.wait_for(event.wait(), ...) makes on
        Python 3.11) and no timeout context (asyncio.timeout: a cancellation, its uncancel and a
        reschedule; ~45,000 waits in a boot of 5,000 charge points)."""
        if self._value:
            return True
        if timeout_s is None:
            return await self.wait()
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        timer = waiter.get_loop().call_later(timeout_s, _time_up, waiter)
        try:
            await self._wait_on(waiter)
        finally:
            timer.cancel()
        return self._value

    async def wait(self) -> bool:
        """Until it is set (at once if it is); True, as asyncio.Event.wait."""
        if self._value:
            return True
        await self._wait_on(asyncio.get_running_loop().create_future())
        return True

    async def _wait_on(self, waiter: asyncio.Future[None]) -> None:
        """Until `waiter` is done: by set(), or by the timer of wait_at_most."""
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            # Cancelled or timed out: forget it. Woken by set(): set() already let go of the list.
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)
                if not self._waiters:
                    self._waiters = None


def _time_up(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
