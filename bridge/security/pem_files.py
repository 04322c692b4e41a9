"""The checks of a charge point's TLS files, for `ocpp-bridge check`: they exist and parse as PEM, the
key matches the certificate, the certificates are valid now (a warning within 30 days of the end),
the private key is 0600 or stricter.

Plain values in, findings out: this module never imports `bridge.config` (which imports it). A
finding names the setting (`ca_file`, `client_cert`, `client_key`) and says what to do; none ever
holds a byte of a key.
"""

from __future__ import annotations

import datetime
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import types

from bridge.security.tls import open_to_others

SOON = datetime.timedelta(days=30)  # an end of validity nearer than this is a warning


@dataclass(frozen=True)
class Finding:
    setting: str  # "ca_file", "client_cert" or "client_key"
    message: str
    warning: bool = False  # True: the file works today, but someone has to act soon
    # True: a matter of the date (expired, not valid yet): `check` refuses it, `run` starts anyway
    # and says so (the charge point keeps charging offline; a restart must not stop it).
    dated: bool = False


def check_files(
    ca_file: Path | None,
    client_cert: Path | None,
    client_key: Path | None,
    now: datetime.datetime,
) -> list[Finding]:
    """Every problem of the TLS files given (None: not set), errors and warnings."""
    findings: list[Finding] = []
    if ca_file is not None:
        findings += _ca_file(ca_file, now)
    if (client_cert is None) != (client_key is None):
        missing, given = (
            ("client_key", "client_cert") if client_key is None else ("client_cert", "client_key")
        )
        findings.append(Finding(missing, f"required with {given} (the certificate and its private key)"))
    if client_cert is not None:
        cert, problems = _client_cert(client_cert, now)
        findings += problems
        if client_key is not None:
            findings += _client_key(client_key, cert)
    elif client_key is not None:
        findings += _client_key(client_key, None)
    return findings


def read_certificates(path: Path) -> list[x509.Certificate]:
    """The certificates of a PEM file, in order; ValueError saying what is wrong; OSError as it is."""
    data = path.read_bytes()
    if b"-----BEGIN" not in data:
        raise ValueError(
            "is not PEM (no -----BEGIN line); convert a DER file with: "
            "openssl x509 -inform der -in FILE -out FILE.pem"
        )
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as error:
        raise ValueError(f"holds no readable PEM certificate ({error})") from None
    return certs


def _read(path: Path, setting: str) -> tuple[list[x509.Certificate], list[Finding]]:
    try:
        return read_certificates(path), []
    except OSError as error:
        return [], [Finding(setting, f"cannot read {path}: {error.strerror or error}")]
    except ValueError as error:
        return [], [Finding(setting, f"{path} {error}")]


def _when(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _validity(cert: x509.Certificate, what: str, setting: str, now: datetime.datetime) -> list[Finding]:
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    if end < now:
        return [Finding(setting, f"{what} expired on {_when(end)}: renew it", dated=True)]
    if start > now:
        problem = f"{what} is not valid before {_when(start)}: is this device's clock right?"
        return [Finding(setting, problem, dated=True)]
    if end - now < SOON:
        days = (end - now).days
        return [Finding(setting, f"{what} expires on {_when(end)} (in {days} days): renew it", warning=True)]
    return []


def _subject(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or "(no subject)"


def _ca_file(path: Path, now: datetime.datetime) -> list[Finding]:
    certs, problems = _read(path, "ca_file")
    if problems:
        return problems
    current = [c for c in certs if c.not_valid_after_utc >= now]
    if not current:
        problem = f"{path}: every certificate in it has expired: put the current CA in it"
        return [Finding("ca_file", problem, dated=True)]
    findings: list[Finding] = []
    for cert in current:
        findings += [f for f in _validity(cert, f"{path}: {_subject(cert)}", "ca_file", now) if f.warning]
    return findings


def _client_cert(path: Path, now: datetime.datetime) -> tuple[x509.Certificate | None, list[Finding]]:
    certs, problems = _read(path, "client_cert")
    if problems:
        return None, problems
    leaf = certs[0]  # the certificate, then the chain above it
    return leaf, _validity(leaf, f"{path} ({_subject(leaf)})", "client_cert", now)


def _client_key(path: Path, cert: x509.Certificate | None) -> list[Finding]:
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as error:
        return [Finding("client_key", f"cannot read {path}: {error.strerror or error}")]
    findings: list[Finding] = []
    if open_to_others(mode):
        findings.append(
            Finding(
                "client_key",
                f"{path} is readable by others (mode {stat.S_IMODE(mode):04o}): chmod 600 {path}",
            )
        )
    key, problem = _load_key(data)
    if problem is not None:
        return [*findings, Finding("client_key", f"{path} {problem}")]
    if cert is not None and key is not None and not _matches(key, cert):
        findings.append(Finding("client_key", f"{path} is not the key of client_cert's certificate"))
    return findings


def _load_key(data: bytes) -> tuple[types.PrivateKeyTypes | None, str | None]:
    if b"-----BEGIN" not in data:
        return None, "is not PEM (no -----BEGIN line)"
    try:
        return serialization.load_pem_private_key(data, password=None), None
    except TypeError:
        return None, "is encrypted: the bridge needs it unencrypted (its 0600 mode protects it)"
    except (ValueError, UnsupportedAlgorithm):  # the error's text never shows the key
        return None, "holds no readable PEM private key"


def _matches(key: types.PrivateKeyTypes, cert: x509.Certificate) -> bool:
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return key.public_key().public_bytes(*spki) == cert.public_key().public_bytes(*spki)
