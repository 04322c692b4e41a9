"""What a reporting target may ask, end to end (docs/reporting.md, "What a target may ask"): every
command that would control the charge point is refused, Rejected where its answer has that status,
CALLERROR NotSupported where it has none, and nothing happens at the charge point; GetConfiguration
shows its own view, ChangeConfiguration changes its own intervals only, TriggerMessage works."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bridge.daemon import Daemon
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem, now_iso
from tests.helpers.flow import ready

BROKER_ID = "NL-ABC-123"
PROFILE = {
    "chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
    "chargingProfileKind": "Absolute",
    "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 6}]},
}  # fmt: skip

# The answer's status, or "CALLERROR <code>" for an action whose answer has no status to refuse with.
REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("RemoteStartTransaction", {"idTag": "BROKER"}, "Rejected"),
    ("RemoteStartTransaction", {"idTag": "BROKER", "connectorId": 1}, "Rejected"),
    ("RemoteStopTransaction", {"transactionId": 1}, "Rejected"),
    ("ChangeAvailability", {"connectorId": 0, "type": "Inoperative"}, "Rejected"),
    ("Reset", {"type": "Hard"}, "Rejected"),
    ("SetChargingProfile", {"connectorId": 1, "csChargingProfiles": PROFILE}, "Rejected"),
    (
        "ReserveNow",
        {"connectorId": 1, "expiryDate": now_iso(3600), "idTag": "BROKER", "reservationId": 1},
        "Rejected",
    ),
    ("CancelReservation", {"reservationId": 1}, "Rejected"),
    ("ClearCache", {}, "Rejected"),
    ("DataTransfer", {"vendorId": "broker.example"}, "Rejected"),
    ("GetCompositeSchedule", {"connectorId": 1, "duration": 60}, "Rejected"),
    # A key outside its view is unknown to it (TC_040_1: NotSupported); a shown read-only key, Rejected.
    (
        "ChangeConfiguration",
        {"key": "MeterValuesSampledData", "value": "Power.Active.Import"},
        "NotSupported",
    ),
    ("ChangeConfiguration", {"key": "AuthorizeRemoteTxRequests", "value": "true"}, "NotSupported"),
    ("ChangeConfiguration", {"key": "NumberOfConnectors", "value": "2"}, "Rejected"),
    ("ChangeConfiguration", {"key": "SupportedFeatureProfiles", "value": "Core"}, "Rejected"),
    ("ExtendedTriggerMessage", {"requestedMessage": "Heartbeat"}, "Rejected"),
    (
        "GetLog",
        {"logType": "DiagnosticsLog", "requestId": 1, "log": {"remoteLocation": "ftp://x.example/"}},
        "Rejected",
    ),
    ("CertificateSigned", {"certificateChain": "-----BEGIN CERTIFICATE-----"}, "Rejected"),
    (
        "InstallCertificate",
        {"certificateType": "CentralSystemRootCertificate", "certificate": "x"},
        "Rejected",
    ),
    (
        "GetInstalledCertificateIds",
        {"certificateType": "CentralSystemRootCertificate"},
        "CALLERROR NotSupported",
    ),
    ("UnlockConnector", {"connectorId": 1}, "NotSupported"),  # its own status
    ("ClearChargingProfile", {}, "CALLERROR NotSupported"),
    (
        "UpdateFirmware",
        {"location": "http://x.example/f.bin", "retrieveDate": now_iso()},
        "CALLERROR NotSupported",
    ),
    ("GetDiagnostics", {"location": "ftp://x.example/"}, "CALLERROR NotSupported"),
    ("SendLocalList", {"listVersion": 1, "updateType": "Full"}, "CALLERROR NotSupported"),
    ("GetLocalListVersion", {}, "CALLERROR NotSupported"),
]


@pytest.fixture
async def setup(
    csms: StrictCentralSystem, tmp_path: Path
) -> AsyncIterator[tuple[StrictCentralSystem, Daemon]]:
    async with StrictCentralSystem() as broker:
        config = make_config(csms.url, tmp_path, report_to=[{"csms_url": broker.url, "id": BROKER_ID}])
        async with running(config) as daemon:
            await ready(csms)
            await broker.wait_for_call(BROKER_ID, "StatusNotification", lambda p: p["connectorId"] == 1)
            yield broker, daemon
        broker.assert_clean()


async def ask(cs: StrictCentralSystem, action: str, payload: dict[str, Any]) -> list[Any]:
    """The target's answer to a CALL (CALLRESULT or CALLERROR), as it came."""
    unique_id = str(uuid.uuid4())
    await cs.send_raw(BROKER_ID, json.dumps([2, unique_id, action, payload]))
    return await cs.answer_of(BROKER_ID, unique_id)


