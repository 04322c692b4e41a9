"""bridge/runtime/certificates.py without a link: the renewal one month before expiry (A03) with the
clock moved, no timer without a certificate, DeleteCertificate's refusals, and CpoName required."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from ocpp.v16 import call, call_result

from bridge.clock import Clock
from bridge.runtime.certificates import Certificates
from bridge.security import certificates as certs
from bridge.security.cert_store import CertificateStore
from tests.helpers.cert_authority import root
from tests.helpers.parts import Tasks, configuration

CS_ROOT = "CentralSystemRootCertificate"


class FakeLink:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    def submit(self, build: Any, *, want_result: bool = False) -> Any:
        self.sent.append(build())
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(call_result.SignCertificate(status="Accepted"))  # type: ignore[arg-type]
        return future


class FakeEvents:
    def __init__(self) -> None:
        self.emitted: list[tuple[str, str | None]] = []
        self.notes: list[str] = []

    def emit(self, kind: str, detail: str | None = None) -> None:
        self.emitted.append((kind, detail))

    def note(self, what: str, detail: str | None = None) -> None:
        self.notes.append(what)


def make(
    tmp_path: Path, tasks: Tasks, clock: Clock | None = None, **keys: str | int
) -> tuple[Certificates, FakeLink, FakeEvents]:
    link, events = FakeLink(), FakeEvents()
    reconnects: list[str] = []
    part = Certificates(
        "CP-1", "SN-1", clock or Clock(), configuration(**keys), link, events, tasks, reconnects.append
    )
    part.attach(tmp_path / "certs")
    return part, link, events


def _in_force(directory: Path, days: float) -> x509.Certificate:
    """A charge point certificate in force, expiring in `days`."""
    ca = root("CA")
    store = CertificateStore(directory)
    store.add_root(CS_ROOT, ca.pem.encode(), ca.certificate)
    key = certs.generate_key()
    signed = ca.sign_csr(certs.make_csr(key, "SN-1", "CPO"), days=days)
    store.accept_signed(certs.pem_of(signed), certs.key_pem(key))
    assert store.identity(signed.not_valid_before_utc) is not None
    return signed


async def _until(condition: Any, what: str) -> None:
    for _ in range(400):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def test_renewal_one_month_before_expiry_then_daily(tmp_path: Path, tasks: Tasks) -> None:
    clock = Clock()
    _in_force(tmp_path / "certs", days=40)
    part, link, _ = make(tmp_path, tasks, clock, CpoName="CPO")
    part.link_opened()
    await _until(lambda: tasks.named("certificates timer"), "the renewal timer")
    await asyncio.sleep(0.05)
    assert link.sent == []  # 40 days left: not yet
    clock.move(9 * 86400)
    await asyncio.sleep(0.05)
    assert link.sent == []  # 31 days left
    clock.move(10 * 86400 + 60)  # just under 30 days left
    await _until(lambda: len(link.sent) == 1, "the renewal's SignCertificate")
    assert isinstance(link.sent[0], call.SignCertificate)
    csr = x509.load_pem_x509_csr(link.sent[0].csr.encode())
    assert csr.subject.rfc4514_string() == "O=CPO,CN=SN-1"
    clock.move(10 * 86400 + 60 + 12 * 3600)
    await asyncio.sleep(0.05)
    assert len(link.sent) == 1  # not renewed yet: again a day after the last attempt, not before
    clock.move(11 * 86400 + 120)
    await _until(lambda: len(link.sent) == 2, "the next day's attempt")


async def test_no_timer_and_no_reads_without_certificates(tmp_path: Path, tasks: Tasks) -> None:
    part, _link, _ = make(tmp_path, tasks, CpoName="CPO")
    part.link_opened()
    part.link_opened()
    await asyncio.sleep(0.02)
    assert tasks.tasks == [] and not (tmp_path / "certs").exists()


async def test_delete_refusals(tmp_path: Path, tasks: Tasks) -> None:
    part, _, _ = make(tmp_path, tasks, SecurityProfile=2)
    first, second = root("First"), root("Second")
    assert await part.install(CS_ROOT, first.pem) == "Accepted"
    first_ids = certs.hash_data(first.certificate, first.certificate)
    assert await part.delete(first_ids) == "Failed"  # the only one, and profile 2 needs it
    assert await part.install(CS_ROOT, second.pem) == "Accepted"
    assert await part.delete(first_ids) == "Accepted"
    assert await part.delete(first_ids) == "NotFound"
    assert await part.delete({**first_ids, "hashAlgorithm": "MD5"}) == "NotFound"
    # The charge point certificate is never deleted
    key = certs.generate_key()
    signed = second.sign_csr(certs.make_csr(key, "SN-1", "CPO"))
    store = CertificateStore(tmp_path / "certs")
    store.accept_signed(certs.pem_of(signed), certs.key_pem(key))
    store.identity(signed.not_valid_before_utc)
    assert await part.delete(certs.hash_data(signed, second.certificate)) == "Failed"


async def test_signing_needs_cpo_name(tmp_path: Path, tasks: Tasks, caplog: pytest.LogCaptureFixture) -> None:
    part, link, _ = make(tmp_path, tasks)
    with caplog.at_level(logging.ERROR):
        assert part.start_signing() is False
    assert "CpoName is empty" in caplog.text and link.sent == []
    part2, link2, _ = make(tmp_path, tasks, CpoName="CPO")
    assert part2.start_signing() is True
    assert part2.start_signing() is False  # one request at a time
    await _until(lambda: link2.sent, "SignCertificate")
    assert CertificateStore(tmp_path / "certs").pending_key() is not None


async def test_expired_or_not_yet_valid_root_refused(tmp_path: Path, tasks: Tasks) -> None:
    clock = Clock()
    part, _, events = make(tmp_path, tasks, clock)
    expiring = root("Short", days=1)
    clock.move(2 * 86400)  # an offset from the real time (Clock.move), as the tests below
    assert await part.install(CS_ROOT, expiring.pem) == "Rejected"
    assert events.emitted and events.emitted[0][0] == "InvalidCentralSystemCertificate"
    assert "expired" in (events.emitted[0][1] or "")
    assert await part.install("ManufacturerRootCertificate", root("Later").pem) == "Accepted"
