"""Certificates of the OCPP 1.6 security extension (white paper A02, A03, M03-M05), with `cryptography`.

- Parsing: a PEM certificate or a PEM chain, with a ValueError naming what is wrong (not PEM, not a
  certificate, too long).
- `hash_data`: OCPP's CertificateHashDataType, the CertID of OCSP (RFC 6960 §4.1.1): issuerNameHash is
  the hash of the DER of the certificate's issuer Name (the bytes as they are in the certificate),
  issuerKeyHash the hash of the issuer's public key (the value of the BIT STRING in its
  SubjectPublicKeyInfo, not the whole structure), both lower-case hex; serialNumber is the serial in
  lower-case hex without leading zeros. A root is its own issuer.
- Chain checks: `verify_chain` uses `cryptography.x509.verification`'s client verifier (it needs no
  subjectAltName, unlike its server verifier) with our own extension policies: a CA must assert
  basicConstraints cA (and its keyUsage, when present, keyCertSign); a leaf's extensions are not
  constrained (a charge point certificate names no host, and a firmware signing certificate's usages
  vary by manufacturer). Signatures, validity at the time given and the path length are the
  verifier's.
- `check_signed_certificate`: the A02 checks of a CertificateSigned chain.
- Signing requests: an EC P-256 key made on the device (fast to generate on a Pi, where RSA 2048 takes
  up to seconds; the white paper allows EC >= 224 bits and lists ECDHE_ECDSA suites) and a PKCS#10 CSR
  with CN = the charge point's serial number and O = CpoName.

Pure functions: no asyncio, no files; the time is passed in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from cryptography.x509 import verification
from cryptography.x509.oid import NameOID

MAX_PEM_BYTES = 64 * 1024  # far above any real chain (OCPP's InstallCertificate allows 5,500 characters)
MAX_CHAIN_DEPTH = 8
HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "SHA256": hashes.SHA256, "SHA384": hashes.SHA384, "SHA512": hashes.SHA512,
}  # fmt: skip
RENEW_BEFORE = timedelta(days=30)  # A03: a renewal starts one month before the certificate expires
RENEW_RETRY = timedelta(days=1)  # ... and again each day while it is not renewed

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----.*?-----END \1-----", re.DOTALL)


# -- parsing ----------------------------------------------------------------------------------------
def parse_chain(pem: str | bytes, max_bytes: int = MAX_PEM_BYTES) -> list[x509.Certificate]:
    """Every certificate of a PEM text, in order; ValueError when the text is too long, holds no PEM
    block, or a block is not a certificate."""
    data = pem.encode() if isinstance(pem, str) else pem
    if len(data) > max_bytes:
        raise ValueError(f"too long: {len(data)} bytes, at most {max_bytes}")
    blocks = list(_PEM_BLOCK.finditer(data))
    if not blocks:
        raise ValueError("not PEM: no -----BEGIN CERTIFICATE----- block")
    certificates = []
    for n, block in enumerate(blocks, 1):
        label = block.group(1).decode()
        if label != "CERTIFICATE":
            raise ValueError(f"PEM block {n} is not a certificate but {label!r}")
        try:
            certificates.append(x509.load_pem_x509_certificate(block.group(0)))
        except ValueError as exc:
            raise ValueError(f"PEM block {n} is not a valid X.509 certificate: {exc}") from None
    return certificates


def parse_certificate(pem: str | bytes, max_bytes: int = MAX_PEM_BYTES) -> x509.Certificate:
    """The one certificate of a PEM text (ValueError as `parse_chain`, or when it holds several)."""
    chain = parse_chain(pem, max_bytes)
    if len(chain) != 1:
        raise ValueError(f"expected one certificate, found {len(chain)}")
    return chain[0]


def pem_of(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def fingerprint(certificate: x509.Certificate) -> str:
    """SHA-256 of the DER, lower-case hex: the name a certificate is stored under."""
    return certificate.fingerprint(hashes.SHA256()).hex()


# -- hash data (RFC 6960 CertID) ----------------------------------------------------------------
def _der_element(data: bytes, at: int) -> tuple[int, int, int]:
    """(tag, start of the content, end of the element) of the DER element at `at`."""
    if at + 2 > len(data):
        raise ValueError("truncated DER")
    tag, length, at = data[at], data[at + 1], at + 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or at + count > len(data):
            raise ValueError("unsupported DER length")
        length, at = int.from_bytes(data[at : at + count], "big"), at + count
    if at + length > len(data):
        raise ValueError("truncated DER")
    return tag, at, at + length


def _issuer_der(certificate: x509.Certificate) -> bytes:
    """The issuer Name's DER exactly as the certificate carries it (TBSCertificate's fourth field, or
    third without the optional [0] version)."""
    tbs = certificate.tbs_certificate_bytes
    _, at, _ = _der_element(tbs, 0)  # TBSCertificate SEQUENCE
    tag, _, end = _der_element(tbs, at)
    if tag == 0xA0:  # [0] EXPLICIT version
        tag, _, end = _der_element(tbs, end)
    # `end` is past the serialNumber INTEGER now; then the signature AlgorithmIdentifier, then the issuer
    _, _, end = _der_element(tbs, end)
    _, _, issuer_end = _der_element(tbs, end)
    return tbs[end:issuer_end]


def _public_key_bits(certificate: x509.Certificate) -> bytes:
    """The subjectPublicKey BIT STRING's value (its unused-bits byte dropped) of a certificate."""
    spki = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _, at, _ = _der_element(spki, 0)  # SubjectPublicKeyInfo SEQUENCE
    _, _, end = _der_element(spki, at)  # AlgorithmIdentifier
    tag, start, stop = _der_element(spki, end)
    if tag != 0x03:
        raise ValueError("SubjectPublicKeyInfo without a BIT STRING")
    return spki[start + 1 : stop]


