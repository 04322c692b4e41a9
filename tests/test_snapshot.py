"""The snapshot of a charge point (bridge.runtime.snapshot) and what renders it as JSON.

Two levels. `status_json` and `device_status_json` are pure: they are given a snapshot made by hand and
must give back exactly the contract of docs/api.md (the keys are read from its example, so the two
cannot drift apart). The snapshot itself is taken by a real ChargePoint (bridge.chargepoint), built from
a configuration through the real loader, with a real store in tmp_path and a simulated charger whose
register runs on a hand-moved clock; it is not run (no link, no poll loop): the test reads the device
through its coordinator and moves the connector core by hand, and the snapshot must follow. The
status API over HTTP renders the same snapshot in test_api.
"""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.base import ChargerCapabilities, ChargerReading, DeviceFault, Fault, FaultKind
from adapters.chargers.simulated import SimulatedCharger, SimulatedOptions
from bridge.chargepoint import ChargePoint
from bridge.core.connector import Reservation, Status, StatusReport
from bridge.core.diagnostics import DiagnosticsUpload
from bridge.core.firmware import FirmwareUpdate
from bridge.core.firmware_effects import DownloadFailed
from bridge.runtime.coordinator import DeviceSnapshot
from bridge.runtime.snapshot import (
    ChargePointSnapshot,
    ConnectorSnapshot,
    LinkSnapshot,
    LocalListSnapshot,
    SecuritySnapshot,
    device_status_json,
    status_json,
)
from bridge.store import Store
from tests.conftest import make_config
from tests.helpers.clock import ManualClock

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 11, 22, 10, 0, 0, 123000, tzinfo=UTC)
CAPS = ChargerCapabilities(
    can_sense_plug=True, can_unlock=True, fixed_cable=False, can_switch_phases=False, can_reset=False,
    has_meter=True, has_rfid=False, phases=3, min_current_a=6, max_current_a=16, current_step_a=1,
)  # fmt: skip


def documented_status() -> dict[str, Any]:
    """The example of `GET /api/v1/status` in docs/api.md: one charge point."""
    text = (ROOT / "docs" / "api.md").read_text()
    section = text.split("## `GET /api/v1/status`", 1)[1]
    match = re.search(r"```json\n(.*?)```", section, re.S)
    assert match is not None, "docs/api.md: no JSON example for GET /api/v1/status"
    [cp] = json.loads(match.group(1))["charge_points"]
    assert isinstance(cp, dict)
    return cp


def keys(cp: dict[str, Any]) -> tuple[set[str], set[str], set[str]]:
    """The keys of a charge point, of its first connector and of that connector's device."""
    connector = cp["connectors"][0]
    return set(cp), set(connector), set(connector["device"])


def snapshot(device: DeviceSnapshot, **connector: Any) -> ChargePointSnapshot:
    one = ConnectorSnapshot(
        **{"id": 1, "status": StatusReport(Status.CHARGING), "transaction_id": 17, "id_tag": "ABC123",
           "current_limit_a": 16.0, "poll_interval_s": 1.0, "device": device, **connector}
    )  # fmt: skip
    return ChargePointSnapshot(
        id="CP-1",
        csms_url="ws://127.0.0.1:9000/ocpp",
        model="Bridge",
        started_at=T0,
        now=T0,
        link=LinkSnapshot(True, True, "Accepted", T0, T0, "connection refused", T0),
        queued_messages=2,
        oldest_queued_at=None,
        heartbeat_interval_s=300,
        meter_value_sample_interval_s=60,
        clock_aligned_data_interval_s=0,
        message_timeout_s=30,
        reconnect_max_s=60.0,
        connectors=(one,),
    )


READING = ChargerReading(True, True, True, energy_wh=12368.4, power_w=11040.0,
                         fault=DeviceFault("GroundFailure"))  # fmt: skip
ANSWERING = DeviceSnapshot("go-e at 192.168.1.40", CAPS, True, READING, 0, None, 5.0, 6.0)


