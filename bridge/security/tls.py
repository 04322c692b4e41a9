"""The client side of TLS for one charge point: the SSLContext it connects with, the installer's words
for a failed handshake, and the loud warnings of a weakened verification.

Theory
------
Verification is on by default: the central system's chain is checked against `ca_file` (or the
system CA store: `SSL_CERT_FILE` / `SSL_CERT_DIR` are honoured) plus the roots the central system
installed (InstallCertificate, `extra_roots`), and its name against the URL's host. Only the file
may weaken that (`verify_server: false`, `check_hostname: false`), and then `warnings()` says so
in the log and the status.

The white paper (A00.FR.301-324) asks for TLS 1.2 or later, no compression, and the cipher suites
ECDHE-ECDSA or ECDHE-RSA with AES-GCM; TLS 1.3's own suites are all AEAD and left as OpenSSL has them.

Building a context reads files (the CA store can be a few hundred certificates): it is blocking and
meant to run in a thread. Contexts are cached by what they were made from, the files' sizes and
modification times included, so 5,000 charge points with the same settings share one context and
a changed file gives a new one.

This module takes plain values and the `TlsSettings` Protocol: it never imports `bridge.config`
(which imports `bridge.security`).
"""

from __future__ import annotations

import os
import ssl
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

# The cipher suites (A00.FR.306/307) and the key file's mode rule are the local endpoint's too: one
# definition, in the lower layer (adapters may not import bridge).
from adapters.transports.tls_server import CIPHERS_TLS12 as CIPHERS_TLS12
from adapters.transports.tls_server import open_to_others as open_to_others

VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


class TlsSettings(Protocol):
    """The `tls:` block of a charge point (bridge.config.TlsConfig has these fields)."""

    @property
    def ca_file(self) -> Path | None: ...
    @property
    def verify_server(self) -> bool: ...
    @property
    def check_hostname(self) -> bool: ...
    @property
    def client_cert(self) -> Path | None: ...
    @property
    def client_key(self) -> Path | None: ...
    @property
    def min_version(self) -> str: ...


@dataclass(frozen=True)
class DefaultTls:
    """The settings when a charge point has no `tls:` block: verify everything, the system CA store."""

    ca_file: Path | None = None
    verify_server: bool = True
    check_hostname: bool = True
    client_cert: Path | None = None
    client_key: Path | None = None
    min_version: str = "1.2"


DEFAULTS = DefaultTls()


@dataclass(frozen=True)
class TlsFailure:
    """A failed TLS handshake in an installer's words: the security event it is (white paper §8) and
    the file to look at (None when there is none to name)."""

    message: str
    event: str | None
    file: str | None


# --- contexts ---------------------------------------------------------------------------------------

_CACHE_SIZE = 64
_cache: dict[tuple[object, ...], ssl.SSLContext] = {}
_cache_lock = threading.Lock()


def client_context(
    settings: TlsSettings | None,
    extra_roots: Sequence[bytes] = (),
    identity: tuple[Path, Path] | None = None,
) -> ssl.SSLContext:
    """The context a wss:// connection is opened with.

    `extra_roots`: PEM bytes of more trust anchors (central system roots installed by
    InstallCertificate); `identity`: (certificate file, key file) of the charge point, which wins over
    the settings' client_cert/client_key. Raises OSError for a file that cannot be read and
    ssl.SSLError for one that is not what it should be (`bridge.security.pem_files` says which).
    """
    _small_read_buffers()
    s = settings or DEFAULTS
    if identity is None and s.client_cert is not None and s.client_key is not None:
        identity = (s.client_cert, s.client_key)
    key = _cache_key(s, extra_roots, identity)
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached
    context = _build(s, extra_roots, identity)
    with _cache_lock:
        if len(_cache) >= _CACHE_SIZE:
            _cache.pop(next(iter(_cache)))  # the oldest
        _cache[key] = context
    return context


