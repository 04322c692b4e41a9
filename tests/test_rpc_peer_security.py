"""The security extension against the independent strict peer (ocpp-rpc on Node.js, tests/peers).

ocpp-rpc in strict mode checks, against its own bundled OCPP 1.6 security schemas, every request it
sends (InstallCertificate, GetInstalledCertificateIds, DeleteCertificate, ExtendedTriggerMessage,
CertificateSigned, GetLog, SignedUpdateFirmware), the bridge's CALLRESULT to each, and, with
``security=True``, every SecurityEventNotification, SignCertificate, LogStatusNotification and
SignedFirmwareStatusNotification the bridge sends. One daemon run carries out all eleven messages with
real FTP and HTTP servers, certificates made at test time and a signed firmware image; a second one
the failure statuses, a triggered running upload and a replaced one.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from bridge.clock import iso
from tests.conftest import make_config, running
from tests.helpers.cert_authority import Authority, pem, root
from tests.helpers.firmware import IMAGE, IMAGE_NAME, install_script, peer_booted, serving, strict_failures
from tests.helpers.ftp_server import FtpSite, ftp_server
from tests.helpers.http_files import http_files
from tests.helpers.signing import Signer, SigningPki, install_manufacturer_root, make_signing_pki
from tests.peers.rpc_peer import OcppRpcCallError, OcppRpcPeer
from tests.processes import dead_port

CS_ROOT = "CentralSystemRootCertificate"
MF_ROOT = "ManufacturerRootCertificate"
LOG_ID, FIRMWARE_ID = 31, 32
CP_INITIATED = (
    "SecurityEventNotification",
    "SignCertificate",
    "LogStatusNotification",
    "SignedFirmwareStatusNotification",
)
CS_INITIATED = (
    "InstallCertificate",
    "GetInstalledCertificateIds",
    "DeleteCertificate",
    "ExtendedTriggerMessage",
    "CertificateSigned",
    "GetLog",
    "SignedUpdateFirmware",
)
Params = dict[str, Any]


async def test_the_peer_validates_the_security_messages_in_security_mode() -> None:
    """The check the tests below rely on: the peer answers valid security messages, refuses bad ones,
    and never sends an invalid request."""
    messages = [
        ("SecurityEventNotification", {"type": "StartupOfTheDevice", "timestamp": iso(datetime.now(UTC))}),
        ("SecurityEventNotification", {"type": "StartupOfTheDevice"}),  # no timestamp
        ("SignCertificate", {"csr": "x"}),
        ("LogStatusNotification", {"status": "Uploaded", "requestId": 1}),
        ("LogStatusNotification", {"status": "Uploaded", "requestId": "1"}),  # a string
        ("SignedFirmwareStatusNotification", {"status": "Installed", "requestId": 1}),
        ("SignedFirmwareStatusNotification", {"status": "Flashed", "requestId": 1}),
    ]
    bad_install = {"certificateType": "V2GRootCertificate", "certificate": "-----BEGIN CERTIFICATE-----"}
    async with OcppRpcPeer(security=True) as peer:
        async with connect(f"{peer.url}/CP-T", subprotocols=[Subprotocol("ocpp1.6")], open_timeout=5) as ws:
            answers = []
            for n, (action, params) in enumerate(messages):
                await ws.send(json.dumps([2, f"m-{n}", action, params]))
                answers.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
            # An OCPP 2.0.1 certificate type: refused by the peer, it never reaches the charge point.
            with pytest.raises(OcppRpcCallError) as refused:
                await peer.call("CP-T", "InstallCertificate", bad_install)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.3)
        await peer.wait_for(lambda e: len(strict_failures(peer)) == 4)
    assert answers[0] == [3, "m-0", {}]
    assert answers[2] == [3, "m-2", {"status": "Accepted"}]
    assert answers[3] == [3, "m-3", {}] and answers[5] == [3, "m-5", {}]
    for n in (1, 4, 6):
        assert answers[n][:2] == [4, f"m-{n}"] and answers[n][2] != "NotImplemented"
    failed = [(e["method"], e["isCall"], e["outbound"]) for e in strict_failures(peer)]
    assert failed == [
        ("SecurityEventNotification", True, False),
        ("LogStatusNotification", True, False),
        ("SignedFirmwareStatusNotification", True, False),
        ("InstallCertificate", True, True),
    ]
    assert [e["messageId"] for e in strict_failures(peer)][:3] == ["m-1", "m-4", "m-6"]
    assert [a["result"] for a in peer.answers("SignCertificate")] == [{"status": "Accepted"}]
    assert refused.value.code == "FormatViolation", refused.value  # an enum value it does not know


# -- helpers of the daemon runs ---------------------------------------------------------------------
class Asker:
    """The peer's calls to CP-1, each CALLRESULT payload kept per action."""

    def __init__(self, peer: OcppRpcPeer) -> None:
        self.peer = peer
        self.answers: dict[str, list[Params]] = {action: [] for action in CS_INITIATED}

    async def __call__(self, action: str, params: Params) -> Params:
        # Raises OcppRpcCallError if ocpp-rpc finds the request or the bridge's CALLRESULT invalid.
        result = dict((await self.peer.call("CP-1", action, params))["result"])
        self.answers.setdefault(action, []).append(result)
        return result

    async def seen(self, action: str, check: Callable[[Params], bool], timeout: float = 15.0) -> Params:
        """The first `action` CP-1 sent whose params satisfy `check`, already seen or still to come."""
        event = await self.peer.wait_for(
            lambda e: e["event"] == "call" and e["method"] == action and check(e["params"]), timeout=timeout
        )
        return dict(event["params"])

    async def event(self, kind: str) -> Params:
        return await self.seen("SecurityEventNotification", lambda p: p["type"] == kind)


