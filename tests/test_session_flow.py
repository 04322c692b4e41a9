"""Whole charging sessions driven through the simulated charger, checked on the wire."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from ocpp.v16 import call

from bridge.store import Store
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.helpers.flow import ready, sim_of, statuses

SAMPLE = {
    "MeterValueSampleInterval": 1,
    "MeterValuesSampledData": "Energy.Active.Import.Register,Power.Active.Import",
}


async def test_plug_then_tap_session_with_meter_values_and_local_stop(
    csms: StrictCentralSystem, tmp_path: Any
) -> None:
    config = make_config(
        csms.url, tmp_path, ocpp=SAMPLE, charger={"initial_energy_wh": 5000, "time_scale": 100}
    )
    async with running(config) as daemon:
        await ready(csms)
        sim = sim_of(daemon)
        sim.plug()
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Preparing")
        sim.tap("TAG-1")
        start = await csms.wait_for_call("CP-1", "StartTransaction")
        await csms.wait_for_call("CP-1", "MeterValues", count=2, timeout=5)
        sim.tap("tag-1")  # the same tag, other case: stops without Authorize
        stop = await csms.wait_for_call("CP-1", "StopTransaction")
        sim.unplug()
        await csms.wait_for_call(
            "CP-1",
            "StatusNotification",
            lambda p: (p["connectorId"], p["status"]) == (1, "Available"),
            count=2,
        )
    actions = [a for a in csms.actions("CP-1") if a not in ("MeterValues", "Heartbeat")]
    assert actions == [
        "BootNotification",
        "StatusNotification",
        "StatusNotification",
        "StatusNotification",
        "Authorize",
        "StartTransaction",
        "StatusNotification",
        "StopTransaction",
        "StatusNotification",
        "StatusNotification",
    ]
    assert statuses(csms) == ["Available", "Preparing", "Charging", "Finishing", "Available"]
    assert csms.calls("CP-1", "Authorize") == [{"idTag": "TAG-1"}]
    assert start["connectorId"] == 1 and start["idTag"] == "TAG-1" and start["meterStart"] == 5000
    meter_values = csms.calls("CP-1", "MeterValues")
    for mv in meter_values:
        assert mv["connectorId"] == 1 and mv["transactionId"] == 1
        sampled = mv["meterValue"][0]["sampledValue"]
        assert [(s["measurand"], s["unit"], s["context"]) for s in sampled] == [
            ("Energy.Active.Import.Register", "Wh", "Sample.Periodic"),
            ("Power.Active.Import", "W", "Sample.Periodic"),
        ]
    energies = [float(mv["meterValue"][0]["sampledValue"][0]["value"]) for mv in meter_values]
    assert energies == sorted(energies) and energies[0] > 5000
    assert stop["transactionId"] == 1 and stop["reason"] == "Local" and stop["idTag"] == "tag-1"
    assert stop["meterStop"] >= int(energies[-1])


async def test_tap_then_plug_session(csms: StrictCentralSystem, tmp_path: Any) -> None:
    async with running(make_config(csms.url, tmp_path)) as daemon:
        await ready(csms)
        sim = sim_of(daemon)
        sim.tap("TAG-2")
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Preparing")
        assert not csms.calls("CP-1", "StartTransaction")
        sim.plug()
        start = await csms.wait_for_call("CP-1", "StartTransaction")
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Charging")
    assert start["idTag"] == "TAG-2"


async def test_invalid_tag_starts_no_transaction(tmp_path: Any) -> None:
    async with StrictCentralSystem(invalid_tags=["BAD"]) as cs:
        async with running(make_config(cs.url, tmp_path)) as daemon:
            await ready(cs)
            sim = sim_of(daemon)
            sim.plug()
            sim.tap("BAD")
            await cs.wait_for_call("CP-1", "Authorize")
            await cs.wait_until(
                lambda: not daemon.charge_points["CP-1"].connectors[1].core.authorizing,
                what="the Authorize answer to be handled",
            )
            assert sim.state().enabled is False
        cs.assert_clean()
    assert not cs.calls("CP-1", "StartTransaction")


async def test_remote_start_and_remote_stop(csms: StrictCentralSystem, tmp_path: Any) -> None:
    async with running(make_config(csms.url, tmp_path)) as daemon:
        await ready(csms)
        sim_of(daemon).plug()
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Preparing")
        result = await csms.call("CP-1", call.RemoteStartTransaction(id_tag="REMOTE-1", connector_id=1))
        assert result.status == "Accepted"
        start = await csms.wait_for_call("CP-1", "StartTransaction")
        assert start["idTag"] == "REMOTE-1"
        assert not csms.calls("CP-1", "Authorize")  # AuthorizeRemoteTxRequests is false by default
        busy = await csms.call("CP-1", call.RemoteStartTransaction(id_tag="OTHER", connector_id=1))
        assert busy.status == "Rejected"  # OCTT TC_026
        unknown = await csms.call("CP-1", call.RemoteStopTransaction(transaction_id=999))
        assert unknown.status == "Rejected"
        stopped = await csms.call("CP-1", call.RemoteStopTransaction(transaction_id=csms.last_transaction_id))
        assert stopped.status == "Accepted"
        stop = await csms.wait_for_call("CP-1", "StopTransaction")
    assert stop["reason"] == "Remote" and stop["transactionId"] == csms.last_transaction_id
    # The answer to RemoteStart precedes the StartTransaction it promised.
    frames = [f for f in csms.link("CP-1").frames if f.message]
    answer_at = next(
        i
        for i, f in enumerate(frames)
        if f.direction == "in" and f.message[0] == 3 and f.action == "RemoteStartTransaction"
    )
    start_at = next(
        i
        for i, f in enumerate(frames)
        if f.direction == "in" and f.message[0] == 2 and f.message[2] == "StartTransaction"
    )
    assert answer_at < start_at


async def test_remote_start_authorizes_first_when_configured(
    csms: StrictCentralSystem, tmp_path: Any
) -> None:
    config = make_config(csms.url, tmp_path, ocpp={"AuthorizeRemoteTxRequests": True})
    async with running(config) as daemon:
        await ready(csms)
        sim_of(daemon).plug()
        result = await csms.call("CP-1", call.RemoteStartTransaction(id_tag="REMOTE-2"))
        assert result.status == "Accepted"
        await csms.wait_for_call("CP-1", "StartTransaction")
    assert csms.actions("CP-1").index("Authorize") < csms.actions("CP-1").index("StartTransaction")


async def test_remote_start_on_an_unknown_connector_is_rejected(
    csms: StrictCentralSystem, tmp_path: Any
) -> None:
    async with running(make_config(csms.url, tmp_path)):
        await ready(csms)
        result = await csms.call("CP-1", call.RemoteStartTransaction(id_tag="X", connector_id=2))
        assert result.status == "Rejected"


async def test_ev_side_disconnect_stops_the_transaction(csms: StrictCentralSystem, tmp_path: Any) -> None:
    async with running(make_config(csms.url, tmp_path)) as daemon:
        await ready(csms)
        sim = sim_of(daemon)
        sim.plug()
        sim.tap("TAG-3")
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Charging")
        sim.unplug()
        stop = await csms.wait_for_call("CP-1", "StopTransaction")
        await csms.wait_for_call(
            "CP-1",
            "StatusNotification",
            lambda p: (p["connectorId"], p["status"]) == (1, "Available"),
            count=2,
        )
    assert stop["reason"] == "EVDisconnected" and "idTag" not in stop


async def test_invalid_id_in_start_transaction_answer_deauthorizes(tmp_path: Any) -> None:
    """Authorize said Accepted, StartTransaction.conf says Invalid: StopTransactionOnInvalidId."""
    async with StrictCentralSystem() as cs:
        async with running(make_config(cs.url, tmp_path)) as daemon:
            await ready(cs)
            sim = sim_of(daemon)
            sim.plug()
            cs.invalid_tags = {"late"}  # valid for Authorize (already answered below), invalid at start
            original = cs.tag_status
            cs.tag_status = lambda tag: (
                "Accepted" if not cs.calls("CP-1", "StartTransaction") else original(tag)
            )
            sim.tap("LATE")
            stop = await cs.wait_for_call("CP-1", "StopTransaction")
        cs.assert_clean()
    assert stop["reason"] == "DeAuthorized"


async def test_configuration_over_the_wire(csms: StrictCentralSystem, tmp_path: Any) -> None:
    async with running(make_config(csms.url, tmp_path)) as daemon:
        await ready(csms)
        result = await csms.call("CP-1", call.GetConfiguration())
        keys = {k["key"]: k for k in result.configuration_key}
        assert keys["NumberOfConnectors"] == {"key": "NumberOfConnectors", "readonly": True, "value": "1"}
        profiles = "Core,FirmwareManagement,LocalAuthListManagement,Reservation,SmartCharging,RemoteTrigger"
        assert keys["SupportedFeatureProfiles"]["value"] == profiles
        assert (
            await csms.call("CP-1", call.ChangeConfiguration(key="NoSuchKey", value="1"))
        ).status == "NotSupported"
        assert (
            await csms.call("CP-1", call.ChangeConfiguration(key="NumberOfConnectors", value="3"))
        ).status == "Rejected"
        assert (
            await csms.call("CP-1", call.ChangeConfiguration(key="HeartbeatInterval", value="x"))
        ).status == "Rejected"
        # Takes effect at once: heartbeats every second from now on.
        changed = await csms.call("CP-1", call.ChangeConfiguration(key="heartbeatinterval", value="1"))
        assert changed.status == "Accepted"
        await csms.wait_for_call("CP-1", "Heartbeat", count=2, timeout=4)
        assert daemon.charge_points["CP-1"].configuration.get_int("HeartbeatInterval") == 1
        unknown = await csms.call("CP-1", call.GetConfiguration(key=["HeartbeatInterval", "Bogus"]))
        assert unknown.unknown_key == ["Bogus"]


async def test_data_transfer_and_clear_cache_answers(csms: StrictCentralSystem, tmp_path: Any) -> None:
    async with running(make_config(csms.url, tmp_path)):
        await ready(csms)
        assert (
            await csms.call("CP-1", call.DataTransfer(vendor_id="com.example"))
        ).status == "UnknownVendorId"
        assert (await csms.call("CP-1", call.ClearCache())).status == "Accepted"  # there is a cache


async def test_a_stop_queued_behind_its_unanswered_start_carries_the_central_systems_id(
    csms: StrictCentralSystem, tmp_path: Any
) -> None:
    csms.last_transaction_id = 41
    csms.answer_delay["StartTransaction"] = 0.5
    async with running(make_config(csms.url, tmp_path)) as daemon:
        await ready(csms)
        sim = sim_of(daemon)
        sim.plug()
        sim.tap("QUICK")
        await csms.wait_for_call("CP-1", "StartTransaction")
        sim.tap("QUICK")  # stopped before the central system answered the start
        stop = await csms.wait_for_call("CP-1", "StopTransaction")
    assert stop["transactionId"] == 42  # not -1: the start was answered, only late


async def test_an_answer_is_applied_before_the_next_queued_message_is_built(
    csms: StrictCentralSystem, tmp_path: Any
) -> None:
    """Adjacent transaction messages (an offline backlog): the Stop is built with the Start's answer."""
    stamp = "2026-01-01T00:00:00Z"
    store = Store.open(tmp_path / "state")  # the backlog, queued in the outbox before the daemon starts
    try:
        start = {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": stamp}
        store.begin_transaction("CP-1", 1, 1, "T", 0, stamp, json.dumps(start), "start-1")
        stop_payload = {"meterStop": 5, "timestamp": stamp, "reason": "Local"}
        store.end_transaction("CP-1", 1, 5, stamp, "Local", json.dumps(stop_payload), "stop-1")
    finally:
        store.close()
    async with running(make_config(csms.url, tmp_path)):
        stop = await csms.wait_for_call("CP-1", "StopTransaction")
    assert stop["transactionId"] == csms.last_transaction_id


async def test_clock_aligned_meter_values(csms: StrictCentralSystem, tmp_path: Any) -> None:
    """OCTT TC_071: Sample.Clock values at instants aligned to midnight, stamped with that instant;
    during a transaction with its transactionId, outside one without."""
    ocpp = {"ClockAlignedDataInterval": 2, "MeterValuesAlignedData": "Energy.Active.Import.Register"}
    async with running(make_config(csms.url, tmp_path, ocpp=ocpp)) as daemon:
        await ready(csms)
        idle = await csms.wait_for_call("CP-1", "MeterValues", timeout=4)
        sim = sim_of(daemon)
        sim.plug()
        sim.tap("ALIGNED")
        await csms.wait_for_call("CP-1", "StartTransaction")
        during = await csms.wait_for_call("CP-1", "MeterValues", lambda p: "transactionId" in p, timeout=4)
    assert "transactionId" not in idle
    assert during["transactionId"] == csms.last_transaction_id
    for mv in (idle, during):
        value = mv["meterValue"][0]
        stamp = datetime.fromisoformat(value["timestamp"].replace("Z", "+00:00"))
        assert stamp.timestamp() % 2 == 0  # on the boundary, to the millisecond
        assert [(s["measurand"], s["context"]) for s in value["sampledValue"]] == [
            ("Energy.Active.Import.Register", "Sample.Clock")
        ]
