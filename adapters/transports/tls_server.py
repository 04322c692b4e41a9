"""TLS for the bridge's local OCPP endpoint (wss://, OCPP 1.6J security profiles 2 and 3): the
server context, the checks of its files in an installer's words, and who a client certificate names.

Theory
------
Profile 2: the endpoint shows `cert_file` (its chain) and the charger authenticates with HTTP Basic.
Profile 3: `client_ca_file` is set too; the handshake then requires a client certificate that chains
to it, and the white paper (A00.FR.401-429) has that certificate name the charge point: CN = its
serial number, which for the bridge is the identity the charger connects with; O = the CPO's name,
checked when `cpo_name` is given. A certificate of another charger is refused with 403 before the
upgrade (ocpp_server.py).

TLS 1.2 or later, no compression; for TLS 1.2 the white paper's suites (ECDHE-ECDSA or ECDHE-RSA, or
plain RSA, with AES-GCM; A00.FR.306/307); TLS 1.3's own suites are all AEAD and left as OpenSSL has
them. The same list as the bridge's client side (bridge/security/tls.py), which adapters may not
import.

Building a context reads files: blocking, meant for a thread (asyncio.to_thread). A key's contents
never appear in a message: only its path does.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# A00.FR.306/307: ECDHE-ECDSA or (plain) RSA key exchange, AES-GCM; ECDHE-RSA first for RSA certificates
# (forward secrecy); the RSA pair last, which a peer with an RSA certificate may offer alone. TLS 1.3
# has its own AEAD suites. The bridge's client side (bridge/security/tls.py) uses this one list.
CIPHERS_TLS12 = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "AES128-GCM-SHA256",
        "AES256-GCM-SHA384",
    )
)


@dataclass(frozen=True)
class ServerTls:
    """What the endpoint's TLS is made from; two chargers on one endpoint must give equal ones."""

    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None  # profile 3: client certificates required, chained to it
    cpo_name: str | None = None  # profile 3: the client certificate's O must be this

    def describe(self) -> str:
        """The setup in a sentence for an error (paths only)."""
        ca = f", client_ca_file {self.client_ca_file}" if self.client_ca_file else ""
        return f"cert_file {self.cert_file}, key_file {self.key_file}{ca}"


class TlsSetupError(ValueError):
    """A file of the endpoint's TLS is missing or wrong; `field` names it (cert_file, key_file, ...)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"tls.{field}: {message}")
        self.field = field
        self.problem = message


def open_to_others(mode: int) -> bool:
    """A key file's mode lets its group or others in: a private key should be 0600 or stricter."""
    return bool(mode & 0o077)


def key_warning(tls: ServerTls) -> str | None:
    """The warning for a key file others can read (None when it is private or cannot be read)."""
    try:
        mode = tls.key_file.stat().st_mode
    except OSError:
        return None
    if open_to_others(mode):
        return (
            f"tls.key_file {tls.key_file} is readable by its group or others (mode {mode & 0o777:o}): "
            f"anyone who can read it can pose as the endpoint; chmod 600 it"
        )
    return None


def _read(field: str, path: Path, marker: bytes, what: str) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise TlsSetupError(field, f"{path} does not exist; give the path of {what}") from None
    except OSError as exc:
        raise TlsSetupError(field, f"{path} cannot be read ({exc.strerror}); fix its permissions") from None
    if marker not in data:
        raise TlsSetupError(field, f"{path} holds no {marker.decode()} block; it must be {what}")
    return data