# asyncio gives every TLS connection a 256 KiB read buffer (SSLProtocol.max_size), allocated and
# zeroed at once: 100 charge points on wss:// took 32 MiB more than on ws:// (bench/tls.py), 5,000
# would take 1.2 GiB. A TLS record holds at most 16 KiB of data, so 32 KiB reads lose nothing; larger
# frames take more reads. Process-wide (a class attribute of the standard library), set once the
# first TLS context is made.
SSL_READ_BUFFER = 32 * 1024


def _small_read_buffers() -> None:
    from asyncio import sslproto

    if sslproto.SSLProtocol.max_size > SSL_READ_BUFFER:
        sslproto.SSLProtocol.max_size = SSL_READ_BUFFER


def _build(
    s: TlsSettings, extra_roots: Sequence[bytes], identity: tuple[Path, Path] | None
) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED and check_hostname
    context.minimum_version = VERSIONS.get(s.min_version, ssl.TLSVersion.TLSv1_2)
    context.options |= ssl.OP_NO_COMPRESSION
    context.set_ciphers(CIPHERS_TLS12)
    if s.ca_file is not None:
        context.load_verify_locations(cafile=str(s.ca_file))
    else:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)  # SSL_CERT_FILE / SSL_CERT_DIR honoured
    for pem in extra_roots:
        context.load_verify_locations(cadata=pem.decode("ascii"))
    if not s.verify_server:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif not s.check_hostname:
        context.check_hostname = False
    if identity is not None:
        # An encrypted key fails here instead of OpenSSL asking for its passphrase on a terminal.
        context.load_cert_chain(str(identity[0]), str(identity[1]), password=_no_passphrase)
    return context


