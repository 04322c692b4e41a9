"""The third-party `ocpp-rpc` client in strict mode (tests/peers/ocpp_rpc_charger.js, run by node) as a
`type: ocpp` charger: every call the bridge's local endpoint sends it and every answer it returns are
checked against the library's own OCPP 1.6 schemas, and its session shows up upstream at the strict
central system (tests/csms.py) with the central system's transaction id. A wrong password: 401.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ocpp.v16 import call

from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.helpers.ocpp_charger import NodeCharger
from tests.processes import free_port

CP = "CP-1"
WALLBOX = "RPC-1"
PASSWORD = "rpc-wallbox-password"
ENERGY = "Energy.Active.Import.Register"
OCPP = {"MeterValueSampleInterval": 1, "MeterValuesSampledData": [ENERGY]}


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def config(csms: StrictCentralSystem, tmp_path: Path, port: int) -> Any:
    charger = {
        "type": "ocpp", "listen": f"127.0.0.1:{port}", "identity": WALLBOX, "password": PASSWORD,
        "card_wait_s": 5, "call_timeout_s": 5,
    }  # fmt: skip
    return make_config(csms.url, tmp_path, ocpp=OCPP, charger=charger)


async def status(node: NodeCharger, value: str) -> None:
    await node.call("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": value})


async def test_an_ocpp_rpc_charger_in_strict_mode(csms: StrictCentralSystem, tmp_path: Path) -> None:
    port = free_port()
    url = f"ws://127.0.0.1:{port}/ocpp"
    async with running(config(csms, tmp_path, port)), NodeCharger(url, WALLBOX, PASSWORD) as node:
        connected = await node.wait_for(lambda e: e["event"] in ("connected", "refused"))
        assert connected == {"event": "connected", "protocol": "ocpp1.6"}
        boot = await node.call(
            "BootNotification", {"chargePointVendor": "ocpp-rpc", "chargePointModel": "strict"}
        )
        assert boot["status"] == "Accepted"
        trigger = await node.wait_for(lambda e: e.get("method") == "TriggerMessage")
        assert trigger["params"] == {"requestedMessage": "MeterValues", "connectorId": 1}
        register = {
            "timestamp": now(),
            "sampledValue": [{"value": "5.0", "measurand": ENERGY, "unit": "kWh"}],
        }
        await node.call("MeterValues", {"connectorId": 1, "meterValue": [register]})
        await status(node, "Available")
        await status(node, "Preparing")
        await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Preparing", timeout=10)
        authorized = await node.call("Authorize", {"idTag": "RPC-CARD"})
        assert authorized["idTagInfo"]["status"] == "Accepted"
        start = await node.call(
            "StartTransaction",
            {"connectorId": 1, "idTag": "RPC-CARD", "meterStart": 5000, "timestamp": now()},
        )
        assert start["idTagInfo"]["status"] == "Accepted"
        await status(node, "Charging")
        upstream_start = await csms.wait_for_call(CP, "StartTransaction")
        upstream_id = csms.last_transaction_id
        await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Charging")
        sample = {"timestamp": now(), "sampledValue": [{"value": "5.4", "measurand": ENERGY, "unit": "kWh"}]}
        await node.call(
            "MeterValues", {"connectorId": 1, "transactionId": start["transactionId"], "meterValue": [sample]}
        )
        metered = await csms.wait_for_call(
            CP, "MeterValues", lambda p: p["meterValue"][0]["sampledValue"][0]["value"] == "5400", timeout=5
        )
        assert metered["transactionId"] == upstream_id

        profile = {
            "chargingProfileId": 3, "stackLevel": 1, "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Relative", "transactionId": upstream_id,
            "chargingSchedule": {
                "chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 8}],
            },
        }  # fmt: skip
        answer = await csms.call(CP, call.SetChargingProfile(connector_id=1, cs_charging_profiles=profile))
        assert answer.status == "Accepted"
        limited = await node.wait_for(
            lambda e: (
                e.get("method") == "SetChargingProfile"
                and e["params"]["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0][
                    "limit"
                ]
                == 8
            )
        )
        assert limited["params"]["csChargingProfiles"]["chargingSchedule"]["chargingRateUnit"] == "A"
        answer = await csms.call(CP, call.RemoteStopTransaction(transaction_id=upstream_id))
        assert answer.status == "Accepted"
        remote_stop = await node.wait_for(lambda e: e.get("method") == "RemoteStopTransaction")
        assert remote_stop["params"] == {"transactionId": start["transactionId"]}
        await node.call(
            "StopTransaction",
            {
                "transactionId": start["transactionId"],
                "meterStop": 5400,
                "timestamp": now(),
                "reason": "Remote",
            },
        )
        await status(node, "Finishing")
        stop = await csms.wait_for_call(CP, "StopTransaction", timeout=10)
        problems = [e for e in node.events if e["event"] in ("strictValidationFailure", "badMessage")]

    assert upstream_start["idTag"] == "RPC-CARD" and upstream_start["meterStart"] == 5000
    assert (stop["transactionId"], stop["meterStop"]) == (upstream_id, 5400)
    assert problems == []


async def test_an_ocpp_rpc_charger_with_a_wrong_password_gets_401(
    csms: StrictCentralSystem, tmp_path: Path
) -> None:
    port = free_port()
    url = f"ws://127.0.0.1:{port}/ocpp"
    async with running(config(csms, tmp_path, port)), NodeCharger(url, WALLBOX, "wrong") as node:
        refused = await node.wait_for(lambda e: e["event"] in ("connected", "refused"))
    assert refused["event"] == "refused" and refused["status"] == 401
