"""Signed firmware's checks (bridge/security/firmware_signature.py): a signing certificate must chain to
an installed manufacturer root, be valid now and fit for code signing; an image must match its
signature (RSA-PSS, RSA PKCS#1 v1.5, ECDSA in DER or raw), hashed from the file."""

from __future__ import annotations

import base64
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from bridge.security.firmware_signature import (
    SigningCertificateError,
    check_signing_certificate,
    verify_image,
)
from tests.helpers.signing import DAY, NOW, Signer, SigningPki, issue, make_signing_pki

IMAGE = b"\x7fELF firmware " * 100_000  # 1.4 MB: more than one chunk


@pytest.fixture(scope="module")
def pki() -> SigningPki:
    return make_signing_pki()


def der(signer: Signer) -> bytes:
    return signer.certificate.public_bytes(serialization.Encoding.DER)


def test_a_certificate_of_the_installed_root_is_accepted_pem_or_der(pki: SigningPki) -> None:
    check_signing_certificate(pki.rsa.pem, [pki.root_pem], NOW)
    check_signing_certificate(pki.ec.pem, [der(pki.rogue), der(pki.root)], NOW)  # any installed root


def test_through_an_intermediate_sent_with_it(pki: SigningPki) -> None:
    middle = issue("Firmware CA", pki.root, ca=True)
    leaf = issue("Firmware Signing 2", middle)
    check_signing_certificate(leaf.pem + middle.pem, [pki.root_pem], NOW)
    with pytest.raises(SigningCertificateError, match="not issued by an installed"):
        check_signing_certificate(leaf.pem, [pki.root_pem], NOW)  # the intermediate missing


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda p: p.rogue, "not issued by an installed ManufacturerRootCertificate"),
        (lambda p: issue("Old", p.root, valid=(NOW - 9 * DAY, NOW - DAY)), "expired"),
        (lambda p: issue("Future", p.root, valid=(NOW + DAY, NOW + 9 * DAY)), "not valid before"),
        (lambda p: issue("TLS", p.root, purposes=[ExtendedKeyUsageOID.SERVER_AUTH]), "codeSigning"),
        (lambda p: issue("NoSign", p.root, digital_signature=False), "digitalSignature"),
    ],
)
def test_a_certificate_not_fit_is_refused_saying_why(pki: SigningPki, make: object, why: str) -> None:
    signer = make(pki)  # type: ignore[operator]
    with pytest.raises(SigningCertificateError, match=why):
        check_signing_certificate(signer.pem, [pki.root_pem], NOW)


def test_no_root_or_no_pem(pki: SigningPki) -> None:
    with pytest.raises(SigningCertificateError, match="no ManufacturerRootCertificate is installed"):
        check_signing_certificate(pki.rsa.pem, [], NOW)
    with pytest.raises(SigningCertificateError, match="no ManufacturerRootCertificate is installed"):
        check_signing_certificate(pki.rsa.pem, [b"not a certificate"], NOW)
    with pytest.raises(SigningCertificateError, match=r"not a PEM X\.509 certificate"):
        check_signing_certificate(
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", [pki.root_pem], NOW
        )


def test_an_expired_root_verifies_nothing(pki: SigningPki) -> None:
    old_root = issue("Old Root", None, ca=True, valid=(NOW - 9 * DAY, NOW - DAY))
    leaf = issue("Leaf", old_root, valid=(NOW - 9 * DAY, NOW + DAY))
    with pytest.raises(SigningCertificateError, match=r"Old Root.*expired"):
        check_signing_certificate(
            leaf.pem, [old_root.certificate.public_bytes(serialization.Encoding.PEM)], NOW
        )


@pytest.mark.parametrize(
    ("which", "scheme"), [("rsa", "pss"), ("rsa", "pkcs1"), ("ec", "ecdsa"), ("ec", "raw")]
)
def test_each_signature_scheme_verifies_and_a_changed_byte_does_not(
    pki: SigningPki, tmp_path: Path, which: str, scheme: str
) -> None:
    signer: Signer = getattr(pki, which)
    image = tmp_path / "fw.bin"
    image.write_bytes(IMAGE)
    signature = signer.sign(IMAGE, scheme)
    verify_image(image, signer.pem, signature)
    image.write_bytes(IMAGE[:-1] + b"!")
    with pytest.raises(InvalidSignature, match="does not match its signature"):
        verify_image(image, signer.pem, signature)


def test_a_signature_by_another_key_or_not_base64_is_invalid(pki: SigningPki, tmp_path: Path) -> None:
    image = tmp_path / "fw.bin"
    image.write_bytes(IMAGE)
    with pytest.raises(InvalidSignature, match="does not match"):
        verify_image(image, pki.ec.pem, pki.rogue.sign(IMAGE))
    with pytest.raises(InvalidSignature, match="not base64"):
        verify_image(image, pki.ec.pem, "not base64 at all!")
    assert base64.b64decode(pki.ec.sign(IMAGE))  # the helper's signatures are base64 (sanity of the above)


def test_the_check_uses_the_time_it_is_given(pki: SigningPki) -> None:
    later = datetime(2100, 1, 1, tzinfo=UTC)
    with pytest.raises(SigningCertificateError, match="expired"):
        check_signing_certificate(pki.rsa.pem, [pki.root_pem], later)


@pytest.mark.parametrize(
    ("which", "options"),
    [
        ("rsa", ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:-1"]),  # as docs/security.md
        ("rsa", []),  # PKCS#1 v1.5, openssl's default
        ("ec", []),  # ECDSA, DER
    ],
)
def test_signatures_made_by_openssl_as_the_docs_show_verify(
    pki: SigningPki, tmp_path: Path, which: str, options: list[str]
) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (Debian package openssl)")
    signer: Signer = getattr(pki, which)
    key = tmp_path / "signing.key"
    key.write_bytes(
        signer.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    image, sig = tmp_path / "fw.bin", tmp_path / "fw.sig"
    image.write_bytes(IMAGE)
    argv = ["openssl", "dgst", "-sha256", "-sign", str(key), *options, "-out", str(sig), str(image)]
    subprocess.run(argv, check=True, capture_output=True)
    verify_image(image, signer.pem, base64.b64encode(sig.read_bytes()).decode())