def params_of(peer: OcppRpcPeer, action: str) -> list[Params]:
    return [c["params"] for c in peer.calls(action, "CP-1")]


def statuses(peer: OcppRpcPeer, action: str) -> list[tuple[str, int | None]]:
    return [(p["status"], p.get("requestId")) for p in params_of(peer, action)]


def firmware(location: str, signer: Signer, signature: str) -> Params:
    return {
        "location": location,
        "retrieveDateTime": iso(datetime.now(UTC)),
        "signingCertificate": signer.pem,
        "signature": signature,
    }


def assert_each_answered(peer: OcppRpcPeer, actions: tuple[str, ...]) -> None:
    """Each action was sent, and the peer answered every one with a CALLRESULT: it passed validation."""
    for action in actions:
        replies = peer.answers(action, "CP-1")
        assert replies and len(replies) == len(peer.calls(action, "CP-1")), action
        assert all("result" in reply for reply in replies), replies


def serial_of(authority: Authority | Signer) -> str:
    return format(authority.certificate.serial_number, "x")  # the bridge's lower-case hex, no zeros


async def certificates(ask: Asker, signing: SigningPki, cs_root: Authority) -> None:
    """NotFound, three roots installed, one of the two manufacturer roots deleted with its hash data."""
    assert await ask("GetInstalledCertificateIds", {"certificateType": MF_ROOT}) == {"status": "NotFound"}
    other = root("Other manufacturer")
    for use, certificate in ((MF_ROOT, signing.root.pem), (MF_ROOT, other.pem), (CS_ROOT, cs_root.pem)):
        installed = await ask("InstallCertificate", {"certificateType": use, "certificate": certificate})
        assert installed == {"status": "Accepted"}
    ids = await ask("GetInstalledCertificateIds", {"certificateType": MF_ROOT})
    assert ids["status"] == "Accepted" and len(ids["certificateHashData"]) == 2
    (hash_data,) = [h for h in ids["certificateHashData"] if h["serialNumber"] == serial_of(other)]
    assert hash_data["hashAlgorithm"] == "SHA256"
    delete = {"certificateHashData": hash_data}
    assert await ask("DeleteCertificate", delete) == {"status": "Accepted"}
    assert await ask("DeleteCertificate", delete) == {"status": "NotFound"}
    left = await ask("GetInstalledCertificateIds", {"certificateType": MF_ROOT})
    assert [h["serialNumber"] for h in left["certificateHashData"]] == [serial_of(signing.root)]


async def triggers(ask: Asker) -> None:
    """Every requestedMessage but SignChargePointCertificate; nothing runs yet: Idle, no requestId."""
    for requested in ("LogStatusNotification", "FirmwareStatusNotification", "Heartbeat"):
        assert await ask("ExtendedTriggerMessage", {"requestedMessage": requested}) == {"status": "Accepted"}
    status = {"requestedMessage": "StatusNotification", "connectorId": 1}
    assert await ask("ExtendedTriggerMessage", status) == {"status": "Accepted"}
    meter = {"requestedMessage": "MeterValues", "connectorId": 1}
    assert await ask("ExtendedTriggerMessage", meter) == {"status": "Accepted"}
    boot = await ask("ExtendedTriggerMessage", {"requestedMessage": "BootNotification"})
    assert boot == {"status": "Rejected"}  # once accepted, as TriggerMessage
    await ask.seen("LogStatusNotification", lambda p: p == {"status": "Idle"})
    await ask.seen("SignedFirmwareStatusNotification", lambda p: p == {"status": "Idle"})


