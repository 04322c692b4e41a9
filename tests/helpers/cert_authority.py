"""A small certificate authority made at test time with `cryptography`: roots, an intermediate, and
certificates signed from a charge point's CSR, for the certificate tests."""

from __future__ import annotations

import datetime
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = datetime.datetime.now(datetime.UTC)


def name(common_name: str, organization: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization is not None:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


@dataclass
class Authority:
    certificate: x509.Certificate
    key: CertificateIssuerPrivateKeyTypes

    @property
    def pem(self) -> str:
        return pem(self.certificate)

    def issue(
        self,
        subject: x509.Name,
        public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey,
        *,
        ca: bool | None = None,
        not_before: datetime.datetime | None = None,
        days: float = 365,
        serial: int | None = None,
    ) -> x509.Certificate:
        start = not_before or NOW - datetime.timedelta(minutes=5)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(serial if serial is not None else x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + datetime.timedelta(days=days))
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False)  # type: ignore[arg-type]
        )
        if ca is not None:
            builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        if ca:
            builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False)
        if ca is False:
            builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
        return builder.sign(self.key, hashes.SHA256())

    def intermediate(self, common_name: str) -> Authority:
        key = ec.generate_private_key(ec.SECP256R1())
        return Authority(self.issue(name(common_name), key.public_key(), ca=True), key)

    def sign_csr(self, csr_pem: str, **kwargs: object) -> x509.Certificate:
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        assert csr.is_signature_valid
        return self.issue(csr.subject, csr.public_key(), ca=False, **kwargs)  # type: ignore[arg-type]


def root(
    common_name: str, *, rsa_key: bool = False, serial: int | None = None, days: float = 3650
) -> Authority:
    key: CertificateIssuerPrivateKeyTypes = (
        rsa.generate_private_key(65537, 2048) if rsa_key else ec.generate_private_key(ec.SECP256R1())
    )
    subject = name(common_name, "ocpp-bridge tests")
    start = NOW - datetime.timedelta(minutes=5)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())  # type: ignore[arg-type]
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)  # type: ignore[arg-type]
        .sign(key, hashes.SHA256())
    )
    return Authority(certificate, key)


def cross_signed(new: Authority, old: Authority) -> x509.Certificate:
    """`new`'s root key and name, signed by `old` (what AdditionalRootCertificateCheck wants)."""
    return old.issue(new.certificate.subject, new.key.public_key(), ca=True, days=3650)  # type: ignore[arg-type]


def openssl_cert_id(
    directory: Path, certificate_pem: str, issuer_pem: str, digest: str = "sha256"
) -> dict[str, str]:
    """The CertID hashes `openssl ocsp` computes for a certificate (an independent reference):
    issuerNameHash, issuerKeyHash, serialNumber as it prints them."""
    cert_file, issuer_file, request = directory / "c.pem", directory / "i.pem", directory / "req.der"
    cert_file.write_text(certificate_pem)
    issuer_file.write_text(issuer_pem)
    subprocess.run(
        ["openssl", "ocsp", f"-{digest}", "-issuer", str(issuer_file), "-cert", str(cert_file),
         "-no_nonce", "-reqout", str(request)],
        check=True, capture_output=True,
    )  # fmt: skip
    text = subprocess.run(
        ["openssl", "ocsp", "-reqin", str(request), "-req_text"], check=True, capture_output=True, text=True
    ).stdout
    text = re.sub(r"\\\n\s*", "", text)  # long hashes continue on the next line after a backslash
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.strip().partition(":")
        if key in ("Issuer Name Hash", "Issuer Key Hash", "Serial Number"):
            fields[key] = value.strip()
    return {
        "issuerNameHash": fields["Issuer Name Hash"].lower(),
        "issuerKeyHash": fields["Issuer Key Hash"].lower(),
        "serialNumber": fields["Serial Number"],
    }
