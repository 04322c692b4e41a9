"""Test PKIs made at test time: `make_pki` (a CA and a server certificate for 127.0.0.1 and localhost)
and `make_test_pki` (root, intermediate, good and bad server certificates, client certificates).

(A helper despite its name: it defines no tests, so pytest collects nothing from it.)
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Pki:
    ca_cert: Path  # PEM
    server_cert: Path  # PEM, the server's certificate then the CA's
    server_key: Path  # PEM, unencrypted

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this CA only (hostnames checked)."""
        return ssl.create_default_context(cafile=str(self.ca_cert))

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(self.server_cert), str(self.server_key))
        return context


def _general_names(hosts: tuple[str, ...]) -> list[x509.GeneralName]:
    """subjectAltName entries: an IP address where the host is one, else a DNS name."""
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_pki(directory: Path, *, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> Pki:
    """Writes ca.pem, server.pem and server.key into `directory`."""
    now = datetime.datetime.now(datetime.UTC)
    valid = (now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=1))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("ocpp-bridge test CA"))
        .issuer_name(_name("ocpp-bridge test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0])
        .not_valid_after(valid[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = _general_names(hosts)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0])
        .not_valid_after(valid[1])
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    pki = Pki(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    pki.ca_cert.write_bytes(ca.public_bytes(pem))
    pki.server_cert.write_bytes(cert.public_bytes(pem) + ca.public_bytes(pem))
    pki.server_key.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return pki


# --- A fuller PKI: root, intermediate, server certificates good and bad, a client CA ----------------

CIPHERS_TLS12 = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:AES128-GCM-SHA256:AES256-GCM-SHA384"
)


@dataclass(frozen=True)
class Issued:
    """A certificate (PEM, with the chain above it up to, not including, the root) and its key."""

    cert: Path
    key: Path  # PEM, unencrypted, 0600


@dataclass(frozen=True)
class TestPki:
    """Made by `make_test_pki`. Servers: `good` (localhost/127.0.0.1, issued by the intermediate),
    `expired`, `wrong_host` (names other.example only), `self_signed`. Clients: `client` (CN = a
    serial number, O = a CPO name) from the client CA; `rogue_client` from a CA nobody trusts."""

    __test__ = False  # not a test class, whatever its name

    directory: Path
    root: Path  # the central system's root CA (PEM): what ca_file holds
    intermediate: Path
    client_ca: Path  # the CA the central system trusts for client certificates
    good: Issued
    expired: Issued
    wrong_host: Issued
    self_signed: Issued
    client: Issued
    rogue_client: Issued
    client_serial: str
    cpo_name: str

    def server_context(
        self,
        server: Issued | None = None,
        *,
        require_client: bool = False,
        max_version: ssl.TLSVersion | None = None,
        ciphers: str | None = None,
    ) -> ssl.SSLContext:
        """A server context for `server` (default `good`); `require_client`: mTLS against client_ca."""
        issued = server or self.good
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if max_version is not None:
            context.maximum_version = max_version
        if ciphers is not None:
            context.set_ciphers(ciphers)
        context.load_cert_chain(str(issued.cert), str(issued.key))
        if require_client:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cafile=str(self.client_ca))
        return context

    def bundle(self, name: str = "bundle.pem") -> Path:
        """A CA bundle holding the root (and an unrelated CA, as a real store would): for SSL_CERT_FILE."""
        path = self.directory / name
        path.write_bytes(self.client_ca.read_bytes() + self.root.read_bytes())
        return path


_Key = ec.EllipticCurvePrivateKey


def _ca_cert(
    subject: str, key: _Key, issuer: tuple[x509.Certificate, _Key] | None, valid: tuple[Any, Any]
) -> x509.Certificate:
    name = _name(subject)
    issuer_name, issuer_key = (name, key) if issuer is None else (issuer[0].subject, issuer[1])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0])
        .not_valid_after(valid[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
        .sign(issuer_key, hashes.SHA256())
    )


def _leaf(
    subject: x509.Name,
    key: _Key,
    issuer: tuple[x509.Name, _Key],
    valid: tuple[Any, Any],
    *,
    hosts: tuple[str, ...] = (),
    client: bool = False,
) -> x509.Certificate:
    usage = x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH if client else x509.oid.ExtendedKeyUsageOID.SERVER_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0])
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0])
        .not_valid_after(valid[1])
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer[1].public_key()), critical=False
        )
    )
    if hosts:
        builder = builder.add_extension(x509.SubjectAlternativeName(_general_names(hosts)), critical=False)
    return builder.sign(issuer[1], hashes.SHA256())


