"""The rules of a charge point's `tls:` block, and of its security profile against its URL.

The block's files are read here (through bridge.security.pem_files): they exist, parse as PEM, the
key matches the certificate, the certificate has not expired, the key is 0600 or stricter.

The profile (`ocpp: SecurityProfile`, default 0) must fit the URL and what the file gives:
1 is HTTP Basic over ws://, 2 HTTP Basic over wss://, 3 a client certificate over wss://.
A `tls:` block with a ws:// URL is allowed: it is used once the central system raises the profile.
"""

from __future__ import annotations

from typing import Any

from bridge.config.checker import _BAD, _Checker, _got
from bridge.config.schema import TlsConfig

_VERSIONS = ("1.2", "1.3")


def _tls(ck: _Checker, raw: Any, path: str) -> Any:
    if raw is None:
        return None
    special = {"min_version": lambda v, p: _min_version(ck, v, p)}
    return ck.build(TlsConfig, raw, path, special)


def _min_version(ck: _Checker, raw: Any, path: str) -> Any:
    # `min_version: 1.2` unquoted reads as a number: taken as meant.
    value = str(raw) if isinstance(raw, float) else raw
    if value in _VERSIONS:
        return value
    ck.add(path, f'expected "1.2" or "1.3" (the oldest TLS version accepted), got {_got(raw)}')
    return _BAD