def serial_hex(certificate: x509.Certificate) -> str:
    return format(certificate.serial_number, "x")


def hash_data(
    certificate: x509.Certificate, issuer: x509.Certificate, algorithm: str = "SHA256"
) -> dict[str, str]:
    """OCPP's CertificateHashDataType of `certificate` issued by `issuer` (itself for a root)."""
    kind = HASHES.get(algorithm)
    if kind is None:
        raise ValueError(f"hash algorithm {algorithm!r} is not one of {', '.join(HASHES)}")

    def digest(data: bytes) -> str:
        h = hashes.Hash(kind())
        h.update(data)
        return h.finalize().hex()

    return {
        "hashAlgorithm": algorithm,
        "issuerNameHash": digest(_issuer_der(certificate)),
        "issuerKeyHash": digest(_public_key_bits(issuer)),
        "serialNumber": serial_hex(certificate),
    }


def same_hash_data(ours: Mapping[str, str], theirs: Mapping[str, str]) -> bool:
    """Whether a central system's hash data names our certificate: hex compared without regard to
    case, the serial number also without leading zeros."""
    try:
        return (
            ours["hashAlgorithm"] == theirs["hashAlgorithm"]
            and ours["issuerNameHash"].lower() == theirs["issuerNameHash"].lower()
            and ours["issuerKeyHash"].lower() == theirs["issuerKeyHash"].lower()
            and int(ours["serialNumber"], 16) == int(theirs["serialNumber"], 16)
        )
    except (KeyError, ValueError):
        return False


# -- checks ---------------------------------------------------------------------------------------
def _valid_at(certificate: x509.Certificate, now: datetime, what: str) -> None:
    if now < certificate.not_valid_before_utc:
        raise ValueError(f"{what} is not valid before {certificate.not_valid_before_utc.isoformat()}")
    if now > certificate.not_valid_after_utc:
        raise ValueError(f"{what} expired on {certificate.not_valid_after_utc.isoformat()}")


def is_ca(certificate: x509.Certificate) -> bool:
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    return constraints.ca


def issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    """`issuer`'s name is `certificate`'s issuer and its key made the signature."""
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def check_root(certificate: x509.Certificate, now: datetime) -> None:
    """What InstallCertificate asks of a root or CA certificate: valid now, a CA, and signed by itself
    when it names itself as its issuer. ValueError with the reason otherwise."""
    _valid_at(certificate, now, "the certificate")
    if not is_ca(certificate):
        raise ValueError("not a CA certificate (basicConstraints cA is not set)")
    if certificate.issuer == certificate.subject and not issued_by(certificate, certificate):
        raise ValueError("its self-signature does not verify")


def _require_ca(
    _policy: verification.Policy, _cert: x509.Certificate, ext: x509.BasicConstraints | None
) -> None:
    if ext is None or not ext.ca:
        raise ValueError("basicConstraints cA is not set on an issuing certificate")