async def signing_request(ask: Asker) -> str:
    """ExtendedTriggerMessage(SignChargePointCertificate) and the CSR of the SignCertificate it led to."""
    trigger = {"requestedMessage": "SignChargePointCertificate"}
    assert await ask("ExtendedTriggerMessage", trigger) == {"status": "Accepted"}
    csr_pem = str((await ask.seen("SignCertificate", lambda p: True))["csr"])
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "SN-PEER"
    assert csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Peer CPO"
    return csr_pem


async def test_all_eleven_security_messages_pass_the_strict_peer(tmp_path: Path) -> None:
    signing, cs_root = make_signing_pki(), root("CSMS CA")
    argv, copied = install_script(tmp_path)
    ftp_home = tmp_path / "ftp"
    (ftp_home / "logs").mkdir(parents=True)
    async with OcppRpcPeer(security=True) as peer, http_files(serving(tmp_path), tmp_path) as site:
        ask = Asker(peer)
        with ftp_server(ftp_home) as ftp:
            config = make_config(
                peer.url, tmp_path, security_events="on", serial_number="SN-PEER",
                ocpp={"CpoName": "Peer CPO"}, firmware={"install": "command", "command": argv},
            )  # fmt: skip
            async with running(config):
                await peer_booted(peer)
                await ask.event("StartupOfTheDevice")
                await certificates(ask, signing, cs_root)
                await triggers(ask)
                csr_pem = await signing_request(ask)
                # A chain of a CA not installed: Rejected, with its security event.
                bad = {"certificateChain": pem(root("Rogue CA").sign_csr(csr_pem))}
                assert await ask("CertificateSigned", bad) == {"status": "Rejected"}
                await ask.event("InvalidChargePointCertificate")

                # GetLog: the security log of the last hour to FTP.
                hour_ago = iso(datetime.now(UTC) - timedelta(hours=1))
                window = {"remoteLocation": ftp.url("logs/"), "oldestTimestamp": hour_ago}
                log_request = {"logType": "SecurityLog", "requestId": LOG_ID, "log": window, "retries": 0}
                log_answer = await ask("GetLog", {**log_request, "retryInterval": 1})
                # SignedUpdateFirmware: a signing certificate of another root is refused before the
                # answer; then an EC-signed image from HTTP, installed by a command.
                location = f"{site.base}/files/{IMAGE_NAME}"
                foreign = firmware(location, signing.rogue, signing.rogue.sign(IMAGE, "ecdsa"))
                refused = await ask(
                    "SignedUpdateFirmware", {"requestId": FIRMWARE_ID - 1, "firmware": foreign}
                )
                assert refused == {"status": "InvalidCertificate"}
                await ask.event("InvalidFirmwareSigningCertificate")
                signed = firmware(location, signing.ec, signing.ec.sign(IMAGE, "ecdsa"))
                update = {"requestId": FIRMWARE_ID, "firmware": signed, "retries": 0, "retryInterval": 1}
                assert await ask("SignedUpdateFirmware", update) == {"status": "Accepted"}
                await ask.seen("LogStatusNotification", lambda p: p["status"] == "Uploaded")
                await ask.seen("SignedFirmwareStatusNotification", lambda p: p["status"] == "Installed")
                await ask.event("FirmwareUpdated")

                # The right chain last: it comes into force at once.
                good = {"certificateChain": pem(cs_root.sign_csr(csr_pem))}
                assert await ask("CertificateSigned", good) == {"status": "Accepted"}
                # It reconnects to present it (a TLS link would carry it; this one is ws://).
                await peer.wait_for(lambda e: len([c for c in peer.events if c["event"] == "connect"]) == 2)
            failures = strict_failures(peer)
    assert not failures, failures
    assert all(ask.answers[action] for action in CS_INITIATED), {a: len(r) for a, r in ask.answers.items()}
    assert_each_answered(peer, CP_INITIATED)
    assert log_answer["status"] == "Accepted" and log_answer["filename"].startswith("securitylog-CP-1-")
    assert statuses(peer, "LogStatusNotification") == [
        ("Idle", None),
        ("Uploading", LOG_ID),
        ("Uploaded", LOG_ID),
    ]
    assert "StartupOfTheDevice" in (ftp_home / "logs" / log_answer["filename"]).read_text()
    flow = ["Downloading", "Downloaded", "SignatureVerified", "Installing", "Installed"]
    expected_flow = [("Idle", None)] + [(status, FIRMWARE_ID) for status in flow]
    assert statuses(peer, "SignedFirmwareStatusNotification") == expected_flow
    assert copied.read_bytes() == IMAGE
    assert len(peer.calls("SignCertificate", "CP-1")) == 1
    kinds = [p["type"] for p in params_of(peer, "SecurityEventNotification")]
    assert kinds[0] == "StartupOfTheDevice"
    assert {"InvalidChargePointCertificate", "InvalidFirmwareSigningCertificate", "FirmwareUpdated"} <= set(
        kinds
    )