def _cache_key(
    s: TlsSettings, extra_roots: Sequence[bytes], identity: tuple[Path, Path] | None
) -> tuple[object, ...]:
    files = [s.ca_file, *(identity or ())]
    stamps = tuple(_stamp(f) for f in files)
    store = (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    if s.ca_file is None:
        store_files = [Path(p) for p in store if p]
        stamps += tuple(_stamp(f) for f in store_files)
    settings = (s.ca_file, s.verify_server, s.check_hostname, s.min_version)
    return (settings, tuple(extra_roots), identity, stamps, store)


def _stamp(path: Path | None) -> tuple[int, int] | None:
    if path is None:
        return None
    try:
        st = path.stat()
    except OSError:
        return None  # building the context then says what is wrong
    return (st.st_mtime_ns, st.st_size)


def _no_passphrase() -> bytes:
    return b""


def files_load(settings: TlsSettings) -> bool:
    """Whether the link can use the block's files as they are: its context builds from them (and is
    cached for the link), and the key is 0600 or stricter. The usual case of a configuration's check,
    decided with `ssl` alone: `cryptography` (~16 MiB) is loaded only to say what is wrong with
    files that fail here (`bridge.security.pem_files`)."""
    if settings.ca_file is None and settings.client_cert is None and settings.client_key is None:
        return True
    if (settings.client_cert is None) != (settings.client_key is None):
        return False
    try:
        if settings.client_key is not None and open_to_others(settings.client_key.stat().st_mode):
            return False
        client_context(settings)
    except (OSError, ssl.SSLError, ValueError):
        return False
    return True


def clear_cache() -> None:
    """Forget every context built (tests that change files within a timestamp's resolution)."""
    with _cache_lock:
        _cache.clear()


# --- warnings ---------------------------------------------------------------------------------------


def warnings(settings: TlsSettings | None) -> list[str]:
    """The loud warnings of a weakened verification, for the log and the status."""
    s = settings or DEFAULTS
    if not s.verify_server:
        return [
            "tls.verify_server is false: the central system's certificate is NOT checked; anyone on "
            "the network path can pose as it (set verify_server: true and a ca_file)"
        ]
    if not s.check_hostname:
        return [
            "tls.check_hostname is false: any certificate the trusted CAs signed is accepted, "
            "whatever host it names (set check_hostname: true)"
        ]
    return []


# --- failures ---------------------------------------------------------------------------------------

# OpenSSL's X509_V_ERR_* codes (ssl.SSLCertVerificationError.verify_code)
_EXPIRED, _NOT_YET_VALID = 10, 9
_UNKNOWN_ISSUER = {2, 20, 21}  # unable to get (local) issuer certificate, cannot verify the first one
_SELF_SIGNED = {18, 19}  # self-signed leaf, self-signed root in the chain not trusted
_HOST_MISMATCH = {62, 64}  # hostname, IP address

_VERSION_REASONS = {
    "UNSUPPORTED_PROTOCOL",
    "TLSV1_ALERT_PROTOCOL_VERSION",
    "NO_PROTOCOLS_AVAILABLE",
    "WRONG_SSL_VERSION",
}
_CIPHER_REASONS = {"NO_SHARED_CIPHER", "NO_CIPHERS_AVAILABLE", "NO_SUITABLE_SIGNATURE_ALGORITHM"}
_HANDSHAKE_FAILURE = {"SSLV3_ALERT_HANDSHAKE_FAILURE", "TLSV1_ALERT_INSUFFICIENT_SECURITY"}  # ambiguous
# Alerts a server sends about the client's certificate (or its absence).
_CLIENT_CERT_REASONS = {
    "TLSV13_ALERT_CERTIFICATE_REQUIRED",
    "SSLV3_ALERT_BAD_CERTIFICATE",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED",
    "SSLV3_ALERT_CERTIFICATE_REVOKED",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
    "TLSV1_ALERT_UNKNOWN_CA",
    "TLSV1_ALERT_ACCESS_DENIED",
    "TLSV1_ALERT_DECRYPT_ERROR",
}
_CENTRAL_CERT = "InvalidCentralSystemCertificate"
_CLIENT_REFUSED = "FailedToAuthenticateAtCentralSystem"  # docs/protocol.md: why this event


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and those it was raised from (websockets wraps the ssl error it met)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def explain(exc: BaseException, settings: TlsSettings | None, url: str) -> TlsFailure | None:
    """The installer's sentence for a TLS failure while connecting to `url`; None when `exc` is not
    one (a refused connection, an HTTP 401, ...: the link's own description says those)."""
    s = settings or DEFAULTS
    host = urlsplit(url).hostname or url
    chain = list(_chain(exc))
    for e in chain:
        if isinstance(e, ssl.SSLCertVerificationError):
            return _verification(e, s, host)
        if isinstance(e, ssl.SSLError):
            return _handshake(e, s, host)
    if urlsplit(url).scheme.lower() == "wss" and _dropped(chain):
        return _client_refused(s, host, None)
    return None


def _dropped(chain: list[BaseException]) -> bool:
    """The server closed the connection at the handshake or right after it, with no answer: how
    a refused client certificate looks from here under TLS 1.3 (the alert comes after the client's
    Finished, and asyncio reports the end of the stream), or a reset from a server that sends none."""
    top = chain[0]
    if isinstance(top, ConnectionResetError):
        return True
    names = {type(e).__name__ for e in chain}
    return "InvalidMessage" in names and "EOFError" in names


def _anchors(s: TlsSettings) -> tuple[str, str | None]:
    if s.ca_file is not None:
        return f"ca_file {s.ca_file}", str(s.ca_file)
    return "the system CA store (or set tls.ca_file)", None


def _verification(e: ssl.SSLCertVerificationError, s: TlsSettings, host: str) -> TlsFailure:
    code = e.verify_code
    detail = e.verify_message or str(e)
    anchors, file = _anchors(s)
    if code == _EXPIRED:
        message = (
            f"TLS: the central system's certificate has expired ({host}); its operator must renew it "
            "(check this device's clock too)"
        )
        return TlsFailure(message, _CENTRAL_CERT, None)
    if code == _NOT_YET_VALID:
        message = (
            f"TLS: the central system's certificate is not valid yet ({host}): is this device's clock right?"
        )
        return TlsFailure(message, _CENTRAL_CERT, None)
    if code in _HOST_MISMATCH:
        message = (
            f"TLS: the central system's certificate does not name {host}: use the host name it was "
            "issued for in csms_url (tls.check_hostname: false accepts it, with a warning)"
        )
        return TlsFailure(message, _CENTRAL_CERT, None)
    if code in _UNKNOWN_ISSUER or code in _SELF_SIGNED:
        what = "is self-signed" if code in _SELF_SIGNED else "was issued by an unknown CA"
        message = f"TLS: the central system's certificate {what} ({host}): add its CA to {anchors}"
        return TlsFailure(message, _CENTRAL_CERT, file)
    message = f"TLS: the central system's certificate was not accepted ({host}): {detail}"
    return TlsFailure(message, _CENTRAL_CERT, file)


def _handshake(e: ssl.SSLError, s: TlsSettings, host: str) -> TlsFailure:
    reason = e.reason or ""
    if reason in _VERSION_REASONS:
        message = (
            f"TLS: {host} and this charge point share no TLS version (tls.min_version is "
            f"{s.min_version}; the white paper asks for 1.2 or later)"
        )
        return TlsFailure(message, "InvalidTLSVersion", None)
    ciphers = "ECDHE-ECDSA/ECDHE-RSA with AES-GCM, as the white paper asks"
    if reason in _CIPHER_REASONS:
        message = f"TLS: {host} and this charge point share no cipher suite (it offers {ciphers})"
        return TlsFailure(message, "InvalidTLSCipherSuite", None)
    if reason in _HANDSHAKE_FAILURE and s.client_cert is None:
        # Under TLS 1.2 a server that requires a client certificate sends this same alert.
        message = (
            f"TLS: {host} refused the handshake: it asks for a client certificate (security profile 3; "
            f"none is set: set tls.client_cert and tls.client_key), or it shares no cipher suite with "
            f"this charge point ({ciphers})"
        )
        return TlsFailure(message, _CLIENT_REFUSED, None)
    if reason in _HANDSHAKE_FAILURE:
        message = (
            f"TLS: {host} refused the handshake: it shares no cipher suite with this charge point "
            f"({ciphers}), or it refused client_cert {s.client_cert}"
        )
        return TlsFailure(message, "InvalidTLSCipherSuite", str(s.client_cert))
    if reason in _CLIENT_CERT_REASONS:
        return _client_refused(s, host, reason)
    if reason == "WRONG_VERSION_NUMBER":
        message = f"TLS: {host} does not speak TLS on this port: is the URL's wss:// (or the port) right?"
        return TlsFailure(message, None, None)
    message = f"TLS failure talking to {host}: {reason or e}"
    return TlsFailure(message, None, None)


def _client_refused(s: TlsSettings, host: str, reason: str | None) -> TlsFailure:
    """`reason`: the server's alert; None when it closed the connection without one we saw."""
    if s.client_cert is None:
        how = "refused the handshake" if reason else "closed the connection at the TLS handshake"
        likely = "it asks" if reason else "it probably asks"
        message = (
            f"TLS: {host} {how}: {likely} for a client certificate (security profile 3) and none is "
            "set: set tls.client_cert and tls.client_key"
        )
        return TlsFailure(message, _CLIENT_REFUSED, None)
    if reason is None:
        said = "closed the connection at the TLS handshake"
    else:
        alert = reason.removeprefix("SSLV3_ALERT_").removeprefix("TLSV1_ALERT_").removeprefix("TLSV13_ALERT_")
        said = f"refused this charge point's client certificate ({alert.lower().replace('_', ' ')})"
    message = (
        f"TLS: {host} {said}: look at client_cert {s.client_cert} (issued by a CA the central system "
        "trusts, not expired, CN = the serial number, O = the CPO name)"
    )
    return TlsFailure(message, _CLIENT_REFUSED, str(s.client_cert))