# -- rendering (pure) --------------------------------------------------------------------------
def test_status_json_is_the_contract_of_docs_api() -> None:
    rendered = status_json(snapshot(ANSWERING))
    assert keys(rendered) == keys(documented_status())
    assert rendered == {
        "id": "CP-1", "enabled": True, "csms_url": "ws://127.0.0.1:9000/ocpp",
        "started_at": "2026-11-22T10:00:00.123Z", "boot_state": "Accepted",
        "connected": True, "accepted": True,
        "connected_since": "2026-11-22T10:00:00.123Z", "accepted_since": "2026-11-22T10:00:00.123Z",
        "last_error": "connection refused", "last_error_at": "2026-11-22T10:00:00.123Z",
        "queued_transaction_messages": 2, "oldest_queued_at": None, "heartbeat_interval_s": 300,
        "meter_value_sample_interval_s": 60, "clock_aligned_data_interval_s": 0,
        "connectors": [{
            "id": 1, "status": "Charging", "error_code": "NoError", "transaction_id": 17,
            "energy_wh": 12368.4, "current_limit_a": 16.0, "power_w": 11040.0, "id_tag": "ABC123",
            "device": {"description": "go-e at 192.168.1.40", "started": True, "answers": True,
                       "failed_reads": 0, "problem": None, "notes": []},
        }],
        "diagnostics": None,  # no GetDiagnostics machine in this snapshot
        "firmware": None,  # nor an UpdateFirmware one
        "local_list": None,  # nor a local list
        "reservations": [],
        "security": None,  # nor the security parts
        "report_to": [],  # no reporting-only central system (docs/reporting.md)
    }  # fmt: skip
    json.dumps(rendered)  # and it is JSON as it stands


def test_the_security_object_is_the_contract_of_docs_api() -> None:
    event = (T0, "InvalidCentralSystemCertificate", "TLS: expired")
    security = SecuritySnapshot(2, None, True, (), True, event)
    rendered = status_json(dataclasses.replace(snapshot(ANSWERING), security=security))
    assert set(rendered["security"]) == set(documented_status()["security"])
    assert rendered["security"] == {
        "profile": 2, "trying_profile": None, "tls": True, "warnings": [], "events_sent": True,
        "last_event": {"at": "2026-11-22T10:00:00.123Z", "type": "InvalidCentralSystemCertificate",
                       "tech_info": "TLS: expired"},
    }  # fmt: skip


def test_the_firmware_and_diagnostics_objects_are_the_contract_of_docs_api() -> None:
    """Rendered from the machines (a failed update, then one pending), with the keys of the example."""
    fw, at = FirmwareUpdate(), T0.timestamp()
    fw.request("ftp://cp:pw@fw.example.com/cp-2.0.bin", at, 0, None, at)
    fw.handle(DownloadFailed(fw.job, "ftp://cp:pw@fw.example.com/cp-2.0.bin: 550 No such file"), at + 1)
    fw.request("ftp://cp:pw@fw.example.com/cp-2.1.bin", at + 86400, 2, 300, at + 2)
    diagnostics = DiagnosticsUpload()
    rendered = status_json(
        dataclasses.replace(snapshot(ANSWERING), firmware=fw.snapshot(), diagnostics=diagnostics.snapshot())
    )
    documented = documented_status()
    for key in ("firmware", "diagnostics"):
        assert set(rendered[key]) == set(documented[key]), key
    assert set(rendered["firmware"]["last"]) == set(documented["firmware"]["last"])
    assert rendered["firmware"] == {
        "state": "Scheduled", "status": "Idle", "location": "ftp://cp:***@fw.example.com/cp-2.1.bin",
        "retrieve_date": "2026-11-23T10:00:00.123Z", "attempt": 0, "attempts": 3,
        "next_step_at": "2026-11-23T10:00:00.123Z", "last_error": None, "waiting": None,
        "last": {"status": "DownloadFailed", "at": "2026-11-22T10:00:01.123Z",
                 "reason": "ftp://cp:***@fw.example.com/cp-2.0.bin: 550 No such file"},
    }  # fmt: skip
    assert "pw@" not in json.dumps(rendered)


def test_the_local_list_and_the_reservations_are_the_contract_of_docs_api() -> None:
    """Connector 2 reserved for any connector (asked for 0), connector 1 for a tag of its own: one
    object each, in connector order, with the keys of the example."""
    expiry = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    anywhere = Reservation(42, "ABC999", "FLEET-7", expiry, 0)
    own = Reservation(7, "TAG-1", None, expiry, 1)
    cp = snapshot(ANSWERING, status=StatusReport(Status.RESERVED), transaction_id=None, id_tag=None,
                  reservation=own)  # fmt: skip
    second = dataclasses.replace(cp.connectors[0], id=2, reservation=anywhere)
    rendered = status_json(
        dataclasses.replace(cp, connectors=(cp.connectors[0], second), local_list=LocalListSnapshot(3, 120))
    )
    documented = documented_status()
    assert set(rendered["local_list"]) == set(documented["local_list"])
    assert set(rendered["reservations"][0]) == set(documented["reservations"][0])
    assert rendered["local_list"] == {"version": 3, "entries": 120}
    assert rendered["reservations"] == [
        {"id": 7, "connector": 1, "requested_connector": 1, "id_tag": "TAG-1", "parent_id_tag": None,
         "expiry": "2026-11-22T12:00:00.000Z"},
        {"id": 42, "connector": 2, "requested_connector": 0, "id_tag": "ABC999", "parent_id_tag": "FLEET-7",
         "expiry": "2026-11-22T12:00:00.000Z"},
    ]  # fmt: skip


