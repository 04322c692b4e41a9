"""One typed snapshot of a charge point: what the outside sees, worked out in one place.

The status API, `/metrics`, the MQTT publisher, DataTransfer "DeviceStatus", the daemon's health
check and `ocpp-bridge status` (through the API) all read a `ChargePointSnapshot`; none of them works
out by itself whether a device answers, what a connector's status is, or how many messages wait.
The snapshot is frozen: taking it costs a few attribute reads, and nothing that renders it can change
the charge point.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from bridge.clock import iso
from bridge.core.config_keys import Configuration
from bridge.core.connector import Reservation, StatusReport
from bridge.core.device_errors import ocpp_fault
from bridge.core.diagnostics import DiagnosticsSnapshot
from bridge.core.firmware import FirmwareSnapshot
from bridge.core.local_list import LocalList
from bridge.ocpp.data_transfer import Answer
from bridge.ocpp.ports import LinkSettings
from bridge.ocpp.session import Session
from bridge.runtime.connector import ConnectorRuntime
from bridge.runtime.coordinator import DeviceSnapshot


class CpIdentity(LinkSettings, Protocol):
    """What the snapshot shows of the charge point's configuration (ChargePointConfig has it): its link's
    settings (id, csms_url, reconnect) and its model."""

    @property
    def model(self) -> str: ...


@dataclass(frozen=True)
class ConnectorSnapshot:
    id: int
    status: StatusReport
    transaction_id: int | None  # the central system's; None before its StartTransaction was answered
    id_tag: str | None  # the running transaction's tag
    current_limit_a: float | None  # what the device was set to; 0 = paused by the limit; None: never
    poll_interval_s: float | None  # None: read on the device's reports
    device: DeviceSnapshot
    reservation: Reservation | None = None  # the ReserveNow it holds (frozen: the core's own object)

    @property
    def energy_wh(self) -> float | None:
        return self.device.reading.energy_wh if self.device.reading else None

    @property
    def power_w(self) -> float | None:
        return self.device.reading.power_w if self.device.reading else None


@dataclass(frozen=True)
class LinkSnapshot:
    connected: bool
    accepted: bool  # connected, and BootNotification Accepted in this run
    boot_state: str
    connected_since: datetime | None
    accepted_since: datetime | None
    last_error: str | None
    last_error_at: datetime | None


@dataclass(frozen=True)
class LocalListSnapshot:
    version: int  # what GetLocalListVersion answers: 0 while the list is empty
    entries: int


@dataclass(frozen=True)
class SecuritySnapshot:
    """The security profile in force (and one being tried), the TLS warnings, the newest security event."""

    profile: int
    trying_profile: int | None
    tls: bool  # the link in use (or tried) is wss://
    warnings: tuple[str, ...]  # loud: verification weakened by the file
    events_sent: bool  # SecurityEventNotification goes to the central system (else the log only)
    last_event: tuple[datetime, str, str | None] | None  # (when, type, techInfo)


@dataclass(frozen=True)
class ChargePointSnapshot:
    id: str
    csms_url: str
    model: str
    started_at: datetime | None
    now: datetime  # the charge point's clock (corrected by the central system) when it was taken
    link: LinkSnapshot
    queued_messages: int  # transaction messages waiting for the central system
    oldest_queued_at: float | None  # epoch seconds the oldest of them was made
    heartbeat_interval_s: int
    meter_value_sample_interval_s: int
    clock_aligned_data_interval_s: int
    message_timeout_s: int
    reconnect_max_s: float
    connectors: tuple[ConnectorSnapshot, ...]
    diagnostics: DiagnosticsSnapshot | None = None  # the GetDiagnostics upload, running or the last one
    firmware: FirmwareSnapshot | None = None  # the UpdateFirmware job, pending, running or the last one
    local_list: LocalListSnapshot | None = None  # the local authorization list (SendLocalList)
    security: SecuritySnapshot | None = None
    # The reporting-only central systems (bridge/reporting): csms_url, id, connected, accepted, queued,
    # last_error each; never a password.
    report_to: tuple[Mapping[str, Any], ...] = ()

    @property
    def transactions_running(self) -> int:
        return sum(c.id_tag is not None for c in self.connectors)

    @property
    def reservations(self) -> tuple[tuple[int, Reservation], ...]:
        """(connector, the reservation it holds) for each reserved connector, in connector order."""
        return tuple((c.id, c.reservation) for c in self.connectors if c.reservation is not None)


def take(
    cp: CpIdentity,
    started_at: datetime | None,
    now: datetime,
    session: Session,
    configuration: Configuration,
    connectors: Mapping[int, ConnectorRuntime],
    limit_of: Callable[[int], float | None],
    cs_id: Callable[[int], int | None],
    diagnostics: DiagnosticsSnapshot | None = None,
    firmware: FirmwareSnapshot | None = None,
    local_list: LocalList | None = None,
    security: SecuritySnapshot | None = None,
    report_to: Sequence[Mapping[str, Any]] = (),
) -> ChargePointSnapshot:
    """The snapshot of one charge point, from the parts that own each piece (each connector's
    reservation from its core, which holds it)."""
    link, c = session.link, configuration
    return ChargePointSnapshot(
        id=cp.id,
        csms_url=cp.csms_url,
        model=cp.model,
        started_at=started_at,
        now=now,
        link=LinkSnapshot(
            link.connected,
            session.online,
            str(session.boot.state),
            link.connected_since,
            link.accepted_since,
            link.last_error,
            link.last_error_at,
        ),
        queued_messages=session.pending_transactional(),
        oldest_queued_at=session.oldest_transactional_at(),
        heartbeat_interval_s=c.get_int("HeartbeatInterval"),
        meter_value_sample_interval_s=c.get_int("MeterValueSampleInterval"),
        clock_aligned_data_interval_s=c.get_int("ClockAlignedDataInterval"),
        message_timeout_s=c.get_int("MessageTimeout"),
        reconnect_max_s=cp.reconnect.max_s,
        connectors=tuple(_connector(cid, rt, limit_of(cid), cs_id) for cid, rt in connectors.items()),
        diagnostics=diagnostics,
        firmware=firmware,
        local_list=None if local_list is None else LocalListSnapshot(local_list.version, len(local_list)),
        security=security,
        report_to=tuple(report_to),
    )


def _connector(
    cid: int, rt: ConnectorRuntime, limit: float | None, cs_id: Callable[[int], int | None]
) -> ConnectorSnapshot:
    tx = rt.core.transaction
    return ConnectorSnapshot(
        cid, rt.core.status(), cs_id(tx.local_id) if tx else None, tx.id_tag if tx else None, limit,
        rt.device.poll_interval_s, rt.device.snapshot(), rt.core.reservation,
    )  # fmt: skip


def _device_json(device: DeviceSnapshot) -> dict[str, Any]:
    """The device's health, as an installer asks it: does it answer, since when not, why."""
    return {
        "description": device.description,
        "started": device.started,  # its probe at start succeeded
        "answers": device.answering,
        "failed_reads": device.failed_reads,  # in a row
        "problem": device.fault.info if device.fault is not None else None,
        "notes": list(device.notes),  # what the driver says beyond a reading (Charger.probe_lines)
    }


