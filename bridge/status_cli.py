"""`ocpp-bridge status`: the running bridge's state, readable, from its local API.

Exit 0 when the bridge answered; 1 when it could not be reached (with what
to check); the output says per charge point whether it is connected and
accepted, per connector what it does and whether its device answers, a firmware update or a
diagnostics upload pending, running or how the last one ended, the local authorization list's version
and size, and each reservation.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bridge.config import ApiConfig


def _ago(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} days"


def _since(stamp: str | None, now: datetime) -> str:
    if not stamp:
        return ""
    at = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    seconds = max(0, int((now - at).total_seconds()))
    return f"since {at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC ({_ago(seconds)})"


def _number(transaction_id: int | None) -> str:
    return "(not yet numbered)" if transaction_id is None else str(transaction_id)


def _interval(seconds: int, what: str) -> str:
    return f"{what} every {seconds} s" if seconds > 0 else f"{what} off"


def _at(stamp: str | None, now: datetime) -> str:
    """`at 2026-11-22 10:05:01 UTC (5 min ago)`, or `(in 2 h 0 min)` for a time still to come."""
    if not stamp:
        return ""
    at = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    seconds = int((at - now).total_seconds())
    when = f"in {_ago(seconds)}" if seconds > 0 else f"{_ago(-seconds)} ago"
    return f"at {at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC ({when})"


def _attempt(job: dict[str, Any]) -> str:
    return f"attempt {job['attempt']} of {job['attempts']}" if job.get("attempt") else ""


def _security_lines(sec: dict[str, Any] | None, now: datetime) -> list[str]:
    """The profile in force, the loud TLS warnings, the newest security event."""
    if sec is None:
        return []
    link = "wss://" if sec.get("tls") else "ws://"
    trying = f", trying profile {sec['trying_profile']}" if sec.get("trying_profile") is not None else ""
    lines = [f"  security profile {sec.get('profile', 0)} over {link}{trying}"]
    lines += [f"  WARNING: {warning}" for warning in sec.get("warnings") or ()]
    if (last := sec.get("last_event")) is not None:
        info = f": {last['tech_info']}" if last.get("tech_info") else ""
        lines.append(f"  last security event: {last['type']}{info} {_at(last.get('at'), now)}")
    return lines


def _firmware_line(fw: dict[str, Any] | None, now: datetime) -> str | None:
    """The update pending or running, else how the last one ended; None when there is neither."""
    if not fw:
        return None
    state, last = fw.get("state"), fw.get("last")
    if state == "Scheduled":
        return f"  firmware update pending: {fw.get('location')} {_at(fw.get('retrieve_date'), now)}"
    if state not in (None, "Idle"):
        parts = [f"  firmware update {state}: {fw.get('location')}", _attempt(fw)]
        if state == "RetryWait":
            parts.append(f"next attempt {_at(fw.get('next_step_at'), now)}")
        if fw.get("last_error"):
            parts.append(f"last error: {fw['last_error']}")
        if fw.get("waiting"):
            parts.append(f"then {fw['waiting']}")  # asked during the install: starts when it ends
        return ", ".join(p for p in parts if p)
    if last:
        why = f": {last['reason']}" if last.get("reason") else ""
        return f"  last firmware update: {last['status']} {_at(last.get('at'), now)}{why}"
    return None


def _diagnostics_line(d: dict[str, Any] | None, now: datetime) -> str | None:
    """The upload running (or waiting to retry), else how the last one ended; None when neither."""
    if not d:
        return None
    last = d.get("last")
    if d.get("status") not in (None, "Idle"):
        parts = [
            f"  diagnostics upload {d['status']}: {d.get('file_name')} to {d.get('location')}",
            _attempt(d),
        ]
        if d.get("next_attempt_at"):
            parts.append(f"next attempt {_at(d['next_attempt_at'], now)}")
        if d.get("last_error"):
            parts.append(f"last error: {d['last_error']}")
        return ", ".join(p for p in parts if p)
    if last:
        why = f": {last['reason']}" if last.get("reason") else ""
        name = last.get("file_name")
        return f"  last diagnostics upload: {last['status']} {name} {_at(last.get('at'), now)}{why}"
    return None


def _local_list_line(local_list: dict[str, Any] | None) -> str | None:
    """The local authorization list's version and size; None while it is empty (or not reported)."""
    if not local_list or not local_list.get("entries"):
        return None
    n, version = local_list["entries"], local_list.get("version")
    return f"  local authorization list: version {version}, {n} entr{'y' if n == 1 else 'ies'}"


def _reservation_line(r: dict[str, Any], now: datetime) -> str:
    """`  connector 2 reserved: reservation 42 for ABC999, expires at ... (in 2 h 0 min)`."""
    tag, group = r.get("id_tag"), r.get("parent_id_tag")
    who = f"{tag} (or its group {group})" if group else tag
    anywhere = ", asked for any connector" if r.get("requested_connector") == 0 else ""
    return (
        f"  connector {r.get('connector')} reserved: reservation {r.get('id')} for {who}{anywhere}, "
        f"expires {_at(r.get('expiry'), now)}"
    )


