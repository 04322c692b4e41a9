"""Boot and a whole session against an independent strict peer: the npm package ocpp-rpc."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.conftest import make_config, running
from tests.peers.rpc_peer import OcppRpcPeer


def no_strict_failures(peer: OcppRpcPeer) -> None:
    bad = [e for e in peer.events if e.get("event") in ("strictValidationFailure", "badMessage")]
    assert not bad, bad


async def test_boot_and_a_full_session_pass_a_strict_third_party_central_system(tmp_path: Any) -> None:
    async with OcppRpcPeer(interval=60) as peer:
        config = make_config(peer.url, tmp_path, ocpp={"MeterValueSampleInterval": 1})
        async with running(config) as daemon:
            await peer.wait_for(
                lambda e: (
                    e["event"] == "call"
                    and e["method"] == "StatusNotification"
                    and e["params"]["connectorId"] == 1
                )
            )
            connect = await peer.wait_for(lambda e: e["event"] == "connect")
            assert connect["identity"] == "CP-1" and connect["protocol"] == "ocpp1.6"

            answer = await peer.call("CP-1", "GetConfiguration", {"key": ["HeartbeatInterval"]})
            assert answer["result"]["configurationKey"] == [
                {"key": "HeartbeatInterval", "readonly": False, "value": "60"}
            ]

            sim: Any = daemon.charge_points["CP-1"].connectors[1].charger
            sim.plug()
            sim.tap("RPC-TAG")
            await peer.wait_for(lambda e: e["event"] == "call" and e["method"] == "MeterValues", timeout=5)
            start = peer.calls("StartTransaction")[0]["params"]
            stopped = await peer.call("CP-1", "RemoteStopTransaction", {"transactionId": 1})
            assert stopped["result"] == {"status": "Accepted"}
            stop = await peer.wait_for(lambda e: e["event"] == "call" and e["method"] == "StopTransaction")
            await asyncio.sleep(0.2)
        no_strict_failures(peer)
    methods = [c["method"] for c in peer.calls() if c["method"] not in ("MeterValues", "Heartbeat")]
    assert methods == [
        "BootNotification",
        "StatusNotification",
        "StatusNotification",
        "StatusNotification",
        "Authorize",
        "StartTransaction",
        "StatusNotification",
        "StopTransaction",
        "StatusNotification",
    ]
    assert start["idTag"] == "RPC-TAG" and start["connectorId"] == 1
    assert stop["params"]["transactionId"] == 1 and stop["params"]["reason"] == "Remote"
    assert stop["params"]["meterStop"] >= start["meterStart"]


async def test_pending_then_accepted_against_the_third_party_peer(tmp_path: Any) -> None:
    async with OcppRpcPeer(boot_status="Pending", interval=1) as peer:
        async with running(make_config(peer.url, tmp_path)):
            await peer.wait_for(lambda e: e["event"] == "call" and e["method"] == "BootNotification")
            answer = await peer.call("CP-1", "GetConfiguration", {})
            assert any(k["key"] == "NumberOfConnectors" for k in answer["result"]["configurationKey"])
            await asyncio.sleep(1.5)
        no_strict_failures(peer)
    boots = peer.calls("BootNotification")
    assert len(boots) >= 2  # Pending: booted again after the interval
    assert {c["method"] for c in peer.calls()} == {"BootNotification"}  # nothing else while Pending


async def test_basic_auth_against_the_third_party_peer(tmp_path: Any) -> None:
    async with OcppRpcPeer(password="bridge-secret-0001") as peer:
        async with running(make_config(peer.url, tmp_path, password="bridge-secret-0001")):
            await peer.wait_for(lambda e: e["event"] == "call" and e["method"] == "BootNotification")
        no_strict_failures(peer)