def _require_cert_sign(
    _policy: verification.Policy, _cert: x509.Certificate, ext: x509.KeyUsage | None
) -> None:
    if ext is not None and not ext.key_cert_sign:
        raise ValueError("keyUsage of an issuing certificate does not allow keyCertSign")


def verify_chain(
    chain: list[x509.Certificate], anchors: list[x509.Certificate], now: datetime
) -> list[x509.Certificate]:
    """The path from `chain[0]` (the leaf; the rest are intermediates in any order) up to one of
    `anchors`, all valid at `now`; ValueError naming what failed."""
    if not chain:
        raise ValueError("no certificate")
    if not anchors:
        raise ValueError("no root certificate installed to verify it against")
    policy = verification.ExtensionPolicy
    ca_policy = (
        policy.permit_all()
        .require_present(x509.BasicConstraints, verification.Criticality.AGNOSTIC, _require_ca)
        .may_be_present(x509.KeyUsage, verification.Criticality.AGNOSTIC, _require_cert_sign)
    )
    verifier = (
        verification.PolicyBuilder()
        .store(verification.Store(anchors))
        .time(now)
        .max_chain_depth(MAX_CHAIN_DEPTH)
        .extension_policies(ca_policy=ca_policy, ee_policy=policy.permit_all())
        .build_client_verifier()
    )
    try:
        return list(verifier.verify(chain[0], chain[1:]).chain)
    except verification.VerificationError as exc:
        raise ValueError(f"the chain does not verify: {exc}") from None


def subject_field(
    certificate: x509.Certificate | x509.CertificateSigningRequest, oid: x509.ObjectIdentifier
) -> str:
    values = certificate.subject.get_attributes_for_oid(oid)
    value = values[0].value if values else ""
    return value if isinstance(value, str) else value.decode()


def check_signed_certificate(
    chain_pem: str,
    public_key: PublicKeyTypes,
    serial_number: str,
    cpo_name: str,
    anchors: list[x509.Certificate],
    now: datetime,
    max_chain_size: int,
) -> list[x509.Certificate]:
    """A02's checks of CertificateSigned's chain: at most `max_chain_size` bytes
    (CertificateSignedMaxChainSize), PEM certificates, the leaf's key the one of our signing request,
    CN = our serial number, O = CpoName, not expired, and a path to an installed
    CentralSystemRootCertificate, valid when the leaf takes effect (now, or its notBefore when that is
    later: the switch waits for it). The parsed chain, leaf first; ValueError with the reason."""
    chain = parse_chain(chain_pem, max_chain_size)
    leaf = chain[0]
    if leaf.public_key() != public_key:
        raise ValueError("the certificate's public key is not the one of our signing request")
    common_name = subject_field(leaf, NameOID.COMMON_NAME)
    if common_name != serial_number:
        raise ValueError(f"CN is {common_name!r}, not the charge point's serial number {serial_number!r}")
    organization = subject_field(leaf, NameOID.ORGANIZATION_NAME)
    if organization != cpo_name:
        raise ValueError(f"O is {organization!r}, not CpoName {cpo_name!r}")
    if now > leaf.not_valid_after_utc:
        raise ValueError(f"the certificate expired on {leaf.not_valid_after_utc.isoformat()}")
    verify_chain(chain, anchors, max(now, leaf.not_valid_before_utc))
    return chain


# -- signing requests -------------------------------------------------------------------------------
def generate_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: PrivateKeyTypes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_key(pem: bytes) -> PrivateKeyTypes:
    return serialization.load_pem_private_key(pem, password=None)


def make_csr(key: ec.EllipticCurvePrivateKey, common_name: str, organization: str) -> str:
    """A PKCS#10 request in PEM: CN = the charge point's serial number, O = CpoName (both required)."""
    if not common_name:
        raise ValueError("no serial number for the CN of the signing request")
    if not organization:
        raise ValueError("CpoName is empty: it is the O of the signing request")
    subject = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
    ])  # fmt: skip
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


# -- renewal (A03) ----------------------------------------------------------------------------------
def next_renewal(not_after: datetime, now: datetime, last_attempt: datetime | None) -> datetime:
    """When to start the next signing request for a certificate expiring at `not_after`: one month
    before, or at once when that is past and no attempt was made since, else a day after the last."""
    due = not_after - RENEW_BEFORE
    if now < due:
        return due
    if last_attempt is None or last_attempt < due:
        return now
    return max(now, last_attempt + RENEW_RETRY)