def _report_to_line(t: dict[str, Any]) -> str:
    """A reporting-only central system (docs/reporting.md): one line, never its password."""
    link = "reported to" if t.get("accepted") else ("connected, not accepted by" if t.get("connected") else
                                                    "NOT connected to")  # fmt: skip
    error = f", last error: {t['last_error']}" if t.get("last_error") and not t.get("accepted") else ""
    return f"  {link} {t.get('csms_url')} as {t.get('id')}: {t.get('queued', 0)} messages waiting{error}"


def format_status(body: dict[str, Any], now: datetime) -> str:
    lines: list[str] = []
    for cp in body.get("charge_points", []):
        link = "connected" if cp.get("connected") else "NOT connected"
        lines.append(f"{cp['id']}  {cp.get('csms_url', '')}")
        if cp.get("connected"):
            lines.append(f"  {link} {_since(cp.get('connected_since'), now)}")
        else:
            lines.append(f"  {link}")
        boot = cp.get("boot_state", "")
        if cp.get("accepted"):
            lines.append(f"  accepted {_since(cp.get('accepted_since'), now)}")
        else:
            lines.append(f"  not accepted (boot state {boot})")
        if cp.get("last_error"):
            lines.append(f"  last error: {cp['last_error']} ({_since(cp.get('last_error_at'), now)})")
        lines.append(
            "  "
            + ", ".join(
                [
                    _interval(cp.get("heartbeat_interval_s", 0), "heartbeat"),
                    _interval(cp.get("meter_value_sample_interval_s", 0), "meter values"),
                    _interval(cp.get("clock_aligned_data_interval_s", 0), "clock-aligned values"),
                ]
            )
        )
        lines.append(f"  {cp.get('queued_transaction_messages', 0)} transaction messages waiting to be sent")
        lines += [_report_to_line(target) for target in cp.get("report_to") or ()]
        lines += _security_lines(cp.get("security"), now)
        for line in (
            _firmware_line(cp.get("firmware"), now),
            _diagnostics_line(cp.get("diagnostics"), now),
            _local_list_line(cp.get("local_list")),
            *(_reservation_line(r, now) for r in cp.get("reservations") or ()),
        ):
            if line:
                lines.append(line)
        for c in cp.get("connectors", []):
            parts = [f"  connector {c['id']}: {c['status']}"]
            if c.get("error_code") not in (None, "NoError"):
                parts.append(f"({c['error_code']})")
            if c.get("transaction_id") is not None or c.get("id_tag"):
                parts.append(f"transaction {_number(c.get('transaction_id'))} by {c.get('id_tag')}")
            if c.get("power_w") is not None:
                parts.append(f"{c['power_w'] / 1000:.1f} kW")
            if c.get("energy_wh") is not None:
                parts.append(f"register {c['energy_wh'] / 1000:.3f} kWh")
            if c.get("current_limit_a") is not None:
                limit = c["current_limit_a"]
                parts.append("paused by a charging limit" if limit == 0 else f"limit {limit:g} A")
            lines.append("  ".join(parts))
            device = c.get("device") or {}
            if device:
                health = "answers" if device.get("answers") else "DOES NOT ANSWER"
                problem = f": {device['problem']}" if device.get("problem") else ""
                lines.append(f"      {device.get('description', 'device')} {health}{problem}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def fetch_status(api: ApiConfig, timeout_s: float = 5.0) -> dict[str, Any]:
    """The local API's status (blocking: the CLI has no event loop to keep)."""
    if api.listen is None:
        raise ConnectionError("the local API is switched off (api.listen: null): there is nothing to ask")
    host, port = api.listen
    if host in ("0.0.0.0", "::", ""):  # listening everywhere: ask on loopback
        host = "127.0.0.1"
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/api/v1/status"
    request = urllib.request.Request(url)
    if api.token:
        request.add_header("Authorization", f"Bearer {api.token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            body: dict[str, Any] = json.loads(response.read())
            return body
    except urllib.error.HTTPError as exc:
        raise ConnectionError(f"{url} answered HTTP {exc.code}: is api.token right?") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ConnectionError(
            f"cannot reach the bridge at {url} ({reason}). Is it running? "
            "Check `systemctl status ocpp-bridge` and `journalctl -u ocpp-bridge`."
        ) from None


def show_status(api: ApiConfig, out: Callable[[str], None], as_json: bool = False) -> int:
    """`api`: the configuration's `api` block (address and token); ApiConfig() is the default."""
    try:
        body = fetch_status(api)
    except ConnectionError as exc:
        out(f"error: {exc}")
        return 1
    out(json.dumps(body, indent=2) if as_json else format_status(body, datetime.now(UTC)))
    return 0
