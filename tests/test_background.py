"""bridge.runtime.background: tasks kept until done, failures logged, all cancelled at the stop."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest

from bridge.runtime.background import Background


async def test_a_spawned_task_runs_to_its_end_without_a_reference_of_the_caller() -> None:
    background = Background("CP-1")
    done = asyncio.Event()

    async def work() -> None:
        await asyncio.sleep(0.01)
        done.set()

    background.spawn(work(), "work")  # the caller keeps nothing
    gc.collect()
    await asyncio.wait_for(done.wait(), 1)


async def test_a_failure_is_logged_with_the_task_named(caplog: pytest.LogCaptureFixture) -> None:
    background = Background("CP-1")

    async def fails() -> None:
        raise RuntimeError("disk full")

    with caplog.at_level(logging.ERROR, logger="bridge.chargepoint"):
        task = background.spawn(fails(), "save HeartbeatInterval")
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.sleep(0)
    assert task.get_name() == "CP-1/save HeartbeatInterval"
    assert "CP-1/save HeartbeatInterval failed" in caplog.text and "disk full" in caplog.text


async def test_cancel_all_ends_what_still_runs() -> None:
    background = Background("CP-1")
    tasks = [background.spawn(asyncio.sleep(3600), f"wait {n}") for n in range(3)]
    await asyncio.sleep(0)
    await asyncio.wait_for(background.cancel_all(), 1)
    assert all(t.cancelled() for t in tasks)
    await background.cancel_all()  # nothing left: no harm
