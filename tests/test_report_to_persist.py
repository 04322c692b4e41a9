"""A reporting target's own configuration survives a restart (docs/reporting.md, "What a target may
ask"): what it set with ChangeConfiguration (HeartbeatInterval, MeterValueSampleInterval) is stored
under its key, wins over the file's value at the next start, comes back when the target is listed
again after a run without it, and never changes the primary's or another target's values."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call

from bridge.daemon import Daemon
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.helpers.flow import charging

BROKER_ID = "NL-ABC-123"
BILLING_ID = "BILL-7"
OWN = ["HeartbeatInterval", "MeterValueSampleInterval"]
# Its boots answer interval 0: the configured HeartbeatInterval stays (a non-zero one is adopted).
KEEPS_INTERVAL = (("Accepted", 0),)


@pytest.fixture
async def broker() -> AsyncIterator[StrictCentralSystem]:
    async with StrictCentralSystem(boot=KEEPS_INTERVAL) as cs:
        yield cs
        cs.assert_clean()


async def ask(cs: StrictCentralSystem, cp_id: str, action: str, payload: dict[str, Any]) -> Any:
    """The target's answer payload to a CALL (its CALLRESULT's)."""
    unique_id = str(uuid.uuid4())
    await cs.send_raw(cp_id, json.dumps([2, unique_id, action, payload]))
    answer = await cs.answer_of(cp_id, unique_id)
    assert answer[0] == 3, answer
    return answer[2]


async def own_values(cs: StrictCentralSystem, cp_id: str) -> dict[str, str]:
    shown = await ask(cs, cp_id, "GetConfiguration", {"key": OWN})
    return {k["key"]: k["value"] for k in shown["configurationKey"]}


async def primary_values(csms: StrictCentralSystem) -> dict[str, str]:
    shown = await csms.call("CP-1", call.GetConfiguration(key=OWN))
    return {k["key"]: k["value"] for k in shown.configuration_key}


async def booted(cs: StrictCentralSystem, cp_id: str, run: int) -> None:
    """`cp_id`'s link of daemon run `run` (1, 2, ...) has told `cs` its connector 1's status."""
    await cs.wait_for_call(cp_id, "BootNotification", count=run)
    await cs.wait_for_call(cp_id, "StatusNotification", lambda p: p["connectorId"] == 1, count=run)


def sample_times(cs: StrictCentralSystem, cp_id: str) -> list[float]:
    return [
        datetime.fromisoformat(m["meterValue"][0]["timestamp"].replace("Z", "+00:00")).timestamp()
        for m in cs.calls(cp_id, "MeterValues")
    ]


async def test_a_targets_own_values_survive_a_restart_and_set_its_pace(
    csms: StrictCentralSystem, broker: StrictCentralSystem, tmp_path: Path
) -> None:
    config = make_config(csms.url, tmp_path, ocpp={"MeterValueSampleInterval": 1},
                         report_to=[{"csms_url": broker.url, "id": BROKER_ID}])  # fmt: skip
    async with running(config):
        await booted(broker, BROKER_ID, 1)
        for key, value in (("MeterValueSampleInterval", "2"), ("HeartbeatInterval", "1")):
            change = {"key": key, "value": value}
            assert await ask(broker, BROKER_ID, "ChangeConfiguration", change) == {"status": "Accepted"}
        primary_before = await primary_values(csms)

    daemon: Daemon
    async with running(config) as daemon:
        await booted(csms, "CP-1", 2)
        await booted(broker, BROKER_ID, 2)
        # The stored values win over the file's MeterValueSampleInterval 1 and the default 300.
        assert await own_values(broker, BROKER_ID) == {
            "HeartbeatInterval": "1",
            "MeterValueSampleInterval": "2",
        }
        assert (
            await primary_values(csms)
            == primary_before
            == {
                "HeartbeatInterval": "300",  # the primary's boot answer's interval
                "MeterValueSampleInterval": "1",
            }
        )
        # Its heartbeat follows its 1 s (idle: no other CALL resets the timer).
        beats = len(broker.calls(BROKER_ID, "Heartbeat"))
        await broker.wait_for_call(BROKER_ID, "Heartbeat", count=beats + 1, timeout=2.5)
        # Its samples follow its 2 s while the primary's follow the file's 1 s.
        await charging(csms, daemon)
        await broker.wait_for_call(BROKER_ID, "MeterValues", count=2, timeout=6)
        await csms.wait_for_call("CP-1", "MeterValues", count=3)
    theirs, ours = sample_times(broker, BROKER_ID), sample_times(csms, "CP-1")
    assert theirs[1] - theirs[0] == pytest.approx(2.0, abs=0.6), theirs
    assert ours[2] - ours[1] == pytest.approx(1.0, abs=0.6), ours


async def test_a_target_listed_again_gets_its_values_back_and_no_one_elses_change(
    csms: StrictCentralSystem, broker: StrictCentralSystem, tmp_path: Path
) -> None:
    async with StrictCentralSystem(boot=KEEPS_INTERVAL) as billing:
        both = [{"csms_url": broker.url, "id": BROKER_ID}, {"csms_url": billing.url, "id": BILLING_ID}]
        file_values = {"HeartbeatInterval": "300", "MeterValueSampleInterval": "1"}  # default, file

        def config(targets: list[dict[str, Any]]) -> Any:
            return make_config(csms.url, tmp_path, ocpp={"MeterValueSampleInterval": 1}, report_to=targets)

        async with running(config(both)):
            await booted(csms, "CP-1", 1)
            await booted(broker, BROKER_ID, 1)
            await booted(billing, BILLING_ID, 1)
            for key, value in (("MeterValueSampleInterval", "7"), ("HeartbeatInterval", "77")):
                change = {"key": key, "value": value}
                assert await ask(broker, BROKER_ID, "ChangeConfiguration", change) == {"status": "Accepted"}
            primary = await primary_values(csms)

        # Removed from the file: the other target and the primary start as before.
        async with running(config(both[1:])):
            await booted(csms, "CP-1", 2)
            await booted(billing, BILLING_ID, 2)
            assert await own_values(billing, BILLING_ID) == file_values
            assert await primary_values(csms) == primary

        # Listed again with the same URL and id: its own values are back; the others' unchanged.
        async with running(config(both)):
            await booted(csms, "CP-1", 3)
            await booted(broker, BROKER_ID, 2)
            await booted(billing, BILLING_ID, 3)
            assert await own_values(broker, BROKER_ID) == {
                "HeartbeatInterval": "77",
                "MeterValueSampleInterval": "7",
            }
            assert await own_values(billing, BILLING_ID) == file_values
            assert (
                await primary_values(csms)
                == primary
                != {"HeartbeatInterval": "77", "MeterValueSampleInterval": "7"}
            )
        billing.assert_clean()
