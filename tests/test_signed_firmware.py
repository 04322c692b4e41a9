"""SignedUpdateFirmware end to end (security white paper L01; OCTT TC_080, TC_081): the strict central
system asks, the bridge checks the signing certificate against the installed ManufacturerRootCertificate
before it answers, downloads from a real HTTP or FTP server, verifies the signature, installs by command
and reports every step as a SignedFirmwareStatusNotification with the requestId (each validated against
its schema by the strict peer); the security events on the wire; plain UpdateFirmware refused while a
manufacturer root is installed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call

from bridge.clock import Clock, iso
from bridge.config import Config
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.helpers.firmware import IMAGE, IMAGE_NAME, install_script, serving
from tests.helpers.flow import ready
from tests.helpers.ftp_server import ftp_server
from tests.helpers.http_files import http_files
from tests.helpers.signing import SigningPki, install_manufacturer_root, make_signing_pki

RID = 4711
MAN_ROOT = "ManufacturerRootCertificate"


@pytest.fixture(scope="module")
def pki() -> SigningPki:
    return make_signing_pki()


def when(offset: timedelta) -> str:
    return iso(datetime.now(UTC) + offset)


def signed_statuses(cs: StrictCentralSystem) -> list[tuple[str, Any]]:
    return [(p["status"], p.get("requestId")) for p in cs.calls("CP-1", "SignedFirmwareStatusNotification")]


def events(cs: StrictCentralSystem) -> list[tuple[str, str | None]]:
    return [(p["type"], p.get("techInfo")) for p in cs.calls("CP-1", "SecurityEventNotification")]


async def reached(cs: StrictCentralSystem, status: str, timeout: float = 15) -> None:
    await cs.wait_until(lambda: status in [s for s, _ in signed_statuses(cs)], timeout, status)


def config_for(cs: StrictCentralSystem, tmp_path: Path, argv: list[str]) -> Config:
    return make_config(
        cs.url, tmp_path, firmware={"install": "command", "command": argv}, security_events="on"
    )


def request(
    location: str, signer_pem: str, signature: str, *, request_id: int = RID,
    retrieve: timedelta = timedelta(0), install: timedelta | None = None,
) -> call.SignedUpdateFirmware:  # fmt: skip
    firmware = {
        "location": location, "retrieveDateTime": when(retrieve), "signingCertificate": signer_pem,
        "signature": signature,
    }  # fmt: skip
    if install is not None:
        firmware["installDateTime"] = when(install)
    return call.SignedUpdateFirmware(request_id=request_id, firmware=firmware, retries=0, retry_interval=1)


async def test_tc_080_rsa_pss_over_http_every_status_with_the_request_id(
    tmp_path: Path, pki: SigningPki
) -> None:
    """The root installed over the wire (InstallCertificate), the image signed with RSA-PSS."""
    argv, copied = install_script(tmp_path)
    async with StrictCentralSystem() as cs, http_files(serving(tmp_path), tmp_path) as site:
        async with running(config_for(cs, tmp_path, argv)):
            await ready(cs)
            installed = await cs.call(
                "CP-1", call.InstallCertificate(certificate_type=MAN_ROOT, certificate=pki.root_pem.decode())
            )
            assert installed.status == "Accepted"
            location = f"{site.base}/files/{IMAGE_NAME}"
            answer = await cs.call("CP-1", request(location, pki.rsa.pem, pki.rsa.sign(IMAGE, "pss")))
            assert answer.status == "Accepted"
            await reached(cs, "Installed")
            await cs.wait_until(lambda: ("FirmwareUpdated", None) in events(cs), 5, "FirmwareUpdated")
        cs.assert_clean()
    flow = ["Downloading", "Downloaded", "SignatureVerified", "Installing", "Installed"]
    assert signed_statuses(cs) == [(s, RID) for s in flow]
    assert cs.calls("CP-1", "FirmwareStatusNotification") == []  # the plain notification is not used
    assert copied.read_bytes() == IMAGE


async def test_tc_080_ecdsa_over_ftp_with_both_dates_to_come(tmp_path: Path, pki: SigningPki) -> None:
    argv, copied = install_script(tmp_path)
    install_manufacturer_root(tmp_path / "state", "CP-1", pki.root_pem)
    clock = Clock()
    async with StrictCentralSystem() as cs:
        with ftp_server(serving(tmp_path)) as ftp:
            async with running(config_for(cs, tmp_path, argv), clock):
                await ready(cs)
                answer = await cs.call("CP-1", request(
                    ftp.url(IMAGE_NAME), pki.ec.pem, pki.ec.sign(IMAGE, "ecdsa"),
                    retrieve=timedelta(hours=1), install=timedelta(hours=2),
                ))  # fmt: skip
                assert answer.status == "Accepted"
                await reached(cs, "DownloadScheduled")
                clock.move(3600 + 1)
                await reached(cs, "InstallScheduled")
                assert not copied.exists()  # not before installDateTime
                clock.move(2 * 3600 + 1)
                await reached(cs, "Installed")
        cs.assert_clean()
    flow = ["DownloadScheduled", "Downloading", "Downloaded", "SignatureVerified", "InstallScheduled",
            "Installing", "Installed"]  # fmt: skip
    assert signed_statuses(cs) == [(s, RID) for s in flow]
    assert copied.read_bytes() == IMAGE


async def test_tc_081_an_invalid_signature_is_reported_and_nothing_is_installed(
    tmp_path: Path, pki: SigningPki
) -> None:
    argv, copied = install_script(tmp_path)
    install_manufacturer_root(tmp_path / "state", "CP-1", pki.root_pem)
    async with StrictCentralSystem() as cs, http_files(serving(tmp_path), tmp_path) as site:
        async with running(config_for(cs, tmp_path, argv)):
            await ready(cs)
            bad = pki.rsa.sign(IMAGE + b"tampered")
            answer = await cs.call("CP-1", request(f"{site.base}/files/{IMAGE_NAME}", pki.rsa.pem, bad))
            assert answer.status == "Accepted"
            await reached(cs, "InvalidSignature")
            await cs.wait_until(
                lambda: any(t == "InvalidFirmwareSignature" for t, _ in events(cs)), 5, "the security event"
            )
        cs.assert_clean()
    assert signed_statuses(cs) == [(s, RID) for s in ("Downloading", "Downloaded", "InvalidSignature")]
    info = dict(events(cs))["InvalidFirmwareSignature"]
    assert info is not None and "does not match its signature" in info
    assert not copied.exists()
    assert not [p for p in (tmp_path / "state" / "firmware" / "images").rglob("*") if p.is_file()]


async def test_a_signing_certificate_of_another_root_is_invalid_certificate(
    tmp_path: Path, pki: SigningPki
) -> None:
    argv, _ = install_script(tmp_path)
    install_manufacturer_root(tmp_path / "state", "CP-1", pki.root_pem)
    async with StrictCentralSystem() as cs:
        async with running(config_for(cs, tmp_path, argv)):
            await ready(cs)
            answer = await cs.call(
                "CP-1", request("http://127.0.0.1:9/fw.bin", pki.rogue.pem, pki.rogue.sign(IMAGE))
            )
            assert answer.status == "InvalidCertificate"
            await cs.wait_until(
                lambda: any(t == "InvalidFirmwareSigningCertificate" for t, _ in events(cs)), 5, "the event"
            )
        cs.assert_clean()
    assert signed_statuses(cs) == []  # nothing was started
    assert "Rogue Signing" in (dict(events(cs))["InvalidFirmwareSigningCertificate"] or "")


async def test_a_second_request_cancels_the_first(tmp_path: Path, pki: SigningPki) -> None:
    argv, copied = install_script(tmp_path)
    install_manufacturer_root(tmp_path / "state", "CP-1", pki.root_pem)
    async with StrictCentralSystem() as cs, http_files(serving(tmp_path), tmp_path) as site:
        async with running(config_for(cs, tmp_path, argv)):
            await ready(cs)
            location = f"{site.base}/files/{IMAGE_NAME}"
            signature = pki.ec.sign(IMAGE)
            first = await cs.call(
                "CP-1", request(location, pki.ec.pem, signature, retrieve=timedelta(hours=5))
            )
            assert first.status == "Accepted"
            await reached(cs, "DownloadScheduled")
            second = await cs.call("CP-1", request(location, pki.ec.pem, signature, request_id=RID + 1))
            assert second.status == "AcceptedCanceled"
            await reached(cs, "Installed")
        cs.assert_clean()
    flow = ["Downloading", "Downloaded", "SignatureVerified", "Installing", "Installed"]
    assert signed_statuses(cs) == [("DownloadScheduled", RID)] + [(s, RID + 1) for s in flow]
    assert copied.read_bytes() == IMAGE


async def test_a_scheduled_signed_update_survives_a_restart(tmp_path: Path, pki: SigningPki) -> None:
    argv, copied = install_script(tmp_path)
    install_manufacturer_root(tmp_path / "state", "CP-1", pki.root_pem)
    async with StrictCentralSystem() as cs, http_files(serving(tmp_path), tmp_path) as site:
        config = config_for(cs, tmp_path, argv)
        async with running(config):
            await ready(cs)
            answer = await cs.call("CP-1", request(
                f"{site.base}/files/{IMAGE_NAME}", pki.rsa.pem, pki.rsa.sign(IMAGE, "pkcs1"),
                retrieve=timedelta(hours=3),
            ))  # fmt: skip
            assert answer.status == "Accepted"
            await reached(cs, "DownloadScheduled")
        clock = Clock()
        clock.move(3 * 3600 + 5)  # the power comes back after the retrieve time
        async with running(config, clock):
            await reached(cs, "Installed")
        cs.assert_clean()
    flow = ["DownloadScheduled", "Downloading", "Downloaded", "SignatureVerified", "Installing", "Installed"]
    # The outbox delivers at least once: a status answered just before the stop may come again (its
    # removal is written in a group), never a step out of order.
    seen = signed_statuses(cs)
    assert [x for i, x in enumerate(seen) if i == 0 or seen[i - 1] != x] == [(s, RID) for s in flow]
    assert copied.read_bytes() == IMAGE


async def test_plain_update_firmware_is_not_supported_once_a_manufacturer_root_is_installed(
    tmp_path: Path, pki: SigningPki
) -> None:
    async with StrictCentralSystem() as cs:
        async with running(make_config(cs.url, tmp_path)):
            await ready(cs)
            plain = call.UpdateFirmware(
                location="http://127.0.0.1:9/fw.bin", retrieve_date=when(timedelta(hours=9))
            )
            assert await cs.call("CP-1", plain) is not None  # no manufacturer root: accepted
            install_manufacturer_root(tmp_path / "state", "CP-1", pki.root_pem)
            frame = json.dumps([2, "plain-1", "UpdateFirmware", {
                "location": "http://127.0.0.1:9/fw.bin", "retrieveDate": when(timedelta(hours=9)),
            }])  # fmt: skip
            await cs.send_raw("CP-1", frame)
            answer = await cs.answer_of("CP-1", "plain-1")
    assert answer[0] == 4 and answer[2] == "NotSupported"
    assert "SignedUpdateFirmware" in answer[3] and MAN_ROOT in answer[3]
