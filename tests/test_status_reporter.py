"""Status reporting (bridge.runtime.status_reporter): only changes, held statuses, (re)boots, triggers.

Real: the reporter, the configuration keys, the connector cores whose statuses are reported (fed real
readings) and connector 0's charge-point core. Stand-in: the link (`Link` of tests/helpers/parts.py)
keeps the StatusNotifications submitted and sends them when the test says (reported means delivered:
a status is marked as reported when the link builds it); going offline drops them as the session
does. The real link is exercised in test_session_flow, test_offline and test_status_hold. Time: a
SteeredClock, so that a MinimumStatusDuration hold (an asyncio timer) ends when the test moves time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from ocpp.v16 import call

from adapters.base import ChargerReading, DeviceFault
from bridge.clock import iso
from bridge.core.charge_point import ChargePointCore
from bridge.core.connector import Connector, StatusReport
from bridge.runtime.status_reporter import StatusReporter
from tests.helpers.parts import CP_ID, Link, SteeredClock, configuration, turns

FREE = ChargerReading(plugged=False, ev_requesting=False, energy_allowed=False)
PLUGGED = ChargerReading(plugged=True, ev_requesting=True, energy_allowed=False)
FAULTED = ChargerReading(plugged=False, ev_requesting=False, energy_allowed=False,
                         fault=DeviceFault("GroundFailure"))  # fmt: skip


@pytest.fixture
async def clock() -> AsyncIterator[SteeredClock]:
    steered = SteeredClock(datetime(2026, 1, 1, 12, tzinfo=UTC))
    yield steered
    steered.release()


class Board:
    """A charge point's statuses as the reporter sees them: connector 0 and two connectors."""

    def __init__(self, clock: SteeredClock, online: bool = True, **keys: int) -> None:
        self.clock = clock
        self.link = Link(online=online)
        self.whole = ChargePointCore((1, 2))
        self.cores = {cid: Connector(cid) for cid in (1, 2)}
        for core in self.cores.values():
            core.on_reading(FREE, clock.now(), False)
        self.reporter = StatusReporter(
            CP_ID, (1, 2), self.current, self.link, configuration(2, **keys), clock
        )

    def current(self, cid: int) -> StatusReport:
        return self.whole.status() if cid == 0 else self.cores[cid].status()

    def read(self, cid: int, reading: ChargerReading) -> None:
        """A reading of connector `cid`, then (as after every batch of effects) its status reported."""
        self.cores[cid].on_reading(reading, self.clock.now(), False)
        self.reporter.report(cid)

    def connect(self, new_boot: bool) -> list[tuple[int, str]]:
        """The link is up (after a BootNotification Accepted when `new_boot`); what is sent."""
        self.link.online = True
        if new_boot:
            self.link.boot_generation += 1
        self.reporter.on_online(True)
        return self.sent()

    def disconnect(self) -> None:
        self.link.drop()
        self.reporter.on_online(False)

    def sent(self) -> list[tuple[int, str]]:
        return [(m.connector_id, m.status) for m in self.link.send()]


async def test_only_changes_are_sent(clock: SteeredClock) -> None:
    board = Board(clock, online=False)
    assert board.connect(new_boot=True) == [(0, "Available"), (1, "Available"), (2, "Available")]
    board.reporter.report(1)
    board.reporter.report_all()
    assert board.sent() == []  # nothing changed
    board.read(1, PLUGGED)
    board.read(1, PLUGGED)
    board.reporter.report_all()
    assert board.sent() == [(1, "Preparing")]  # once


async def test_settled_says_when_a_report_would_send_nothing(clock: SteeredClock) -> None:
    board = Board(clock, online=False, MinimumStatusDuration=5)
    board.cores[1].on_reading(PLUGGED, clock.now(), False)
    assert board.reporter.settled(1)  # offline: nothing is sent whatever the status
    board.connect(new_boot=True)
    assert board.reporter.settled(1) and board.reporter.settled(2)
    board.cores[1].on_reading(FREE, clock.now(), False)
    assert not board.reporter.settled(1)  # Available is not what the link has
    board.reporter.report(1)
    assert not board.reporter.settled(1)  # held: the hold is still to decide
    clock.advance(5)
    await turns()
    assert board.sent() == [(1, "Available")] and board.reporter.settled(1)


async def test_what_is_sent_is_a_StatusNotification_of_now(clock: SteeredClock) -> None:
    board = Board(clock)
    board.read(2, FAULTED)
    [message] = board.link.send()
    assert message == call.StatusNotification(
        connector_id=2, error_code="GroundFailure", status="Faulted", timestamp=iso(clock.now())
    )


async def test_a_status_is_held_for_MinimumStatusDuration_then_sent_if_it_still_stands(
    clock: SteeredClock,
) -> None:
    board = Board(clock, online=False, MinimumStatusDuration=5)
    board.connect(new_boot=True)
    board.read(1, PLUGGED)
    clock.advance(4)
    await turns()
    assert board.sent() == []  # held
    clock.advance(1)
    await turns()
    assert board.sent() == [(1, "Preparing")]  # it lasted: sent when the hold ended, not later

    board.read(1, FREE)  # a cable wiggled out ...
    clock.advance(2)
    await turns()
    board.read(1, PLUGGED)  # ... and in again within the hold
    clock.advance(10)
    await turns()
    assert board.sent() == []  # Available never stood long enough; Preparing was told already


async def test_a_fault_is_not_held(clock: SteeredClock) -> None:
    board = Board(clock, online=False, MinimumStatusDuration=60)
    board.connect(new_boot=True)
    board.read(1, FAULTED)
    assert board.sent() == [(1, "Faulted")]


async def test_a_new_boot_resends_everything_a_reconnect_only_what_changed(clock: SteeredClock) -> None:
    board = Board(clock, online=False)
    board.connect(new_boot=True)
    board.disconnect()
    board.read(2, PLUGGED)  # offline: not sent, and not replayed as a transition later
    assert board.link.pending == []
    assert board.connect(new_boot=False) == [(2, "Preparing")]
    board.disconnect()
    assert board.connect(new_boot=True) == [(0, "Available"), (1, "Available"), (2, "Preparing")]


async def test_a_status_lost_with_the_connection_is_sent_after_the_reconnect(clock: SteeredClock) -> None:
    """Reported means delivered: a status handed to the link but dropped with it counts as not sent."""
    board = Board(clock, online=False)
    board.connect(new_boot=True)
    board.read(1, PLUGGED)
    board.disconnect()  # dropped before it was sent
    assert board.connect(new_boot=False) == [(1, "Preparing")]


async def test_a_triggered_status_counts_as_reported(clock: SteeredClock) -> None:
    board = Board(clock, online=False, MinimumStatusDuration=5)
    board.connect(new_boot=True)
    board.read(1, PLUGGED)  # held ...
    message = board.reporter.triggered(1)  # ... and asked for by TriggerMessage meanwhile
    assert (message.connector_id, message.status) == (1, "Preparing")
    clock.advance(5)
    await turns()
    assert board.sent() == []  # not a second time when the hold ends
    board.disconnect()
    assert board.connect(new_boot=False) == []  # nor after a reconnect


async def test_connector_0_is_the_charge_point_as_a_whole(clock: SteeredClock) -> None:
    board = Board(clock, online=False)
    board.connect(new_boot=True)
    board.whole.operative = False
    board.reporter.report_all()
    assert board.sent() == [(0, "Unavailable")]
