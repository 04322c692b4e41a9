"""A charger with two connectors on one websocket (`type: ocpp`, the same identity, connector_id 1 and
2) as two connectors of one charge point, through the real daemon against the strict central system
(tests/csms.py), the charger a charge point on the `ocpp` library (tests/helpers/ocpp_charger.py).

- two sessions at once, each with its own transaction and MeterValues upstream; a profile upstream on
  connector 2 reaching the charger's connector 2 only; a remote stop of one leaving the other charging;
  connector 0 Faulted faulting both upstream;
- the charger reconnecting serves both; a connector no connector of the bridge drives is noted;
- a card with both connectors plugged goes by the connector of the StartTransaction that follows; with
  one plugged it is that one's; with none plugged and one charging, that one's (it ends its session).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import yaml
from ocpp.v16 import call

from adapters.chargers.ocpp_device import OcppDeviceCharger
from bridge.config import Config, parse_config
from bridge.daemon import Daemon
from tests.conftest import FAST_OCPP, running
from tests.csms import StrictCentralSystem
from tests.helpers.ocpp_charger import FakeWallbox, ocpp_charger
from tests.processes import free_port

CP = "CP-1"
WALLBOX = "WB-2X"
PASSWORD = "s3cret-for-the-dual-wallbox"
ENERGY = "Energy.Active.Import.Register"
OCPP = {"MeterValueSampleInterval": 1, "MeterValuesSampledData": [ENERGY, "Power.Active.Import"]}


def dual_config(csms: StrictCentralSystem, tmp_path: Path, port: int) -> Config:
    """Connectors 1 and 2 of the bridge drive connectors 1 and 2 of one charger."""
    charger = {
        "type": "ocpp", "listen": f"127.0.0.1:{port}", "identity": WALLBOX, "password": PASSWORD,
        "card_wait_s": 5, "call_timeout_s": 3,
    }  # fmt: skip
    doc = {
        "state_dir": str(tmp_path / "state"),
        "api": {"listen": None},
        "charge_points": [
            {
                "id": CP, "csms_url": csms.url, "reconnect": {"initial_s": 0.2, "max_s": 1.0},
                "ocpp": {**FAST_OCPP, **OCPP},
                "connectors": [{"id": n, "charger": {**charger, "connector_id": n}} for n in (1, 2)],
            }
        ],
    }  # fmt: skip
    return parse_config(yaml.safe_dump(doc), "test.yaml")


def driver(daemon: Daemon, n: int) -> OcppDeviceCharger:
    charger = daemon.charge_points[CP].connectors[n].charger
    assert isinstance(charger, OcppDeviceCharger)
    return charger


def sampled(payload: dict[str, Any], measurand: str) -> float:
    (value,) = [
        v for mv in payload["meterValue"] for v in mv["sampledValue"] if v.get("measurand") == measurand
    ]
    return float(value["value"])


def upstream_status(csms: StrictCentralSystem, connector: int, status: str) -> Any:
    return csms.wait_for_call(
        CP,
        "StatusNotification",
        lambda p: p["connectorId"] == connector and p["status"] == status,
        timeout=10,
    )


def profiles_to(wallbox: FakeWallbox, connector: int) -> list[dict[str, Any]]:
    return [p for a, p in wallbox.received if a == "SetChargingProfile" and p["connector_id"] == connector]


def tx_default(limit_a: float) -> dict[str, Any]:
    return {
        "chargingProfileId": 9, "stackLevel": 1, "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Relative",
        "chargingSchedule": {
            "chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit_a}],
        },
    }  # fmt: skip


async def plugged_both(csms: StrictCentralSystem, wallbox: FakeWallbox) -> None:
    for n in (1, 2):
        await wallbox.status("Preparing", n)
    for n in (1, 2):
        await upstream_status(csms, n, "Preparing")


async def test_two_sessions_at_once_on_one_charger(csms: StrictCentralSystem, tmp_path: Path) -> None:
    port = free_port()
    async with running(dual_config(csms, tmp_path, port)) as daemon:
        async with ocpp_charger(f"ws://127.0.0.1:{port}/ocpp", WALLBOX, PASSWORD) as wallbox:
            await plugged_both(csms, wallbox)
            for n in (1, 2):
                answer = await csms.call(
                    CP, call.RemoteStartTransaction(id_tag=f"REMOTE-{n}", connector_id=n)
                )
                assert answer.status == "Accepted"
                await upstream_status(csms, n, "Charging")
            starts = {p["connectorId"]: p for p in csms.calls(CP, "StartTransaction")}
            assert sorted(starts) == [1, 2] and starts[1]["idTag"] == "REMOTE-1"
            upstream = {p["connectorId"]: p["transactionId"] for p in csms.calls(CP, "StopTransaction")}
            assert upstream == {}
            remote = [p for a, p in wallbox.received if a == "RemoteStartTransaction"]
            assert sorted(p["connector_id"] for p in remote) == [1, 2]
            assert set(wallbox.transactions) == {1, 2}
            assert wallbox.transactions[1] != wallbox.transactions[2]  # the link's ids, unique per charger

            # Each connector's MeterValues upstream under its own transaction.
            for _ in range(3):
                await wallbox.meter(7400, connector_id=1)
                await wallbox.meter(3700, connector_id=2, step_wh=50)
                await asyncio.sleep(0.3)
            for n, power in ((1, 7400), (2, 3700)):
                sample = await csms.wait_for_call(
                    CP, "MeterValues",
                    lambda p, n=n: p["connectorId"] == n and "transactionId" in p
                    and sampled(p, ENERGY) > 1000,
                    timeout=5,
                )  # fmt: skip
                assert sampled(sample, "Power.Active.Import") == power
            ids = {
                p["connectorId"]: p["transactionId"]
                for p in csms.calls(CP, "MeterValues")
                if "transactionId" in p
            }
            assert len(set(ids.values())) == 2

            # A profile upstream on connector 2 reaches the charger's connector 2 only.
            answer = await csms.call(
                CP, call.SetChargingProfile(connector_id=2, cs_charging_profiles=tx_default(8))
            )
            assert answer.status == "Accepted"
            await csms.wait_until(
                lambda: any(p["charging_schedule"]["charging_schedule_period"][0]["limit"] == 8
                            for p in profiles_to(wallbox, 2)),
                what="8 A at the charger's connector 2",
            )  # fmt: skip
            assert all(
                p["charging_schedule"]["charging_schedule_period"][0]["limit"] != 8
                for p in profiles_to(wallbox, 1)
            )
            assert {p["charging_profile_id"] for p in profiles_to(wallbox, 2)} <= {3, 4}  # its own ids

            # A remote stop of connector 1 leaves connector 2 charging.
            answer = await csms.call(CP, call.RemoteStopTransaction(transaction_id=ids[1]))
            assert answer.status == "Accepted"
            stop = await csms.wait_for_call(CP, "StopTransaction", timeout=10)
            assert stop["transactionId"] == ids[1]
            await csms.wait_until(lambda: 1 not in wallbox.transactions, what="connector 1 stopped")
            await wallbox.meter(3700, connector_id=2)
            assert 2 in wallbox.transactions
            stopped = [p for a, p in wallbox.received if a == "RemoteStopTransaction"]
            assert len(stopped) == 1
            assert driver(daemon, 2).state.transaction_id == wallbox.transactions[2]
            assert len(csms.calls(CP, "StopTransaction")) == 1
            assert not [
                p
                for p in csms.calls(CP, "StatusNotification")
                if p["connectorId"] == 2 and p["status"] == "Finishing"
            ]

            # Connector 0 Faulted: the charger as a whole, so each connector is faulted upstream.
            await wallbox.status("Faulted", 0, error_code="GroundFailure")
            for n in (1, 2):
                faulted = await upstream_status(csms, n, "Faulted")
                assert faulted["errorCode"] == "GroundFailure"
        assert driver(daemon, 1).deviations == driver(daemon, 2).deviations == []
    assert next(p["transactionId"] for p in csms.calls(CP, "StopTransaction")) == ids[1]


async def test_the_charger_reconnecting_serves_both(csms: StrictCentralSystem, tmp_path: Path) -> None:
    port = free_port()
    url = f"ws://127.0.0.1:{port}/ocpp"
    async with running(dual_config(csms, tmp_path, port)) as daemon:
        async with ocpp_charger(url, WALLBOX, PASSWORD) as wallbox:
            await wallbox.status("Available", 1)
            await wallbox.status("Available", 2)
            await upstream_status(csms, 2, "Available")
            # A connector no connector of the bridge drives: answered, noted on every connector.
            await wallbox.status("Preparing", 3)
            await wallbox.meter(1000, connector_id=3)
        for n in (1, 2):
            await csms.wait_until(lambda n=n: driver(daemon, n).probe_lines()[0].startswith("connected: no"))
        async with ocpp_charger(url, WALLBOX, PASSWORD) as wallbox:
            await plugged_both(csms, wallbox)
            for n in (1, 2):
                lines = driver(daemon, n).probe_lines()
                assert lines[0] == "connected: yes; booted: True"
                assert "connector 3 is not driven by the bridge" in lines
            answer = await csms.call(CP, call.RemoteStartTransaction(id_tag="REMOTE-2", connector_id=2))
            assert answer.status == "Accepted"
            await upstream_status(csms, 2, "Charging")
            assert list(wallbox.transactions) == [2]
        assert driver(daemon, 1).deviations == []
    assert all(p["connectorId"] != 3 for p in csms.calls(CP, "StatusNotification"))  # the bridge has 1, 2


async def test_a_card_with_both_plugged_goes_by_the_start_that_follows(
    csms: StrictCentralSystem, tmp_path: Path
) -> None:
    """Authorize names no connector: with both plugged it is Accepted at once, and the StartTransaction
    that follows (on connector 2) presents the card there and waits for the bridge's transaction."""
    port = free_port()
    async with running(dual_config(csms, tmp_path, port)) as daemon:
        async with ocpp_charger(f"ws://127.0.0.1:{port}/ocpp", WALLBOX, PASSWORD) as wallbox:
            await plugged_both(csms, wallbox)
            authorized = await wallbox.send(call.Authorize(id_tag="CARD-7"))
            assert authorized.id_tag_info["status"] == "Accepted"
            assert csms.calls(CP, "Authorize") == []  # presented to no connector yet
            local = await wallbox.begin("CARD-7", connector_id=2)
            assert local.id_tag_info["status"] == "Accepted"  # after the bridge's transaction
            (start,) = csms.calls(CP, "StartTransaction")
            assert start["connectorId"] == 2 and start["idTag"] == "CARD-7"
            await upstream_status(csms, 2, "Charging")
            # Connector 1 unplugged, 2 charging: a card is connector 2's, and the same card ends its session.
            await wallbox.status("Available", 1)
            await upstream_status(csms, 1, "Available")
            authorized = await wallbox.send(call.Authorize(id_tag="CARD-7"))
            assert authorized.id_tag_info["status"] == "Accepted"
            stop = await csms.wait_for_call(CP, "StopTransaction", timeout=10)
            assert stop["transactionId"] == csms.last_transaction_id and stop.get("reason") == "Local"
            await csms.wait_until(lambda: driver(daemon, 2).state.status == "Finishing", what="2 stopped")
            await wallbox.status("Available", 2)  # unplugged: only connector 1 is plugged from now on
            await wallbox.status("Preparing", 1)
            # Now only connector 1 is plugged without a transaction: a card is its, and waits for it.
            authorized = await wallbox.send(call.Authorize(id_tag="CARD-8"))
            assert authorized.id_tag_info["status"] == "Accepted"
            starts = await csms.wait_for_call(CP, "StartTransaction", lambda p: p["connectorId"] == 1)
            assert starts["idTag"] == "CARD-8"
            assert "RemoteStartTransaction" not in wallbox.actions()
        assert driver(daemon, 2).deviations == []
