"""What the firmware and diagnostics tests share: an install command, an image to serve, the peer's
view of a status notification, and a triggered status read off the strict central system."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ocpp.v16 import call

from tests.csms import StrictCentralSystem
from tests.peers.rpc_peer import OcppRpcPeer

IMAGE = b"firmware image " * 5000  # 75 kB
IMAGE_NAME = "fw-2.0.bin"


def install_script(tmp_path: Path, exit_code: int = 0, sleep_s: float = 0.0) -> tuple[list[str], Path]:
    """A command that copies the image it is given (its last argument) to the returned path after
    `sleep_s`, and exits `exit_code`."""
    copied = tmp_path / "installed.bin"
    script = tmp_path / "install-image.sh"
    script.write_text(
        f'#!/bin/sh\nfor image; do :; done\necho "flashing $image ($1)"\nsleep {sleep_s}\n'
        f'cp "$image" "{copied}"\nexit {exit_code}\n'
    )
    script.chmod(0o755)
    return [str(script), "--verbose"], copied


def serving(tmp_path: Path) -> Path:
    """A directory to serve, holding IMAGE as IMAGE_NAME."""
    root = tmp_path / "www"
    root.mkdir(exist_ok=True)
    (root / IMAGE_NAME).write_bytes(IMAGE)
    return root


async def triggered(cs: StrictCentralSystem, action: str, cp_id: str = "CP-1") -> str:
    """TriggerMessage(`action`), Accepted, and the status of the notification it led to."""
    before = len(cs.calls(cp_id, action))
    answer = await cs.call(cp_id, call.TriggerMessage(requested_message=action))
    assert answer.status == "Accepted"
    await cs.wait_until(lambda: len(cs.calls(cp_id, action)) > before, 5, f"the triggered {action}")
    return str(cs.calls(cp_id, action)[before]["status"])


# -- the strict ocpp-rpc peer ---------------------------------------------------------------------
def strict_failures(peer: OcppRpcPeer) -> list[dict[str, Any]]:
    return [e for e in peer.events if e.get("event") in ("strictValidationFailure", "badMessage")]


def peer_statuses(peer: OcppRpcPeer, action: str, cp_id: str = "CP-1") -> list[str]:
    return [c["params"]["status"] for c in peer.calls(action, cp_id)]


async def peer_saw(peer: OcppRpcPeer, action: str, status: str, timeout: float = 15.0) -> None:
    await peer.wait_for(
        lambda e: e["event"] == "call" and e["method"] == action and e["params"]["status"] == status,
        timeout=timeout,
    )


async def peer_booted(peer: OcppRpcPeer) -> None:
    """CP-1 reported connector 1: booted and serving."""
    await peer.wait_for(
        lambda e: (
            e["event"] == "call" and e["method"] == "StatusNotification" and e["params"]["connectorId"] == 1
        ),
        timeout=10,
    )
