"""`report_to:` end to end: a charge point controlled by its primary central system and reported to a
second, reporting-only one (both strict central systems on their own ports), the simulated charger
driven through a session. docs/reporting.md."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from ocpp.v16 import call

from bridge.config import parse_config
from bridge.diagnostics.redact import redacted_config
from bridge.log import FRAMES_LOGGER
from bridge.runtime.snapshot import status_json
from bridge.status_cli import format_status
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.helpers.flow import charging, ready, sim_of

BROKER_ID = "NL-ABC-123"
BROKER_FIRST_ID = 7000  # the broker numbers its transactions from here: the two systems' ids differ


@pytest.fixture
async def broker() -> AsyncIterator[StrictCentralSystem]:
    async with StrictCentralSystem() as cs:
        cs.last_transaction_id = BROKER_FIRST_ID
        yield cs
        cs.assert_clean()


def reported(cs_url: str, **extra: Any) -> dict[str, Any]:
    return {"report_to": [{"csms_url": cs_url, "id": BROKER_ID, **extra}]}


def after_charging(cs: StrictCentralSystem) -> str | None:
    """The first status of connector 1 the broker was told after Charging, if any yet."""
    told = [s["status"] for s in cs.calls(BROKER_ID, "StatusNotification") if s["connectorId"] == 1]
    after = told[told.index("Charging") + 1 :] if "Charging" in told else []
    return after[0] if after else None


async def test_a_session_is_reported_with_the_ids_each_system_gave(
    csms: StrictCentralSystem, broker: StrictCentralSystem, tmp_path: Path
) -> None:
    config = make_config(csms.url, tmp_path, ocpp={"MeterValueSampleInterval": 1}, **reported(broker.url))
    async with running(config) as daemon:
        await ready(csms)
        await broker.wait_for_call(BROKER_ID, "StatusNotification", lambda p: p["connectorId"] == 1)
        await charging(csms, daemon, tag="TAG-1")
        await broker.wait_for_call(BROKER_ID, "MeterValues", count=2)
        await csms.wait_for_call("CP-1", "MeterValues", count=2)
        # A MeterValues the broker triggers names its own transaction id, and goes to it alone.
        asked = await broker.call(
            BROKER_ID, call.TriggerMessage(requested_message="MeterValues", connector_id=1)
        )
        assert asked.status == "Accepted"
        await broker.wait_for_call(BROKER_ID, "MeterValues", lambda p: "Trigger" in json.dumps(p))
        sim_of(daemon).unplug()
        await csms.wait_for_call("CP-1", "StopTransaction")
        await broker.wait_for_call(BROKER_ID, "StopTransaction")
        await broker.wait_until(lambda: after_charging(broker), what="the broker to hear of the unplug")
        await broker.wait_until(lambda: daemon.charge_points["CP-1"].snapshot().report_to[0]["queued"] == 0,
                                what="the broker's queue to empty")  # fmt: skip
        status = daemon.charge_points["CP-1"].snapshot().report_to[0]

    # The broker is told as the primary is: its own boot with the same identity fields, the statuses,
    # the transaction; never an Authorize (its answers decide nothing).
    boot = broker.calls(BROKER_ID, "BootNotification")[0]
    assert boot == csms.calls("CP-1", "BootNotification")[0]
    assert "Authorize" in csms.actions("CP-1") and "Authorize" not in broker.actions(BROKER_ID)
    statuses = [(s["connectorId"], s["status"]) for s in broker.calls(BROKER_ID, "StatusNotification")]
    assert statuses[:2] == [(0, "Available"), (1, "Available")]
    assert (1, "Charging") in statuses and after_charging(broker) in ("Finishing", "Available")

    # Each system's messages name the id that system gave; the two differ.
    def ids(cs: StrictCentralSystem, cp: str) -> tuple[int, set[int]]:
        start = cs.calls(cp, "StartTransaction")
        assert len(start) == 1 and start[0]["idTag"] == "TAG-1"
        later = {m["transactionId"] for m in cs.calls(cp, "MeterValues")}
        later |= {m["transactionId"] for m in cs.calls(cp, "StopTransaction")}
        return len(start), later

    assert not any("Trigger" in json.dumps(p) for p in csms.calls("CP-1", "MeterValues"))
    assert ids(csms, "CP-1") == (1, {1})
    assert ids(broker, BROKER_ID) == (1, {BROKER_FIRST_ID + 1})
    # The same session: the same meter readings and times.
    for action in ("StartTransaction", "StopTransaction"):
        ours, theirs = csms.calls("CP-1", action)[0], broker.calls(BROKER_ID, action)[0]
        assert {k: v for k, v in ours.items() if k != "transactionId"} == {
            k: v for k, v in theirs.items() if k != "transactionId"
        }
    assert status == {"csms_url": broker.url, "id": BROKER_ID, "connected": True, "accepted": True,
                      "queued": 0, "last_error": None}  # fmt: skip


async def test_the_identity_defaults_to_the_charge_points_and_the_password_is_sent(
    csms: StrictCentralSystem, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, ocpp.frames among them
    caplog.set_level(logging.DEBUG, logger=FRAMES_LOGGER)
    async with StrictCentralSystem(password="broker-secret") as broker:
        target = {"csms_url": broker.url, "password": "broker-secret"}
        config = make_config(csms.url, tmp_path, report_to=[target])
        async with running(config) as daemon:
            await broker.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)
            shown = json.dumps(status_json(daemon.charge_points["CP-1"].snapshot()))
        broker.assert_clean()
    assert broker.handshakes and all(status == 101 for _, status in broker.handshakes)
    raw = yaml.safe_dump({"charge_points": [{"id": "CP-1", "csms_url": csms.url, "report_to": [target]}]})
    assert "broker-secret" in raw  # the file has it; the archive's copy must not
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert any(r.name == FRAMES_LOGGER for r in caplog.records) and "BootNotification" in logged
    assert broker.url in shown  # the target is shown, its password not
    for text in (logged, shown, redacted_config(raw)):
        assert "broker-secret" not in text


def test_ocpp_bridge_status_has_a_line_per_target() -> None:
    body = {"charge_points": [{"id": "CP-1", "csms_url": "ws://csms.example/ocpp", "connected": True,
        "accepted": True, "report_to": [
            {"csms_url": "wss://broker.example/ocpp", "id": BROKER_ID, "connected": True, "accepted": True,
             "queued": 0, "last_error": None},
            {"csms_url": "ws://billing.example/ocpp", "id": "CP-1", "connected": False, "accepted": False,
             "queued": 12, "last_error": "connection refused by billing.example"},
        ]}]}  # fmt: skip
    lines = format_status(body, datetime(2026, 12, 1, tzinfo=UTC)).splitlines()
    assert f"  reported to wss://broker.example/ocpp as {BROKER_ID}: 0 messages waiting" in lines
    down = "  NOT connected to ws://billing.example/ocpp as CP-1: 12 messages waiting"
    assert f"{down}, last error: connection refused by billing.example" in lines


async def test_without_a_primary_the_sessions_are_authorized_locally_and_only_reported(
    broker: StrictCentralSystem, tmp_path: Path
) -> None:
    doc = {
        "state_dir": str(tmp_path / "state"),
        "api": {"listen": None},  # its default port is one for every test process beside this one
        "charge_points": [{
            "id": "CP-1", "reconnect": {"initial_s": 0.2, "max_s": 1.0},
            "ocpp": {"MessageTimeout": 5, "WebSocketPingInterval": 0, "MeterValueSampleInterval": 1,
                     "AllowOfflineTxForUnknownId": True},
            "free_vend_id_tag": "HOME",
            "report_to": [{"csms_url": broker.url, "id": BROKER_ID}],
            "connectors": [{"id": 1, "charger": {"type": "simulated"}}],
        }],
    }  # fmt: skip
    async with running(parse_config(yaml.safe_dump(doc), "test.yaml")) as daemon:
        await broker.wait_for_call(BROKER_ID, "StatusNotification", lambda p: p["connectorId"] == 1)
        sim_of(daemon).plug()  # no card: the free-vend tag, allowed by the configured allow-all
        start = await broker.wait_for_call(BROKER_ID, "StartTransaction")
        await broker.wait_for_call(BROKER_ID, "MeterValues")
        sim_of(daemon).unplug()
        stop = await broker.wait_for_call(BROKER_ID, "StopTransaction")
        cp = daemon.charge_points["CP-1"]
        await broker.wait_until(lambda: cp.snapshot().report_to[0]["queued"] == 0, what="the broker's queue")
        shown = status_json(cp.snapshot())
        health = daemon.health()
        store = daemon.store
        left = await store.run(lambda: (store.outbox("CP-1"), store.transactions("CP-1")))
    assert start["idTag"] == "HOME" and stop["transactionId"] == BROKER_FIRST_ID + 1
    assert "Authorize" not in broker.actions(BROKER_ID)
    assert shown["csms_url"] is None and shown["connected"] is False
    assert shown["report_to"][0]["accepted"] is True
    assert health == []  # no primary link to miss
    assert left == ([], [])  # nothing kept for a primary: the transaction's row went with the last message
