"""Signed firmware (security white paper L01): is a signing certificate the manufacturer's, and does an
image match its signature.

- The signing certificate (a PEM, possibly followed by intermediates) must chain to one of the
  installed ManufacturerRootCertificates, every certificate of the chain within its validity, the
  issuers CAs, and the signing certificate fit for code signing: a keyUsage, if present, allowing
  digitalSignature, and an extendedKeyUsage, if present, naming codeSigning (or any). There is no
  revocation list or OCSP responder to ask, so RevokedCertificate is never the answer.
- The signature is over the image's bytes with SHA-256: RSA-PSS (MGF1 with SHA-256, any salt
  length), which the white paper names; RSA PKCS#1 v1.5, which `openssl dgst -sha256 -sign` makes and
  several central systems' tools send; or ECDSA (DER, or the raw r||s of its curve's size), which is
  what implementations and OCTT use where the white paper says "ECSchnorr". The image is hashed in
  chunks: never whole in memory (`verify_image` blocks: run it in a thread).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID

CHUNK = 1 << 20  # bytes hashed at a time
MAX_CHAIN = 5  # intermediates followed at most


class ManufacturerRoots(Protocol):
    """The installed ManufacturerRootCertificates (the certificate store's), PEM or DER each."""

    def manufacturer_roots(self) -> list[bytes]: ...


class SigningCertificateError(ValueError):
    """The signing certificate is not acceptable; the message says why (for the event and the log)."""


def check_signing_certificate(pem: str, roots: Sequence[bytes], now: datetime) -> None:
    """Raises SigningCertificateError unless `pem` chains to one of `roots` (see the theory)."""
    try:
        chain = x509.load_pem_x509_certificates(pem.encode())
    except ValueError:
        raise SigningCertificateError("the signing certificate is not a PEM X.509 certificate") from None
    anchors = [a for a in map(_root, roots) if a is not None]
    if not anchors:
        raise SigningCertificateError("no ManufacturerRootCertificate is installed")
    leaf, intermediates = chain[0], chain[1:]
    _check_code_signing(leaf)
    cert = leaf
    for _ in range(MAX_CHAIN + 1):
        _check_validity(cert, now)
        root = next((a for a in anchors if _issued_by(cert, a)), None)
        if root is not None:
            _check_validity(root, now)
            return
        issuer = next((i for i in intermediates if _is_ca(i) and _issued_by(cert, i)), None)
        if issuer is None:
            break
        cert = issuer
    raise SigningCertificateError(
        f"the signing certificate ({leaf.subject.rfc4514_string()}) is not issued by an installed "
        "ManufacturerRootCertificate"
    )


def verify_image(image: Path, certificate_pem: str, signature_b64: str) -> None:
    """Raises InvalidSignature with the reason unless `image` matches (blocking: hashes the file)."""
    try:
        signature = base64.b64decode(signature_b64.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSignature("the signature is not base64") from None
    key = x509.load_pem_x509_certificates(certificate_pem.encode())[0].public_key()
    digest = hashes.Hash(hashes.SHA256())
    with image.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    value, prehashed = digest.finalize(), Prehashed(hashes.SHA256())
    if isinstance(key, rsa.RSAPublicKey):
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
        for pad in (pss, padding.PKCS1v15()):
            try:
                key.verify(signature, value, pad, prehashed)
                return
            except InvalidSignature:
                pass
    elif isinstance(key, ec.EllipticCurvePublicKey):
        size = (key.curve.key_size + 7) // 8
        forms = [signature]
        if len(signature) == 2 * size:  # raw r||s
            r, s = int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
            forms.append(encode_dss_signature(r, s))
        for form in forms:
            try:
                key.verify(form, value, ec.ECDSA(prehashed))
                return
            except InvalidSignature:
                pass
    else:
        raise InvalidSignature(f"a {type(key).__name__} key cannot sign firmware here (RSA or EC only)")
    raise InvalidSignature("the image does not match its signature (SHA-256, RSA-PSS, PKCS#1 v1.5 or ECDSA)")


# -- the parts ---------------------------------------------------------------------------------------
def _root(data: bytes) -> x509.Certificate | None:
    """An installed root, PEM or DER; one that does not parse is no anchor."""
    try:
        return (
            x509.load_pem_x509_certificate(data)
            if b"-----BEGIN" in data
            else x509.load_der_x509_certificate(data)
        )
    except ValueError:
        return None


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _check_validity(cert: x509.Certificate, now: datetime) -> None:
    name = cert.subject.rfc4514_string()
    if now < cert.not_valid_before_utc:
        raise SigningCertificateError(f"{name} is not valid before {cert.not_valid_before_utc.isoformat()}")
    if now > cert.not_valid_after_utc:
        raise SigningCertificateError(f"{name} expired on {cert.not_valid_after_utc.isoformat()}")


def _check_code_signing(cert: x509.Certificate) -> None:
    name = cert.subject.rfc4514_string()
    try:
        extensions = cert.extensions  # parsed here: a duplicate or malformed one is no signing certificate
    except (x509.DuplicateExtension, ValueError) as exc:
        raise SigningCertificateError(f"{name}: its extensions do not parse: {exc}") from None
    try:
        usage = extensions.get_extension_for_class(x509.KeyUsage).value
        if not usage.digital_signature:
            raise SigningCertificateError(f"{name}: its keyUsage does not allow digitalSignature")
    except x509.ExtensionNotFound:
        pass
    try:
        purposes = extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not {ExtendedKeyUsageOID.CODE_SIGNING, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE} & set(purposes):
        raise SigningCertificateError(f"{name}: its extendedKeyUsage does not include codeSigning")
