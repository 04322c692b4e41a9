"""The rules a link to a central system shares, the primary's (rules_charge_point.py) and each
reporting target's (rules_report_to.py): an identity, a ws:// or wss:// URL, a password and its format.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

from bridge.config.checker import _BAD, _Checker, _got

_CP_ID_MAX = 48
_HEX_PASSWORD = re.compile(r"(?:[0-9A-Fa-f]{2}){16,20}")


def _id_problem(cp_id: str) -> str | None:
    if not cp_id:
        return "must not be empty"
    if len(cp_id) > _CP_ID_MAX:
        return f"must be at most {_CP_ID_MAX} characters, not {len(cp_id)}"
    if "/" in cp_id or any(c.isspace() or not c.isprintable() for c in cp_id):
        return "must not contain '/', spaces or control characters"
    return None


def _password_problems(raw: Mapping[str, Any]) -> list[tuple[str, str]]:
    password, cp_id = raw.get("password"), raw.get("id")
    if password is None:
        return [("password_format", "hex needs a password")] if raw.get("password_format") == "hex" else []
    if not isinstance(password, str):
        return []  # the type check has said so
    if raw.get("password_format") == "hex" and not _HEX_PASSWORD.fullmatch(password):
        # The password itself is never echoed.
        return [("password", "with password_format hex: 32 to 40 hex digits, an even number")]
    if isinstance(cp_id, str) and ":" in cp_id:
        return [("id", "must not contain ':' when a password is set (it is the HTTP basic-auth user)")]
    return []


def _csms_url(ck: _Checker, raw: Any, path: str) -> Any:
    if not isinstance(raw, str):
        ck.add(path, f"expected a ws:// or wss:// URL, got {_got(raw)}")
        return _BAD
    url = raw[:-1] if raw.endswith("/") else raw  # the id is appended after one "/"
    problem = _url_problem(url)
    if problem is not None:
        ck.add(path, f"{raw!r} {problem}")
        return _BAD
    return url


def _url_problem(url: str) -> str | None:
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a bad port
    except ValueError as error:
        return f"is not a valid URL ({error})"
    if parts.scheme.lower() not in ("ws", "wss"):
        return "must start with ws:// or wss://"
    if not parts.hostname:
        return "has no host"
    if parts.username is not None or parts.password is not None:
        return "must not hold credentials; set password: instead"
    if parts.query or parts.fragment:
        return "must not have a query or fragment: the charge point id is appended to its path"
    if url.endswith("/"):
        return "ends with more than one '/'"
    if any(c.isspace() for c in url):
        return "must not contain spaces"
    return None