def test_a_device_gone_silent_does_not_answer() -> None:
    fault = DeviceFault("OtherError", "go-e at 192.168.1.40: timed out", "DeviceUnreachable")
    silent = dataclasses.replace(ANSWERING, failed_reads=3, fault=fault)
    device = status_json(snapshot(silent))["connectors"][0]["device"]
    assert device == {"description": "go-e at 192.168.1.40", "started": True, "answers": False,
                      "failed_reads": 3, "problem": "go-e at 192.168.1.40: timed out",
                      "notes": []}  # fmt: skip
    never_started = dataclasses.replace(ANSWERING, started=False, reading=None)
    assert status_json(snapshot(never_started))["connectors"][0]["device"]["answers"] is False


def test_nothing_known_yet_is_null() -> None:
    empty = dataclasses.replace(ANSWERING, reading=None)
    unlinked = LinkSnapshot(False, False, "NotBooted", None, None, None, None)
    cp = snapshot(empty, transaction_id=None, id_tag=None, current_limit_a=None)
    rendered = status_json(dataclasses.replace(cp, started_at=None, link=unlinked))
    for key in ("started_at", "connected_since", "accepted_since", "last_error", "last_error_at"):
        assert rendered[key] is None, key
    for key in ("transaction_id", "id_tag", "energy_wh", "power_w", "current_limit_a"):
        assert rendered["connectors"][0][key] is None, key
    assert cp.transactions_running == 0 and snapshot(empty).transactions_running == 1


def test_device_status_json_is_what_each_device_reports() -> None:
    assert device_status_json(snapshot(ANSWERING)) == [{
        "connector": 1, "device": "go-e at 192.168.1.40", "answering": True, "failed_reads": 0,
        "plugged": True, "energy_wh": 12368.4, "power_w": 11040.0, "fault": "GroundFailure",
    }]  # fmt: skip


def test_device_status_json_names_a_drivers_neutral_fault_in_ocpp_words() -> None:
    reading = dataclasses.replace(READING, fault=Fault(FaultKind.RESIDUAL_CURRENT, "RCD tripped", "5"))
    [device] = device_status_json(snapshot(dataclasses.replace(ANSWERING, reading=reading)))
    assert device["fault"] == "GroundFailure"


def test_a_snapshot_cannot_be_changed() -> None:
    taken = snapshot(ANSWERING)
    with pytest.raises(dataclasses.FrozenInstanceError):
        taken.queued_messages = 0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        taken.connectors[0].device.failed_reads = 0  # type: ignore[misc]


# -- taken by a charge point -------------------------------------------------------------------
class Unrun:
    """A ChargePoint built as the daemon builds it, not run: one simulated connector."""

    def __init__(self, tmp_path: Path, store: Store) -> None:
        config = make_config("ws://127.0.0.1:9/ocpp", tmp_path, ocpp={"HeartbeatInterval": 120})
        self.clock = ManualClock(T0)
        self.sim = SimulatedCharger(SimulatedOptions(), clock=self.clock.monotonic)
        self.cp = ChargePoint(
            config.charge_points[0], {1: self.sim}, self.clock, store, iter(range(1, 9)).__next__
        )
        self.rt = self.cp.connectors[1]

    def json(self) -> dict[str, Any]:
        return status_json(self.cp.snapshot())

    def connector(self) -> dict[str, Any]:
        connector: dict[str, Any] = self.json()["connectors"][0]
        return connector


