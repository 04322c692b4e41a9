"""The charge point's clock follows the central system's time, but not the wait of an answer."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest

from bridge.clock import Clock, corrected_offset
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem

MS = 0.001


@pytest.mark.parametrize(
    ("central", "resolution", "kept"),
    [
        (100.0, MS, True),  # read at the moment we asked
        (100.4, MS, True),  # while the answer waited
        (100.5, MS, True),  # as we read it
        (100.6, MS, False),  # later than anything in the window: we are behind
        (99.0, MS, False),  # earlier: we are ahead
        (99.5, 1.0, True),  # whole seconds: 99.5 may be up to 100.5, inside
        (98.9, 1.0, False),  # ... but 98.9 is at most 99.9, before we asked
    ],
)
def test_an_answer_within_the_window_keeps_the_clock_one_outside_corrects_it(
    central: float, resolution: float, kept: bool
) -> None:
    offset = corrected_offset(0.0, central, resolution, asked=100.0, answered=100.5)
    if kept:
        assert offset == 0.0
    else:  # the window's middle
        assert offset == pytest.approx(central + resolution / 2 - 100.25)


def test_the_offset_already_in_force_is_what_the_window_is_judged_with() -> None:
    # A clock corrected by an hour before: the next answer an hour ahead agrees with it.
    assert corrected_offset(3600.0, 3700.2, MS, asked=100.0, answered=100.5) == 3600.0
    assert corrected_offset(3600.0, 100.2, MS, asked=100.0, answered=100.5) == pytest.approx(-0.0495)


def test_a_wrong_date_is_corrected_and_bad_values_are_ignored() -> None:
    clock = Clock()
    asked = clock.wall()
    clock.sync("2030-01-01T00:00:00Z", asked)
    assert abs(clock.now().timestamp() - datetime.fromisoformat("2030-01-01T00:00:00+00:00").timestamp()) < 2
    before = clock.offset_s
    clock.sync("not a time", clock.wall())
    assert clock.offset_s == before


def stamp_lag(payload: dict[str, object]) -> float:
    """How far behind the real time the charge point's timestamp was when it arrived."""
    sent = datetime.fromisoformat(str(payload["timestamp"]).replace("Z", "+00:00")).timestamp()
    return time.time() - sent


async def test_a_boot_answer_handled_late_does_not_set_the_clock_back(tmp_path: Path) -> None:
    async with StrictCentralSystem() as cs:
        cs.answer_delay["BootNotification"] = 1.5  # its time is read, then it answers 1.5 s later
        async with running(make_config(cs.url, tmp_path)):
            status = await cs.wait_for_call("CP-1", "StatusNotification", timeout=10)
            # Adopting the answer's time as "now" put every timestamp 1.5 s in the past.
            assert stamp_lag(status) < 0.5


async def test_a_central_system_an_hour_ahead_is_followed(tmp_path: Path) -> None:
    async with StrictCentralSystem() as cs:
        cs.clock_offset_s = 3600.0
        async with running(make_config(cs.url, tmp_path)):
            status = await cs.wait_for_call("CP-1", "StatusNotification", timeout=10)
            assert stamp_lag(status) == pytest.approx(-3600.0, abs=0.5)
