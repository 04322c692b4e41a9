"""Core cases on the wire: invalid ids, stops by group, device silence, B6 (OCTT TC_068/069 themes)."""

from __future__ import annotations

from typing import Any

from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.helpers.flow import ready, sim_of, statuses


async def test_invalid_id_without_stop_suspends_energy_and_the_same_tag_ends_it(tmp_path: Any) -> None:
    async with StrictCentralSystem() as cs:
        config = make_config(cs.url, tmp_path, ocpp={"StopTransactionOnInvalidId": False})
        async with running(config) as daemon:
            await ready(cs)
            sim = sim_of(daemon)
            sim.plug()
            original = cs.tag_status
            cs.tag_status = lambda tag: (
                "Accepted" if not cs.calls("CP-1", "StartTransaction") else original(tag)
            )
            cs.invalid_tags = {"late"}  # Authorize says Accepted, StartTransaction.conf says Invalid
            sim.tap("LATE")
            await cs.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "SuspendedEVSE")
            assert not sim.state().enabled  # energy stopped at the device
            assert cs.calls("CP-1", "StopTransaction") == []  # the transaction goes on
            sim.tap("late")  # the same tag (any case) ends it
            stop = await cs.wait_for_call("CP-1", "StopTransaction")
        cs.assert_clean()
    assert (stop["reason"], stop["idTag"]) == ("Local", "late")
    assert stop["transactionId"] == 1  # the transaction the central system numbered


async def test_a_tag_of_the_same_group_stops_the_transaction(tmp_path: Any) -> None:
    async with StrictCentralSystem() as cs:
        cs.parents = {"card-a": "FLEET", "card-b": "FLEET", "card-x": "OTHER"}
        async with running(make_config(cs.url, tmp_path)) as daemon:
            await ready(cs)
            sim = sim_of(daemon)
            sim.plug()
            sim.tap("CARD-A")
            await cs.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Charging")
            sim.tap("CARD-X")  # another group: asked about, then ignored
            await cs.wait_for_call("CP-1", "Authorize", lambda p: p["idTag"] == "CARD-X")
            sim.tap("CARD-B")
            stop = await cs.wait_for_call("CP-1", "StopTransaction")
        cs.assert_clean()
    assert (stop["reason"], stop["idTag"]) == ("Local", "CARD-B")
    authorized = [c["idTag"] for c in cs.calls("CP-1", "Authorize")]
    assert authorized == ["CARD-A", "CARD-X", "CARD-B"]
    assert len(cs.calls("CP-1", "StopTransaction")) == 1


async def test_a_silent_device_is_faulted_and_recovers_with_its_transaction(tmp_path: Any) -> None:
    async with StrictCentralSystem() as cs:
        config = make_config(
            cs.url, tmp_path, connector_fields={"poll_interval_s": 0.2, "faulted_after_failed_polls": 2}
        )
        async with running(config) as daemon:
            await ready(cs)
            sim = sim_of(daemon)
            sim.plug()
            sim.tap("TAG")
            await cs.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Charging")
            sim.silence()
            faulted = await cs.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Faulted")
            sim.answer()
            await cs.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Charging", count=2)
            assert daemon.charge_points["CP-1"].connectors[1].core.transaction is not None
        cs.assert_clean()
    assert faulted["errorCode"] == "OtherError"
    assert faulted["info"] == "simulated charger: no answer (simulated)"
    assert faulted["vendorErrorCode"] == "DeviceUnreachable"
    assert statuses(cs)[-3:] == ["Charging", "Faulted", "Charging"]
    assert cs.calls("CP-1", "StopTransaction") == []


async def test_plugged_without_a_tag_goes_finishing_after_connection_timeout(
    csms: StrictCentralSystem, tmp_path: Any
) -> None:
    config = make_config(csms.url, tmp_path, ocpp={"ConnectionTimeOut": 1})
    async with running(config) as daemon:
        await ready(csms)
        sim = sim_of(daemon)
        sim.plug()
        await csms.wait_for_call(
            "CP-1", "StatusNotification", lambda p: p["status"] == "Finishing", timeout=5
        )
        sim.unplug()
        await csms.wait_for_call(
            "CP-1",
            "StatusNotification",
            lambda p: (p["connectorId"], p["status"]) == (1, "Available"),
            count=2,
        )
    assert statuses(csms) == ["Available", "Preparing", "Finishing", "Available"]