async def test_a_charge_point_that_has_not_run(tmp_path: Path, store: Store) -> None:
    unrun = Unrun(tmp_path, store)
    rendered = unrun.json()
    assert keys(rendered) == keys(documented_status())
    assert {k: rendered[k] for k in ("id", "started_at", "boot_state", "connected", "accepted",
                                     "queued_transaction_messages", "heartbeat_interval_s")} == {
        "id": "CP-1", "started_at": None, "boot_state": "NotBooted", "connected": False, "accepted": False,
        "queued_transaction_messages": 0, "heartbeat_interval_s": 120,
    }  # fmt: skip
    assert unrun.connector()["status"] == "Available" and unrun.connector()["energy_wh"] is None
    assert (rendered["local_list"], rendered["reservations"]) == ({"version": 0, "entries": 0}, [])
    assert unrun.connector()["device"] == {"description": "simulated charger", "started": False,
                                           "answers": False, "failed_reads": 0, "problem": None,
                                           "notes": []}  # fmt: skip


async def test_the_snapshot_follows_the_connector_and_its_device(tmp_path: Path, store: Store) -> None:
    unrun = Unrun(tmp_path, store)
    rt = unrun.rt
    rt.device.started = True  # as after its probe (a simulated charger has nothing to probe)
    unrun.sim.plug()
    await rt.device.refresh()
    assert unrun.connector()["status"] == "Preparing" and unrun.connector()["device"]["answers"] is True
    rt.core.on_authorized("ABC123", True, unrun.clock.now(), 60)  # its effects are not the point here
    await rt.device.set_energy(True)
    unrun.clock.advance(3600)
    await rt.device.refresh()
    shown = unrun.connector()
    assert (shown["status"], shown["id_tag"], shown["transaction_id"]) == ("Charging", "ABC123", None)
    assert (shown["energy_wh"], shown["power_w"]) == (11040.0, 11040.0)  # an hour at 11.04 kW
    tx = rt.core.transaction
    assert tx is not None
    unrun.cp.messages.ids.answered(tx.local_id, 17)  # StartTransaction.conf: the outbox keeps the id
    assert unrun.connector()["transaction_id"] == 17 and unrun.cp.snapshot().transactions_running == 1
    unrun.cp.configuration.change("HeartbeatInterval", "600")
    assert unrun.json()["heartbeat_interval_s"] == 600


async def test_the_snapshot_follows_the_local_list_and_a_reservation(tmp_path: Path, store: Store) -> None:
    unrun = Unrun(tmp_path, store)
    entries = [{"idTag": "CARD-1", "idTagInfo": {"status": "Accepted"}},
               {"idTag": "CARD-2", "idTagInfo": {"status": "Blocked"}}]  # fmt: skip
    assert await unrun.cp.authorizer.send_local_list(5, "Full", entries) == "Accepted"
    assert unrun.json()["local_list"] == {"version": 5, "entries": 2}
    expiry = T0 + timedelta(hours=2)
    assert await unrun.cp.reservations.reserve(0, 31, "CARD-1", None, expiry) == "Accepted"
    try:
        assert unrun.connector()["status"] == "Reserved"
        assert unrun.json()["reservations"] == [{
            "id": 31, "connector": 1, "requested_connector": 0, "id_tag": "CARD-1", "parent_id_tag": None,
            "expiry": "2026-11-22T12:00:00.123Z",
        }]  # fmt: skip
        assert await unrun.cp.reservations.cancel(31) == "Accepted"
        assert unrun.json()["reservations"] == [] and unrun.connector()["status"] == "Available"
    finally:
        await unrun.cp.background.cancel_all()  # the expiry timer the reservation started


async def test_a_silent_device_does_not_answer_in_the_snapshot(tmp_path: Path, store: Store) -> None:
    unrun = Unrun(tmp_path, store)
    rt = unrun.rt
    rt.device.started = True
    await rt.device.refresh()
    unrun.sim.silence()
    for _ in range(3):  # faulted_after_failed_polls
        await rt.device.refresh()
    shown = unrun.connector()
    assert (shown["status"], shown["error_code"]) == ("Faulted", "OtherError")
    assert shown["device"]["answers"] is False and shown["device"]["failed_reads"] == 3
    assert shown["device"]["problem"] == "simulated charger: no answer (simulated)"
    [device] = device_status_json(unrun.cp.snapshot())
    assert device["answering"] is False
    unrun.sim.answer()
    await rt.device.refresh()
    assert unrun.connector()["device"]["answers"] is True and unrun.connector()["status"] == "Available"


def test_a_drivers_notes_are_listed_with_its_device() -> None:
    said = ("connected: yes; booted: True", "12:00:01 answered a call while its boot was Rejected")
    device = status_json(snapshot(dataclasses.replace(ANSWERING, notes=said)))["connectors"][0]["device"]
    assert device["notes"] == list(said)
