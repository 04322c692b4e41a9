"""The pure charge-point-level choices (bridge.core.charge_point), row by row."""

from __future__ import annotations

import pytest

from bridge.core.charge_point import ChargePointCore, ConnectorView, remote_start_target
from bridge.core.connector import Status

FREE, WAITING = ConnectorView(Status.AVAILABLE, False), ConnectorView(Status.PREPARING, False)
BUSY = ConnectorView(Status.CHARGING, True)
DOWN = ConnectorView(Status.UNAVAILABLE, False)


@pytest.mark.parametrize(
    ("asked", "connectors", "target"),
    [
        (1, {1: FREE}, 1),
        (1, {1: WAITING}, 1),
        (1, {1: BUSY}, None),  # a transaction runs there
        (1, {1: DOWN}, None),
        (3, {1: FREE, 2: FREE}, None),  # no such connector
        (None, {1: FREE, 2: WAITING}, 2),  # where a car waits comes first
        (None, {1: BUSY, 2: FREE, 3: FREE}, 2),  # else the first free one
        (None, {1: BUSY, 2: DOWN}, None),
    ],
)
def test_where_a_remote_start_goes(
    asked: int | None, connectors: dict[int, ConnectorView], target: int | None
) -> None:
    assert remote_start_target(asked, connectors) == target


def test_connector_0_stands_for_the_whole_charge_point() -> None:
    whole = ChargePointCore((1, 2))
    assert whole.availability_targets(0) == (1, 2)
    assert whole.availability_targets(2) == (2,)
    assert whole.availability_targets(3) is None
    assert whole.status().status is Status.AVAILABLE
    answer, stored = whole.change_availability(0, False, ["Accepted", "Scheduled"])
    assert answer == "Scheduled" and stored == {1: False, 2: False, 0: False}
    assert whole.status().status is Status.UNAVAILABLE
    answer, stored = whole.change_availability(2, True, ["Accepted"])
    assert answer == "Accepted" and stored == {2: True}
    assert not whole.operative  # a single connector does not change connector 0
