"""Boot and a whole session against an independent strict peer: the npm package ocpp-rpc."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
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


async def test_every_core_command_and_transaction_data_pass_the_strict_peer(tmp_path: Any) -> None:
    """The central-system commands of Core and RemoteTrigger, and a StopTransaction with
    transactionData, validated by a strict third-party central system (both directions)."""
    async with OcppRpcPeer(interval=60) as peer:
        async with running(make_config(peer.url, tmp_path, connectors=2)) as daemon:
            await peer.wait_for(
                lambda e: (
                    e["event"] == "call"
                    and e["method"] == "StatusNotification"
                    and e["params"]["connectorId"] == 2
                )
            )

            async def result(method: str, params: dict[str, Any]) -> Any:
                return (await peer.call("CP-1", method, params))["result"]

            for key, value in [
                ("StopTxnSampledData", "Energy.Active.Import.Register,Power.Active.Import"),
                ("MeterValueSampleInterval", "1"),
                ("MinimumStatusDuration", "0"),
            ]:
                assert await result("ChangeConfiguration", {"key": key, "value": value}) == {
                    "status": "Accepted"
                }
            assert await result("ChangeConfiguration", {"key": "Nope", "value": "1"}) == {
                "status": "NotSupported"
            }
            assert await result("ClearCache", {}) == {"status": "Accepted"}
            status = await result("DataTransfer", {"vendorId": "ocpp-bridge", "messageId": "DeviceStatus"})
            assert status["status"] == "Accepted" and json.loads(status["data"])[0]["connector"] == 1
            unknown = await result("DataTransfer", {"vendorId": "com.example"})
            assert unknown == {"status": "UnknownVendorId"}
            assert await result("UnlockConnector", {"connectorId": 1}) == {"status": "Unlocked"}
            assert await result("ChangeAvailability", {"connectorId": 2, "type": "Inoperative"}) == {
                "status": "Accepted"
            }
            for message in ["StatusNotification", "Heartbeat", "MeterValues", "DiagnosticsStatusNotification",
                            "FirmwareStatusNotification"]:  # fmt: skip
                answer = await result("TriggerMessage", {"requestedMessage": message, "connectorId": 1})
                assert answer == {"status": "Accepted"}, message
            assert await result("TriggerMessage", {"requestedMessage": "BootNotification"}) == {
                "status": "Rejected"
            }

            sim: Any = daemon.charge_points["CP-1"].connectors[1].charger
            sim.plug()
            assert await result("RemoteStartTransaction", {"idTag": "RPC-TAG", "connectorId": 1}) == {
                "status": "Accepted"
            }
            await peer.wait_for(lambda e: e["event"] == "call" and e["method"] == "StartTransaction")
            await peer.wait_for(lambda e: e["event"] == "call" and e["method"] == "MeterValues" and
                                e["params"].get("transactionId") == 1, timeout=5)  # fmt: skip
            assert await result("RemoteStopTransaction", {"transactionId": 1}) == {"status": "Accepted"}
            stop = await peer.wait_for(lambda e: e["event"] == "call" and e["method"] == "StopTransaction")
            assert await result("Reset", {"type": "Soft"}) == {"status": "Accepted"}
            await peer.wait_for(lambda e: e["event"] == "call" and e["method"] == "BootNotification" and
                                len(peer.calls("BootNotification")) == 2)  # fmt: skip
        no_strict_failures(peer)
    data = stop["params"]["transactionData"]
    assert data[0]["sampledValue"][0]["context"] == "Transaction.Begin"
    assert data[-1]["sampledValue"][0]["context"] == "Transaction.End"
    assert stop["params"]["reason"] == "Remote"


async def test_smart_charging_commands_pass_the_strict_peer(tmp_path: Any) -> None:
    """SetChargingProfile, GetCompositeSchedule (A and W), ClearChargingProfile and a RemoteStart
    with a TxProfile, validated by the strict third-party central system in both directions."""
    start = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def body(pid: int, purpose: str, limit: float, kind: str = "Absolute") -> dict[str, Any]:
        schedule: dict[str, Any] = {
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit, "numberPhases": 3}],
        }
        if kind == "Absolute":
            schedule["startSchedule"] = start
        return {"chargingProfileId": pid, "stackLevel": 1, "chargingProfilePurpose": purpose,
                "chargingProfileKind": kind, "chargingSchedule": schedule}  # fmt: skip

    async with OcppRpcPeer(interval=60) as peer:
        async with running(make_config(peer.url, tmp_path)) as daemon:
            await peer.wait_for(lambda e: e["event"] == "call" and e["method"] == "StatusNotification"
                                and e["params"]["connectorId"] == 1)  # fmt: skip

            async def result(method: str, params: dict[str, Any]) -> Any:
                return (await peer.call("CP-1", method, params))["result"]

            max_profile = {"connectorId": 0, "csChargingProfiles": body(1, "ChargePointMaxProfile", 12.5)}
            assert await result("SetChargingProfile", max_profile) == {"status": "Accepted"}
            amps = await result("GetCompositeSchedule", {"connectorId": 1, "duration": 120})
            watts = await result(
                "GetCompositeSchedule", {"connectorId": 0, "duration": 120, "chargingRateUnit": "W"}
            )
            sim: Any = daemon.charge_points["CP-1"].connectors[1].charger
            sim.plug()
            remote = {
                "idTag": "RPC",
                "connectorId": 1,
                "chargingProfile": body(2, "TxProfile", 8, "Relative"),
            }
            assert await result("RemoteStartTransaction", remote) == {"status": "Accepted"}
            await peer.wait_for(lambda e: e["event"] == "call" and e["method"] == "StartTransaction")
            during = await result("GetCompositeSchedule", {"connectorId": 1, "duration": 60})
            assert await result("ClearChargingProfile", {"chargingProfilePurpose": "TxProfile"}) == {
                "status": "Accepted"
            }
            assert await result("ClearChargingProfile", {}) == {"status": "Accepted"}
            assert await result("ClearChargingProfile", {"id": 1}) == {"status": "Unknown"}
        no_strict_failures(peer)
    assert amps["status"] == "Accepted" and "startSchedule" not in amps["chargingSchedule"]
    assert amps["chargingSchedule"]["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 12.5, "numberPhases": 3}
    ]
    assert watts["chargingSchedule"]["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 8625}]
    assert during["chargingSchedule"]["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 8, "numberPhases": 3}
    ]
