"""Schema checks with OCPP 1.6 error codes (bridge.ocpp.schema), keyword by keyword."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import ocpp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from bridge.ocpp import schema
from bridge.ocpp.schema import CALL, CALLRESULT, violation


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


# -- the compiled schemas agree with jsonschema --------------------------------------------------
def _all_schemas() -> list[tuple[int, str]]:
    """Every 1.6 message with a schema, both directions, but the Decimal ones (jsonschema alone)."""
    folder = Path(ocpp.__file__).parent / "v16" / "schemas"
    found = []
    for path in sorted(folder.glob("*.json")):
        name = path.stem
        kind, action = (
            (CALLRESULT, name.removesuffix("Response")) if name.endswith("Response") else (CALL, name)
        )
        if schema.is_valid_fast(kind, action, {}) is not None:
            found.append((kind, action))
    return found


ALL_SCHEMAS = _all_schemas()


def _json_values() -> st.SearchStrategy[Any]:
    """Arbitrary JSON, weighted towards what sits at a schema's edges: timestamps good and bad, an
    integer as a float, long text, numbers either side of zero, enum-like words."""
    edges = st.sampled_from([
        "2026-12-06T21:00:00Z", "2026-12-06T21:00:00.123+01:00", "2026-13-45T25:61:61Z", "2026-12-06",
        "21:00:00", "Accepted", "Wh", "", "x" * 21, "x" * 51, "x" * 256, "x" * 501, 1.0, 0.5, -1, 0,
        2**31, -(2**31) - 1, True, None, [], {},
    ])  # fmt: skip
    scalars = st.one_of(
        edges, st.booleans(), st.integers(-(2**40), 2**40),
        st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30),
    )  # fmt: skip
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
        max_leaves=6,
    )


def _objects(value: Any) -> list[dict[str, Any]]:
    """Every object in `value`, itself included, at any depth."""
    if isinstance(value, dict):
        return [value, *(o for v in value.values() for o in _objects(v))]
    if isinstance(value, list):
        return [o for v in value for o in _objects(v)]
    return []


def _inlined(node: Any, definitions: dict[str, Any]) -> Any:
    """`node` with each local `$ref` replaced by its definition (the generator fetches no references)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/definitions/"):
            return _inlined(definitions[ref.removeprefix("#/definitions/")], definitions)
        return {k: _inlined(v, definitions) for k, v in node.items() if k != "definitions"}
    if isinstance(node, list):
        return [_inlined(v, definitions) for v in node]
    return node


@st.composite
def _payloads(draw: st.DrawFn) -> tuple[int, str, Any]:
    """A valid payload of some message (generated from its schema), mostly with one field, at any
    depth, replaced or added by an arbitrary JSON value."""
    kind, action = draw(st.sampled_from(ALL_SCHEMAS))
    raw = json.loads(json.dumps(schema.schema_of(kind, action), default=float))
    raw.pop("$schema", None)
    raw.pop("id", None)
    payload = draw(from_schema(_inlined(raw, raw.get("definitions", {}))))
    if draw(st.integers(0, 3)) > 0 and (objects := _objects(payload)):
        target = draw(st.sampled_from(objects))  # at any depth: a meterValue's timestamp, too
        keys = [*target, *raw.get("properties", {}), "unknownKey"]
        target[draw(st.sampled_from(keys))] = draw(_json_values())
    return kind, action, payload


@settings(max_examples=500, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(_payloads())
def test_the_compiled_schemas_decide_as_jsonschema_does(case: tuple[int, str, Any]) -> None:
    kind, action, payload = case
    slow = schema.is_valid_slow(kind, action, payload)
    assert schema.is_valid_fast(kind, action, payload) == slow, (kind, action, payload)


def test_every_message_but_the_decimal_ones_has_a_compiled_schema() -> None:
    assert len(ALL_SCHEMAS) >= 50
    assert (CALL, "MeterValues") in ALL_SCHEMAS and (CALLRESULT, "BootNotification") in ALL_SCHEMAS
    assert schema.is_valid_fast(CALL, "SetChargingProfile", {}) is None  # multipleOf: jsonschema's


def test_a_whole_float_is_no_integer_for_either_check_also_in_a_draft_06_schema() -> None:
    # Found by the property test above: the security extension's schemas say draft-06, where 0.0 is
    # an integer; jsonschema checks them as the library does (draft 4), and the compiled one must too.
    firmware = {
        "location": "",
        "retrieveDateTime": "2000-01-01T00:00:00Z",
        "signature": "",
        "signingCertificate": "",
    }
    payload = {"firmware": firmware, "requestId": 0.0}
    assert schema.is_valid_slow(2, "SignedUpdateFirmware", payload) is False
    assert schema.is_valid_fast(2, "SignedUpdateFirmware", payload) is False
    assert schema.is_valid_fast(2, "SignedUpdateFirmware", {**payload, "requestId": 0}) is True
