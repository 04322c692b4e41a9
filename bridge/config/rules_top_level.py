"""The rules of the file's top level: its keys, `state_dir`, the `api:` block, the `mqtt:` block and `logs:`.

Each `charge_points[]` entry is checked by rules_charge_point.py.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bridge.config.checker import _BAD, Handler, _between, _Checker, _got, _text
from bridge.config.rules_charge_point import _charge_point
from bridge.config.rules_report_to import connection_clashes
from bridge.config.schema import ApiConfig, Config, LogsConfig, MqttStateConfig


def _state_dir(ck: _Checker, raw: Any, env: Mapping[str, str]) -> Path | None:
    if raw is None:
        # systemd's StateDirectory= sets $STATE_DIRECTORY, a colon-separated list when several are given.
        raw = env.get("STATE_DIRECTORY", "").split(":")[0] or "./state"
    if not isinstance(raw, str) or not raw.strip():
        ck.add("state_dir", f"expected a directory path, got {_got(raw)}")
        return None
    path = Path(raw).expanduser()
    if path.is_absolute():
        return path
    # Relative: under the service's StateDirectory when systemd gives one (its working directory is
    # "/", read-only there), else under the current directory.
    base = env.get("STATE_DIRECTORY", "").split(":")[0]
    return (Path(base) if base else Path.cwd()) / path


_TOP_KEYS = ["state_dir", "api", "charge_points", "mqtt", "logs"]


def _config(data: Any, ck: _Checker, source: str, env: Mapping[str, str]) -> Config | None:
    if data is None:
        ck.add("", "the file is empty; it needs at least charge_points")
        return None
    if not isinstance(data, dict):
        ck.add("", f"the top level must be a mapping with {', '.join(_TOP_KEYS)}, not {_got(data)}")
        return None
    ck.check_keys(data, _TOP_KEYS, "", "allowed top-level keys")
    state_dir = _state_dir(ck, data.get("state_dir"), env)
    api = _api(ck, data.get("api"))
    mqtt = _mqtt(ck, data.get("mqtt"))
    logs = _logs(ck, data.get("logs"))
    raw_cps = data.get("charge_points")
    if "charge_points" not in data:
        ck.add("charge_points", "required: a list of charge points")
        return None
    if not isinstance(raw_cps, list) or not raw_cps:
        ck.add("charge_points", f"expected a non-empty list of charge points, got {_got(raw_cps)}")
        return None
    cps = [_charge_point(ck, raw, f"charge_points[{i}]") for i, raw in enumerate(raw_cps)]
    # From the raw ids, so a duplicate is found even in a charge point with other problems.
    first: dict[str, int] = {}
    for index, raw in enumerate(raw_cps):
        cp_id = raw.get("id") if isinstance(raw, dict) else None
        if isinstance(cp_id, str) and cp_id:
            earlier = first.setdefault(cp_id.lower(), index)
            if earlier != index:
                ck.add(f"charge_points[{index}].id", f"{cp_id!r} is already used by charge_points[{earlier}]")
    for where, problem in connection_clashes(cps):  # one connection per central system and identity
        ck.add(where, problem)
    for where, problem in _ocpp_disagreements(cps):
        ck.add(where, problem)
    if ck.problems or state_dir is None or api is _BAD or mqtt is _BAD or logs is _BAD:
        return None
    return Config(state_dir=state_dir, api=api, charge_points=tuple(cps), source=source, mqtt=mqtt, logs=logs)


def _ocpp_disagreements(cps: list[Any]) -> list[tuple[str, str]]:
    """The `type: ocpp` chargers that one endpoint (a listen) or one charger (an identity on it) cannot
    serve together: another TLS setup or URL path on a listen, other connection options or the same
    connector_id for one charger (adapters/chargers/ocpp_device_options.py)."""
    found = [
        (f"charge_points[{i}].connectors[{j}].charger", c.charger.options)
        for i, cp in enumerate(cps)
        if cp is not _BAD
        for j, c in enumerate(cp.connectors)
        if c.charger.type == "ocpp"
    ]
    if not found:
        return []
    from adapters.chargers.ocpp_device_options import charger_disagreements  # only with such a charger

    return charger_disagreements(found)


def _logs(ck: _Checker, raw: Any) -> Any:
    return ck.build(LogsConfig, {} if raw is None else raw, "logs", {
        "max_bytes": lambda v, p: _between(ck, v, p, 65536, 1 << 30),
        "backups": lambda v, p: _between(ck, v, p, 1, 100),
    })  # fmt: skip


def _listen(ck: _Checker, raw: Any, path: str) -> Any:
    if raw is None:
        return None
    if not isinstance(raw, str):
        ck.add(path, f'expected "host:port" (or "[v6 address]:port") or null, got {_got(raw)}')
        return _BAD
    match = re.fullmatch(r"\[([^\]]+)\]:([0-9]+)|([^:\[\]]+):([0-9]+)", raw.strip())
    if match is None:
        hint = "; write IPv6 addresses in brackets, e.g. [::1]:8080" if raw.count(":") > 1 else ""
        ck.add(path, f'expected "host:port", got {raw!r}{hint}')
        return _BAD
    host = match[1] or match[3]
    port = int(match[2] or match[4])
    if not 1 <= port <= 65535:
        ck.add(path, f"port must be from 1 to 65535, not {port}")
        return _BAD
    return (host, port)


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve anywhere


def _api(ck: _Checker, raw: Any) -> Any:
    api = ck.build(ApiConfig, {} if raw is None else raw, "api", {"listen": lambda v, p: _listen(ck, v, p)})
    if api is _BAD:
        return _BAD
    if api.token is not None and api.token.strip() == "":
        ck.add("api.token", "must not be empty")
        return _BAD
    if api.listen is not None and not _is_loopback(api.listen[0]) and api.token is None:
        ck.add("api.listen", "listening beyond loopback requires api.token")
        return _BAD
    return api


API_TOKEN_MIN = 16  # characters; a shorter api.token is warned of (guesses cost 0.2 s each)


def api_warnings(config: Config) -> list[str]:
    """What `check` warns of in `api:` (never quoting the token)."""
    token = config.api.token
    if token is not None and len(token) < API_TOKEN_MIN:
        return [f"api.token has {len(token)} characters: use at least {API_TOKEN_MIN} (openssl rand -hex 16)"]
    return []


def _mqtt(ck: _Checker, raw: Any) -> Any:
    if raw is None:
        return None
    if isinstance(raw, str):  # not echoed: it may be the broker URL with its password
        ck.add("mqtt", "expected a mapping, got a string; write the URL as `broker:` inside `mqtt:`")
        return _BAD
    special: dict[str, Handler] = {
        "broker": lambda v, p: _broker_url(ck, v, p),
        "topic_prefix": _text(ck, _topic_problem),
        "discovery_prefix": _text(ck, _topic_problem),
    }
    mqtt = ck.build(MqttStateConfig, raw, "mqtt", special)
    if mqtt is not _BAD and not 1 <= mqtt.interval_s <= 86400:
        ck.add("mqtt.interval_s", "must be from 1 to 86400 seconds")
        return _BAD
    return mqtt


def _broker_url(ck: _Checker, raw: Any, path: str) -> Any:
    """A broker URL as adapters.transports.mqtt reads it; problems never show its password."""
    # only here: aiomqtt is not loaded without an mqtt: block
    from adapters.transports.mqtt import BrokerAddress

    if not isinstance(raw, str):
        ck.add(path, f"expected mqtt://[user:password@]host[:port] or mqtts://..., got {_got(raw)}")
        return _BAD
    try:
        BrokerAddress.parse(raw)
    except ValueError as error:
        ck.add(path, str(error))
        return _BAD
    return raw


def _topic_problem(value: str) -> str | None:
    if not value:
        return "must not be empty"
    if "+" in value or "#" in value:
        return "must not contain the MQTT wildcards + or #"
    if value.startswith("/") or value.endswith("/") or "//" in value:
        return "must not start or end with '/' or hold an empty level ('//')"
    if value.startswith("$"):
        return "must not start with '$' (brokers reserve such topics)"
    if any(c.isspace() or not c.isprintable() for c in value):
        return "must not contain spaces or control characters"
    return None
