"""`to_wire` makes of every OCPP 1.6 call and call result what the `ocpp` library's own
serialisation makes of it (bridge/ocpp/wire.py does it without the library's deep copies)."""

from __future__ import annotations

import dataclasses
import inspect
import json
import random
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ocpp.v16 import call, call_result, datatypes, enums

from bridge.ocpp.wire import library_to_wire, message_id, to_wire

CLASSES = [
    cls
    for module in (call, call_result)
    for _, cls in inspect.getmembers(module, inspect.isclass)
    if dataclasses.is_dataclass(cls) and cls.__module__ == module.__name__
]


def test_every_call_and_result_is_covered() -> None:
    assert len(CLASSES) >= 2 * 28  # the 1.6 actions, each a call and a result
    assert all(dataclasses.is_dataclass(cls) for cls in (datatypes.MeterValue, datatypes.SampledValue))


@pytest.mark.parametrize(
    "cls", CLASSES, ids=lambda cls: f"{cls.__module__.rsplit('.', 1)[-1]}.{cls.__name__}"
)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_to_wire_is_the_librarys_serialisation(cls: type, data: st.DataObject) -> None:
    payload = data.draw(st.from_type(cls))
    expected: dict[str, Any] = library_to_wire(payload)
    assert to_wire(payload) == expected
    assert json.dumps(to_wire(payload)) == json.dumps(expected)  # the same text, keys in the same order


KEYS = st.sampled_from(["key", "readonly", "value", "soc", "state_of_charge", "csms_url", "a_b_c", "x"])
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=12,
)
SAMPLED = st.builds(
    datatypes.SampledValue,
    value=st.text(max_size=6),
    context=st.none() | st.sampled_from(list(enums.ReadingContext)),
    measurand=st.none() | st.sampled_from(list(enums.Measurand)),
    unit=st.none() | st.sampled_from(list(enums.UnitOfMeasure)),
)


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.lists(SAMPLED, max_size=4), max_size=3),
    keys=st.lists(st.dictionaries(KEYS, JSON, max_size=4), max_size=4),
)
def test_nested_values_and_free_dicts_are_serialised_as_the_library_does(
    values: list[list[datatypes.SampledValue]], keys: list[dict[str, Any]]
) -> None:
    meter = call.MeterValues(
        connector_id=1,
        meter_value=[datatypes.MeterValue(timestamp="2026-01-01T00:00:00Z", sampled_value=v) for v in values],
        transaction_id=None,
    )
    config = call_result.GetConfiguration(configuration_key=keys, unknown_key=["a", None, "b"])  # type: ignore[list-item]
    for payload in (meter, config):
        assert json.dumps(to_wire(payload)) == json.dumps(library_to_wire(payload))


def test_the_payload_is_not_shared_with_the_wire_dict() -> None:
    values = [datatypes.SampledValue(value="1")]
    payload = call.MeterValues(
        connector_id=1, meter_value=[datatypes.MeterValue(timestamp="t", sampled_value=values)]
    )
    wire = to_wire(payload)
    wire["meterValue"][0]["sampledValue"].append({"value": "2"})
    assert len(values) == 1 and wire["meterValue"][0]["sampledValue"][0] == {"value": "1"}


def test_message_ids_are_distinct_version_4_uuids() -> None:
    ids = [message_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    for text in ids[:100]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text  # lower-case, hyphenated, 36 characters: within OCPP-J's 36
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_message_ids_do_not_repeat_when_the_shared_random_generator_is_seeded() -> None:
    """hypothesis seeds `random` before each example: the fuzz test of frames saw a CALL's id reused."""
    random.seed(1)
    first = message_id()
    random.seed(1)
    assert message_id() != first