def status_json(snap: ChargePointSnapshot) -> dict[str, Any]:
    """The status API's view of one charge point (a contract: docs/api.md); MQTT publishes the same."""
    link = snap.link
    return {
        "id": snap.id,
        "enabled": True,
        "csms_url": snap.csms_url or None,  # null: no primary, reporting only (docs/reporting.md)
        "started_at": iso(snap.started_at) if snap.started_at else None,
        "boot_state": link.boot_state,
        "connected": link.connected,
        "accepted": link.accepted,
        "connected_since": iso(link.connected_since) if link.connected_since else None,
        "accepted_since": iso(link.accepted_since) if link.accepted_since else None,
        "last_error": link.last_error,
        "last_error_at": iso(link.last_error_at) if link.last_error_at else None,
        "queued_transaction_messages": snap.queued_messages,
        "oldest_queued_at": _iso_epoch(snap.oldest_queued_at),  # null when none waits
        "heartbeat_interval_s": snap.heartbeat_interval_s,
        "meter_value_sample_interval_s": snap.meter_value_sample_interval_s,
        "clock_aligned_data_interval_s": snap.clock_aligned_data_interval_s,
        "connectors": [
            {
                "id": c.id,
                "status": str(c.status.status),
                "error_code": c.status.error_code,
                "transaction_id": c.transaction_id,
                "energy_wh": c.energy_wh,
                "current_limit_a": c.current_limit_a,
                "power_w": c.power_w,
                "id_tag": c.id_tag,
                "device": _device_json(c.device),
            }
            for c in snap.connectors
        ],
        "diagnostics": _diagnostics_json(snap.diagnostics) if snap.diagnostics is not None else None,
        "firmware": _firmware_json(snap.firmware) if snap.firmware is not None else None,
        "local_list": _local_list_json(snap.local_list),
        "reservations": [reservation_json(cid, r) for cid, r in snap.reservations],
        "security": _security_json(snap.security),
        "report_to": [dict(target) for target in snap.report_to],  # reporting targets (docs/reporting.md)
    }


