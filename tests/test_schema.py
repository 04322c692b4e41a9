"""Schema checks with OCPP 1.6 error codes (bridge.ocpp.schema), keyword by keyword."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.ocpp.schema import violation

CALL, CALLRESULT = 2, 3


def profile(limit: Any = 16, start: str | None = None) -> dict[str, Any]:
    schedule: dict[str, Any] = {
        "chargingRateUnit": "A",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}],
    }
    if start is not None:
        schedule["startSchedule"] = start
    return {
        "connectorId": 1,
        "csChargingProfiles": {
            "chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute", "chargingSchedule": schedule,
        },
    }  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "action", "payload", "code"),
    [
        (CALL, "GetConfiguration", {"key": ["A"], "extra": 1}, "FormationViolation"),  # additionalProperties
        (CALL, "GetConfiguration", {"key": "A"}, "TypeConstraintViolation"),  # type
        (CALL, "RemoteStartTransaction", {"idTag": "X" * 21}, "TypeConstraintViolation"),  # maxLength
        (CALL, "ChangeConfiguration", {"key": "A"}, "ProtocolError"),  # required
        (CALL, "Reset", {"type": "Sideways"}, "PropertyConstraintViolation"),  # enum (ERRATA 3.38)
        (CALL, "SetChargingProfile", profile(6.05), "PropertyConstraintViolation"),  # multipleOf 0.1
        (CALL, "SetChargingProfile", profile(1e300), "PropertyConstraintViolation"),  # undecidable
        (CALL, "SetChargingProfile", profile(start="2024-13-45T25:61:61Z"), "PropertyConstraintViolation"),
        (CALLRESULT, "BootNotification", {}, "ProtocolError"),  # an empty answer that lacks fields
        (
            CALLRESULT,
            "Authorize",
            {"idTagInfo": {"status": "Accepted", "expiryDate": "tomorrow"}},
            "PropertyConstraintViolation",
        ),  # format date-time
    ],
)
def test_each_violation_gets_its_1_6_error_code(kind: int, action: str, payload: Any, code: str) -> None:
    error = violation(kind, action, payload)
    assert error is not None and str(error.code) == code


@pytest.mark.parametrize(
    ("kind", "action", "payload"),
    [
        (CALLRESULT, "MeterValues", {}),  # empty answers are checked once, then known good
        (CALLRESULT, "StatusNotification", {}),
        (CALL, "SetChargingProfile", profile(6.1)),
        (CALL, "SetChargingProfile", profile(start="2030-01-31T23:59:59Z")),
        (CALLRESULT, "Authorize", {"idTagInfo": {"status": "Accepted", "expiryDate": "2030-01-01T00:00:00"}}),
    ],
)
def test_valid_payloads_pass(kind: int, action: str, payload: Any) -> None:
    assert violation(kind, action, payload) is None


def test_the_description_names_the_field_but_never_the_value() -> None:
    error = violation(CALL, "ChangeConfiguration", {"key": "AuthorizationKey", "value": 12345678901234567890})
    assert error is not None and error.description == "value: must be of type string"
    assert "12345678901234567890" not in error.description