async def test_every_command_that_would_control_the_charge_point_is_refused(
    setup: tuple[StrictCentralSystem, Daemon], csms: StrictCentralSystem
) -> None:
    broker, daemon = setup
    cp = daemon.charge_points["CP-1"]
    limit, remote = cp.smart.current_limit_a(1), cp.configuration.get("AuthorizeRemoteTxRequests")
    answers = {}
    for action, payload, expected in REFUSED:
        answer = await ask(broker, action, payload)
        answers[(action, json.dumps(payload))] = (
            answer[2]["status"] if answer[0] == 3 else f"CALLERROR {answer[2]}",
            expected,
        )
    assert all(got == want for got, want in answers.values()), {
        k: v for k, v in answers.items() if v[0] != v[1]
    }
    # Nothing happened at the charge point: no transaction, no reboot, no change of availability or limit.
    assert cp.connectors[1].core.transaction is None
    assert cp.snapshot().connectors[0].status.status == "Available"
    assert csms.actions("CP-1").count("BootNotification") == 1 and "StartTransaction" not in csms.actions(
        "CP-1"
    )
    assert cp.smart.current_limit_a(1) == limit != 6
    assert cp.configuration.get("AuthorizeRemoteTxRequests") == remote == "false"


async def test_its_configuration_is_its_own_and_trigger_message_works(
    setup: tuple[StrictCentralSystem, Daemon], csms: StrictCentralSystem
) -> None:
    broker, daemon = setup
    cp = daemon.charge_points["CP-1"]
    shown = (await ask(broker, "GetConfiguration", {}))[2]
    assert {k["key"]: k["readonly"] for k in shown["configurationKey"]} == {
        "HeartbeatInterval": False, "MeterValueSampleInterval": False,
        "NumberOfConnectors": True, "SupportedFeatureProfiles": True,
    }  # fmt: skip
    assert (await ask(broker, "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "77"}))[2] == {
        "status": "Accepted"
    }
    mine = (await ask(broker, "GetConfiguration", {"key": ["HeartbeatInterval", "AuthorizationKey"]}))[2]
    assert mine == {"configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "77"}],
                    "unknownKey": ["AuthorizationKey"]}  # fmt: skip
    assert cp.configuration.get_int("HeartbeatInterval") != 77  # the primary's is its own

    assert (await ask(broker, "TriggerMessage", {"requestedMessage": "BootNotification"}))[2][
        "status"
    ] == "Rejected"
    before = len(broker.calls(BROKER_ID, "StatusNotification"))
    answer = await ask(broker, "TriggerMessage", {"requestedMessage": "StatusNotification", "connectorId": 1})
    assert answer[2] == {"status": "Accepted"}
    await broker.wait_for_call(BROKER_ID, "StatusNotification", count=before + 1)
    assert (await ask(broker, "TriggerMessage", {"requestedMessage": "Heartbeat"}))[2] == {
        "status": "Accepted"
    }
    await broker.wait_for_call(BROKER_ID, "Heartbeat")
    answer = await ask(broker, "TriggerMessage", {"requestedMessage": "DiagnosticsStatusNotification"})
    assert answer[2] == {"status": "NotImplemented"}
    assert "Heartbeat" not in csms.actions("CP-1")  # triggered at the target only
