"""Charging without a card (`free_vend_id_tag`), end to end against the strict central system: the
simulated charger, a go-e (its emulator) and the local list, each with the frames on the wire in
order. The relay wallbox, which cannot sense the plug, is refused by the configuration's check
(tests/test_free_vend_config.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ocpp.v16 import call

from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.emulators.goe import GoeEmulator
from tests.helpers.flow import ready, sim_of

FREE = "HOME-FREE"
QUIET = ("Heartbeat", "MeterValues", "BootNotification")


def steps(cs: StrictCentralSystem) -> list[tuple[Any, ...]]:
    """CP-1's calls in order, each cut to what the test is about."""
    out: list[tuple[Any, ...]] = []
    for c in cs.calls("CP-1"):
        action = c["action"]
        if action in QUIET:
            continue
        if action == "StatusNotification":
            out.append((action, c["connectorId"], c["status"]))
        elif action in ("Authorize", "StartTransaction"):
            out.append((action, c["idTag"]))
        elif action == "StopTransaction":
            out.append((action, c.get("idTag"), c["reason"]))
        else:
            out.append((action,))
    return out


BOOTED = [("StatusNotification", 0, "Available"), ("StatusNotification", 1, "Available")]


async def test_a_plug_in_authorizes_the_free_tag_and_starts_its_transaction(
    csms: StrictCentralSystem, tmp_path: Path
) -> None:
    async with running(make_config(csms.url, tmp_path, free_vend_id_tag=FREE)) as daemon:
        await ready(csms)
        sim_of(daemon).plug()
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Charging")
        tx = daemon.charge_points["CP-1"].connectors[1].core.transaction
    csms.assert_clean()
    assert steps(csms) == [
        *BOOTED,
        ("Authorize", FREE),  # decided at the reading that saw the cable, before its status is told
        ("StatusNotification", 1, "Preparing"),
        ("StartTransaction", FREE),
        ("StatusNotification", 1, "Charging"),
    ]
    assert tx is not None and tx.id_tag == FREE


async def test_a_free_tag_the_central_system_refuses_starts_nothing(tmp_path: Path) -> None:
    async with StrictCentralSystem(invalid_tags=[FREE]) as cs:
        config = make_config(cs.url, tmp_path, free_vend_id_tag=FREE, ocpp={"ConnectionTimeOut": 1})
        async with running(config) as daemon:
            await ready(cs)
            sim_of(daemon).plug()
            await cs.wait_for_call("CP-1", "Authorize")
            # Preparing until ConnectionTimeOut, then Finishing: a new plug-in tries again.
            await cs.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Finishing")
            connector = daemon.charge_points["CP-1"].connectors[1].core
            assert connector.transaction is None and not connector.energy_allowed
        cs.assert_clean()
    assert steps(cs) == [
        *BOOTED,
        ("Authorize", FREE),  # decided at the reading that saw the cable, before its status is told
        ("StatusNotification", 1, "Preparing"),
        ("StatusNotification", 1, "Finishing"),
    ]


async def test_a_card_tapped_before_the_plug_in_wins(csms: StrictCentralSystem, tmp_path: Path) -> None:
    async with running(make_config(csms.url, tmp_path, free_vend_id_tag=FREE)) as daemon:
        await ready(csms)
        sim = sim_of(daemon)
        sim.tap("CARD")
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Preparing")
        sim.plug()
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Charging")
    csms.assert_clean()
    assert steps(csms) == [
        *BOOTED,
        ("Authorize", "CARD"),
        ("StatusNotification", 1, "Preparing"),
        ("StartTransaction", "CARD"),
        ("StatusNotification", 1, "Charging"),
    ]