def server_context(tls: ServerTls) -> ssl.SSLContext:
    """The endpoint's context; TlsSetupError naming the field and the fix when a file is wrong."""
    _read("cert_file", tls.cert_file, b"-----BEGIN CERTIFICATE-----", "a PEM certificate chain")
    key = _read("key_file", tls.key_file, b"PRIVATE KEY-----", "a PEM private key")
    if b"ENCRYPTED" in key:
        raise TlsSetupError("key_file", f"{tls.key_file} is encrypted; give an unencrypted key (chmod 600)")
    del key  # never kept, never printed
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION
    context.set_ciphers(CIPHERS_TLS12)
    try:
        context.load_cert_chain(str(tls.cert_file), str(tls.key_file), password=_no_password)
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc) or "key values mismatch" in str(exc):
            raise TlsSetupError(
                "key_file", f"{tls.key_file} is not the key of the certificate in {tls.cert_file}"
            ) from None
        raise TlsSetupError(
            "cert_file",
            f"{tls.cert_file} with key {tls.key_file} cannot be loaded ({exc.reason or 'bad PEM'}); "
            f"cert_file must start with the endpoint's certificate, key_file hold its key",
        ) from None
    if tls.client_ca_file is not None:
        _read("client_ca_file", tls.client_ca_file, b"-----BEGIN CERTIFICATE-----", "a PEM CA certificate")
        try:
            context.load_verify_locations(cafile=str(tls.client_ca_file))
        except ssl.SSLError as exc:
            raise TlsSetupError(
                "client_ca_file", f"{tls.client_ca_file} cannot be loaded ({exc.reason or 'bad PEM'})"
            ) from None
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def _no_password() -> bytes:
    return b""  # an encrypted key fails to load instead of asking on a terminal


def check_files(tls: ServerTls) -> list[tuple[str, str]]:
    """(field, problem) pairs for `check`: a context is built from the files (blocking)."""
    try:
        server_context(tls)
    except TlsSetupError as exc:
        return [(f"tls.{exc.field}", exc.problem)]
    return []


def client_names(peercert: dict[str, Any] | None) -> tuple[str | None, str | None]:
    """(CN, O) of a verified client certificate (ssl's getpeercert() dict), None where absent."""
    common_name: str | None = None
    organization: str | None = None
    for rdn in (peercert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                common_name = value
            elif key == "organizationName":
                organization = value
    return common_name, organization


def names_charger(tls: ServerTls, peercert: dict[str, Any] | None, identity: str) -> str | None:
    """None when the client certificate names `identity` (and the CPO when one is set); else why not."""
    common_name, organization = client_names(peercert)
    if common_name != identity:
        return f"its client certificate's CN is {common_name!r}, not the identity {identity!r}"
    if tls.cpo_name is not None and organization != tls.cpo_name:
        return f"its client certificate's O is {organization!r}, not the cpo_name {tls.cpo_name!r}"
    return None


def endpoint_disagreements(chargers: Iterable[tuple[str, str, ServerTls | None]]) -> list[tuple[str, str]]:
    """For `check`: (path, problem) of each charger, given as (its path, listen, TLS setup), whose TLS
    setup differs from the first charger's on the same listen (one server per listen serves them all)."""
    first: dict[str, tuple[str, ServerTls | None]] = {}
    problems: list[tuple[str, str]] = []
    for path, listen, tls in chargers:
        earlier = first.setdefault(listen, (path, tls))
        if earlier[1] != tls:
            theirs = "plain ws://" if earlier[1] is None else "wss://"
            problems.append(
                (
                    f"{path}.tls",
                    f"{earlier[0]} shares listen {listen} with a different TLS setup ({theirs}); "
                    f"one endpoint serves both: give them the same tls block or another listen port",
                )
            )
    return problems


def path_disagreements(chargers: Iterable[tuple[str, str, str]]) -> list[tuple[str, str]]:
    """For `check`: (path, problem) of each charger, given as (its path, listen, URL path), whose URL
    path differs from the first charger's on the same listen: the one server of a listen serves one
    URL path (ocpp_server.py), and a charger with another would be answered 404 forever."""
    first: dict[str, tuple[str, str]] = {}
    problems: list[tuple[str, str]] = []
    for where, listen, url_path in chargers:
        url_path = url_path.strip("/")
        earlier = first.setdefault(listen, (where, url_path))
        if earlier[1] != url_path:
            problems.append(
                (
                    f"{where}.path",
                    f"{earlier[0]} shares listen {listen} with path {earlier[1]!r}, this one names "
                    f"{url_path!r}; one endpoint serves one path: give them the same path or another "
                    "listen port",
                )
            )
    return problems
