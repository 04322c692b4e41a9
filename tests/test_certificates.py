"""bridge/security/certificates.py and cert_store.py: parsing, the RFC 6960 hash data (checked against
`openssl ocsp`), chain checks, the CSR, the renewal date, and the store's files."""

from __future__ import annotations

import stat
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import bridge.security.cert_store as module
from bridge.security import certificates as certs
from bridge.security.cert_store import CertificateStore, certificates_directory
from tests.helpers.cert_authority import NOW, Authority, cross_signed, name, openssl_cert_id, pem, root
from tests.helpers.pki import make_identity


def test_parse_errors_name_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="not PEM"):
        certs.parse_certificate("hello")
    with pytest.raises(ValueError, match="too long"):
        certs.parse_certificate("x" * (certs.MAX_PEM_BYTES + 1))
    with pytest.raises(ValueError, match="not a certificate but 'PRIVATE KEY'"):
        certs.parse_certificate(certs.key_pem(certs.generate_key()))
    with pytest.raises(ValueError, match=r"not a valid X\.509"):
        certs.parse_certificate("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    one = root("R").pem
    with pytest.raises(ValueError, match="expected one certificate, found 2"):
        certs.parse_certificate(one + one)
    assert len(certs.parse_chain(one + one)) == 2


@pytest.mark.parametrize("algorithm", ["SHA256", "SHA384", "SHA512"])
@pytest.mark.parametrize("rsa_key", [False, True])
def test_hash_data_matches_openssl(tmp_path: Path, algorithm: str, rsa_key: bool) -> None:
    r = root("Hash root", rsa_key=rsa_key, serial=0x00F1)
    leaf = r.issue(name("leaf"), ec.generate_private_key(ec.SECP256R1()).public_key(), ca=False)
    for certificate, issuer in ((r.certificate, r.certificate), (leaf, r.certificate)):
        ours = certs.hash_data(certificate, issuer, algorithm)
        theirs = openssl_cert_id(tmp_path, pem(certificate), pem(issuer), algorithm.lower())
        assert ours["hashAlgorithm"] == algorithm
        assert ours["issuerNameHash"] == theirs["issuerNameHash"]
        assert ours["issuerKeyHash"] == theirs["issuerKeyHash"]
        assert int(ours["serialNumber"], 16) == int(theirs["serialNumber"], 16)
    assert (
        certs.hash_data(r.certificate, r.certificate)["serialNumber"] == "f1"
    )  # no leading zeros, lower case
    with pytest.raises(ValueError, match="MD5"):
        certs.hash_data(leaf, r.certificate, "MD5")


def test_same_hash_data_ignores_case_and_leading_zeros() -> None:
    r = root("R")
    ours = certs.hash_data(r.certificate, r.certificate)
    theirs = {
        **ours,
        "issuerKeyHash": ours["issuerKeyHash"].upper(),
        "serialNumber": "00" + ours["serialNumber"],
    }
    assert certs.same_hash_data(ours, theirs)
    assert not certs.same_hash_data(ours, {**ours, "serialNumber": "1"})
    assert not certs.same_hash_data(ours, {**ours, "hashAlgorithm": "SHA384"})


def test_check_root() -> None:
    certs.check_root(root("R").certificate, NOW)
    with pytest.raises(ValueError, match="expired"):
        certs.check_root(root("R", days=1).certificate, NOW + timedelta(days=2))
    r = root("R")
    leaf = r.issue(name("leaf"), ec.generate_private_key(ec.SECP256R1()).public_key(), ca=False)
    with pytest.raises(ValueError, match="not a CA"):
        certs.check_root(leaf, NOW)


def _request(key: ec.EllipticCurvePrivateKey, serial: str = "SN-1", cpo: str = "CPO") -> str:
    return certs.make_csr(key, serial, cpo)


def test_csr_names_serial_and_cpo_and_is_signed_by_our_key() -> None:
    key = certs.generate_key()
    csr = x509.load_pem_x509_csr(_request(key).encode())
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "SN-1"
    assert csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "CPO"
    assert csr.public_key() == key.public_key()
    assert isinstance(key.curve, ec.SECP256R1)
    with pytest.raises(ValueError, match="CpoName is empty"):
        certs.make_csr(key, "SN-1", "")


def test_signed_certificate_checks() -> None:
    r = root("CS root")
    mid = r.intermediate("CS sub-CA")
    key = certs.generate_key()
    leaf = mid.sign_csr(_request(key))
    chain = pem(leaf) + mid.pem

    def check(chain_pem: str, **kw: object) -> list[x509.Certificate]:
        args: dict[str, object] = {
            "public_key": key.public_key(), "serial_number": "SN-1", "cpo_name": "CPO",
            "anchors": [r.certificate], "now": NOW, "max_chain_size": 10_000,
        }  # fmt: skip
        return certs.check_signed_certificate(chain_pem, **{**args, **kw})  # type: ignore[arg-type]

    assert check(chain)[0] == leaf
    with pytest.raises(ValueError, match="public key is not the one of our signing request"):
        check(chain, public_key=certs.generate_key().public_key())
    with pytest.raises(ValueError, match="CN is 'SN-1', not the charge point's serial number 'SN-2'"):
        check(chain, serial_number="SN-2")
    with pytest.raises(ValueError, match="O is 'CPO', not CpoName 'Other'"):
        check(chain, cpo_name="Other")
    with pytest.raises(ValueError, match="does not verify"):
        check(chain, anchors=[root("Another root").certificate])
    with pytest.raises(ValueError, match="does not verify"):
        check(pem(leaf))  # the intermediate missing
    with pytest.raises(ValueError, match="too long"):
        check(chain, max_chain_size=100)
    with pytest.raises(ValueError, match="expired"):
        check(chain, now=NOW + timedelta(days=400))
    # An intermediate that is not a CA cannot issue
    not_ca_key = ec.generate_private_key(ec.SECP256R1())
    not_ca = r.issue(name("not a CA"), not_ca_key.public_key(), ca=False)
    forged = Authority(not_ca, not_ca_key).sign_csr(_request(key))
    with pytest.raises(ValueError, match="cA"):
        check(pem(forged) + pem(not_ca))
    # Signed for later: verified at its notBefore
    later = mid.sign_csr(_request(key), not_before=NOW + timedelta(days=2))
    assert check(pem(later) + mid.pem)[0] == later


def test_next_renewal_one_month_before_then_daily() -> None:
    not_after = NOW + timedelta(days=90)
    assert certs.next_renewal(not_after, NOW, None) == not_after - timedelta(days=30)
    due = not_after - timedelta(days=30)
    assert certs.next_renewal(not_after, due + timedelta(hours=1), None) == due + timedelta(hours=1)
    assert certs.next_renewal(
        not_after, due + timedelta(hours=2), due + timedelta(hours=1)
    ) == due + timedelta(days=1, hours=1)


def test_store_roots_keys_and_switch(tmp_path: Path) -> None:
    directory = certificates_directory(tmp_path, "CP/1 x")
    assert directory == tmp_path / "certs" / "CP%2F1%20x"
    store = CertificateStore(directory)
    assert store.roots("CentralSystemRootCertificate") == [] and not directory.exists()  # lazy
    r = root("R")
    store.add_root("CentralSystemRootCertificate", r.pem.encode(), r.certificate)
    assert store.roots("CentralSystemRootCertificate") == [r.pem.encode()]
    assert store.root_count() == 1 and store.has_root("CentralSystemRootCertificate", r.certificate)
    with pytest.raises(ValueError, match="not one of"):
        store.roots("ChargePointCertificate")

    key = certs.generate_key()
    store.save_pending_key(certs.key_pem(key))
    assert stat.S_IMODE((directory / "pending.key").stat().st_mode) == 0o600
    assert CertificateStore(directory).pending_key() == certs.key_pem(key)  # a restart keeps it
    later = r.sign_csr(_request(key), not_before=NOW + timedelta(hours=1))
    store.accept_signed(pem(later).encode(), certs.key_pem(key))
    assert store.pending_key() is None
    assert stat.S_IMODE((directory / "next.key").stat().st_mode) == 0o600
    assert store.identity(NOW) is None  # not before its notBefore
    chain, key_file = store.identity(NOW + timedelta(hours=2)) or (None, None)
    assert chain is not None and key_file is not None
    assert certs.parse_chain(chain.read_bytes())[0] == later
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    # The next one takes over; the old one is kept a month, then goes
    key2 = certs.generate_key()
    newer = r.sign_csr(_request(key2))
    store.accept_signed(pem(newer).encode(), certs.key_pem(key2))
    switched = NOW + timedelta(hours=3)
    store.identity(switched)
    assert store.current() == newer and (directory / "previous.pem").exists()
    store.identity(switched + timedelta(days=30))
    assert (directory / "previous.key").exists()
    store.identity(switched + timedelta(days=32))
    assert not (directory / "previous.pem").exists() and not (directory / "previous.key").exists()


def test_store_retiring_roots(tmp_path: Path) -> None:
    store = CertificateStore(tmp_path / "c")
    old, new = root("Old"), root("New")
    renewed = cross_signed(new, old)
    assert certs.issued_by(renewed, old.certificate) and not certs.issued_by(new.certificate, old.certificate)
    store.add_root("CentralSystemRootCertificate", old.pem.encode(), old.certificate)
    store.add_root("CentralSystemRootCertificate", pem(renewed).encode(), renewed)
    store.retire({certs.fingerprint(old.certificate)})
    assert len(CertificateStore(tmp_path / "c").roots("CentralSystemRootCertificate")) == 2
    assert store.drop_retiring() == [certs.fingerprint(old.certificate)]
    assert store.roots("CentralSystemRootCertificate") == [pem(renewed).encode()]
    assert store.drop_retiring() == []


@pytest.mark.parametrize("cut_after", ["current.key", "current.pem", "next.key"])
def test_a_switch_cut_short_by_a_power_cut_ends_at_the_next_call(tmp_path: Path, cut_after: str) -> None:
    """The switch renames current.* to previous.*, then next.* to current.*: a power cut after any
    one of the renames leaves a store whose next `identity` finishes the switch, never one that
    fails at every connection."""

    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    old = make_identity(
        tmp_path / "old", "cp", not_before=NOW - timedelta(days=30), not_after=NOW + timedelta(days=30)
    )
    new = make_identity(
        tmp_path / "new", "cp", not_before=NOW - timedelta(days=1), not_after=NOW + timedelta(days=400)
    )
    d = tmp_path / "store"
    d.mkdir()
    steps = [("current.key", "previous.key"), ("current.pem", "previous.pem"), ("next.key", "current.key")]
    files = {"current.key": old.key, "current.pem": old.cert, "next.key": new.key, "next.pem": new.cert}
    for target, source in files.items():
        (d / target).write_bytes(source.read_bytes())
    for source, target in steps[: [s for s, _ in steps].index(cut_after) + 1]:
        (d / source).rename(d / target)
    found = CertificateStore(d).identity(NOW)
    assert found == (d / "current.pem", d / "current.key")
    assert (d / "current.pem").read_bytes() == new.cert.read_bytes()
    assert (d / "current.key").read_bytes() == new.key.read_bytes()
    assert not (d / "next.pem").exists() and not (d / "next.key").exists()


def test_a_second_signed_certificate_never_pairs_its_key_with_the_first_chain(tmp_path: Path) -> None:
    """accept_signed removes a waiting chain before it writes the new key: a power cut between its
    writes leaves a key without a chain (no next identity), not a key beside a chain not its own."""
    store = CertificateStore(tmp_path / "store")
    store.accept_signed(b"FIRST CHAIN", b"FIRST KEY")
    calls: list[str] = []
    real = module.write_atomically

    def cut_after_the_key(path: Path, data: bytes, mode: int = 0o644) -> None:
        calls.append(path.name)
        if path.name == "next.pem":
            raise OSError("power cut")
        real(path, data, mode)

    module.write_atomically = cut_after_the_key  # type: ignore[assignment]
    try:
        with pytest.raises(OSError):
            store.accept_signed(b"SECOND CHAIN", b"SECOND KEY")
    finally:
        module.write_atomically = real  # type: ignore[assignment]
    assert calls == ["next.key", "next.pem"]
    assert (store.directory / "next.key").read_bytes() == b"SECOND KEY"
    assert not (store.directory / "next.pem").exists()  # the first chain went before the new key came
