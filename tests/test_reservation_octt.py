"""Reservations end to end, one test per OCTT case (TC_046_1 ... TC_051): the strict central system
asks, the bridge answers, and the frames on the wire are asserted in order. The daemon runs
in-process with the simulated charger; expiries are reached by moving the clock, not by sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ocpp.v16 import call

from bridge.clock import Clock, iso
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.helpers.flow import ready, sim_of

WAIT_S = 5.0


def in_(hours: float, clock: Clock | None = None) -> str:
    return iso(datetime.now(UTC) + timedelta(seconds=clock.offset_s if clock else 0.0, hours=hours))


def wire(cs: StrictCentralSystem, *actions: str) -> list[str]:
    """CP-1's calls of these kinds, in order, as "Action" or "StatusNotification:<status>"."""
    return [
        f"{c['action']}:{c['status']}" if c["action"] == "StatusNotification" else c["action"]
        for c in cs.calls("CP-1")
        if c["action"] in actions
    ]


def statuses(cs: StrictCentralSystem, connector: int = 1) -> list[str]:
    return [p["status"] for p in cs.calls("CP-1", "StatusNotification") if p["connectorId"] == connector]


async def status_becomes(cs: StrictCentralSystem, status: str, connector: int = 1) -> None:
    await cs.wait_until(
        lambda: statuses(cs, connector) and statuses(cs, connector)[-1] == status, WAIT_S, status
    )


async def reserve(
    cs: StrictCentralSystem, connector: int, tag: str, rid: int, hours: float = 1.0, **more: Any
) -> str:
    request = call.ReserveNow(
        connector_id=connector, expiry_date=in_(hours), id_tag=tag, reservation_id=rid, **more
    )
    answer = await cs.call("CP-1", request)
    return str(answer.status)


async def test_tc_046_1_local_start_on_a_reserved_connector(
    csms: StrictCentralSystem, tmp_path: Path
) -> None:
    """Reserved for TAG-A: TAG-B is refused with no Authorize, TAG-A starts with the reservationId."""
    async with running(make_config(csms.url, tmp_path)) as daemon:
        await ready(csms)
        assert await reserve(csms, 1, "TAG-A", 46) == "Accepted"
        await status_becomes(csms, "Reserved")
        sim = sim_of(daemon)
        sim.tap("TAG-B")
        sim.plug()
        sim.tap("TAG-A")
        start = await csms.wait_for_call("CP-1", "StartTransaction")
        await status_becomes(csms, "Charging")
        store = daemon.charge_points["CP-1"].store
        stored = await store.run(store.reservations, "CP-1")
    assert [p["idTag"] for p in csms.calls("CP-1", "Authorize")] == ["TAG-A"]  # never TAG-B
    assert start["idTag"] == "TAG-A" and start["reservationId"] == 46
    assert wire(csms, "StatusNotification", "Authorize", "StartTransaction")[1:] == [
        "StatusNotification:Available",  # connector 1 at boot
        "StatusNotification:Reserved",
        "Authorize",
        "StartTransaction",
        "StatusNotification:Charging",
    ]
    assert stored == []  # the reservation ended with the transaction's start


async def test_tc_046_2_remote_start_for_the_reserved_tag(csms: StrictCentralSystem, tmp_path: Path) -> None:
    """A RemoteStartTransaction for another tag on the reserved connector is Rejected; for the
    reserved tag it uses the reservation."""
    async with running(make_config(csms.url, tmp_path)) as daemon:
        await ready(csms)
        assert await reserve(csms, 1, "TAG-A", 462) == "Accepted"
        await status_becomes(csms, "Reserved")
        other = await csms.call("CP-1", call.RemoteStartTransaction(id_tag="TAG-B", connector_id=1))
        anywhere = await csms.call("CP-1", call.RemoteStartTransaction(id_tag="TAG-B"))
        assert (other.status, anywhere.status) == ("Rejected", "Rejected")
        own = await csms.call("CP-1", call.RemoteStartTransaction(id_tag="TAG-A", connector_id=1))
        assert own.status == "Accepted"
        sim_of(daemon).plug()
        start = await csms.wait_for_call("CP-1", "StartTransaction")
    assert start["idTag"] == "TAG-A" and start["reservationId"] == 462


async def test_tc_047_a_reservation_expires(tmp_path: Path) -> None:
    """At expiryDate the connector is Available again, with its StatusNotification."""
    clock = Clock()
    async with StrictCentralSystem() as cs:
        async with running(make_config(cs.url, tmp_path), clock) as daemon:
            await ready(cs)
            assert await reserve(cs, 1, "TAG-A", 47, hours=2) == "Accepted"
            await status_becomes(cs, "Reserved")
            clock.move(clock.offset_s + 3600)  # an hour on: the timer wakes, and it is still reserved
            await cs.call("CP-1", call.TriggerMessage(requested_message="StatusNotification", connector_id=1))
            await cs.wait_until(lambda: len(statuses(cs)) == 3, WAIT_S, "the triggered status")
            clock.move(clock.offset_s + 3601)  # past the expiry
            await status_becomes(cs, "Available")
            store = daemon.charge_points["CP-1"].store
            stored = await store.run(store.reservations, "CP-1")
        cs.assert_clean()
    assert statuses(cs) == ["Available", "Reserved", "Reserved", "Available"]  # the third one triggered
    assert stored == []


