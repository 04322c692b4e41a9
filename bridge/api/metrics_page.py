"""`GET /metrics`: the counted samples of each charge point, and gauges read from its snapshot.

Gauges are read at scrape time from `ChargePoint.snapshot()`, so they cannot go stale and say what the
status API says. Names and labels are a contract (docs/api.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from bridge.core.boot import BootState
from bridge.core.connector import Status
from bridge.core.diagnostics import DiagnosticsState
from bridge.core.firmware import FirmwareState
from bridge.metrics import Labels, Metrics, Sample
from bridge.runtime.snapshot import ChargePointSnapshot


class Scraped(Protocol):
    metrics: Metrics

    def snapshot(self) -> ChargePointSnapshot: ...


# The label of each state, made once: a scrape of 5,000 charge points renders 11 of these for each.
_FIRMWARE_STATES = tuple((state, ("state", str(state))) for state in FirmwareState)
_DIAGNOSTICS_STATES = tuple((state, ("state", str(state))) for state in DiagnosticsState)


def metric_samples(charge_points: Mapping[str, Scraped]) -> list[Sample]:
    """Every sample, read now (on the event loop: the parts' state as it is at this instant)."""
    counted = [sample for cp in charge_points.values() for sample in cp.metrics.samples()]
    return [*counted, *_gauges(charge_points)]


def _gauges(charge_points: Mapping[str, Scraped]) -> Iterable[Sample]:
    for cp_id, cp in charge_points.items():
        snap = cp.snapshot()
        base = (("charge_point", cp_id),)
        yield "ocpp_bridge_connected", base, float(snap.link.connected)
        yield "ocpp_bridge_accepted", base, float(snap.link.accepted)
        for state in BootState:
            in_state = float(snap.link.boot_state == state)
            yield "ocpp_bridge_boot_state", (*base, ("state", str(state))), in_state
        yield "ocpp_bridge_outbox_messages", base, float(snap.queued_messages)
        oldest = snap.oldest_queued_at
        now_s = snap.now.timestamp()  # the clock the messages were stamped with (CS-corrected)
        yield "ocpp_bridge_outbox_oldest_age_seconds", base, max(0.0, now_s - oldest) if oldest else 0.0
        for c in snap.connectors:
            labels = (*base, ("connector", str(c.id)))
            for status in Status:
                flag = float(c.status.status is status)
                yield "ocpp_bridge_connector_status", (*labels, ("status", str(status))), flag
            yield "ocpp_bridge_transaction_active", labels, float(c.id_tag is not None)
            yield "ocpp_bridge_device_up", labels, float(c.device.answering)
            if c.energy_wh is not None:
                yield "ocpp_bridge_energy_wh", labels, c.energy_wh
            if c.power_w is not None:
                yield "ocpp_bridge_power_w", labels, c.power_w
            if c.current_limit_a is not None:
                yield "ocpp_bridge_current_limit_a", labels, c.current_limit_a
            if (r := c.reservation) is not None:
                held = (*labels, ("reservation_id", str(r.reservation_id)))
                yield "ocpp_bridge_reservation_expiry_timestamp_seconds", held, r.expiry.timestamp()
        if (local_list := snap.local_list) is not None:
            yield "ocpp_bridge_local_list_version", base, float(local_list.version)
            yield "ocpp_bridge_local_list_entries", base, float(local_list.entries)
        if (security := snap.security) is not None:
            yield "ocpp_bridge_security_profile", base, float(security.profile)
            yield "ocpp_bridge_tls_verification_weakened", base, float(bool(security.warnings))
        yield from _transfers(snap, base)


def _transfers(snap: ChargePointSnapshot, base: Labels) -> Iterable[Sample]:
    """The firmware update and the diagnostics upload: their state, and when and how the last ended
    (an alert fires on a `status` ending in Failed)."""
    firmware, diagnostics = snap.firmware, snap.diagnostics
    if firmware is not None:
        for state, label in _FIRMWARE_STATES:
            yield "ocpp_bridge_firmware_state", (*base, label), float(firmware.state is state)
        if (out := firmware.outcome) is not None:
            labels = (*base, ("status", str(out.status)))
            yield "ocpp_bridge_firmware_last_outcome_timestamp_seconds", labels, out.at
    if diagnostics is not None:
        for upload, label in _DIAGNOSTICS_STATES:
            yield "ocpp_bridge_diagnostics_state", (*base, label), float(diagnostics.state is upload)
        if (done := diagnostics.outcome) is not None:
            labels = (*base, ("status", str(done.status)))
            yield "ocpp_bridge_diagnostics_last_outcome_timestamp_seconds", labels, done.at
