"""bridge.runtime.ticker: one timer per period for every member, members spread over the period."""

from __future__ import annotations

import asyncio
import itertools

from bridge.runtime.ticker import Ticker, ticker_for


async def test_every_member_is_woken_once_a_period_spread_over_it() -> None:
    ticker = Ticker(0.5)  # ten slots of 50 ms
    loop = asyncio.get_running_loop()
    woken: dict[int, list[float]] = {n: [] for n in range(10)}
    members = [lambda n=n: woken[n].append(loop.time()) for n in range(10)]
    start = loop.time()
    for member in members:
        ticker.join(member)
    await asyncio.sleep(1.26)
    for member in members:
        ticker.leave(member)
    assert all(len(times) in (2, 3) for times in woken.values()), woken  # once a period
    firsts = sorted(times[0] - start for times in woken.values())
    assert firsts[0] < 0.1 and firsts[-1] > 0.4  # spread over the period, not all at once
    for times in woken.values():
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert all(0.4 < gap < 0.65 for gap in gaps), gaps


async def test_a_member_that_left_is_not_woken_and_an_empty_ticker_holds_no_timer() -> None:
    ticker = Ticker(0.1)
    calls: list[str] = []
    stays, goes = (lambda: calls.append("stays")), (lambda: calls.append("goes"))
    ticker.join(stays)
    ticker.join(goes)
    ticker.join(goes)  # twice: still one member
    assert len(ticker) == 2
    ticker.leave(goes)
    await asyncio.sleep(0.35)
    assert "goes" not in calls and 2 <= calls.count("stays") <= 4
    ticker.leave(stays)
    ticker.leave(stays)  # twice: no harm
    assert len(ticker) == 0
    settled = len(calls)
    await asyncio.sleep(0.25)
    assert len(calls) == settled


async def test_one_ticker_per_loop_and_period() -> None:
    assert ticker_for(1.0) is ticker_for(1.0)
    assert ticker_for(1.0) is not ticker_for(2.0)
