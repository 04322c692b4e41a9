"""MinimumStatusDuration: short statuses are not reported, lasting ones are, Faulted at once."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bridge.core.connector import Status, StatusReport
from bridge.core.status_hold import StatusHold
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.helpers.flow import ready, sim_of, statuses

PREPARING = StatusReport(Status.PREPARING)
AVAILABLE = StatusReport(Status.AVAILABLE)


def test_a_status_is_held_until_it_has_lasted_the_minimum() -> None:
    hold = StatusHold()
    assert hold.decide(PREPARING, 100.0, 5) == 5.0
    assert hold.decide(PREPARING, 103.0, 5) == 2.0  # the same status: the clock keeps running
    assert hold.decide(PREPARING, 105.0, 5) is None


def test_a_new_status_starts_the_hold_again() -> None:
    hold = StatusHold()
    hold.decide(PREPARING, 100.0, 5)
    assert hold.decide(AVAILABLE, 104.0, 5) == 5.0


def test_no_minimum_and_faulted_are_reported_at_once() -> None:
    assert StatusHold().decide(PREPARING, 0.0, 0) is None
    assert StatusHold().decide(StatusReport(Status.FAULTED, "GroundFailure"), 0.0, 60) is None


async def test_a_short_status_is_never_reported_and_a_lasting_one_is(
    csms: StrictCentralSystem, tmp_path: Any
) -> None:
    config = make_config(csms.url, tmp_path, ocpp={"MinimumStatusDuration": 1})
    async with running(config) as daemon:
        await ready(csms)
        sim = sim_of(daemon)
        connector = daemon.charge_points["CP-1"].connectors[1].core
        sim.plug()
        await csms.wait_until(lambda: connector.status().status is Status.PREPARING)
        await asyncio.sleep(0.3)  # seen and held
        sim.unplug()  # back to what was reported before a second passed
        await asyncio.sleep(1.5)
        assert statuses(csms) == ["Available"]  # the short Preparing was never reported
        sim.plug()
        began = time.monotonic()
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Preparing")
        waited = time.monotonic() - began
    assert statuses(csms) == ["Available", "Preparing"]
    assert 0.8 <= waited < 3.0
