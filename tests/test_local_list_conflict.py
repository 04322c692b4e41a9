"""LocalListConflict (OCPP 1.6 §3.5.2): an answer of the central system that contradicts the local list
is told on connector 0 with errorCode LocalListConflict, once per tag, list version and answer; the
list itself stays as it is. Against the strict central system, the frames on the wire in order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ocpp.v16 import call

from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.helpers.flow import ready, sim_of

QUIET = ("Heartbeat", "MeterValues", "BootNotification")


def steps(cs: StrictCentralSystem) -> list[tuple[Any, ...]]:
    """CP-1's calls in order, each cut to what the test is about."""
    out: list[tuple[Any, ...]] = []
    for c in cs.calls("CP-1"):
        action = c["action"]
        if action == "StatusNotification":
            out.append((action, c["connectorId"], c["status"], c["errorCode"], c.get("info")))
        elif action in ("Authorize", "StartTransaction"):
            out.append((action, c["idTag"]))
        elif action not in QUIET:
            out.append((action,))
    return out


BOOTED = [
    ("StatusNotification", 0, "Available", "NoError", None),
    ("StatusNotification", 1, "Available", "NoError", None),
]


async def send_list(cs: StrictCentralSystem, version: int, *listed: tuple[str, str]) -> None:
    entries = [{"id_tag": tag, "id_tag_info": {"status": status}} for tag, status in listed]
    update = call.SendLocalList(list_version=version, update_type="Full", local_authorization_list=entries)
    assert (await cs.call("CP-1", update)).status == "Accepted"


async def idle(cs: StrictCentralSystem) -> None:
    await cs.wait_until(lambda: cs.link("CP-1").open_call_from_cp is None, what="the last call answered")


async def test_an_authorize_answer_against_the_list_is_told_once_on_connector_0(tmp_path: Path) -> None:
    async with StrictCentralSystem(invalid_tags=["LISTED"]) as cs:
        async with running(make_config(cs.url, tmp_path)) as daemon:
            await ready(cs)
            await send_list(cs, 1, ("LISTED", "Accepted"), ("AGREED", "Accepted"))
            sim = sim_of(daemon)
            sim.tap("LISTED")  # LocalPreAuthorize false: the central system is asked, and says Invalid
            await cs.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 0, count=2)
            sim.tap("LISTED")  # the same answer again: not told again
            await cs.wait_for_call("CP-1", "Authorize", count=2)
            sim.tap("AGREED")  # an answer that agrees with the list: nothing to tell
            await cs.wait_for_call("CP-1", "Authorize", count=3)
            await idle(cs)
            await send_list(cs, 2, ("LISTED", "Accepted"))  # a new version: told again
            sim.tap("LISTED")
            await cs.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 0, count=3)
            await idle(cs)
            authorizer = daemon.charge_points["CP-1"].authorizer
            entry = authorizer.local_list.get("LISTED")
            cached = authorizer.cache.get("LISTED")
        cs.assert_clean()
    conflict = ("StatusNotification", 0, "Available", "LocalListConflict", "idTag LISTED: list Accepted")
    assert steps(cs) == [
        *BOOTED,
        ("Authorize", "LISTED"),
        conflict,
        ("Authorize", "LISTED"),
        ("Authorize", "AGREED"),
        ("StatusNotification", 1, "Preparing", "NoError", None),  # AGREED waits for the cable
        ("Authorize", "LISTED"),
        conflict,
    ]
    # The list is changed only by SendLocalList, and its tags never enter the cache.
    assert entry is not None and entry.status == "Accepted" and cached is None


async def test_a_start_transaction_answer_against_the_list_is_told(tmp_path: Path) -> None:
    ocpp = {"LocalPreAuthorize": True}
    async with StrictCentralSystem(invalid_tags=["LISTED"]) as cs:
        async with running(make_config(cs.url, tmp_path, ocpp=ocpp)) as daemon:
            await ready(cs)
            await send_list(cs, 1, ("LISTED", "Accepted"))
            sim = sim_of(daemon)
            sim.plug()
            sim.tap("LISTED")  # started from the list without an Authorize; StartTransaction says Invalid
            await cs.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 0, count=2)
            await idle(cs)
        cs.assert_clean()
    wire = steps(cs)
    start = wire.index(("StartTransaction", "LISTED"))
    conflict = ("StatusNotification", 0, "Available", "LocalListConflict", "idTag LISTED: list Accepted")
    assert wire.index(conflict) > start
    assert ("Authorize", "LISTED") not in wire
    assert wire.count(conflict) == 1


async def test_a_concurrent_entry_the_central_system_calls_invalid_is_a_conflict_too(tmp_path: Path) -> None:
    """A listed ConcurrentTx entry (valid in the list) is asked about online; an answer that says Invalid
    contradicts it, and the central system's word decides the tap (refused)."""
    async with StrictCentralSystem(invalid_tags=["BUSY"]) as cs:
        async with running(make_config(cs.url, tmp_path)) as daemon:
            await ready(cs)
            await send_list(cs, 3, ("BUSY", "ConcurrentTx"))
            sim_of(daemon).tap("BUSY")
            await cs.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 0, count=2)
            await idle(cs)
            connector = daemon.charge_points["CP-1"].connectors[1].core
            assert connector.waiting_tag is None and connector.transaction is None
        cs.assert_clean()
    assert steps(cs)[len(BOOTED) :] == [
        ("Authorize", "BUSY"),
        ("StatusNotification", 0, "Available", "LocalListConflict", "idTag BUSY: list ConcurrentTx"),
    ]


async def test_a_list_not_in_use_contradicts_nothing(tmp_path: Path) -> None:
    async with StrictCentralSystem(invalid_tags=["LISTED"]) as cs:
        async with running(make_config(cs.url, tmp_path)) as daemon:
            await ready(cs)
            await send_list(cs, 1, ("LISTED", "Accepted"))
            off = call.ChangeConfiguration(key="LocalAuthListEnabled", value="false")
            assert (await cs.call("CP-1", off)).status == "Accepted"
            sim_of(daemon).tap("LISTED")
            await cs.wait_for_call("CP-1", "Authorize")
            await idle(cs)
            # What the answer set off is sent before what is asked after it (one call at a time).
            trigger = call.TriggerMessage(requested_message="StatusNotification", connector_id=1)
            assert (await cs.call("CP-1", trigger)).status == "Accepted"
            await cs.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1, count=2)
        cs.assert_clean()
    assert steps(cs)[len(BOOTED) :] == [
        ("Authorize", "LISTED"),
        ("StatusNotification", 1, "Available", "NoError", None),  # triggered: nothing before it
    ]
