"""`ocpp-bridge status`: the running bridge's state in words, from its local API."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml
from ocpp.v16 import call

from bridge.clock import iso
from bridge.config import parse_config
from bridge.status_cli import format_status, show_status
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.processes import dead_port, free_port


async def test_status_prints_the_facts_an_installer_asks_first(
    csms: StrictCentralSystem, tmp_path: Any
) -> None:
    port = free_port()
    config = make_config(csms.url, tmp_path, api=f"127.0.0.1:{port}", connectors=2)
    async with running(config) as daemon:
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 2)
        sim = daemon.charge_points["CP-1"].connectors[1].charger
        sim.plug()
        sim.tap("TAG-1")
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Charging")
        daemon.charge_points["CP-1"].connectors[2].charger.silence()
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Faulted", timeout=10)
        printed: list[str] = []
        code = await asyncio.to_thread(show_status, config.api, printed.append)
    assert code == 0
    text = printed[0]
    assert text.startswith(f"CP-1  {csms.url}\n")
    assert "  connected since " in text and "  accepted since " in text
    assert "heartbeat every 300 s, meter values every 60 s, clock-aligned values off" in text
    assert "connector 1: Charging" in text and "by TAG-1" in text and "limit 16 A" in text
    assert "connector 2: Faulted  (OtherError)" in text
    assert "simulated charger DOES NOT ANSWER: simulated charger: no answer (simulated)" in text


def test_status_says_how_to_find_a_bridge_that_does_not_answer(tmp_path: Any) -> None:
    config = make_config("ws://127.0.0.1:1/ocpp", tmp_path, api=f"127.0.0.1:{free_port()}")
    printed: list[str] = []
    assert show_status(config.api, printed.append) == 1
    assert "cannot reach the bridge" in printed[0] and "journalctl -u ocpp-bridge" in printed[0]


def test_a_disconnected_charge_point_reads_plainly() -> None:
    body = {"charge_points": [{
        "id": "CP-9", "csms_url": "wss://cs.example/ocpp", "connected": False, "accepted": False,
        "boot_state": "NotBooted", "last_error": "connection refused by cs.example:443",
        "last_error_at": "2026-11-22T09:00:00.000Z", "heartbeat_interval_s": 0,
        "meter_value_sample_interval_s": 0, "clock_aligned_data_interval_s": 900,
        "queued_transaction_messages": 3, "connectors": [],
    }]}  # fmt: skip
    text = format_status(body, datetime(2026, 11, 22, 9, 5, tzinfo=UTC))
    assert "  NOT connected\n  not accepted (boot state NotBooted)\n" in text
    assert "last error: connection refused by cs.example:443 (since 2026-11-22 09:00:00 UTC (5 min))" in text
    assert "heartbeat off, meter values off, clock-aligned values every 900 s" in text
    assert "3 transaction messages waiting to be sent" in text


async def test_the_status_command_reads_the_api_of_the_configuration_given(
    csms: StrictCentralSystem, tmp_path: Any
) -> None:
    port = free_port()
    path = tmp_path / "bridge.yaml"
    connector = {"id": 1, "charger": {"type": "simulated"}}
    doc = {
        "state_dir": str(tmp_path / "state"),
        "api": {"listen": f"127.0.0.1:{port}", "token": "t0ken-123"},  # the command must send it
        "charge_points": [{"id": "CP-1", "csms_url": csms.url, "connectors": [connector]}],
    }
    path.write_text(yaml.safe_dump(doc))
    async with running(parse_config(path.read_text(), str(path))):
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bridge.cli", "status", "--config", str(path),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, err.decode()
    assert out.decode().startswith(f"CP-1  {csms.url}\n") and "connector 1: Available" in out.decode()


NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
IDLE_FIRMWARE = {
    "state": "Idle", "status": "Idle", "location": None, "retrieve_date": None, "attempt": None,
    "attempts": None, "next_step_at": None, "last_error": None, "waiting": None, "last": None,
}  # fmt: skip
IDLE_DIAGNOSTICS = {
    "status": "Idle", "file_name": None, "location": None, "attempt": None, "attempts": None,
    "next_attempt_at": None, "last_error": None, "last": None,
}  # fmt: skip


def transfer_lines(firmware: dict[str, Any] | None, diagnostics: dict[str, Any] | None) -> list[str]:
    body = {"charge_points": [{"id": "CP-1", "connected": True, "accepted": True, "connectors": [],
                               "firmware": firmware, "diagnostics": diagnostics}]}  # fmt: skip
    text = format_status(body, NOW)
    return [line for line in text.splitlines() if "firmware" in line or "diagnostics" in line]


def test_nothing_is_said_of_firmware_or_diagnostics_while_both_are_idle_with_no_last_outcome() -> None:
    assert transfer_lines(IDLE_FIRMWARE, IDLE_DIAGNOSTICS) == []
    assert transfer_lines(None, None) == []  # a bridge from before these fields


def test_a_running_update_and_an_upload_waiting_to_retry_say_where_they_are() -> None:
    downloading = {**IDLE_FIRMWARE, "state": "Downloading", "status": "Downloading",
                   "location": "ftp://cp:***@fw.example/fw-2.0.bin", "attempt": 1, "attempts": 3}  # fmt: skip
    retrying = {**downloading, "state": "RetryWait", "attempt": 2, "next_step_at": "2026-11-22T10:01:00Z",
                "last_error": "HTTP 404 Not Found"}  # fmt: skip
    uploading = {**IDLE_DIAGNOSTICS, "status": "Uploading", "file_name": "diag.tar.gz",
                 "location": "ftp://cp:***@logs.example/in/", "attempt": 1, "attempts": 2,
                 "next_attempt_at": "2026-11-22T10:00:30Z", "last_error": "connection refused"}  # fmt: skip
    assert transfer_lines(downloading, uploading) == [
        "  firmware update Downloading: ftp://cp:***@fw.example/fw-2.0.bin, attempt 1 of 3",
        "  diagnostics upload Uploading: diag.tar.gz to ftp://cp:***@logs.example/in/, attempt 1 of 2, "
        "next attempt at 2026-11-22 10:00:30 UTC (in 30 s), last error: connection refused",
    ]
    assert transfer_lines(retrying, None) == [
        "  firmware update RetryWait: ftp://cp:***@fw.example/fw-2.0.bin, attempt 2 of 3, "
        "next attempt at 2026-11-22 10:01:00 UTC (in 60 s), last error: HTTP 404 Not Found",
    ]
    installing = {**downloading, "state": "Installing", "waiting": "http://fw.example/fw-3.0.bin"}
    assert transfer_lines(installing, None)[0].endswith(", then http://fw.example/fw-3.0.bin")


def test_the_last_outcome_is_shown_with_its_time_and_reason_when_nothing_runs() -> None:
    failed = {**IDLE_FIRMWARE, "last": {"status": "InstallationFailed", "at": "2026-11-22T09:55:00Z",
                                        "reason": "the install command exited 3"}}  # fmt: skip
    uploaded = {**IDLE_DIAGNOSTICS, "last": {"status": "Uploaded", "at": "2026-11-22T07:30:00Z",
                                             "reason": None, "file_name": "diag.tar.gz"}}  # fmt: skip
    assert transfer_lines(failed, uploaded) == [
        "  last firmware update: InstallationFailed at 2026-11-22 09:55:00 UTC (5 min ago): "
        "the install command exited 3",
        "  last diagnostics upload: Uploaded diag.tar.gz at 2026-11-22 07:30:00 UTC (2 h 30 min ago)",
    ]
    # A pending update is what is said, over a last outcome.
    pending = {**failed, "state": "Scheduled", "location": "http://fw.example/fw.bin",
               "retrieve_date": "2026-11-23T03:00:00Z"}  # fmt: skip
    assert transfer_lines(pending, None) == [
        "  firmware update pending: http://fw.example/fw.bin at 2026-11-23 03:00:00 UTC (in 17 h 0 min)"
    ]


async def test_the_status_command_shows_a_pending_update_and_a_failed_upload(
    csms: StrictCentralSystem, tmp_path: Any
) -> None:
    """The lines read from the real API's fields, not from a body written for the test."""
    port = free_port()
    config = make_config(csms.url, tmp_path, api=f"127.0.0.1:{port}")
    nowhere = f"ftp://cp:s3cret@127.0.0.1:{dead_port()}/"  # nothing listens there
    async with running(config):
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)
        retrieve = datetime.now(UTC) + timedelta(hours=3)
        await csms.call("CP-1", call.UpdateFirmware(location=nowhere + "fw.bin", retrieve_date=iso(retrieve)))
        await csms.call("CP-1", call.GetDiagnostics(location=nowhere, retries=0))
        await csms.wait_for_call(
            "CP-1", "DiagnosticsStatusNotification", lambda p: p["status"] == "UploadFailed"
        )
        printed: list[str] = []
        assert await asyncio.to_thread(show_status, config.api, printed.append) == 0
    lines = printed[0].splitlines()
    pending = [line for line in lines if "firmware" in line]
    assert pending == [
        f"  firmware update pending: ftp://cp:***@127.0.0.1:{nowhere.split(':')[-1]}fw.bin "
        f"at {retrieve:%Y-%m-%d %H:%M:%S} UTC (in 2 h 59 min)"
    ]
    upload = [line for line in lines if "diagnostics" in line]
    assert len(upload) == 1 and upload[0].startswith(
        "  last diagnostics upload: UploadFailed diagnostics-CP-1-"
    )
    assert " s ago): " in upload[0]  # when, and why after the colon
    assert "s3cret" not in printed[0]


