"""`report_to:`: what a reporting target may not change of the charge point (docs/reporting.md): its
clock, and the ids its messages carry. Both central systems are strict ones on their own ports."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from ocpp.v16 import call

from bridge.clock import parse_iso
from bridge.config import parse_config
from bridge.store import Store
from bridge.store.reporting import target_key
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.helpers.flow import charging, sim_of

BROKER_ID = "NL-ABC-123"
BROKER_FIRST_ID = 7000  # the broker numbers its transactions from here


@pytest.fixture
async def broker() -> AsyncIterator[StrictCentralSystem]:
    async with StrictCentralSystem() as cs:
        cs.last_transaction_id = BROKER_FIRST_ID
        yield cs
        cs.assert_clean()


def reporting_only(state: Path, broker_url: str, **ocpp: Any) -> dict[str, Any]:
    """A charge point with no primary, reported to the broker, charging any tag."""
    return {
        "state_dir": str(state),
        "api": {"listen": None},  # its default port is one for every test process beside this one
        "charge_points": [{
            "id": "CP-1", "reconnect": {"initial_s": 0.2, "max_s": 1.0},
            "ocpp": {"MessageTimeout": 5, "WebSocketPingInterval": 0, "MeterValueSampleInterval": 1,
                     "AllowOfflineTxForUnknownId": True, **ocpp},
            "free_vend_id_tag": "HOME",
            "report_to": [{"csms_url": broker_url, "id": BROKER_ID}],
            "connectors": [{"id": 1, "charger": {"type": "simulated"}}],
        }],
    }  # fmt: skip


async def test_a_targets_clock_an_hour_off_does_not_move_the_charge_points(
    csms: StrictCentralSystem, broker: StrictCentralSystem, tmp_path: Path
) -> None:
    broker.clock_offset_s = 3600.0  # its BootNotification and Heartbeat answers are an hour ahead
    config = make_config(csms.url, tmp_path, report_to=[{"csms_url": broker.url, "id": BROKER_ID}])
    async with running(config) as daemon:
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)
        await broker.wait_for_call(BROKER_ID, "StatusNotification", lambda p: p["connectorId"] == 1)
        asked = await broker.call(BROKER_ID, call.TriggerMessage(requested_message="Heartbeat"))
        assert asked.status == "Accepted"
        await broker.wait_for_call(BROKER_ID, "Heartbeat")
        offset = daemon.clock.offset_s
        statuses = broker.calls(BROKER_ID, "StatusNotification")
    assert abs(offset) < 5  # the primary's time (its clock agrees with ours), not the broker's
    # What the broker is told is stamped by the charge point's clock, not by its own.
    stamped = [parse_iso(s["timestamp"]) for s in statuses if "timestamp" in s]
    assert stamped and all(abs((at - datetime.now(UTC)).total_seconds()) < 600 for at in stamped)


async def test_reporting_only_a_triggered_meter_values_names_the_targets_transaction(
    broker: StrictCentralSystem, tmp_path: Path
) -> None:
    doc = reporting_only(tmp_path / "state", broker.url)
    async with running(parse_config(yaml.safe_dump(doc), "test.yaml")) as daemon:
        await broker.wait_for_call(BROKER_ID, "StatusNotification", lambda p: p["connectorId"] == 1)
        sim_of(daemon).plug()
        await broker.wait_for_call(BROKER_ID, "StartTransaction")
        await broker.wait_for_call(BROKER_ID, "MeterValues")  # sent after the start's answer was read
        asked = await broker.call(
            BROKER_ID, call.TriggerMessage(requested_message="MeterValues", connector_id=1)
        )
        assert asked.status == "Accepted"
        triggered = await broker.wait_for_call(BROKER_ID, "MeterValues", lambda p: "Trigger" in json.dumps(p))
        sim_of(daemon).unplug()
        await broker.wait_for_call(BROKER_ID, "StopTransaction")
    assert triggered["transactionId"] == BROKER_FIRST_ID + 1


async def test_a_transaction_open_when_a_target_is_added_is_not_reported_the_next_one_is_whole(
    csms: StrictCentralSystem, broker: StrictCentralSystem, tmp_path: Path
) -> None:
    async with running(make_config(csms.url, tmp_path)) as daemon:
        await charging(csms, daemon, tag="TAG-1")  # open as the bridge stops
    target = {"csms_url": broker.url, "id": BROKER_ID}
    async with running(make_config(csms.url, tmp_path, report_to=[target])) as daemon:
        await broker.wait_for_call(BROKER_ID, "StatusNotification", lambda p: p["connectorId"] == 1)
        sim_of(daemon).unplug()  # the first, resumed at the restart, ends
        await csms.wait_for_call("CP-1", "StopTransaction")
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Available", count=2)
        await charging(csms, daemon, tag="TAG-2")
        sim_of(daemon).unplug()
        await csms.wait_for_call("CP-1", "StopTransaction", count=2)
        stop = await broker.wait_for_call(BROKER_ID, "StopTransaction")
        cp = daemon.charge_points["CP-1"]
        await broker.wait_until(lambda: cp.snapshot().report_to[0]["queued"] == 0, what="the broker's queue")
    starts = broker.calls(BROKER_ID, "StartTransaction")
    assert [s["idTag"] for s in starts] == ["TAG-2"]
    assert [s["transactionId"] for s in broker.calls(BROKER_ID, "StopTransaction")] == [BROKER_FIRST_ID + 1]
    assert {m["transactionId"] for m in broker.calls(BROKER_ID, "MeterValues")} <= {BROKER_FIRST_ID + 1}
    assert stop["meterStop"] == csms.calls("CP-1", "StopTransaction")[1]["meterStop"]


async def test_reporting_only_clock_aligned_values_are_not_kept_for_a_primary_that_never_comes(
    broker: StrictCentralSystem, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = reporting_only(tmp_path / "state", broker.url, ClockAlignedDataInterval=1,
                         MeterValuesAlignedData="Energy.Active.Import.Register")  # fmt: skip
    async with running(parse_config(yaml.safe_dump(doc), "test.yaml")) as daemon:
        session = daemon.charge_points["CP-1"].session
        submitted: list[object] = []
        submit = session.submit

        def recording(build: Any, **kwargs: Any) -> Any:
            submitted.append(build())
            return submit(build, **kwargs)

        monkeypatch.setattr(session, "submit", recording)
        await broker.wait_for_call(BROKER_ID, "StatusNotification", lambda p: p["connectorId"] == 1)
        await asyncio.sleep(2.2)  # two aligned instants: the timer runs on the wall clock
    assert not [m for m in submitted if isinstance(m, call.MeterValues)]


async def test_reporting_only_judges_authorization_by_the_configuration_in_force(
    broker: StrictCentralSystem, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = tmp_path / "state"
    store = Store.open(state)  # a former primary set it false: the stored value is in force
    store.save_config_value("CP-1", "AllowOfflineTxForUnknownId", "false")
    store.close()
    doc = reporting_only(state, broker.url)  # the file says true
    caplog.set_level(logging.WARNING, logger="bridge.reporting")
    async with running(parse_config(yaml.safe_dump(doc), "test.yaml")) as daemon:
        await broker.wait_for_call(BROKER_ID, "StatusNotification", lambda p: p["connectorId"] == 1)
        in_force = daemon.charge_points["CP-1"].configuration.get_bool("AllowOfflineTxForUnknownId")
    warned = [
        r.getMessage() for r in caplog.records if "AllowOfflineTxForUnknownId is not true" in r.getMessage()
    ]
    assert in_force is False
    assert len(warned) == 1 and "stored by an earlier run" in warned[0]


async def test_a_targets_link_logs_under_its_own_name_not_the_charge_points(
    csms: StrictCentralSystem, broker: StrictCentralSystem, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bridge")
    target = {"csms_url": broker.url}  # its identity defaults to the charge point's: CP-1
    async with running(make_config(csms.url, tmp_path, report_to=[target])) as daemon:
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)
        await broker.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)
        assert daemon.charge_points["CP-1"].snapshot().report_to[0]["accepted"]
    connected = [r.getMessage() for r in caplog.records if ": connected to " in r.getMessage()]
    booted = [r.getMessage() for r in caplog.records if ": BootNotification Accepted" in r.getMessage()]
    name = f"CP-1 > CP-1@{broker.url}"
    assert sorted(m.split(": connected to ")[0] for m in connected) == sorted(["CP-1", name])
    assert [m for m in connected if m.startswith(f"{name}: ")] == [f"{name}: connected to {broker.url}"]
    assert sorted(m.split(": BootNotification")[0] for m in booted) == sorted(["CP-1", name])


async def test_a_queue_left_by_a_target_no_longer_configured_is_named_at_start(
    csms: StrictCentralSystem, broker: StrictCentralSystem, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    old = target_key("CP-1", "OLD-ID", broker.url)  # the same broker under the id it had before
    store = Store.open(tmp_path / "state")
    for n in range(2):
        store.queue_report(old, "MeterValues", 9, "{}", f"old-{n}", "2026-01-01T00:00:00.000Z")
    store.close()
    caplog.set_level(logging.WARNING, logger="bridge.reporting")
    config = make_config(csms.url, tmp_path, report_to=[{"csms_url": broker.url, "id": BROKER_ID}])
    async with running(config) as daemon:
        await broker.wait_for_call(BROKER_ID, "StatusNotification", lambda p: p["connectorId"] == 1)
        left = await daemon.store.run(daemon.store.outbox, old)
    warned = [r.getMessage() for r in caplog.records if "no longer configured" in r.getMessage()]
    assert warned == [
        f"CP-1: 2 messages queued for a reporting target no longer configured ({old}) stay in the store"
        " unread; listed again with the same URL and id, it gets them"
    ]
    assert len(left) == 2 and "MeterValues" not in broker.actions(BROKER_ID)