def get_log(request_id: int, location: str, log_type: str = "SecurityLog", **more: int) -> Params:
    return {"logType": log_type, "requestId": request_id, "log": {"remoteLocation": location}, **more}


async def failed_uploads(ask: Asker, ftp: FtpSite) -> tuple[Params, ...]:
    """PermissionDenied at once; an upload waiting for its retry, triggered (Uploading with its
    requestId), then replaced by a DiagnosticsLog (AcceptedCanceled) that is uploaded."""
    denied = await ask("GetLog", get_log(41, ftp.url(password="wrong-password"), retries=3, retryInterval=30))
    await ask.seen("LogStatusNotification", lambda p: p == {"status": "PermissionDenied", "requestId": 41})
    dead = f"ftp://cp:pw@127.0.0.1:{dead_port()}/"  # nothing listens: the upload waits for its retry
    waiting = await ask("GetLog", get_log(42, dead, retries=3, retryInterval=30))
    await ask.seen("LogStatusNotification", lambda p: p.get("requestId") == 42)
    triggered = await ask("ExtendedTriggerMessage", {"requestedMessage": "LogStatusNotification"})
    await ask.peer.wait_for(
        lambda e: statuses(ask.peer, "LogStatusNotification").count(("Uploading", 42)) == 2
    )
    replacing = await ask("GetLog", get_log(43, ftp.url(), "DiagnosticsLog"))
    await ask.seen("LogStatusNotification", lambda p: p["status"] == "Uploaded")
    return denied, waiting, triggered, replacing


async def test_failure_statuses_and_a_triggered_running_upload_pass_the_strict_peer(tmp_path: Path) -> None:
    """The other ends: PermissionDenied, a running upload reported with its requestId on a trigger and
    replaced (AcceptedCanceled), a DiagnosticsLog uploaded; InvalidSignature and DownloadFailed."""
    signing = make_signing_pki()
    install_manufacturer_root(tmp_path / "state", "CP-1", signing.root_pem)
    argv, copied = install_script(tmp_path)
    ftp_home = tmp_path / "ftp"
    ftp_home.mkdir()
    async with OcppRpcPeer(security=True) as peer, http_files(serving(tmp_path), tmp_path) as site:
        ask = Asker(peer)
        with ftp_server(ftp_home) as ftp:
            install = {"install": "command", "command": argv}
            async with running(make_config(peer.url, tmp_path, security_events="on", firmware=install)):
                await peer_booted(peer)
                denied, waiting, triggered, replacing = await failed_uploads(ask, ftp)
                # A signature of other bytes, then an image that is not there.
                location = f"{site.base}/files/{IMAGE_NAME}"
                forged = firmware(location, signing.ec, signing.ec.sign(b"other bytes", "ecdsa"))
                update = {"requestId": 51, "firmware": forged, "retries": 0}
                assert await ask("SignedUpdateFirmware", update) == {"status": "Accepted"}
                await ask.seen(
                    "SignedFirmwareStatusNotification", lambda p: p["status"] == "InvalidSignature"
                )
                await ask.event("InvalidFirmwareSignature")
                missing = {**forged, "location": f"{site.base}/files/missing.bin"}
                update = {"requestId": 52, "firmware": missing, "retries": 0, "retryInterval": 1}
                assert await ask("SignedUpdateFirmware", update) == {"status": "Accepted"}
                await ask.seen("SignedFirmwareStatusNotification", lambda p: p["status"] == "DownloadFailed")
                await asyncio.sleep(0.3)
            failures = strict_failures(peer)
    assert not failures, failures
    assert_each_answered(peer, ("LogStatusNotification", "SignedFirmwareStatusNotification"))
    assert denied["status"] == waiting["status"] == triggered["status"] == "Accepted"
    assert replacing["status"] == "AcceptedCanceled"
    assert replacing["filename"].startswith("diagnosticslog-CP-1-")
    assert (ftp_home / replacing["filename"]).stat().st_size > 0
    assert statuses(peer, "LogStatusNotification") == [
        ("Uploading", 41), ("PermissionDenied", 41), ("Uploading", 42), ("Uploading", 42),
        ("Uploading", 43), ("Uploaded", 43),
    ]  # fmt: skip
    assert statuses(peer, "SignedFirmwareStatusNotification") == [
        ("Downloading", 51), ("Downloaded", 51), ("InvalidSignature", 51),
        ("Downloading", 52), ("DownloadFailed", 52),
    ]  # fmt: skip
    assert not copied.exists()  # nothing installed