def list_and_reservation_lines(body_fields: dict[str, Any]) -> list[str]:
    body = {"charge_points": [{"id": "CP-1", "connected": True, "accepted": True, "connectors": [],
                               **body_fields}]}  # fmt: skip
    text = format_status(body, NOW)
    return [line for line in text.splitlines() if "list" in line or "reserv" in line]


def test_the_local_list_and_each_reservation_have_a_line() -> None:
    reservations = [
        {"id": 7, "connector": 1, "requested_connector": 1, "id_tag": "TAG-1", "parent_id_tag": None,
         "expiry": "2026-11-22T10:20:00.000Z"},
        {"id": 42, "connector": 2, "requested_connector": 0, "id_tag": "ABC999", "parent_id_tag": "FLEET-7",
         "expiry": "2026-11-22T12:00:00.000Z"},
    ]  # fmt: skip
    assert list_and_reservation_lines(
        {"local_list": {"version": 3, "entries": 120}, "reservations": reservations}
    ) == [
        "  local authorization list: version 3, 120 entries",
        "  connector 1 reserved: reservation 7 for TAG-1, expires at 2026-11-22 10:20:00 UTC (in 20 min)",
        "  connector 2 reserved: reservation 42 for ABC999 (or its group FLEET-7), asked for any connector, "
        "expires at 2026-11-22 12:00:00 UTC (in 2 h 0 min)",
    ]
    one = list_and_reservation_lines({"local_list": {"version": 1, "entries": 1}, "reservations": []})
    assert one == ["  local authorization list: version 1, 1 entry"]


