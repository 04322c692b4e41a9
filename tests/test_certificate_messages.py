"""The certificate messages over the wire against the strict central system and the daemon:
InstallCertificate, GetInstalledCertificateIds and DeleteCertificate with hash data checked against
`openssl ocsp` (TC_075_1, TC_076), the store full, a rejected central-system root (TC_078),
AdditionalRootCertificateCheck, the signing request and CertificateSigned with a reconnect on the new
certificate (TC_074), a bad chain or key Rejected (TC_077), and a restart between the two."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ocpp.v16 import call

from bridge.daemon import Daemon
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.helpers.cert_authority import Authority, cross_signed, name, openssl_cert_id, pem, root
from tests.helpers.pki import make_pki

CS_ROOT = "CentralSystemRootCertificate"
MF_ROOT = "ManufacturerRootCertificate"
WIRE_KEYS = {
    "hashAlgorithm": "hash_algorithm", "issuerNameHash": "issuer_name_hash",
    "issuerKeyHash": "issuer_key_hash", "serialNumber": "serial_number",
}  # fmt: skip


def _certificates(daemon: Daemon) -> Any:
    return daemon.charge_points["CP-1"].security.certificates


async def _install(cs: StrictCentralSystem, use: str, certificate_pem: str) -> str:
    answer = await cs.call("CP-1", call.InstallCertificate(certificate_type=use, certificate=certificate_pem))  # type: ignore[arg-type]
    return str(answer.status)


async def _ids(cs: StrictCentralSystem, use: str) -> Any:
    return await cs.call("CP-1", call.GetInstalledCertificateIds(certificate_type=use))  # type: ignore[arg-type]


def _events(cs: StrictCentralSystem, kind: str) -> list[dict[str, Any]]:
    return [e for e in cs.calls("CP-1", "SecurityEventNotification") if e["type"] == kind]


async def test_install_get_and_delete_with_openssl_hashes(csms: StrictCentralSystem, tmp_path: Path) -> None:
    """TC_075_1 and TC_076: the hash data the charge point reports is what openssl computes."""
    config = make_config(csms.url, tmp_path, security_events="on")
    manufacturer = root("Manufacturer root", rsa_key=True, serial=0x0A0B)
    async with running(config):
        await csms.wait_for_call("CP-1", "StatusNotification")
        assert str((await _ids(csms, MF_ROOT)).status) == "NotFound"
        assert await _install(csms, MF_ROOT, manufacturer.pem) == "Accepted"
        answer = await _ids(csms, MF_ROOT)
        assert str(answer.status) == "Accepted" and len(answer.certificate_hash_data) == 1
        got = answer.certificate_hash_data[0]  # the library's snake_case of the wire's camelCase keys
        reported = {k: got[s] for k, s in WIRE_KEYS.items()}
        expected = openssl_cert_id(tmp_path, manufacturer.pem, manufacturer.pem)
        assert reported["hashAlgorithm"] == "SHA256"
        assert reported["issuerNameHash"] == expected["issuerNameHash"]
        assert reported["issuerKeyHash"] == expected["issuerKeyHash"]
        assert reported["serialNumber"] == "a0b" and expected["serialNumber"] == "0A0B"
        assert str((await _ids(csms, CS_ROOT)).status) == "NotFound"  # per type
        # Delete with the central system's own spelling of the serial (upper case, leading zero)
        wanted = {**reported, "serialNumber": expected["serialNumber"]}
        deleted = await csms.call("CP-1", call.DeleteCertificate(certificate_hash_data=wanted))
        assert str(deleted.status) == "Accepted"
        again = await csms.call("CP-1", call.DeleteCertificate(certificate_hash_data=wanted))
        assert str(again.status) == "NotFound"
        assert str((await _ids(csms, MF_ROOT)).status) == "NotFound"
        # TC_078: a central-system root that is not a valid CA certificate
        leaf = manufacturer.issue(
            name("not a CA"), ec.generate_private_key(ec.SECP256R1()).public_key(), ca=False
        )
        assert await _install(csms, CS_ROOT, pem(leaf)) == "Rejected"
        assert await _install(csms, CS_ROOT, "not a certificate") == "Rejected"
        await csms.wait_until(lambda: len(_events(csms, "InvalidCentralSystemCertificate")) >= 1)
        assert "not a CA" in _events(csms, "InvalidCentralSystemCertificate")[0]["techInfo"]
        assert str((await _ids(csms, CS_ROOT)).status) == "NotFound"


async def test_store_full_at_certificate_store_max_length(csms: StrictCentralSystem, tmp_path: Path) -> None:
    config = make_config(csms.url, tmp_path)
    roots = [root(f"Root {n}") for n in range(11)]
    async with running(config):
        await csms.wait_for_call("CP-1", "StatusNotification")
        for n, r in enumerate(roots[:10]):
            assert await _install(csms, CS_ROOT if n % 2 else MF_ROOT, r.pem) == "Accepted"
        assert await _install(csms, MF_ROOT, roots[0].pem) == "Accepted"  # installed already: no room needed
        assert await _install(csms, CS_ROOT, roots[10].pem) == "Rejected"  # 10 of both uses: full
        assert len((await _ids(csms, CS_ROOT)).certificate_hash_data) == 5


async def test_additional_root_certificate_check(csms: StrictCentralSystem, tmp_path: Path) -> None:
    config = make_config(
        csms.url, tmp_path, security_events="on", ocpp={"AdditionalRootCertificateCheck": "true"}
    )
    old, new = root("Old CS root"), root("New CS root")
    renewed = cross_signed(new, old)
    async with running(config) as daemon:
        await csms.wait_for_call("CP-1", "StatusNotification")
        certificates = _certificates(daemon)
        assert await _install(csms, CS_ROOT, old.pem) == "Accepted"  # the first needs no signer
        assert await _install(csms, CS_ROOT, new.pem) == "Rejected"  # not signed by the old one
        await csms.wait_until(lambda: _events(csms, "InvalidCentralSystemCertificate"))
        assert await _install(csms, CS_ROOT, pem(renewed)) == "Accepted"
        both = await asyncio.to_thread(certificates.roots, CS_ROOT)
        assert both == [old.pem.encode(), pem(renewed).encode()]  # the old one is the fallback
        links = len(csms.links)
        await daemon.charge_points["CP-1"].session.reconnect("test: a new connection")
        await csms.wait_until(lambda: len(csms.links) > links)
        await csms.wait_until(
            lambda: certificates.roots(CS_ROOT) == [pem(renewed).encode()], what="old root gone"
        )


# -- the signing request --------------------------------------------------------------------------
class TlsFront:
    """A TLS endpoint in front of the (plain) central system that records which client certificate
    each connection presented, then relays the bytes."""

    def __init__(self, context: ssl.SSLContext, backend_port: int) -> None:
        self.context, self.backend_port = context, backend_port
        self.presented: list[bytes | None] = []  # DER of each connection's client certificate
        self.writers: list[asyncio.StreamWriter] = []
        self.port = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self.relay, "127.0.0.1", 0, ssl=self.context)
        self.port = self.server.sockets[0].getsockname()[1]

    async def relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.presented.append(writer.get_extra_info("ssl_object").getpeercert(binary_form=True))
        back_reader, back_writer = await asyncio.open_connection("127.0.0.1", self.backend_port)
        self.writers += [writer, back_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, back_writer), pipe(back_reader, writer))

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            for writer in self.writers:  # Python 3.11's Server has no close_clients()
                writer.close()
            await self.server.wait_closed()


@contextlib.asynccontextmanager
async def tls_front(tmp_path: Path, backend: StrictCentralSystem, client_ca: Authority) -> AsyncIterator[Any]:
    pki = make_pki(tmp_path)
    context = pki.server_context()
    context.verify_mode = ssl.CERT_OPTIONAL  # the first connection has no certificate yet
    context.load_verify_locations(cadata=client_ca.pem)
    front = TlsFront(context, backend.port)
    await front.start()
    try:
        yield front, pki
    finally:
        await front.stop()


def _check_csr(csr_pem: str, serial: str, cpo: str) -> x509.CertificateSigningRequest:
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == serial
    assert csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == cpo
    return csr


async def test_signing_round_trip_reconnects_with_the_new_certificate(
    csms: StrictCentralSystem, tmp_path: Path
) -> None:
    """TC_074: SignCertificate with CN = serial number and O = CpoName, CertificateSigned Accepted,
    and the next connection presents the new certificate; then a second request has a new key."""
    ca = root("CSMS signing CA")
    sub = ca.intermediate("CSMS sub-CA")
    async with tls_front(tmp_path, csms, ca) as (front, pki):
        config = make_config(
            f"wss://127.0.0.1:{front.port}/ocpp", tmp_path, serial_number="SN-074",
            ocpp={"CpoName": "Test CPO"}, tls={"ca_file": str(pki.ca_cert)},
        )  # fmt: skip
        async with running(config) as daemon:
            await csms.wait_for_call("CP-1", "StatusNotification")
            assert front.presented == [None]
            assert await _install(csms, CS_ROOT, ca.pem) == "Accepted"
            certificates = _certificates(daemon)
            assert certificates.start_signing() is True
            request = await csms.wait_for_call("CP-1", "SignCertificate")
            csr = _check_csr(request["csr"], "SN-074", "Test CPO")
            signed = sub.sign_csr(request["csr"])
            answer = await csms.call("CP-1", call.CertificateSigned(certificate_chain=pem(signed) + sub.pem))
            assert str(answer.status) == "Accepted"
            await csms.wait_until(lambda: len(front.presented) >= 2, timeout=10, what="a reconnect")
            assert front.presented[-1] == signed.public_bytes(serialization.Encoding.DER)
            # A renewal asks with a new key
            assert certificates.start_signing() is True
            second = await csms.wait_for_call("CP-1", "SignCertificate", count=2)
            assert _check_csr(second["csr"], "SN-074", "Test CPO").public_key() != csr.public_key()
        csms.assert_clean()


async def test_invalid_signed_certificate_rejected_with_event(
    csms: StrictCentralSystem, tmp_path: Path
) -> None:
    """TC_077: a chain to an unknown CA, or a certificate of another key, is Rejected with an
    InvalidChargePointCertificate event; no request pending is Rejected too."""
    ca, rogue = root("CSMS CA"), root("Rogue CA")
    config = make_config(
        csms.url, tmp_path, security_events="on", serial_number="SN-077", ocpp={"CpoName": "CPO"}
    )
    async with running(config) as daemon:
        await csms.wait_for_call("CP-1", "StatusNotification")
        signed = await csms.call("CP-1", call.CertificateSigned(certificate_chain=ca.pem))
        assert str(signed.status) == "Rejected"  # nothing was asked for
        assert await _install(csms, CS_ROOT, ca.pem) == "Accepted"
        assert _certificates(daemon).start_signing() is True
        request = await csms.wait_for_call("CP-1", "SignCertificate")
        for chain in (
            pem(rogue.sign_csr(request["csr"])),  # a CA we do not trust
            pem(
                ca.issue(
                    name("SN-077", "CPO"), ec.generate_private_key(ec.SECP256R1()).public_key(), ca=False
                )
            ),
            "garbage",
        ):
            answer = await csms.call("CP-1", call.CertificateSigned(certificate_chain=chain))
            assert str(answer.status) == "Rejected"
        await csms.wait_until(lambda: _events(csms, "InvalidChargePointCertificate"))
        info = _events(csms, "InvalidChargePointCertificate")[-1]["techInfo"]
        assert "public key" in info or "does not verify" in info or "PEM" in info
        # The pending request still stands: the right chain is accepted after the bad ones
        answer = await csms.call(
            "CP-1", call.CertificateSigned(certificate_chain=pem(ca.sign_csr(request["csr"])))
        )
        assert str(answer.status) == "Accepted"


async def test_certificate_signed_after_a_restart(csms: StrictCentralSystem, tmp_path: Path) -> None:
    """The pending key survives a restart: CertificateSigned after it is Accepted and takes over."""
    ca = root("CSMS CA")
    config = make_config(csms.url, tmp_path, serial_number="SN-R", ocpp={"CpoName": "CPO"})
    async with running(config) as daemon:
        await csms.wait_for_call("CP-1", "StatusNotification")
        assert await _install(csms, CS_ROOT, ca.pem) == "Accepted"
        assert _certificates(daemon).start_signing() is True
        request = await csms.wait_for_call("CP-1", "SignCertificate")
    boots = len(csms.calls("CP-1", "BootNotification"))
    async with running(config) as daemon:
        await csms.wait_until(lambda: len(csms.calls("CP-1", "BootNotification")) > boots)
        await csms.wait_for_call("CP-1", "StatusNotification", count=2)
        signed = ca.sign_csr(request["csr"])
        links = len(csms.links)
        answer = await csms.call("CP-1", call.CertificateSigned(certificate_chain=pem(signed)))
        assert str(answer.status) == "Accepted"
        await csms.wait_until(lambda: len(csms.links) > links, what="the reconnect with the new certificate")
        identity = await asyncio.to_thread(_certificates(daemon).identity, signed.not_valid_before_utc)
        assert identity is not None and x509.load_pem_x509_certificate(identity[0].read_bytes()) == signed
