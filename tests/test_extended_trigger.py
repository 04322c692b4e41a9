"""ExtendedTriggerMessage (security white paper) against the strict central system, which checks
every frame against the 1.6 security schemas: each requestedMessage, and a connector out of range."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call

from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.processes import dead_port


async def booted(cs: StrictCentralSystem, connectors: int = 1) -> None:
    """Booted, and the status of every connector reported (nothing more comes unasked)."""
    for cid in range(1, connectors + 1):
        await cs.wait_for_call(
            "CP-1", "StatusNotification", lambda p, cid=cid: p["connectorId"] == cid, timeout=10
        )


async def extended(cs: StrictCentralSystem, requested: str, connector_id: int | None = None) -> str:
    answer = await cs.call(
        "CP-1", call.ExtendedTriggerMessage(requested_message=requested, connector_id=connector_id)
    )
    return str(answer.status)


async def followed_by(cs: StrictCentralSystem, requested: str, action: str, **fields: Any) -> dict[str, Any]:
    """ExtendedTriggerMessage(`requested`) Accepted, and the `action` it led to."""
    before = len(cs.calls("CP-1", action))
    assert await extended(cs, requested, **fields) == "Accepted"
    return await cs.wait_for_call("CP-1", action, count=before + 1)


async def test_each_message_is_sent_after_the_answer(tmp_path: Path) -> None:
    async with StrictCentralSystem() as cs, running(make_config(cs.url, tmp_path, connectors=2)):
        await booted(cs, 2)
        assert await followed_by(cs, "Heartbeat", "Heartbeat") == {}
        meter = await followed_by(cs, "MeterValues", "MeterValues", connector_id=2)
        assert meter["connectorId"] == 2 and meter["meterValue"]
        status = await followed_by(cs, "StatusNotification", "StatusNotification", connector_id=1)
        assert status["connectorId"] == 1 and status["status"] == "Available"
        # Nothing runs: Idle, without a requestId (the white paper leaves it out only then).
        assert await followed_by(cs, "LogStatusNotification", "LogStatusNotification") == {"status": "Idle"}
        firmware = await followed_by(cs, "FirmwareStatusNotification", "SignedFirmwareStatusNotification")
        assert firmware == {"status": "Idle"}
        assert not cs.calls("CP-1", "FirmwareStatusNotification")
        cs.assert_clean()


async def test_boot_notification_is_rejected_once_accepted(tmp_path: Path) -> None:
    async with StrictCentralSystem() as cs, running(make_config(cs.url, tmp_path)):
        await booted(cs)
        boots = len(cs.calls("CP-1", "BootNotification"))
        assert await extended(cs, "BootNotification") == "Rejected"  # ERRATA 3.35, as TriggerMessage
        assert len(cs.calls("CP-1", "BootNotification")) == boots
        cs.assert_clean()


@pytest.mark.parametrize("requested", ["StatusNotification", "MeterValues", "Heartbeat"])
async def test_a_connector_out_of_range_is_rejected(tmp_path: Path, requested: str) -> None:
    async with StrictCentralSystem() as cs, running(make_config(cs.url, tmp_path, connectors=2)):
        await booted(cs, 2)
        before = len(cs.calls("CP-1"))
        assert await extended(cs, requested, connector_id=3) == "Rejected"  # NumberOfConnectors + 1
        assert len(cs.calls("CP-1")) == before
        cs.assert_clean()


async def test_log_status_reports_the_running_upload_with_its_request_id(tmp_path: Path) -> None:
    location = f"ftp://cp:pw@127.0.0.1:{dead_port()}/"  # nothing listens: it waits for its retry
    async with StrictCentralSystem() as cs, running(make_config(cs.url, tmp_path)):
        await booted(cs)
        log = {"remoteLocation": location}
        await cs.call("CP-1", call.GetLog(log=log, log_type="SecurityLog", request_id=42, retry_interval=30))
        await cs.wait_for_call("CP-1", "LogStatusNotification", lambda p: p["status"] == "Uploading")
        triggered = await followed_by(cs, "LogStatusNotification", "LogStatusNotification")
        assert triggered == {"status": "Uploading", "requestId": 42}
        cs.assert_clean()


async def test_sign_charge_point_certificate_is_rejected_without_a_cpo_name(tmp_path: Path) -> None:
    """A02: the CSR's O= is CpoName; without one no signing request can start."""
    async with StrictCentralSystem() as cs, running(make_config(cs.url, tmp_path)):
        await booted(cs)
        assert await extended(cs, "SignChargePointCertificate") == "Rejected"
        assert not cs.calls("CP-1", "SignCertificate")
        cs.assert_clean()
