"""GetDiagnostics against the independent strict peer (ocpp-rpc on Node.js, tests/peers).

ocpp-rpc in strict mode checks the GetDiagnostics request before sending it, the bridge's
CALLRESULT (fileName) when it comes back, and, with ``firmware_management=True``, every
DiagnosticsStatusNotification the bridge sends, against its own bundled OCPP 1.6 schemas.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from tests.conftest import make_config, running
from tests.helpers.firmware import peer_booted, peer_saw, peer_statuses, strict_failures
from tests.helpers.ftp_server import ftp_server
from tests.peers.rpc_peer import OcppRpcPeer
from tests.processes import dead_port


async def test_the_peer_validates_diagnostics_status_notification_in_firmware_management_mode() -> None:
    """The check the daemon's tests rely on: the peer answers a valid status and refuses a bad one."""
    async with OcppRpcPeer(firmware_management=True) as peer:
        async with connect(f"{peer.url}/CP-T", subprotocols=[Subprotocol("ocpp1.6")], open_timeout=5) as ws:
            await ws.send(json.dumps([2, "m-1", "DiagnosticsStatusNotification", {"status": "Uploaded"}]))
            good = json.loads(await asyncio.wait_for(ws.recv(), 5))
            await ws.send(json.dumps([2, "m-2", "DiagnosticsStatusNotification", {"status": "Done"}]))
            bad = json.loads(await asyncio.wait_for(ws.recv(), 5))
        failure = await peer.wait_for(lambda e: e["event"] == "strictValidationFailure")
    assert good == [3, "m-1", {}]
    assert bad[:2] == [4, "m-2"] and bad[2] != "NotImplemented"
    assert failure["method"] == "DiagnosticsStatusNotification" and failure["messageId"] == "m-2"
    assert failure["isCall"] is True and failure["outbound"] is False


async def test_get_diagnostics_to_ftp_passes_the_strict_peer(tmp_path: Path) -> None:
    home = tmp_path / "ftp"
    (home / "incoming").mkdir(parents=True)
    async with OcppRpcPeer(firmware_management=True) as peer:
        with ftp_server(home) as site:
            async with running(make_config(peer.url, tmp_path)):
                await peer_booted(peer)
                # Raises (FormatViolation...) if ocpp-rpc finds the bridge's CALLRESULT invalid.
                answer = await peer.call("CP-1", "GetDiagnostics", {"location": site.url("incoming/")})
                await peer_saw(peer, "DiagnosticsStatusNotification", "Uploaded")
                seen = peer_statuses(peer, "DiagnosticsStatusNotification")
        assert not strict_failures(peer), strict_failures(peer)
    name = answer["result"]["fileName"]
    assert set(answer["result"]) == {"fileName"}
    assert name.startswith("diagnostics-CP-1-") and name.endswith(".tar.gz")
    assert seen == ["Uploading", "Uploaded"]
    assert (home / "incoming" / name).stat().st_size > 0  # the archive the answer named is there
    assert site.password not in json.dumps(peer.events)  # the location's secret is never reported


async def test_get_diagnostics_to_an_unreachable_location_ends_in_upload_failed(tmp_path: Path) -> None:
    location = f"ftp://cp:pw-unused@127.0.0.1:{dead_port()}/"  # nothing listens there
    async with OcppRpcPeer(firmware_management=True) as peer:
        async with running(make_config(peer.url, tmp_path)):
            await peer_booted(peer)
            answer = await peer.call("CP-1", "GetDiagnostics", {"location": location, "retries": 0})
            await peer_saw(peer, "DiagnosticsStatusNotification", "UploadFailed")
            await asyncio.sleep(0.5)  # retries=0: no second attempt, no further status
            seen = peer_statuses(peer, "DiagnosticsStatusNotification")
        assert not strict_failures(peer), strict_failures(peer)
    assert answer["result"]["fileName"].startswith("diagnostics-CP-1-")
    assert seen == ["Uploading", "UploadFailed"]