def _security_json(sec: SecuritySnapshot | None) -> dict[str, Any] | None:
    if sec is None:
        return None
    last = sec.last_event
    return {
        "profile": sec.profile, "trying_profile": sec.trying_profile, "tls": sec.tls,
        "warnings": list(sec.warnings), "events_sent": sec.events_sent,
        "last_event": None if last is None else {"at": iso(last[0]), "type": last[1], "tech_info": last[2]},
    }  # fmt: skip


def _local_list_json(ll: LocalListSnapshot | None) -> dict[str, Any] | None:
    return None if ll is None else {"version": ll.version, "entries": ll.entries}


def reservation_json(connector: int, r: Reservation) -> dict[str, Any]:
    """A reservation as the status API shows it; `requested_connector` is 0 when the central system
    asked for any connector (ReserveConnectorZeroSupported) and the bridge picked `connector`."""
    return {
        "id": r.reservation_id, "connector": connector, "requested_connector": r.connector_id,
        "id_tag": r.id_tag, "parent_id_tag": r.parent_id_tag, "expiry": iso(r.expiry),
    }  # fmt: skip


def _diagnostics_json(d: DiagnosticsSnapshot) -> dict[str, Any]:
    """The upload running (or waiting for its next attempt), and how the last one ended."""
    out = d.outcome
    return {
        "status": str(d.status),  # Idle or Uploading, as a TriggerMessage would report it
        "file_name": d.file_name,
        "location": d.location,  # its password masked
        "attempt": d.attempt if d.file_name else None,
        "attempts": d.attempts if d.file_name else None,
        "next_attempt_at": _iso_epoch(d.deadline),
        "last_error": d.last_error,
        "last": None if out is None else {
            "status": str(out.status), "reason": out.reason, "at": _iso_epoch(out.at),
            "file_name": out.file_name,
        },
    }  # fmt: skip


def _firmware_json(f: FirmwareSnapshot) -> dict[str, Any]:
    """The update pending (Scheduled: waiting for retrieveDate), running, and how the last one ended."""
    out, running = f.outcome, f.location is not None
    return {
        "state": str(f.state),  # Idle, Scheduled, Downloading, RetryWait, Downloaded, Installing, ...
        "status": str(f.status),  # as a TriggerMessage would report it
        "location": f.location,  # its password masked
        "retrieve_date": _iso_epoch(f.retrieve_date),
        "attempt": f.attempt if running else None,
        "attempts": f.attempts if running else None,
        "next_step_at": _iso_epoch(f.deadline),  # retrieveDate, the next attempt, or the boot deadline
        "last_error": f.last_error,
        "waiting": f.queued_location,  # an update that starts when the install running ends
        "last": None if out is None else {
            "status": str(out.status), "reason": out.reason, "at": _iso_epoch(out.at),
        },
    }  # fmt: skip


def _iso_epoch(epoch: float | None) -> str | None:
    return None if epoch is None else iso(datetime.fromtimestamp(epoch, UTC))


def devices_json(snap: ChargePointSnapshot) -> dict[str, Any]:
    """A diagnostics archive's devices.json: each connector's device as the bridge last found it, its
    capabilities, whether its probe at start succeeded, its health and its latest reading."""
    return {
        str(c.id): {
            **_device_json(c.device),
            "capabilities": dataclasses.asdict(c.device.capabilities),
            "reading": dataclasses.asdict(c.device.reading) if c.device.reading else None,
        }
        for c in snap.connectors
    }


def device_status_answer(snapshot: Callable[[], ChargePointSnapshot], message_id: str | None) -> Answer:
    """DataTransfer vendorId "ocpp-bridge", messageId "DeviceStatus": `device_status_json`."""
    if message_id != "DeviceStatus":
        return "UnknownMessageId", None
    return "Accepted", json.dumps(device_status_json(snapshot()), separators=(",", ":"))


def device_status_json(snap: ChargePointSnapshot) -> list[dict[str, Any]]:
    """DataTransfer "DeviceStatus": what each connector's device reports, for an operator who cannot
    reach the box otherwise. Nothing secret is in it."""
    report = []
    for c in snap.connectors:
        r = c.device.reading
        report.append({
            "connector": c.id,
            "device": c.device.description,
            "answering": c.device.answering,
            "failed_reads": c.device.failed_reads,
            "plugged": r.plugged if r else None,
            "energy_wh": r.energy_wh if r else None,
            "power_w": r.power_w if r else None,
            "fault": ocpp_fault(r.fault).error_code if r and r.fault else None,
        })  # fmt: skip
    return report
