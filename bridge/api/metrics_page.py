"""`GET /metrics`: the counted samples of each charge point, and gauges read from its snapshot.

Gauges are read at scrape time from `ChargePoint.snapshot()`, so they cannot go stale and say what the
status API says. Names and labels are a contract (docs/api.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from bridge.core.boot import BootState
from bridge.core.connector import Status
from bridge.metrics import Metrics, Sample, render
from bridge.runtime.snapshot import ChargePointSnapshot


class Scraped(Protocol):
    metrics: Metrics

    def snapshot(self) -> ChargePointSnapshot: ...


def metrics_text(charge_points: Mapping[str, Scraped]) -> str:
    counted = [sample for cp in charge_points.values() for sample in cp.metrics.samples()]
    return render([*counted, *_gauges(charge_points)])


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
