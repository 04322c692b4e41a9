"""Prometheus metrics, in the text exposition format (0.0.4), without a dependency.

Counters and histograms are counted as things happen (a dict update: cheap
enough for every frame); gauges are read from the charge points at scrape
time, so they cannot go stale (bridge/api/metrics_page.py). `GET /metrics` on the local API serves
`render(samples)`. Names and labels are a contract (dashboards rely on them):
see docs/api.md.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Iterator, Mapping

Labels = tuple[tuple[str, str], ...]

# name -> (type, help)
FAMILIES: dict[str, tuple[str, str]] = {
    "ocpp_bridge_messages_total": (
        "counter",
        "OCPP messages by charge point, direction (sent: CALLs we made; received: CALLs we answered), "
        "action and result (CALLRESULT = answered, a CALLERROR code, Timeout, NotConnected).",
    ),
    "ocpp_bridge_call_duration_seconds": (
        "histogram",
        "Time from sending a CALL to its answer, by charge point and action.",
    ),
    "ocpp_bridge_device_poll_duration_seconds": (
        "histogram",
        "Time one device read takes, by charge point and connector.",
    ),
    "ocpp_bridge_device_poll_errors_total": (
        "counter",
        "Device reads that failed (no answer or refused), by charge point and connector.",
    ),
    "ocpp_bridge_connected": ("gauge", "1 while the websocket to the central system is open."),
    "ocpp_bridge_accepted": ("gauge", "1 while connected with BootNotification Accepted in this run."),
    "ocpp_bridge_boot_state": ("gauge", "1 for the boot state (NotBooted/Pending/Rejected/Accepted)."),
    "ocpp_bridge_outbox_messages": ("gauge", "Transaction messages queued for the central system."),
    "ocpp_bridge_outbox_oldest_age_seconds": (
        "gauge",
        "Age of the oldest queued transaction message; 0 if none.",
    ),
    "ocpp_bridge_connector_status": ("gauge", "1 for the connector's OCPP status."),
    "ocpp_bridge_transaction_active": ("gauge", "1 while a transaction runs on the connector."),
    "ocpp_bridge_energy_wh": ("gauge", "The connector's energy register (Wh), as last read."),
    "ocpp_bridge_power_w": ("gauge", "Active power on the connector (W), as last read."),
    "ocpp_bridge_current_limit_a": (
        "gauge",
        "The current the charger was set to (smart charging); 0 = paused.",
    ),
    "ocpp_bridge_device_up": ("gauge", "1 while the connector's device answers."),
    "ocpp_bridge_firmware_state": (
        "gauge",
        "1 for the state of the UpdateFirmware job (Idle, Scheduled: waiting for retrieveDate, "
        "Downloading, RetryWait, Downloaded, Installing, AwaitingBoot, RollingBack).",
    ),
    "ocpp_bridge_firmware_last_outcome_timestamp_seconds": (
        "gauge",
        "When the last firmware update ended (epoch seconds), labelled with how "
        "(Installed, DownloadFailed, InstallationFailed); absent before the first.",
    ),
    "ocpp_bridge_diagnostics_state": (
        "gauge",
        "1 for the state of the GetDiagnostics upload (Idle, Uploading, RetryWait).",
    ),
    "ocpp_bridge_diagnostics_last_outcome_timestamp_seconds": (
        "gauge",
        "When the last diagnostics upload ended (epoch seconds), labelled with how "
        "(Uploaded, UploadFailed); absent before the first.",
    ),
    "ocpp_bridge_local_list_version": (
        "gauge",
        "The local authorization list's version, as GetLocalListVersion answers it (0: empty).",
    ),
    "ocpp_bridge_local_list_entries": ("gauge", "Entries in the local authorization list."),
    "ocpp_bridge_security_profile": ("gauge", "The OCPP security profile in force (0 to 3)."),
    "ocpp_bridge_tls_verification_weakened": (
        "gauge",
        "1 while the link is wss:// with tls.verify_server or tls.check_hostname false in the file.",
    ),
    "ocpp_bridge_reservation_expiry_timestamp_seconds": (
        "gauge",
        "When the connector's reservation ends unless used or cancelled first (epoch seconds), "
        "labelled with its reservation id; absent while the connector holds none.",
    ),
}

CALL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
POLL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_BUCKETS = {
    "ocpp_bridge_call_duration_seconds": CALL_BUCKETS,
    "ocpp_bridge_device_poll_duration_seconds": POLL_BUCKETS,
}


def _labels(labels: Mapping[str, str | int]) -> Labels:
    return tuple((k, str(v)) for k, v in labels.items())


class _Histogram:
    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * len(bounds)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        i = bisect.bisect_left(self.bounds, value)
        if i < len(self.counts):
            self.counts[i] += 1
        self.sum += value
        self.count += 1


class Metrics:
    """What is counted as it happens; one per charge point (its samples carry its id)."""

    def __init__(self) -> None:
        self._counters: dict[tuple[str, Labels], float] = {}
        self._histograms: dict[tuple[str, Labels], _Histogram] = {}

    def inc(self, name: str, labels: Mapping[str, str | int], by: float = 1.0) -> None:
        key = (name, _labels(labels))
        self._counters[key] = self._counters.get(key, 0.0) + by

    def observe(self, name: str, labels: Mapping[str, str | int], value: float) -> None:
        key = (name, _labels(labels))
        histogram = self._histograms.get(key)
        if histogram is None:
            histogram = self._histograms[key] = _Histogram(_BUCKETS[name])
        histogram.observe(value)

    def counter(self, name: str, labels: Mapping[str, str | int]) -> float:
        return self._counters.get((name, _labels(labels)), 0.0)

    # -- the RPC layer's hooks (see bridge.ocpp.rpc.Endpoint) ---------------------------------
    def for_charge_point(self, cp_id: str) -> RpcMetrics:
        return RpcMetrics(self, cp_id)

    def samples(self) -> Iterator[tuple[str, Labels, float]]:
        for (name, labels), value in self._counters.items():
            yield name, labels, value
        for (name, labels), h in self._histograms.items():
            cumulative = 0
            for bound, n in zip(h.bounds, h.counts, strict=True):
                cumulative += n
                yield f"{name}_bucket", (*labels, ("le", _number(bound))), cumulative
            yield f"{name}_bucket", (*labels, ("le", "+Inf")), h.count
            yield f"{name}_sum", labels, h.sum
            yield f"{name}_count", labels, h.count


class RpcMetrics:
    """The counters of one charge point's OCPP traffic."""

    def __init__(self, metrics: Metrics, cp_id: str) -> None:
        self._metrics = metrics
        self._cp = cp_id

    def call_done(self, action: str, result: str, seconds: float | None) -> None:
        """A CALL we sent got its result (CALLRESULT, a CALLERROR code, Timeout, NotConnected)."""
        m = self._metrics
        m.inc("ocpp_bridge_messages_total", {"charge_point": self._cp, "direction": "sent", "action": action,
                                              "result": result})  # fmt: skip
        if seconds is not None:
            labels = {"charge_point": self._cp, "action": action}
            m.observe("ocpp_bridge_call_duration_seconds", labels, seconds)

    def call_answered(self, action: str, result: str) -> None:
        """A CALL of the central system was answered (CALLRESULT or a CALLERROR code)."""
        self._metrics.inc("ocpp_bridge_messages_total", {"charge_point": self._cp, "direction": "received",
                                                        "action": action, "result": result})  # fmt: skip


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _line(name: str, labels: Labels, value: float) -> str:
    if labels:
        inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
        return f"{name}{{{inner}}} {_number(value)}"
    return f"{name} {_number(value)}"


Sample = tuple[str, Labels, float]


def render(samples: Iterable[Sample]) -> str:
    """The whole exposition: every family with HELP and TYPE, then its samples."""
    by_family: dict[str, list[str]] = {name: [] for name in FAMILIES}
    for name, labels, value in samples:
        family = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and name[: -len(suffix)] in FAMILIES:
                family = name[: -len(suffix)]
        by_family[family].append(_line(name, labels, value))
    out: list[str] = []
    for name, (kind, text) in FAMILIES.items():
        out.append(f"# HELP {name} {text}")
        out.append(f"# TYPE {name} {kind}")
        out.extend(by_family[name])
    return "\n".join(out) + "\n"