async def test_the_free_tag_stops_nothing_another_tag_started(
    csms: StrictCentralSystem, tmp_path: Path
) -> None:
    ocpp = {"StopTransactionOnEVSideDisconnect": False}
    async with running(make_config(csms.url, tmp_path, free_vend_id_tag=FREE, ocpp=ocpp)) as daemon:
        await ready(csms)
        sim = sim_of(daemon)
        sim.tap("CARD")
        sim.plug()
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Charging")
        # The cable out and in again during the card's session: no free tag presented, nothing stops.
        sim.unplug()
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "SuspendedEV")
        sim.plug()
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Charging", count=2)
        # The card itself still stops it.
        sim.tap("CARD")
        await csms.wait_for_call("CP-1", "StopTransaction")
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Finishing")
    csms.assert_clean()
    assert steps(csms) == [
        *BOOTED,
        ("Authorize", "CARD"),
        ("StatusNotification", 1, "Preparing"),
        ("StartTransaction", "CARD"),
        ("StatusNotification", 1, "Charging"),
        ("StatusNotification", 1, "SuspendedEV"),
        ("StatusNotification", 1, "Charging"),
        ("StopTransaction", "CARD", "Local"),
        ("StatusNotification", 1, "Finishing"),
    ]


async def test_a_free_tag_in_the_local_list_starts_without_an_authorize(
    csms: StrictCentralSystem, tmp_path: Path
) -> None:
    config = make_config(csms.url, tmp_path, free_vend_id_tag=FREE, ocpp={"LocalPreAuthorize": True})
    async with running(config) as daemon:
        await ready(csms)
        entry = {"id_tag": FREE, "id_tag_info": {"status": "Accepted"}}
        update = call.SendLocalList(list_version=1, update_type="Full", local_authorization_list=[entry])
        assert (await csms.call("CP-1", update)).status == "Accepted"
        sim_of(daemon).plug()
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Charging")
        await csms.wait_for_call("CP-1", "StartTransaction")
    csms.assert_clean()
    assert steps(csms) == [
        *BOOTED,
        ("StatusNotification", 1, "Charging"),  # started at the reading that saw the cable
        ("StartTransaction", FREE),
    ]


async def test_the_connectors_own_setting_wins(csms: StrictCentralSystem, tmp_path: Path) -> None:
    """The charge point's tag at connector 1; connector 2 sets "" (none there): its plug-in waits for
    a card. (The loader's side of the setting: tests/test_free_vend_config.py.)"""
    config = make_config(csms.url, tmp_path, connectors=2, free_vend_id_tag=FREE)
    cp = config.charge_points[0]
    two = dataclasses.replace(cp.connectors[1], free_vend_id_tag="")
    config = dataclasses.replace(
        config, charge_points=(dataclasses.replace(cp, connectors=(cp.connectors[0], two)),)
    )
    async with running(config) as daemon:
        await ready(csms, 2)
        sim_of(daemon, connector=2).plug()
        await csms.wait_for_call(
            "CP-1", "StatusNotification", lambda p: p["connectorId"] == 2 and p["status"] == "Preparing"
        )
        sim_of(daemon, connector=1).plug()
        await csms.wait_for_call("CP-1", "StartTransaction", lambda p: p["connectorId"] == 1)
        sim_of(daemon, connector=2).tap("CARD")
        await csms.wait_for_call("CP-1", "StartTransaction", lambda p: p["connectorId"] == 2)
    csms.assert_clean()
    starts = [(s["connectorId"], s["idTag"]) for s in csms.calls("CP-1", "StartTransaction")]
    assert starts == [(1, FREE), (2, "CARD")]
    assert [p["idTag"] for p in csms.calls("CP-1", "Authorize")] == [FREE, "CARD"]


async def test_a_go_e_plug_in_starts_with_the_free_tag(csms: StrictCentralSystem, tmp_path: Path) -> None:
    emu = GoeEmulator()
    await emu.start_http()
    try:
        charger = {"type": "goe", "url": emu.url, "timeout_s": 2}
        config = make_config(csms.url, tmp_path, charger=charger, free_vend_id_tag=FREE)
        async with running(config):
            await ready(csms)
            eto = emu.eto
            emu.plug()  # the car, no card
            await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Charging")
            await csms.wait_until(lambda: emu.eto > eto, what="energy to flow")
    finally:
        await emu.close()
    csms.assert_clean()
    assert steps(csms) == [
        *BOOTED,
        ("Authorize", FREE),  # decided at the reading that saw the cable, before its status is told
        ("StatusNotification", 1, "Preparing"),
        ("StartTransaction", FREE),
        ("StatusNotification", 1, "Charging"),
    ]
    assert ("frc", "2") in emu.received  # go-e allowed energy for the free-vend transaction