def _pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def write_key(path: Path, key: _Key) -> Path:
    """A private key as PEM (PKCS#8, unencrypted), created 0600 as the bridge requires."""
    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)
    return path


def make_test_pki(
    directory: Path, *, client_serial: str = "SN-0001", cpo_name: str = "Example CPO"
) -> TestPki:
    """Writes a whole test PKI into `directory` (see TestPki)."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    valid = (now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=365))
    past = (now - datetime.timedelta(days=30), now - datetime.timedelta(days=1))
    hosts = ("localhost", "127.0.0.1")

    root_key = ec.generate_private_key(ec.SECP256R1())
    root = _ca_cert("ocpp-bridge test root CA", root_key, None, valid)
    inter_key = ec.generate_private_key(ec.SECP256R1())
    inter = _ca_cert("ocpp-bridge test intermediate CA", inter_key, (root, root_key), valid)
    client_ca_key = ec.generate_private_key(ec.SECP256R1())
    client_ca = _ca_cert("ocpp-bridge test client CA", client_ca_key, None, valid)
    rogue_key = ec.generate_private_key(ec.SECP256R1())
    rogue = _ca_cert("nobody trusts this CA", rogue_key, None, valid)

    def server(name: str, valid_: tuple[Any, Any], names: tuple[str, ...]) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _leaf(_name(names[0]), key, (inter.subject, inter_key), valid_, hosts=names)
        issued = Issued(directory / f"{name}.pem", directory / f"{name}.key")
        issued.cert.write_bytes(_pem(cert, inter))
        write_key(issued.key, key)
        return issued

    def client(name: str, issuer: tuple[x509.Certificate, _Key]) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, cpo_name),
                x509.NameAttribute(NameOID.COMMON_NAME, client_serial),
            ]
        )
        cert = _leaf(subject, key, (issuer[0].subject, issuer[1]), valid, client=True)
        issued = Issued(directory / f"{name}.pem", directory / f"{name}.key")
        issued.cert.write_bytes(_pem(cert))
        write_key(issued.key, key)
        return issued

    self_key = ec.generate_private_key(ec.SECP256R1())
    self_cert = _self_signed_server(self_key, valid, hosts)
    self_signed = Issued(directory / "self_signed.pem", directory / "self_signed.key")
    self_signed.cert.write_bytes(_pem(self_cert))
    write_key(self_signed.key, self_key)

    pki = TestPki(
        directory=directory,
        root=directory / "root.pem",
        intermediate=directory / "intermediate.pem",
        client_ca=directory / "client_ca.pem",
        good=server("server", valid, hosts),
        expired=server("expired", past, hosts),
        wrong_host=server("wrong_host", valid, ("other.example",)),
        self_signed=self_signed,
        client=client("client", (client_ca, client_ca_key)),
        rogue_client=client("rogue_client", (rogue, rogue_key)),
        client_serial=client_serial,
        cpo_name=cpo_name,
    )
    pki.root.write_bytes(_pem(root))
    pki.intermediate.write_bytes(_pem(inter))
    pki.client_ca.write_bytes(_pem(client_ca))
    return pki


def _self_signed_server(key: _Key, valid: tuple[Any, Any], hosts: tuple[str, ...]) -> x509.Certificate:
    names = _general_names(hosts[:2])
    return (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(_name(hosts[0]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0])
        .not_valid_after(valid[1])
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(key, hashes.SHA256())
    )


def make_identity(
    directory: Path,
    name: str,
    *,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
    serial: str = "SN-0001",
    cpo_name: str = "Example CPO",
) -> Issued:
    """A self-issued client certificate valid from `not_before` to `not_after`, and its key (0600)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, cpo_name),
            x509.NameAttribute(NameOID.COMMON_NAME, serial),
        ]
    )
    cert = _leaf(subject, key, (subject, key), (not_before, not_after), client=True)
    issued = Issued(directory / f"{name}.pem", directory / f"{name}.key")
    issued.cert.write_bytes(_pem(cert))
    write_key(issued.key, key)
    return issued
