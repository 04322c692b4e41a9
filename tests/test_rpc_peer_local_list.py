"""SendLocalList (Full and Differential) and GetLocalListVersion against the independent strict peer
(ocpp-rpc on Node.js, tests/peers): in strict mode it checks each request before sending it and the
bridge's CALLRESULT when it comes back, against its own bundled OCPP 1.6 schemas."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import make_config, running
from tests.helpers.firmware import peer_booted, strict_failures
from tests.peers.rpc_peer import OcppRpcCallError, OcppRpcPeer


async def test_the_peer_refuses_to_send_an_invalid_send_local_list(tmp_path: Path) -> None:
    """The check the test below relies on: the peer validates the request it sends (a charge point is
    connected, so the refusal is the schema's, not "not connected")."""
    async with OcppRpcPeer() as peer:
        async with running(make_config(peer.url, tmp_path)):
            await peer_booted(peer)
            with pytest.raises(OcppRpcCallError) as refused:
                await peer.call("CP-1", "SendLocalList", {"listVersion": 1, "updateType": "Partial"})
    assert refused.value.code not in ("NotConnected", "TimeoutError")


async def test_send_local_list_and_get_local_list_version_pass_the_strict_peer(tmp_path: Path) -> None:
    full = {
        "listVersion": 3,
        "updateType": "Full",
        "localAuthorizationList": [
            {"idTag": "CARD-1", "idTagInfo": {"status": "Accepted", "expiryDate": "2030-01-01T00:00:00Z",
                                              "parentIdTag": "FLEET"}},
            {"idTag": "CARD-2", "idTagInfo": {"status": "Blocked"}},
            {"idTag": "CARD-3", "idTagInfo": {"status": "Accepted"}},
        ],
    }  # fmt: skip
    differential = {
        "listVersion": 4,
        "updateType": "Differential",
        "localAuthorizationList": [
            {"idTag": "CARD-4", "idTagInfo": {"status": "Accepted"}},
            {"idTag": "card-2"},  # removed, whatever its case
        ],
    }
    async with OcppRpcPeer() as peer:
        async with running(make_config(peer.url, tmp_path)) as daemon:
            await peer_booted(peer)
            empty = await peer.call("CP-1", "GetLocalListVersion")
            answers = [
                (await peer.call("CP-1", "SendLocalList", full))["result"],
                (await peer.call("CP-1", "GetLocalListVersion"))["result"],
                (await peer.call("CP-1", "SendLocalList", differential))["result"],
                (await peer.call("CP-1", "GetLocalListVersion"))["result"],
                (await peer.call("CP-1", "SendLocalList", {**differential, "listVersion": 4}))["result"],
            ]
            held = sorted(tag for tag, _ in daemon.charge_points["CP-1"].authorizer.local_list.entries())
        assert not strict_failures(peer), strict_failures(peer)
    assert empty["result"] == {"listVersion": 0}
    assert answers == [
        {"status": "Accepted"}, {"listVersion": 3}, {"status": "Accepted"}, {"listVersion": 4},
        {"status": "VersionMismatch"},
    ]  # fmt: skip
    assert held == ["CARD-1", "CARD-3", "CARD-4"]
