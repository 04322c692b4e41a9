"""bridge.core.read_schedule, row by row: when a device's coordinator reads it."""

from __future__ import annotations

import pytest

from bridge.core.read_schedule import ReadSchedule, read_schedule

RETRY, FLOWING = 1.0, 5.0

ROWS = [
    # poll_interval_s, answering, flowing, due_in_s -> period, deadline
    pytest.param(2.0, True, False, (), 2.0, None, id="polled: its interval, nothing else"),
    pytest.param(2.0, False, True, (0.5,), 2.0, None, id="polled and failing: still its interval"),
    pytest.param(None, False, False, (), RETRY, None, id="reporting, not answering: retried"),
    pytest.param(None, False, True, (0.5,), RETRY, None, id="reporting, failing: retried, no deadline"),
    pytest.param(None, True, False, (), None, None, id="reporting, idle: only on its reports"),
    pytest.param(None, True, False, (None, None), None, None, id="reporting, nothing due"),
    pytest.param(None, True, True, (), FLOWING, None, id="reporting, energy flows: the flowing period"),
    pytest.param(None, True, False, (30.0, 8.0), None, 8.0, id="reporting: the nearest deadline"),
    pytest.param(None, True, True, (None, 3.0), FLOWING, 3.0, id="flowing and a deadline: both"),
    pytest.param(None, True, False, (-2.0,), None, 0.0, id="a deadline already past: read now"),
]


@pytest.mark.parametrize(("poll", "answering", "flowing", "due", "period", "deadline"), ROWS)
def test_each_row(
    poll: float | None,
    answering: bool,
    flowing: bool,
    due: tuple[float | None, ...],
    period: float | None,
    deadline: float | None,
) -> None:
    schedule = read_schedule(
        poll_interval_s=poll, answering=answering, flowing=flowing, due_in_s=due, retry_s=RETRY,
        flowing_s=FLOWING,
    )  # fmt: skip
    assert schedule == ReadSchedule(period, deadline)


@pytest.mark.parametrize(
    ("schedule", "wait"),
    [
        (ReadSchedule(None, None), None),
        (ReadSchedule(5.0, None), 5.0),
        (ReadSchedule(None, 3.0), 3.0),
        (ReadSchedule(5.0, 3.0), 3.0),
        (ReadSchedule(1.0, 3.0), 1.0),
    ],
)
def test_the_longest_wait_without_a_read(schedule: ReadSchedule, wait: float | None) -> None:
    assert schedule.wait_s == wait
