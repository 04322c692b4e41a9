"""GET /metrics, scraped and parsed by the Prometheus text parser after a real session."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from ocpp.v16 import call
from prometheus_client.parser import text_string_to_metric_families

from bridge.clock import iso
from bridge.core.diagnostics import DiagnosticsState
from bridge.core.firmware import FirmwareState
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.processes import dead_port, free_port

FAMILIES = {
    "ocpp_bridge_messages": "counter",  # the parser names counters without _total
    "ocpp_bridge_call_duration_seconds": "histogram",
    "ocpp_bridge_device_poll_duration_seconds": "histogram",
    "ocpp_bridge_device_poll_errors": "counter",
    "ocpp_bridge_connected": "gauge",
    "ocpp_bridge_accepted": "gauge",
    "ocpp_bridge_boot_state": "gauge",
    "ocpp_bridge_outbox_messages": "gauge",
    "ocpp_bridge_outbox_oldest_age_seconds": "gauge",
    "ocpp_bridge_connector_status": "gauge",
    "ocpp_bridge_transaction_active": "gauge",
    "ocpp_bridge_energy_wh": "gauge",
    "ocpp_bridge_power_w": "gauge",
    "ocpp_bridge_current_limit_a": "gauge",
    "ocpp_bridge_device_up": "gauge",
    "ocpp_bridge_firmware_state": "gauge",
    "ocpp_bridge_firmware_last_outcome_timestamp_seconds": "gauge",
    "ocpp_bridge_diagnostics_state": "gauge",
    "ocpp_bridge_diagnostics_last_outcome_timestamp_seconds": "gauge",
    "ocpp_bridge_local_list_version": "gauge",
    "ocpp_bridge_local_list_entries": "gauge",
    "ocpp_bridge_reservation_expiry_timestamp_seconds": "gauge",
    "ocpp_bridge_security_profile": "gauge",
    "ocpp_bridge_tls_verification_weakened": "gauge",
}


async def until(condition: Any, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        assert FAMILIES.get(family.name) == family.type, family.name
        for s in family.samples:
            found[(s.name, frozenset(s.labels.items()))] = s.value
    return found


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return found[(name, frozenset({"charge_point": "CP-1", **labels}.items()))]


async def test_metrics_after_a_session(csms: StrictCentralSystem, tmp_path: Any) -> None:
    port = free_port()
    config = make_config(csms.url, tmp_path, api=f"127.0.0.1:{port}", ocpp={"MeterValueSampleInterval": 1})
    async with running(config) as daemon, aiohttp.ClientSession() as http:
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)
        sim = daemon.charge_points["CP-1"].connectors[1].charger
        sim.plug()
        sim.tap("TAG")
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Charging")
        await csms.wait_for_call("CP-1", "MeterValues")
        await csms.call("CP-1", call.ChangeConfiguration(key="Nope", value="1"))  # answered NotSupported
        await csms.send_raw("CP-1", '[2,"x1","GetConfiguration",{"key":"HeartbeatInterval"}]')  # not a list
        await csms.answer_of("CP-1", "x1")
        sim.silence()
        await csms.wait_until(lambda: daemon.charge_points["CP-1"].connectors[1].failed_reads >= 1)
        async with http.get(f"http://127.0.0.1:{port}/metrics") as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("text/plain")
            text = await r.text()
    found = samples(text)
    assert {f.name for f in text_string_to_metric_families(text)} == set(FAMILIES)
    assert value(found, "ocpp_bridge_connected") == 1 and value(found, "ocpp_bridge_accepted") == 1
    assert value(found, "ocpp_bridge_boot_state", state="Accepted") == 1
    assert value(found, "ocpp_bridge_boot_state", state="Pending") == 0
    sent = {"direction": "sent", "result": "CALLRESULT"}
    assert value(found, "ocpp_bridge_messages_total", action="BootNotification", **sent) == 1
    assert value(found, "ocpp_bridge_messages_total", action="StartTransaction", **sent) == 1
    assert value(found, "ocpp_bridge_messages_total", action="MeterValues", **sent) >= 1
    received = {"direction": "received", "action": "ChangeConfiguration", "result": "CALLRESULT"}
    assert value(found, "ocpp_bridge_messages_total", **received) == 1
    bad = {"direction": "received", "action": "GetConfiguration", "result": "TypeConstraintViolation"}
    assert value(found, "ocpp_bridge_messages_total", **bad) == 1
    boots = value(found, "ocpp_bridge_call_duration_seconds_count", action="BootNotification")
    assert boots == 1
    assert value(found, "ocpp_bridge_call_duration_seconds_bucket", action="BootNotification", le="+Inf") == 1
    assert value(found, "ocpp_bridge_device_poll_duration_seconds_count", connector="1") >= 2
    assert value(found, "ocpp_bridge_device_poll_errors_total", connector="1") >= 1
    assert value(found, "ocpp_bridge_connector_status", connector="1", status="Charging") == 1
    assert value(found, "ocpp_bridge_connector_status", connector="1", status="Available") == 0
    assert value(found, "ocpp_bridge_transaction_active", connector="1") == 1
    assert value(found, "ocpp_bridge_energy_wh", connector="1") >= 0
    assert value(found, "ocpp_bridge_power_w", connector="1") == 16 * 230 * 3
    assert value(found, "ocpp_bridge_current_limit_a", connector="1") == 16
    assert value(found, "ocpp_bridge_outbox_messages") == 0
    assert value(found, "ocpp_bridge_outbox_oldest_age_seconds") == 0
    # Nothing asked of firmware or diagnostics: Idle, and no last outcome yet.
    assert value(found, "ocpp_bridge_firmware_state", state="Idle") == 1
    assert sum(value(found, "ocpp_bridge_firmware_state", state=str(s)) for s in FirmwareState) == 1
    assert value(found, "ocpp_bridge_diagnostics_state", state="Idle") == 1
    assert not [k for k in found if "last_outcome" in k[0]]
    # No list sent, nothing reserved: an empty list, and no reservation sample.
    assert value(found, "ocpp_bridge_local_list_version") == 0
    assert value(found, "ocpp_bridge_local_list_entries") == 0
    assert not [k for k in found if "reservation" in k[0]]


async def test_outbox_depth_and_age_while_the_central_system_is_away(tmp_path: Any) -> None:
    port = free_port()
    config = make_config(
        "ws://127.0.0.1:1/ocpp", tmp_path, api=f"127.0.0.1:{port}", ocpp={"MeterValueSampleInterval": 1}
    )
    async with running(config) as daemon, aiohttp.ClientSession() as http:
        rt = daemon.charge_points["CP-1"].connectors[1]
        await until(lambda: rt.reading is not None)
        # Offline, an unknown tag starts a transaction with AllowOfflineTxForUnknownId: its
        # StartTransaction and MeterValues wait in the outbox.
        daemon.charge_points["CP-1"].configuration.change("AllowOfflineTxForUnknownId", "true")
        rt.charger.plug()
        rt.charger.tap("TAG")
        await until(lambda: daemon.charge_points["CP-1"].session.pending_transactional() >= 2)
        async with http.get(f"http://127.0.0.1:{port}/metrics") as r:
            found = samples(await r.text())
    assert value(found, "ocpp_bridge_connected") == 0
    assert value(found, "ocpp_bridge_boot_state", state="NotBooted") == 1
    assert value(found, "ocpp_bridge_outbox_messages") >= 2
    assert 0 < value(found, "ocpp_bridge_outbox_oldest_age_seconds") < 30


async def test_a_failed_update_a_pending_one_and_a_failed_upload(
    csms: StrictCentralSystem, tmp_path: Any
) -> None:
    """What an alert needs: the update's and the upload's state, and when and how the last one ended."""
    port = free_port()
    nowhere = f"ftp://cp:pw@127.0.0.1:{dead_port()}/"  # nothing listens there
    async with (
        running(make_config(csms.url, tmp_path, api=f"127.0.0.1:{port}")),
        aiohttp.ClientSession() as http,
    ):
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)
        began = time.time()
        now = datetime.now(UTC)
        await csms.call(
            "CP-1", call.UpdateFirmware(location=nowhere + "fw.bin", retrieve_date=iso(now), retries=0)
        )
        await csms.wait_for_call(
            "CP-1", "FirmwareStatusNotification", lambda p: p["status"] == "DownloadFailed"
        )
        # The next update waits for its retrieveDate: pending.
        later = iso(now + timedelta(hours=2))
        await csms.call("CP-1", call.UpdateFirmware(location=nowhere + "fw2.bin", retrieve_date=later))
        await csms.call("CP-1", call.GetDiagnostics(location=nowhere, retries=0))
        await csms.wait_for_call(
            "CP-1", "DiagnosticsStatusNotification", lambda p: p["status"] == "UploadFailed"
        )
        async with http.get(f"http://127.0.0.1:{port}/metrics") as r:
            found = samples(await r.text())
        ended = time.time()
    assert {str(s): value(found, "ocpp_bridge_firmware_state", state=str(s)) for s in FirmwareState} == {
        str(s): float(s is FirmwareState.SCHEDULED) for s in FirmwareState
    }
    assert {
        str(s): value(found, "ocpp_bridge_diagnostics_state", state=str(s)) for s in DiagnosticsState
    } == {str(s): float(s is DiagnosticsState.IDLE) for s in DiagnosticsState}
    # One sample each, labelled with how the last one ended, at the time it did.
    firmware = [(dict(k[1]), v) for k, v in found.items() if k[0].startswith("ocpp_bridge_firmware_last")]
    diagnostics = [
        (dict(k[1]), v) for k, v in found.items() if k[0].startswith("ocpp_bridge_diagnostics_last")
    ]
    assert [labels for labels, _ in firmware] == [{"charge_point": "CP-1", "status": "DownloadFailed"}]
    assert [labels for labels, _ in diagnostics] == [{"charge_point": "CP-1", "status": "UploadFailed"}]
    assert began - 1 <= firmware[0][1] <= ended + 1 and began - 1 <= diagnostics[0][1] <= ended + 1


async def test_the_local_list_and_the_reservations(csms: StrictCentralSystem, tmp_path: Any) -> None:
    """The list's version and size; one expiry per reservation, gone once it is cancelled."""
    port = free_port()
    config = make_config(csms.url, tmp_path, api=f"127.0.0.1:{port}", connectors=2)
    url = f"http://127.0.0.1:{port}/metrics"
    async with running(config), aiohttp.ClientSession() as http:
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 2)
        tags = [{"id_tag": f"CARD-{n}", "id_tag_info": {"status": "Accepted"}} for n in range(3)]
        update = call.SendLocalList(list_version=7, update_type="Full", local_authorization_list=tags)
        assert (await csms.call("CP-1", update)).status == "Accepted"
        expiry = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
        for connector, rid in ((1, 11), (2, 12)):
            request = call.ReserveNow(
                connector_id=connector, expiry_date=iso(expiry), id_tag="CARD-1", reservation_id=rid
            )
            assert (await csms.call("CP-1", request)).status == "Accepted"
        async with http.get(url) as r:
            reserved = samples(await r.text())
        assert (await csms.call("CP-1", call.CancelReservation(reservation_id=11))).status == "Accepted"
        async with http.get(url) as r:
            cancelled = samples(await r.text())
    assert value(reserved, "ocpp_bridge_local_list_version") == 7
    assert value(reserved, "ocpp_bridge_local_list_entries") == 3
    held = {
        (dict(k[1])["connector"], dict(k[1])["reservation_id"]): v
        for k, v in reserved.items()
        if k[0] == "ocpp_bridge_reservation_expiry_timestamp_seconds"
    }
    assert held == {("1", "11"): expiry.timestamp(), ("2", "12"): expiry.timestamp()}
    left = [dict(k[1]) for k in cancelled if k[0] == "ocpp_bridge_reservation_expiry_timestamp_seconds"]
    assert left == [{"charge_point": "CP-1", "connector": "2", "reservation_id": "12"}]
    assert not any("CARD-1" in str(k) for k in reserved)  # the reserved tag is no label
