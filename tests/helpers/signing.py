"""A firmware-signing PKI made at test time: a manufacturer root (the ManufacturerRootCertificate),
signing certificates under it (RSA and EC, optionally through an intermediate), and signatures of an
image (RSA-PSS, RSA PKCS#1 v1.5, ECDSA); installing the root in a charge point's certificate store."""

from __future__ import annotations

import base64
import datetime
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
NOW = datetime.datetime.now(datetime.UTC)
DAY = datetime.timedelta(days=1)


@dataclass(frozen=True)
class Signer:
    certificate: x509.Certificate
    key: Key

    @property
    def pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    def sign(self, data: bytes, scheme: str = "pss") -> str:
        """base64 of the signature of `data` with SHA-256: "pss", "pkcs1" (RSA), "ecdsa" (DER) or
        "raw" (ECDSA as r||s)."""
        key = self.key
        if isinstance(key, rsa.RSAPrivateKey):
            pad = (
                padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH)
                if scheme == "pss"
                else padding.PKCS1v15()
            )
            signature = key.sign(data, pad, hashes.SHA256())
        else:
            signature = key.sign(data, ec.ECDSA(hashes.SHA256()))
            if scheme == "raw":
                r, s = decode_dss_signature(signature)
                size = (key.curve.key_size + 7) // 8
                signature = r.to_bytes(size, "big") + s.to_bytes(size, "big")
        return base64.b64encode(signature).decode()


def _key(kind: str) -> Key:
    return rsa.generate_private_key(65537, 2048) if kind == "rsa" else ec.generate_private_key(ec.SECP256R1())


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test Manufacturer"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def issue(
    cn: str,
    issuer: Signer | None,
    *,
    kind: str = "ec",
    ca: bool = False,
    valid: tuple[datetime.datetime, datetime.datetime] = (NOW - DAY, NOW + 365 * DAY),
    purposes: list[x509.ObjectIdentifier] | None = None,
    digital_signature: bool = True,
) -> Signer:
    """A certificate for `cn` signed by `issuer` (None: self-signed), a CA or a code-signing one."""
    key = _key(kind)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer.certificate.subject if issuer else _name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0])
        .not_valid_after(valid[1])
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    usage = dict.fromkeys(
        ("content_commitment", "key_encipherment", "data_encipherment", "key_agreement", "encipher_only",
         "decipher_only"), False,
    )  # fmt: skip
    builder = builder.add_extension(
        x509.KeyUsage(digital_signature=digital_signature or ca, key_cert_sign=ca, crl_sign=ca, **usage),
        critical=True,
    )
    if not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(purposes or [ExtendedKeyUsageOID.CODE_SIGNING]), critical=False
        )
    signer_key = issuer.key if issuer else key
    return Signer(builder.sign(signer_key, hashes.SHA256()), key)


@dataclass(frozen=True)
class SigningPki:
    root: Signer  # installed as the ManufacturerRootCertificate
    rsa: Signer  # RSA code-signing certificate under root
    ec: Signer  # EC code-signing certificate under root
    rogue: Signer  # a code-signing certificate of another root

    @property
    def root_pem(self) -> bytes:
        return self.root.certificate.public_bytes(serialization.Encoding.PEM)


def make_signing_pki() -> SigningPki:
    root = issue("Manufacturer Root", None, ca=True)
    other = issue("Other Root", None, ca=True)
    return SigningPki(
        root,
        issue("Firmware Signing RSA", root, kind="rsa"),
        issue("Firmware Signing EC", root),
        issue("Rogue Signing", other),
    )


def install_manufacturer_root(state_dir: Path, cp_id: str, pem: bytes) -> None:
    """The root, as InstallCertificate(ManufacturerRootCertificate) stores it."""
    from bridge.security.cert_store import CertificateStore, certificates_directory

    store = CertificateStore(certificates_directory(state_dir, cp_id))
    store.add_root("ManufacturerRootCertificate", pem, x509.load_pem_x509_certificate(pem))
