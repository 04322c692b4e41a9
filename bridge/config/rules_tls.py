"""The rules of a charge point's `tls:` block, and of its security profile against its URL.

The block's files are read here (through bridge.security.pem_files): they exist, parse as PEM, the
key matches the certificate, the key is 0600 or stricter. Whether a certificate is valid *today* is
`tls_report`'s: an expired one fails `check` and is logged by `run`, which starts anyway; one that ends
within 30 days is a warning (with the weakened verifications).

The profile (`ocpp: SecurityProfile`, default 0) must fit the URL and what the file gives: 1 is HTTP
Basic over ws://, 2 HTTP Basic over wss://, 3 a client certificate over wss://. A `tls:` block with a
ws:// URL is allowed: it is used once the central system raises the profile to 2.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from bridge.config.checker import _BAD, _Checker, _got
from bridge.config.schema import ChargePointConfig, Config, TlsConfig
from bridge.config.yaml_lines import _join
from bridge.security import lazy_module
from bridge.security import tls as tls_context

if TYPE_CHECKING:
    from bridge.security import pem_files
else:
    pem_files = lazy_module("bridge.security.pem_files")  # cryptography, only for a tls: block

_VERSIONS = ("1.2", "1.3")


def _tls(ck: _Checker, raw: Any, path: str) -> Any:
    if raw is None:
        return None
    special = {"min_version": lambda v, p: _min_version(ck, v, p)}
    tls = ck.build(TlsConfig, raw, path, special)
    if tls is _BAD:
        return _BAD
    if tls_context.files_load(tls):  # the usual case, without loading cryptography
        return tls
    errors = [f for f in _findings(tls) if not f.warning and not f.dated]  # dated: tls_report
    for finding in errors:
        ck.add(_join(path, finding.setting), finding.message)
    return _BAD if errors else tls


def _min_version(ck: _Checker, raw: Any, path: str) -> Any:
    # `min_version: 1.2` unquoted reads as a number: taken as meant.
    value = str(raw) if isinstance(raw, float) else raw
    if value in _VERSIONS:
        return value
    ck.add(path, f'expected "1.2" or "1.3" (the oldest TLS version accepted), got {_got(raw)}')
    return _BAD


def _findings(tls: TlsConfig, now: datetime.datetime | None = None) -> list[pem_files.Finding]:
    when = now or datetime.datetime.now(datetime.UTC)
    return pem_files.check_files(tls.ca_file, tls.client_cert, tls.client_key, when)


def profile_problems(cp: ChargePointConfig) -> list[tuple[str, str]]:
    """The security profile the file sets against its URL, password and client certificate:
    (field, problem) pairs, the field relative to the charge point."""
    try:
        profile = int(cp.ocpp.get("SecurityProfile", "0"))
    except ValueError:
        return []  # the key's own check has said so
    if profile == 0:
        return []
    field = "ocpp.SecurityProfile"
    secure = cp.csms_url.lower().startswith("wss://")
    has_identity = cp.tls is not None and cp.tls.client_cert is not None and cp.tls.client_key is not None
    if profile == 1 and secure:
        return [(field, "profile 1 is HTTP Basic without TLS; use 2 for wss://")]
    if not secure and profile >= 2:
        return [("csms_url", f"SecurityProfile {profile} needs TLS: a wss:// URL (or profile 1 for ws://)")]
    if profile in (1, 2) and cp.password is None:
        return [("password", f"required with SecurityProfile {profile} (HTTP Basic authentication)")]
    if profile == 3 and not has_identity:
        return [("tls.client_cert", "SecurityProfile 3 needs tls.client_cert and tls.client_key")]
    return []


def tls_report(
    config: Config, now: datetime.datetime | None = None, *, dates: bool = True
) -> tuple[list[str], list[str]]:
    """(problems of the date, warnings), one line each with the charge point. Problems: a certificate
    expired or not valid yet: `check` fails on them (`run` starts anyway: refusing would stop local
    charging too, and the handshake says what is wrong). Warnings: certificates that end within 30
    days, verification weakened by verify_server or check_hostname false. `dates=False`: the
    weakened verification only, without reading a certificate (`run`: no cryptography loaded)."""
    problems: list[str] = []
    warnings: list[str] = []
    for cp in config.charge_points:
        # The primary's tls: block, and each reporting target's (docs/reporting.md).
        blocks = [("tls", cp.tls)] + [
            (f"report_to[{i}].tls", target.tls) for i, target in enumerate(cp.report_to)
        ]
        for where, tls in blocks:
            if tls is None:
                continue
            for f in _findings(tls, now) if dates else ():
                line = f"{cp.id}: {where}.{f.setting}: {f.message}"
                if f.dated:
                    problems.append(line)
                elif f.warning:
                    warnings.append(line)
            warnings += [f"{cp.id}: {text}" for text in tls_context.warnings(tls)]
    return problems, warnings
