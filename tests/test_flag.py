"""bridge.flag.Flag: asyncio.Event's behaviour, as the parts that wait on it rely on."""

from __future__ import annotations

import asyncio

from bridge.flag import Flag


async def test_set_wakes_every_waiter_even_when_cleared_before_they_run() -> None:
    flag = Flag()
    waiters = [asyncio.create_task(flag.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    flag.set()
    flag.clear()  # as asyncio.Event: a waiter already woken stays woken
    assert await asyncio.wait_for(asyncio.gather(*waiters), 1) == [True, True, True]
    assert not flag.is_set()


async def test_a_set_flag_is_passed_at_once_and_stays_set_until_cleared() -> None:
    flag = Flag()
    flag.set()
    flag.set()  # twice: no harm
    assert await flag.wait() and await flag.wait_at_most(0) and flag.is_set()
    flag.clear()
    assert not flag.is_set()


async def test_wait_at_most_says_whether_it_was_set() -> None:
    flag = Flag()
    loop = asyncio.get_running_loop()
    began = loop.time()
    assert await flag.wait_at_most(0.05) is False
    assert loop.time() - began >= 0.04
    loop.call_later(0.01, flag.set)
    assert await flag.wait_at_most(5) is True
    assert loop.time() - began < 1


async def test_a_cancelled_waiter_is_forgotten_and_the_others_still_woken() -> None:
    flag = Flag()
    for _ in range(100):  # timeouts one after another, as a poll loop does
        assert not await flag.wait_at_most(0)
    cancelled = asyncio.create_task(flag.wait())
    kept = asyncio.create_task(flag.wait())
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.gather(cancelled, return_exceptions=True)
    flag.set()
    assert await asyncio.wait_for(kept, 1) is True
    assert cancelled.cancelled()


async def test_a_timed_wait_cancelled_raises_and_leaves_no_timer_behind() -> None:
    flag = Flag()
    loop = asyncio.get_running_loop()
    errors: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    waiting = asyncio.create_task(flag.wait_at_most(0.02))
    await asyncio.sleep(0)
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    assert waiting.cancelled()
    await asyncio.sleep(0.05)  # past the cancelled wait's time: its timer must not act
    assert errors == []
    # The flag works on: a timed wait woken by set() returns at once, well before its time.
    began = loop.time()
    loop.call_soon(flag.set)
    assert await flag.wait_at_most(10) is True
    assert loop.time() - began < 1