async def test_tc_048_1_reserve_a_faulted_connector(csms: StrictCentralSystem, tmp_path: Path) -> None:
    async with running(make_config(csms.url, tmp_path)) as daemon:
        await ready(csms)
        sim_of(daemon).fault("GroundFailure")
        await status_becomes(csms, "Faulted")
        assert await reserve(csms, 1, "TAG-A", 481) == "Faulted"


async def test_tc_048_2_reserve_an_occupied_connector(csms: StrictCentralSystem, tmp_path: Path) -> None:
    """Occupied during a transaction, and when reserved under another id."""
    async with running(make_config(csms.url, tmp_path, connectors=2)) as daemon:
        await ready(csms, 2)
        sim = sim_of(daemon)
        sim.plug()
        sim.tap("TAG-A")
        await status_becomes(csms, "Charging")
        assert await reserve(csms, 1, "TAG-B", 482) == "Occupied"
        assert await reserve(csms, 2, "TAG-B", 483) == "Accepted"
        assert await reserve(csms, 2, "TAG-C", 484) == "Occupied"
        await status_becomes(csms, "Reserved", connector=2)


async def test_tc_048_3_reserve_an_unavailable_connector(csms: StrictCentralSystem, tmp_path: Path) -> None:
    async with running(make_config(csms.url, tmp_path)):
        await ready(csms)
        changed = await csms.call("CP-1", call.ChangeAvailability(connector_id=1, type="Inoperative"))
        assert changed.status == "Accepted"
        await status_becomes(csms, "Unavailable")
        assert await reserve(csms, 1, "TAG-A", 483) == "Unavailable"


async def test_tc_048_4_reserve_a_connector_that_does_not_exist(
    csms: StrictCentralSystem, tmp_path: Path
) -> None:
    async with running(make_config(csms.url, tmp_path)):
        await ready(csms)
        assert await reserve(csms, 2, "TAG-A", 484) == "Rejected"
    assert statuses(csms) == ["Available"]


async def test_tc_049_the_same_reservation_id_replaces_and_a_fault_ends_it(
    csms: StrictCentralSystem, tmp_path: Path
) -> None:
    async with running(make_config(csms.url, tmp_path)) as daemon:
        await ready(csms)
        assert await reserve(csms, 1, "TAG-A", 49) == "Accepted"
        assert await reserve(csms, 1, "TAG-B", 49, hours=3) == "Accepted"  # replaced
        cp = daemon.charge_points["CP-1"]
        held = cp.connectors[1].core.reservation
        assert held is not None and held.id_tag == "TAG-B"
        await status_becomes(csms, "Reserved")
        sim_of(daemon).fault("GroundFailure")
        await status_becomes(csms, "Faulted")
        sim_of(daemon).clear_fault()
        await status_becomes(csms, "Available")  # the fault ended the reservation
        stored = await cp.store.run(cp.store.reservations, "CP-1")
    assert statuses(csms) == ["Available", "Reserved", "Faulted", "Available"]
    assert stored == []


async def test_tc_050_1_reserve_connector_zero(csms: StrictCentralSystem, tmp_path: Path) -> None:
    """ReserveConnectorZeroSupported: connector 0 takes the first free connector for the tag; the
    others still serve anyone."""
    async with running(make_config(csms.url, tmp_path, connectors=2)) as daemon:
        await ready(csms, 2)
        assert await reserve(csms, 0, "TAG-A", 50) == "Accepted"
        await status_becomes(csms, "Reserved", connector=1)
        other = sim_of(daemon, connector=2)
        other.plug()
        other.tap("TAG-B")
        await status_becomes(csms, "Charging", connector=2)
        reserved = sim_of(daemon, connector=1)
        reserved.plug()
        reserved.tap("TAG-A")
        start = await csms.wait_for_call("CP-1", "StartTransaction", lambda p: p["idTag"] == "TAG-A")
    assert start["connectorId"] == 1 and start["reservationId"] == 50


async def test_tc_050_3_reserve_connector_zero_while_unavailable(
    csms: StrictCentralSystem, tmp_path: Path
) -> None:
    async with running(make_config(csms.url, tmp_path)):
        await ready(csms)
        await csms.call("CP-1", call.ChangeAvailability(connector_id=0, type="Inoperative"))
        await status_becomes(csms, "Unavailable")
        assert await reserve(csms, 0, "TAG-A", 503) == "Unavailable"


async def test_tc_051_cancel_reservation(csms: StrictCentralSystem, tmp_path: Path) -> None:
    """Accepted and Available again; Rejected for an id nobody holds."""
    async with running(make_config(csms.url, tmp_path)):
        await ready(csms)
        assert await reserve(csms, 1, "TAG-A", 51) == "Accepted"
        await status_becomes(csms, "Reserved")
        unknown = await csms.call("CP-1", call.CancelReservation(reservation_id=52))
        known = await csms.call("CP-1", call.CancelReservation(reservation_id=51))
        await status_becomes(csms, "Available")
        again = await csms.call("CP-1", call.CancelReservation(reservation_id=51))
    assert (unknown.status, known.status, again.status) == ("Rejected", "Accepted", "Rejected")
    assert statuses(csms) == ["Available", "Reserved", "Available"]
