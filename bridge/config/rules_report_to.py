"""The rules of a charge point's `report_to:` list: its reporting-only central systems
(docs/reporting.md). Each entry is a link as the primary's is (rules_link.py: the URL, the identity,
the password and its format; rules_tls.py: the `tls:` block); the list must not name one central
system twice, nor the primary itself (the same URL and identity would be one connection taken over by
the other, each closing the other's).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bridge.config.checker import _BAD, Handler, _Checker, _got, _optional, _text
from bridge.config.rules_link import _csms_url, _id_problem, _password_problems
from bridge.config.rules_tls import _tls
from bridge.config.schema import ReportTarget
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
    targets: list[ReportTarget] = []
    ok = True
    cp_id = cp.get("id") if isinstance(cp.get("id"), str) else None
    seen: dict[tuple[str, str | None], int] = {}
    primary = cp.get("csms_url")
    if isinstance(primary, str):
        seen[(primary.rstrip("/").lower(), cp_id)] = -1
    for n, entry in enumerate(raw):
        where = f"{path}[{n}]"
        target = _target(ck, entry, where, cp_id)
        if target is _BAD:
            ok = False
            continue
        key = (target.csms_url.lower(), target.id or cp_id)
        before = seen.get(key)
        if before is not None:
            what = "the primary csms_url" if before < 0 else f"{path}[{before}]"
            ck.add(where, f"reports to the same central system and id as {what}: list each one once")
            ok = False
            continue
        seen[key] = n
        targets.append(target)
    return tuple(targets) if ok else _BAD


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
