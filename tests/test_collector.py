"""bridge.collector, and when the daemon pauses and freezes the garbage collector."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import pytest

from bridge import collector
from bridge import daemon as daemon_module
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.helpers.parts import until
from tests.processes import dead_port


def test_paused_restores_what_was_before() -> None:
    assert gc.isenabled()
    with collector.paused():
        assert not gc.isenabled()
        with collector.paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner one restores "disabled"
    assert gc.isenabled()


def test_a_pause_ends_once_and_restores_the_collector() -> None:
    pause = collector.Pause()
    assert not gc.isenabled()
    pause.end()
    assert gc.isenabled()
    gc.disable()
    pause.end()  # twice: does not touch it again
    assert not gc.isenabled()
    gc.enable()


def test_what_stays_is_frozen_and_given_back() -> None:
    try:
        collector.freeze_what_stays()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
    assert gc.get_freeze_count() == 0


async def test_the_daemon_collects_again_once_every_charge_point_booted_and_unfreezes_at_the_end(
    tmp_path: Path,
) -> None:
    async with StrictCentralSystem() as cs:
        async with running(make_config(cs.url, tmp_path, cp_ids=("CP-1", "CP-2"))) as daemon:
            for cp_id in ("CP-1", "CP-2"):
                await cs.wait_for_call(cp_id, "StatusNotification", lambda p: p["connectorId"] == 1)
            await until(gc.isenabled, "collecting again once both booted", timeout_s=5)
            assert gc.get_freeze_count() > 0  # what the charge points hold for their life
            assert all(cp.session.online for cp in daemon.charge_points.values())
        assert gc.isenabled() and gc.get_freeze_count() == 0


async def test_the_collection_waits_until_the_statuses_after_the_boots_are_answered(tmp_path: Path) -> None:
    async with StrictCentralSystem() as cs:
        cs.answer_delay["StatusNotification"] = 2.0  # a central system slow to answer them
        async with running(make_config(cs.url, tmp_path)) as daemon:
            await cs.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 0)
            assert daemon.charge_points["CP-1"].session.online
            await asyncio.sleep(1.5)  # a supervisor tick or more: booted, but its statuses not answered
            assert not gc.isenabled()
            await until(gc.isenabled, "collecting again once the statuses are answered", timeout_s=8)


async def test_a_central_system_that_is_away_does_not_keep_the_collector_paused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(daemon_module, "BOOT_PAUSE_S", 0.5)
    config = make_config(f"ws://127.0.0.1:{dead_port()}/ocpp", tmp_path)  # nothing listens there
    async with running(config) as daemon:
        await until(gc.isenabled, "collecting again after BOOT_PAUSE_S", timeout_s=5)
        assert not any(cp.session.online for cp in daemon.charge_points.values())
