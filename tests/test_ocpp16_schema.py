"""The project's one OCPP 1.6 schema check (adapters/transports/ocpp16_schema.py), as a `type: ocpp`
charger's link and the bridge's upstream link see it: the same verdict, code and description (the
keyword-by-keyword cases and the compiled-against-jsonschema property are tests/test_schema.py's)."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.transports import ocpp16_schema
from adapters.transports.ocpp16_schema import CALL, CALLRESULT, UnknownAction
from bridge.ocpp import schema

REGISTER = [{"timestamp": "2026-12-07T12:00:00Z", "sampledValue": [{"value": "1.5", "unit": "kWh"}]}]


@pytest.mark.parametrize(
    ("kind", "action", "payload", "code"),
    [
        (CALL, "MeterValues", {"connectorId": 1, "meterValue": REGISTER}, None),
        (
            CALL,
            "MeterValues",
            {"connectorId": 1, "meterValue": [{"timestamp": "x", "sampledValue": []}]},
            "PropertyConstraintViolation",
        ),
        (CALL, "MeterValues", {"connectorId": "1", "meterValue": REGISTER}, "TypeConstraintViolation"),
        (CALL, "StartTransaction", {"connectorId": 1}, "ProtocolError"),
        (CALLRESULT, "Authorize", {"idTagInfo": {"status": "Maybe"}}, "PropertyConstraintViolation"),
        (CALLRESULT, "Heartbeat", {"currentTime": "now", "x": 1}, "FormationViolation"),
    ],
)
def test_the_charger_link_and_the_bridge_get_one_verdict(
    kind: int, action: str, payload: Any, code: str | None
) -> None:
    found = ocpp16_schema.violation(kind, action, payload)
    upstream = schema.violation(kind, action, payload)
    if code is None:
        assert found is None and upstream is None
        return
    assert found is not None and upstream is not None
    assert (found.code, str(upstream.code)) == (code, code)
    assert found.description == upstream.description and dict(found.details) == upstream.details


def test_a_bad_timestamp_is_named_by_its_field_never_its_value() -> None:
    sample = [{"timestamp": "s3cret-2026", "sampledValue": [{"value": "1"}]}]
    found = ocpp16_schema.violation(CALL, "MeterValues", {"connectorId": 1, "meterValue": sample})
    assert found is not None and found.code == "PropertyConstraintViolation"
    assert found.description.startswith("meterValue/0/timestamp: must be a valid date-time")
    assert "s3cret" not in found.description
    assert dict(found.details) == {"field": "meterValue/0/timestamp", "rule": "format"}


@pytest.mark.parametrize("action", ["Teleport", "../MeterValues", "Meter Values"])
def test_an_action_1_6_does_not_have_is_unknown(action: str) -> None:
    with pytest.raises(UnknownAction):
        ocpp16_schema.violation(CALL, action, {})