def test_no_list_and_no_reservation_say_nothing() -> None:
    assert list_and_reservation_lines({"local_list": {"version": 0, "entries": 0}, "reservations": []}) == []
    assert list_and_reservation_lines({}) == []  # a bridge from before these fields


async def test_the_status_command_shows_the_list_and_a_reservation_from_the_api(
    csms: StrictCentralSystem, tmp_path: Any
) -> None:
    config = make_config(csms.url, tmp_path, api=f"127.0.0.1:{free_port()}", connectors=2)
    async with running(config):
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 2)
        entries = [{"id_tag": t, "id_tag_info": {"status": "Accepted"}} for t in ("CARD-1", "CARD-2")]
        listed = await csms.call(
            "CP-1", call.SendLocalList(list_version=4, update_type="Full", local_authorization_list=entries)
        )
        expiry = datetime.now(UTC) + timedelta(hours=2)
        reserved = await csms.call(
            "CP-1",
            call.ReserveNow(connector_id=2, expiry_date=iso(expiry), id_tag="CARD-1", reservation_id=77),
        )
        assert (listed.status, reserved.status) == ("Accepted", "Accepted")
        printed: list[str] = []
        assert await asyncio.to_thread(show_status, config.api, printed.append) == 0
    lines = printed[0].splitlines()
    assert "  local authorization list: version 4, 2 entries" in lines
    assert [line for line in lines if "reserv" in line] == [
        f"  connector 2 reserved: reservation 77 for CARD-1, expires at {expiry:%Y-%m-%d %H:%M:%S} UTC "
        "(in 119 min)"
    ]
    assert any(line.startswith("  connector 2: Reserved") for line in lines)


def security_lines(security: dict[str, Any] | None) -> list[str]:
    body = {"charge_points": [{"id": "CP-1", "connected": False, "accepted": False, "connectors": [],
                               "security": security}]}  # fmt: skip
    return [line for line in format_status(body, NOW).splitlines() if "security" in line or "WARNING" in line]


def test_the_security_profile_a_weakened_tls_and_the_last_event_are_said() -> None:
    warning = "tls.verify_server is false: the central system's certificate is NOT checked"
    event = {"at": "2026-11-22T09:55:00.000Z", "type": "InvalidCentralSystemCertificate",
             "tech_info": "TLS: the central system's certificate has expired (csms.example.com)"}  # fmt: skip
    security = {"profile": 2, "trying_profile": 3, "tls": True, "warnings": [warning], "events_sent": True,
                "last_event": event}  # fmt: skip
    assert security_lines(security) == [
        "  security profile 2 over wss://, trying profile 3",
        f"  WARNING: {warning}",
        "  last security event: InvalidCentralSystemCertificate: TLS: the central system's certificate has "
        "expired (csms.example.com) at 2026-11-22 09:55:00 UTC (5 min ago)",
    ]
    plain = {"profile": 0, "trying_profile": None, "tls": False, "warnings": [], "events_sent": False,
             "last_event": None}  # fmt: skip
    assert security_lines(plain) == ["  security profile 0 over ws://"]
    assert security_lines(None) == []  # a bridge from before this field
