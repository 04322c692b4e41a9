"""The charge-point-level choices of reservations, pure: ReserveNow's answer and connector
(reserve_target), and where a remote start goes while connectors are reserved."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bridge.core.charge_point import ConnectorView, remote_start_target, reserve_target
from bridge.core.connector import Reservation, Status

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
FREE = ConnectorView(Status.AVAILABLE, False)
CHARGING = ConnectorView(Status.CHARGING, True)
PREPARING = ConnectorView(Status.PREPARING, False)
FAULTED = ConnectorView(Status.FAULTED, False)
UNAVAILABLE = ConnectorView(Status.UNAVAILABLE, False)


def reserved(rid: int = 1, tag: str = "OWNER", parent: str | None = None) -> ConnectorView:
    return ConnectorView(Status.RESERVED, False, Reservation(rid, tag, parent, T0 + timedelta(hours=1), 1))


@pytest.mark.parametrize(
    ("view", "answer"),
    [
        (FREE, "Accepted"),
        (CHARGING, "Occupied"),
        (PREPARING, "Occupied"),  # a car plugged in without a session
        (ConnectorView(Status.FINISHING, False), "Occupied"),
        (reserved(rid=2), "Occupied"),  # reserved under another id, whatever the tag
        (reserved(rid=1), "Accepted"),  # the same id: replaced
        (FAULTED, "Faulted"),
        (UNAVAILABLE, "Unavailable"),
    ],
)
def test_reserve_now_on_a_connector(view: ConnectorView, answer: str) -> None:
    got = reserve_target(1, 1, {1: view}, operative=True, zero_supported=True)
    assert got == (answer, 1 if answer == "Accepted" else None)


def test_an_unknown_connector_is_rejected() -> None:
    assert reserve_target(3, 1, {1: FREE, 2: FREE}, operative=True, zero_supported=True) == ("Rejected", None)


@pytest.mark.parametrize(
    ("connectors", "operative", "zero", "expected"),
    [
        ({1: FREE, 2: FREE}, True, False, ("Rejected", None)),  # ReserveConnectorZeroSupported false
        ({1: FREE, 2: FREE}, False, True, ("Unavailable", None)),  # the charge point Inoperative (TC_050_3)
        ({1: CHARGING, 2: FREE}, True, True, ("Accepted", 2)),  # the first free one
        ({1: FREE, 2: FREE}, True, True, ("Accepted", 1)),
        ({1: CHARGING, 2: reserved(rid=9)}, True, True, ("Occupied", None)),
        ({1: FAULTED, 2: FAULTED}, True, True, ("Faulted", None)),
        ({1: UNAVAILABLE, 2: UNAVAILABLE}, True, True, ("Unavailable", None)),
        ({1: FAULTED, 2: UNAVAILABLE}, True, True, ("Occupied", None)),
        ({1: FREE, 2: reserved(rid=1)}, True, True, ("Accepted", 2)),  # the same id stays where it is
    ],
)
def test_reserve_now_on_connector_zero(
    connectors: dict[int, ConnectorView], operative: bool, zero: bool, expected: tuple[str, int | None]
) -> None:
    assert reserve_target(0, 1, connectors, operative=operative, zero_supported=zero) == expected


def test_the_same_id_asked_for_another_connector_goes_there_if_it_is_free() -> None:
    connectors = {1: reserved(rid=1), 2: FREE}
    assert reserve_target(2, 1, connectors, operative=True, zero_supported=True) == ("Accepted", 2)


@pytest.mark.parametrize(
    ("connector_id", "tag", "parent", "expected"),
    [
        (1, "OWNER", None, 1),
        (1, "owner", None, 1),  # idTags compare case-insensitively
        (1, "OTHER", None, None),  # another tag on the reserved connector: Rejected
        (1, "MEMBER", "FLEET", 1),  # of the reservation's group
        (1, "MEMBER", "ELSEWHERE", None),
        (None, "OWNER", None, 1),  # without a connectorId: its reserved connector first
        (None, "OTHER", None, 2),  # anyone else: the free one
        (2, "OWNER", None, 2),
    ],
)
def test_remote_start_with_a_reserved_connector(
    connector_id: int | None, tag: str, parent: str | None, expected: int | None
) -> None:
    connectors = {1: reserved(tag="OWNER", parent="FLEET"), 2: FREE}
    assert remote_start_target(connector_id, connectors, tag, parent) == expected


def test_remote_start_never_takes_a_reserved_connector_for_another_tag() -> None:
    connectors = {1: reserved(tag="OWNER"), 2: CHARGING}
    assert remote_start_target(None, connectors, "OTHER") is None
    assert remote_start_target(1, connectors, None) is None  # no tag known: not for the reservation
