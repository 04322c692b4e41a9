"""The rules of one `charge_points[]` entry: its id, URL, password, BootNotification fields,
reconnect waits, bounds and `ocpp:` block (its connectors are checked by rules_devices.py, its
`firmware:` block by rules_firmware.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bridge.config.checker import _BAD, Handler, _at_least, _between, _Checker, _got, _optional, _text
from bridge.config.rules_devices import _connectors, free_vend_problems, id_tag_problem
from bridge.config.rules_firmware import _diagnostics, _firmware
from bridge.config.rules_link import _csms_url, _id_problem, _password_problems
from bridge.config.rules_report_to import _report_to, reporting_only_problems
from bridge.config.rules_tls import _tls, profile_problems
from bridge.config.schema import MAX_FRAME_BYTES, MIN_FRAME_BYTES, ChargePointConfig, ReconnectConfig
from bridge.config.yaml_lines import _join
from bridge.core import config_keys

_BOOT_LIMITS = {  # BootNotification field lengths (CiStringN)
    "vendor": 20,
    "model": 20,
    "serial_number": 25,
    "meter_type": 25,
    "meter_serial_number": 25,
    "firmware_version": 50,
}


def _charge_point(ck: _Checker, raw: Any, path: str) -> Any:
    special: dict[str, Handler] = {
        "id": _text(ck, _id_problem),
        "csms_url": lambda v, p: _csms_url(ck, v, p),
        "password": _text(ck, lambda v: None if v else "must not be empty (leave it out for no password)"),
        "ocpp": lambda v, p: _ocpp(ck, v, p),
        "connectors": lambda v, p: _connectors(ck, v, p),
        "reconnect": lambda v, p: _reconnect(ck, v, p),
        "diagnostics": lambda v, p: _diagnostics(ck, v, p),
        "firmware": lambda v, p: _firmware(ck, v, p, raw.get("csms_url") if isinstance(raw, dict) else None),
        "tls": lambda v, p: _tls(ck, v, p),
        "max_queued_messages": lambda v, p: _at_least(ck, v, p, 100),
        "max_frame_bytes": lambda v, p: _between(ck, v, p, MIN_FRAME_BYTES, MAX_FRAME_BYTES),
        "free_vend_id_tag": _optional(_text(ck, id_tag_problem)),
        "report_to": lambda v, p: _report_to(ck, v, p, raw if isinstance(raw, dict) else {}),
    }
    for name, limit in _BOOT_LIMITS.items():
        handler = _text(ck, _length_problem(limit))
        special[name] = handler if name in ("vendor", "model") else _optional(handler)
    cp = ck.build(ChargePointConfig, raw, path, special)
    # Checked on the raw mapping, so they are reported even when another field is wrong.
    problems = _password_problems(raw) + reporting_only_problems(raw) if isinstance(raw, dict) else []
    if cp is not _BAD:
        problems += free_vend_problems(cp) + profile_problems(cp)
    for name, problem in problems:
        ck.add(_join(path, name), problem)
    return _BAD if problems else cp


def _length_problem(limit: int) -> Callable[[str], str | None]:
    def problem(value: str) -> str | None:
        if 0 < len(value) <= limit:
            return None
        return f"must be 1 to {limit} characters (BootNotification), not {len(value)}"

    return problem


def _reconnect(ck: _Checker, raw: Any, path: str) -> Any:
    reconnect = ck.build(ReconnectConfig, raw, path)
    if reconnect is _BAD:
        return _BAD
    problems = []
    if reconnect.initial_s <= 0:
        problems.append(("initial_s", "must be above 0"))
    elif reconnect.initial_s > reconnect.max_s:
        problems.append(("initial_s", "must be at most max_s"))
    if reconnect.max_s > 3600:
        problems.append(("max_s", "must be at most 3600"))
    for name, problem in problems:
        ck.add(_join(path, name), problem)
    return _BAD if problems else reconnect


def _ocpp(ck: _Checker, raw: Any, path: str) -> Any:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        ck.add(path, f"expected a mapping of OCPP configuration keys to values, got {_got(raw)}")
        return _BAD
    values: dict[str, str] = {}
    ok = True
    for name, value in raw.items():
        sub = _join(path, str(name))
        message, at_key = _ocpp_entry(str(name), value, values)
        if message is None:
            continue
        ok = False
        ck.add(sub, message, at_key=at_key)
    return values if ok else _BAD


def _ocpp_entry(name: str, value: Any, values: dict[str, str]) -> tuple[str | None, bool]:
    """Adds one `ocpp:` entry to `values`; returns (problem, whether it is about the key) or (None, _)."""
    spec = config_keys.lookup(name)
    if spec is None:
        hint = config_keys.suggest(name)
        return f"unknown OCPP configuration key {name!r}" + (f"; did you mean {hint}?" if hint else ""), True
    if spec.name == "AuthorizationKey":
        return "set `password:` instead", True
    if spec.derived:
        return f"{spec.name} is computed by the bridge, remove it", True
    if spec.feature is not None and spec.feature not in config_keys.IMPLEMENTED_FEATURES:
        return f"{spec.name} is not supported by this version (feature {spec.feature!r})", True
    if spec.name in values:
        return f"{spec.name} is given twice", True
    if isinstance(value, list) and spec.kind == "csl" and all(isinstance(v, str) for v in value):
        value = ",".join(value)
    elif value is None and spec.kind in ("csl", "str"):
        value = ""
    if not isinstance(value, str | int | float):
        return f"{spec.name} needs a single value, got {_got(value)}", False
    try:
        values[spec.name] = config_keys.validate_file_value(spec.name, value)
    except config_keys.KeyValueError as error:
        return str(error), False
    return None, False
