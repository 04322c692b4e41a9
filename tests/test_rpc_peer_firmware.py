"""UpdateFirmware against the independent strict peer (ocpp-rpc on Node.js, tests/peers).

ocpp-rpc in strict mode checks the UpdateFirmware request before sending it, the bridge's empty
CALLRESULT when it comes back, and, with ``firmware_management=True``, every
FirmwareStatusNotification the bridge sends (also a triggered one), against its own bundled OCPP 1.6
schemas. The image comes from a real HTTP server; the install is a tiny sh script (install: command).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from bridge.clock import iso
from tests.conftest import make_config, running
from tests.helpers.firmware import (
    IMAGE,
    install_script,
    peer_booted,
    peer_saw,
    peer_statuses,
    serving,
    strict_failures,
)
from tests.helpers.http_files import http_files
from tests.peers.rpc_peer import OcppRpcCallError, OcppRpcPeer


def now_iso(offset: timedelta = timedelta(0)) -> str:
    return iso(datetime.now(UTC) + offset)


FULL_FLOW = ["Downloading", "Downloaded", "Installing", "Installed"]


async def test_the_peer_validates_firmware_status_notification_in_firmware_management_mode() -> None:
    """The check the tests below rely on: the peer answers a valid status and refuses a bad one."""
    async with OcppRpcPeer(firmware_management=True) as peer:
        async with connect(f"{peer.url}/CP-T", subprotocols=[Subprotocol("ocpp1.6")], open_timeout=5) as ws:
            await ws.send(json.dumps([2, "m-1", "FirmwareStatusNotification", {"status": "Installed"}]))
            good = json.loads(await asyncio.wait_for(ws.recv(), 5))
            await ws.send(json.dumps([2, "m-2", "FirmwareStatusNotification", {"status": "Flashed"}]))
            bad = json.loads(await asyncio.wait_for(ws.recv(), 5))
        failure = await peer.wait_for(lambda e: e["event"] == "strictValidationFailure")
    assert good == [3, "m-1", {}]
    assert bad[:2] == [4, "m-2"] and bad[2] != "NotImplemented"
    assert failure["method"] == "FirmwareStatusNotification" and failure["messageId"] == "m-2"
    assert failure["isCall"] is True and failure["outbound"] is False


async def test_update_firmware_installed_by_a_command_passes_the_strict_peer(tmp_path: Path) -> None:
    argv, copied = install_script(tmp_path, sleep_s=2.0)
    async with OcppRpcPeer(firmware_management=True) as peer, http_files(serving(tmp_path), tmp_path) as site:
        config = make_config(peer.url, tmp_path, firmware={"install": "command", "command": argv})
        async with running(config):
            await peer_booted(peer)
            # Nothing asked yet: a trigger reports Idle, validated like any other status.
            trigger = await peer.call(
                "CP-1", "TriggerMessage", {"requestedMessage": "FirmwareStatusNotification"}
            )
            await peer_saw(peer, "FirmwareStatusNotification", "Idle")
            # Without retries and retryInterval (both optional); the retrieveDate already passed.
            location = f"{site.base}/files/fw-2.0.bin"
            answer = await peer.call(
                "CP-1",
                "UpdateFirmware",
                {"location": location, "retrieveDate": now_iso(-timedelta(minutes=1))},
            )
            await peer_saw(peer, "FirmwareStatusNotification", "Installing")
            # The script sleeps 2 s: a trigger now reports the install running.
            during = await peer.call(
                "CP-1", "TriggerMessage", {"requestedMessage": "FirmwareStatusNotification"}
            )
            await peer.wait_for(
                lambda e: peer_statuses(peer, "FirmwareStatusNotification").count("Installing") == 2,
                timeout=5,
            )
            await peer_saw(peer, "FirmwareStatusNotification", "Installed")
            seen = peer_statuses(peer, "FirmwareStatusNotification")
        assert not strict_failures(peer), strict_failures(peer)
    assert trigger["result"] == during["result"] == {"status": "Accepted"}
    assert answer["result"] == {}  # UpdateFirmware.conf is empty
    assert seen == ["Idle", "Downloading", "Downloaded", "Installing", "Installing", "Installed"]
    assert copied.read_bytes() == IMAGE


async def test_download_failed_with_retries_passes_the_strict_peer(tmp_path: Path) -> None:
    async with OcppRpcPeer(firmware_management=True) as peer, http_files(serving(tmp_path), tmp_path) as site:
        async with running(make_config(peer.url, tmp_path)):
            await peer_booted(peer)
            answer = await peer.call("CP-1", "UpdateFirmware", {
                "location": f"{site.base}/files/missing.bin", "retrieveDate": now_iso(),
                "retries": 1, "retryInterval": 1,
            })  # fmt: skip
            await peer_saw(peer, "FirmwareStatusNotification", "DownloadFailed")
            await asyncio.sleep(0.5)  # no status after the last attempt
            seen = peer_statuses(peer, "FirmwareStatusNotification")
        assert not strict_failures(peer), strict_failures(peer)
    assert answer["result"] == {}
    assert seen == ["Downloading", "DownloadFailed"]


async def test_the_peer_refuses_an_update_firmware_without_retrieve_date(tmp_path: Path) -> None:
    """The peer checks what it sends too: the bridge never sees an invalid UpdateFirmware."""
    async with OcppRpcPeer(firmware_management=True) as peer:
        async with running(make_config(peer.url, tmp_path)):
            await peer_booted(peer)
            with pytest.raises(OcppRpcCallError) as refused:
                await peer.call("CP-1", "UpdateFirmware", {"location": "http://127.0.0.1/fw.bin"})
            await asyncio.sleep(0.3)
            assert peer_statuses(peer, "FirmwareStatusNotification") == []
    # ocpp-rpc spells the code with one "r", as the OCPP 1.6 JSON specification does.
    assert refused.value.code == "OccurenceConstraintViolation" and "retrieveDate" in refused.value.message
