"""Both work together (issue 18): an OCPP charger (`type: ocpp`) under the bridge's local control,
its charge point controlled by a primary strict central system and reported to a second one
(`report_to:`). The card session shows up at both, each with its own transaction id; the primary's
charging profile reaches the charger in A and its RemoteStop ends the session at the charger."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from ocpp.v16 import call

from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.helpers.generic import profile as charging_profile
from tests.helpers.ocpp_charger import ocpp_charger
from tests.processes import free_port

CP = "CP-1"
BROKER_ID = "NL-ABC-123"
BROKER_FIRST_ID = 7000  # the broker numbers its transactions from here: the two systems' ids differ
WALLBOX = "WB-1"
PASSWORD = "s3cret-for-the-wallbox"
ENERGY = "Energy.Active.Import.Register"
OCPP = {"MeterValueSampleInterval": 1, "MeterValuesSampledData": [ENERGY, "Power.Active.Import"]}


@pytest.fixture
async def broker() -> AsyncIterator[StrictCentralSystem]:
    async with StrictCentralSystem() as cs:
        cs.last_transaction_id = BROKER_FIRST_ID
        yield cs
        cs.assert_clean()


async def test_an_ocpp_charger_controlled_by_the_primary_and_reported_to_a_broker(
    csms: StrictCentralSystem, broker: StrictCentralSystem, tmp_path: Path
) -> None:
    port = free_port()
    charger = {
        "type": "ocpp", "listen": f"127.0.0.1:{port}", "identity": WALLBOX, "password": PASSWORD,
        "card_wait_s": 5, "call_timeout_s": 3,
    }  # fmt: skip
    report_to = [{"csms_url": broker.url, "id": BROKER_ID}]
    config = make_config(csms.url, tmp_path, ocpp=OCPP, charger=charger, report_to=report_to)
    async with running(config):
        async with ocpp_charger(f"ws://127.0.0.1:{port}/ocpp", WALLBOX, PASSWORD) as wallbox:
            await wallbox.status("Preparing")
            await csms.wait_for_call(
                CP, "StatusNotification", lambda p: p["status"] == "Preparing", timeout=10
            )
            authorized = await wallbox.send(call.Authorize(id_tag="CARD-1"))
            assert authorized.id_tag_info["status"] == "Accepted"
            local = await wallbox.begin("CARD-1")
            assert local.id_tag_info["status"] == "Accepted"
            primary_id = csms.last_transaction_id
            broker_start = await broker.wait_for_call(BROKER_ID, "StartTransaction", timeout=10)
            assert broker_start["idTag"] == "CARD-1"
            broker_id = broker.last_transaction_id
            assert broker_id == BROKER_FIRST_ID + 1 and primary_id != broker_id
            assert local.transaction_id not in (primary_id, broker_id)  # the link's ids are its own

            for _ in range(3):
                await wallbox.meter(7400)
                await asyncio.sleep(0.3)
            await csms.wait_for_call(CP, "MeterValues", lambda p: "transactionId" in p, timeout=5)
            await broker.wait_for_call(BROKER_ID, "MeterValues", lambda p: "transactionId" in p, timeout=5)

            # The primary controls it: its profile reaches the charger in A ...
            answer = await csms.call(
                CP,
                call.SetChargingProfile(
                    connector_id=1,
                    cs_charging_profiles=charging_profile(7, "TxProfile", 10, transactionId=primary_id),
                ),
            )
            assert answer.status == "Accepted"
            await csms.wait_until(lambda: 10 in wallbox.limits(), what="10 A at the charger")
            # ... and its RemoteStop ends the session at the charger.
            answer = await csms.call(CP, call.RemoteStopTransaction(transaction_id=primary_id))
            assert answer.status == "Accepted"
            stop = await csms.wait_for_call(CP, "StopTransaction", timeout=10)
            assert ("RemoteStopTransaction", {"transaction_id": local.transaction_id}) in wallbox.received
            broker_stop = await broker.wait_for_call(BROKER_ID, "StopTransaction", timeout=10)

    # Each system saw one session under the id it gave, consistently.
    for cs, cp, own_id in ((csms, CP, primary_id), (broker, BROKER_ID, broker_id)):
        assert len(cs.calls(cp, "StartTransaction")) == 1
        named = {m["transactionId"] for m in cs.calls(cp, "MeterValues") if "transactionId" in m}
        named |= {m["transactionId"] for m in cs.calls(cp, "StopTransaction")}
        assert named == {own_id}, (cp, named)
    assert stop["transactionId"] == primary_id and broker_stop["transactionId"] == broker_id
    assert broker_stop["meterStop"] == stop["meterStop"]
    # The broker controls nothing and was never asked to authorize.
    assert "Authorize" not in broker.actions(BROKER_ID)
