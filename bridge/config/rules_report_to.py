"""The rules of a charge point's `report_to:` list: its reporting-only central systems
(docs/reporting.md). Each entry is a link as the primary's is (rules_link.py: the URL, the identity,
the password and its format; rules_tls.py: the `tls:` block); the list must not name one central
system twice, nor the primary itself (the same URL and identity would be one connection taken over by
the other, each closing the other's).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from bridge.config.checker import _BAD, Handler, _Checker, _got, _optional, _text
from bridge.config.rules_link import _csms_url, _id_problem, _password_problems
from bridge.config.rules_tls import _tls
from bridge.config.schema import ChargePointConfig, ReportTarget
from bridge.config.yaml_lines import _join

MAX_TARGETS = 8  # each is a connection, a task set and a queue per charge point


def _report_to(ck: _Checker, raw: Any, path: str, cp: dict[str, Any]) -> Any:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        ck.add(path, f"expected a list of central systems to report to (csms_url, id, ...), got {_got(raw)}")
        return _BAD
    if len(raw) > MAX_TARGETS:
        ck.add(path, f"at most {MAX_TARGETS} central systems to report to, not {len(raw)}")
        return _BAD
    cp_id = cp.get("id") if isinstance(cp.get("id"), str) else None
    targets = [_target(ck, entry, f"{path}[{n}]", cp_id) for n, entry in enumerate(raw)]
    return _BAD if any(t is _BAD for t in targets) else tuple(targets)  # clashes: connection_clashes


def connection_clashes(cps: Sequence[Any]) -> list[tuple[str, str]]:
    """(path, problem) for each connection of the bridge that another one already makes: every
    charge point's primary and each of its targets is one websocket as (central system, identity), and
    two with the same would each close the other (a central system keeps one connection per
    identity), across charge points too (a target of CP-1 named as CP-2 at CP-2's central system)."""
    seen: dict[tuple[str, str], tuple[int, str]] = {}  # -> (charge point, the link's path)
    problems: list[tuple[str, str]] = []
    for i, cp in enumerate(cps):
        if not isinstance(cp, ChargePointConfig):
            continue  # its own problems are said
        links = [(f"charge_points[{i}].csms_url", cp.csms_url, cp.id)] if cp.csms_url else []
        for n, target in enumerate(cp.report_to):
            links.append((f"charge_points[{i}].report_to[{n}]", target.csms_url, target.identity(cp.id)))
        for path, url, identity in links:
            before = seen.setdefault((same_server(url), identity.lower()), (i, path))
            if before == (i, path):
                continue
            what = before[1]
            if what.endswith(".csms_url"):  # a primary
                what = "the primary csms_url" + ("" if before[0] == i else f" of charge_points[{before[0]}]")
            problems.append(
                (path, f"reports to the same central system and id as {what}: list each one once")
            )
    return problems


def same_server(url: str) -> str:
    """A central system's URL as one compares (scheme and host in lower case, no default port, no
    trailing '/'; the path's case kept: servers tell paths apart)."""
    parts = urllib.parse.urlsplit(url.rstrip("/"))
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    port = parts.port if parts.port not in (None, {"ws": 80, "wss": 443}.get(scheme)) else None
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}{'' if port is None else f':{port}'}{parts.path}"


def _target(ck: _Checker, raw: Any, path: str, cp_id: str | None) -> Any:
    if not isinstance(raw, dict):
        ck.add(path, f"expected a mapping with csms_url (and id, password, tls), got {_got(raw)}")
        return _BAD
    special: dict[str, Handler] = {
        "csms_url": lambda v, p: _csms_url(ck, v, p),
        "id": _optional(_text(ck, _id_problem)),
        "password": _text(ck, lambda v: None if v else "must not be empty (leave it out for no password)"),
        "tls": lambda v, p: _tls(ck, v, p),
    }
    target = ck.build(ReportTarget, raw, path, special)
    # The identity is the HTTP Basic user: the charge point's id when the entry names none.
    problems = _password_problems({**raw, "id": raw.get("id") or cp_id})
    for name, problem in problems:
        ck.add(_join(path, name), problem)
    return _BAD if problems or target is _BAD else target


def reporting_only_problems(raw: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Without a primary `csms_url` a charge point only reports: it needs somewhere to report to.
    Checked on the raw mapping, so it is said even when another field is wrong."""
    if "csms_url" in raw or raw.get("report_to"):
        return []
    return [("csms_url", "required")]
