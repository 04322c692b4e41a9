"""Reservations and the devices, end to end: stored and taken up again after a restart (those that
expired meanwhile end then), energy off while Reserved (the simulated charger), and a relay wallbox's
relay kept open while Reserved, then closed for the reserved tag's transaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from ocpp.v16 import call

from bridge.clock import Clock, iso
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.emulators.shelly import EvLoad, ShellyEmulator
from tests.helpers.flow import ready, sim_of


def statuses(cs: StrictCentralSystem, connector: int = 1) -> list[str]:
    return [p["status"] for p in cs.calls("CP-1", "StatusNotification") if p["connectorId"] == connector]


async def reserve(cs: StrictCentralSystem, connector: int, tag: str, rid: int, hours: float) -> str:
    expiry = iso(datetime.now(UTC) + timedelta(hours=hours))
    answer = await cs.call(
        "CP-1", call.ReserveNow(connector_id=connector, expiry_date=expiry, id_tag=tag, reservation_id=rid)
    )
    return str(answer.status)


async def test_reservations_come_back_after_a_restart_and_expired_ones_end(tmp_path: Path) -> None:
    async with StrictCentralSystem() as cs:
        config = make_config(cs.url, tmp_path, connectors=2)
        async with running(config):
            await ready(cs, 2)
            assert await reserve(cs, 1, "TAG-A", 1, hours=5) == "Accepted"
            assert await reserve(cs, 2, "TAG-B", 2, hours=1) == "Accepted"
            await cs.wait_until(lambda: statuses(cs, 2)[-1] == "Reserved", what="Reserved")
        clock = Clock()
        clock.move(2 * 3600)  # the power comes back two hours later: reservation 2 has expired
        boots = len(cs.calls("CP-1", "BootNotification"))
        async with running(config, clock) as daemon:
            await cs.wait_until(
                lambda: len(cs.calls("CP-1", "BootNotification")) > boots and len(statuses(cs, 2)) >= 3,
                what="the statuses after the restart",
            )
            cp = daemon.charge_points["CP-1"]
            held = {cid: rt.core.reservation for cid, rt in cp.connectors.items()}
            stored = await cp.store.run(cp.store.reservations, "CP-1")
            # The one kept still refuses another tag and serves its own.
            sim = sim_of(daemon)
            sim.tap("TAG-B")
            sim.plug()
            sim.tap("TAG-A")
            start = await cs.wait_for_call("CP-1", "StartTransaction")
        cs.assert_clean()
    assert held[1] is not None and held[1].reservation_id == 1 and held[2] is None
    assert [row.reservation_id for row in stored] == [1]
    assert statuses(cs, 1)[-2] == "Reserved" and statuses(cs, 2)[-1] == "Available"  # after the boot
    assert start["reservationId"] == 1 and start["idTag"] == "TAG-A"
    assert [p["idTag"] for p in cs.calls("CP-1", "Authorize")] == ["TAG-A"]


async def test_energy_stays_off_while_reserved(csms: StrictCentralSystem, tmp_path: Path) -> None:
    async with running(make_config(csms.url, tmp_path)) as daemon:
        await ready(csms)
        assert await reserve(csms, 1, "TAG-A", 7, hours=1) == "Accepted"
        sim = sim_of(daemon)
        sim.plug()  # a car plugged in on the reserved connector: still Reserved, no energy
        sim.tap("TAG-B")
        await csms.wait_until(lambda: statuses(csms)[-1] == "Reserved", what="Reserved")
        cp = daemon.charge_points["CP-1"]
        reading = await cp.refresh(1)
        assert reading is not None and reading.plugged and not reading.energy_allowed
        assert not cp.connectors[1].core.energy_allowed
        sim.tap("TAG-A")
        await csms.wait_until(lambda: statuses(csms)[-1] == "Charging", what="Charging")
        reading = await cp.refresh(1)
        assert reading is not None and reading.energy_allowed
    assert statuses(csms) == ["Available", "Reserved", "Charging"]


async def test_a_relay_wallbox_keeps_its_relay_open_while_reserved(
    csms: StrictCentralSystem, tmp_path: Path
) -> None:
    async with ShellyEmulator(load=EvLoad(energy_wh=5000.0, plugged=True)) as emulator:
        config = make_config(csms.url, tmp_path, charger={"type": "shelly", "url": emulator.url})
        async with running(config):
            await ready(csms)
            assert await reserve(csms, 1, "TAG-A", 9, hours=1) == "Accepted"
            await csms.wait_until(lambda: statuses(csms)[-1] == "Reserved", what="Reserved")
            other = await csms.call("CP-1", call.RemoteStartTransaction(id_tag="TAG-B", connector_id=1))
            assert other.status == "Rejected"
            assert emulator.outputs == [False]
            assert csms.calls("CP-1", "StartTransaction") == []
    assert ("Switch.Set", {"id": 0, "on": True}) not in emulator.calls
