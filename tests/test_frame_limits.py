"""Absurd frames from the central system: too deep, too large, badly encoded, numbers out of range.

Each gets the right CALLERROR (or, without a readable id, nothing) and the link lives on: one
websocket for the whole test, no descriptor leaked, and the charge point still answers.
"""

from __future__ import annotations

import asyncio
import decimal
import json
import os
from typing import Any

import pytest
from ocpp.v16 import call
from websockets.exceptions import ConnectionClosed

from bridge.config import ConfigError
from bridge.ocpp.errors import InvalidResponse
from bridge.ocpp.rpc import Endpoint
from bridge.ocpp.wire import decode, parse_answer
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem


async def settled(csms: StrictCentralSystem) -> None:
    await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)


async def answer(csms: StrictCentralSystem, unique_id: str, frame: str) -> list[Any]:
    await csms.send_raw("CP-1", frame)
    return await csms.answer_of("CP-1", unique_id)


async def still_alive(csms: StrictCentralSystem) -> None:
    result = await csms.call("CP-1", call.GetConfiguration(key=["HeartbeatInterval"]))
    assert result.configuration_key[0]["key"] == "HeartbeatInterval"
    assert len(csms.links) == 1, "the charge point reconnected"
    assert not csms.links[0].closed


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def nested_object(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def profile(**schedule: Any) -> dict[str, Any]:
    return {
        "chargingProfileId": 1,
        "stackLevel": 0,
        "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Absolute",
        "chargingSchedule": {
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16}],
            **schedule,
        },
    }


# -- nesting ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "payload",
    [
        '{"vendorId":"x","data":' + nested_object(1000) + "}",  # past the JSON parser's recursion limit
        '{"key":' + "[" * 1000 + "]" * 1000 + "}",
        '{"vendorId":"x","data":' + nested_object(40) + "}",  # parses, but deeper than any 1.6 message
    ],
    ids=["data-1000-deep", "key-1000-deep", "data-40-deep"],
)
async def test_deeply_nested_calls_get_formation_violation_and_the_link_lives_on(
    csms: StrictCentralSystem, tmp_path: Any, payload: str
) -> None:
    action = "DataTransfer" if "vendorId" in payload else "GetConfiguration"
    async with running(make_config(csms.url, tmp_path)):
        await settled(csms)
        reply = await answer(csms, "deep", f'[2,"deep","{action}",{payload}]')
        assert reply[:3] == [4, "deep", "FormationViolation"]
        await still_alive(csms)


async def test_deep_frames_without_an_id_are_dropped_and_no_socket_leaks(
    csms: StrictCentralSystem, tmp_path: Any
) -> None:
    async with running(make_config(csms.url, tmp_path)):
        await settled(csms)
        await still_alive(csms)
        before = open_descriptors()
        for n in range(20):
            await csms.send_raw("CP-1", "[" * 1000 + "]" * 1000)
            await csms.send_raw(
                "CP-1", f'[2,"deep-{n}","DataTransfer",{{"vendorId":"x","data":' + nested_object(5000)
            )
        await still_alive(csms)
        assert open_descriptors() <= before + 2
        link = csms.links[0]
        answers = [
            f.message
            for f in link.frames
            if f.direction == "in" and f.message and str(f.message[1]).startswith("deep-")
        ]
        assert len(answers) == 20 and all(a[2] == "FormationViolation" for a in answers)


async def test_a_failed_connection_is_closed_before_the_next_one_opens(
    csms: StrictCentralSystem, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever ends a connection, the socket goes with it: never two links to the central system."""
    failures = 0
    real_receive = Endpoint.receive

    async def failing_receive(self: Endpoint, text: str) -> None:
        nonlocal failures
        if '"boom"' in text and failures == 0:
            failures += 1
            raise OSError("injected: the socket broke while a frame was handled")
        await real_receive(self, text)

    monkeypatch.setattr(Endpoint, "receive", failing_receive)
    async with running(make_config(csms.url, tmp_path)):
        await settled(csms)
        first = csms.links[0]
        await csms.send_raw("CP-1", '[2,"boom","Heartbeat",{}]')
        await csms.wait_until(lambda: len(csms.links) == 2, 10, "a new connection")
        assert first.closed  # closed by the charge point before it connected again, not left open
        result = await csms.call("CP-1", call.GetConfiguration(key=["HeartbeatInterval"]))
        assert result.configuration_key[0]["key"] == "HeartbeatInterval"


# -- encoding --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("unique_id", "frame"),
    [
        ("s1", '[2,"s1","GetConfiguration",{"key":["\\ud800"]}]'),
        ("s2", '[2,"s2","ChangeConfiguration",{"key":"HeartbeatInterval","value":"\\udfff"}]'),
        ("s3", '[2,"s3","DataTransfer",{"vendorId":"x","\\ud83d":"y"}]'),  # in a key
    ],
)
async def test_a_lone_surrogate_is_refused_with_a_callerror_and_the_link_lives_on(
    csms: StrictCentralSystem, tmp_path: Any, unique_id: str, frame: str
) -> None:
    async with running(make_config(csms.url, tmp_path)):
        await settled(csms)
        reply = await answer(csms, unique_id, frame)
        assert reply[:3] == [4, unique_id, "FormationViolation"]
        await still_alive(csms)


async def test_a_proper_surrogate_pair_is_text_and_is_echoed(
    csms: StrictCentralSystem, tmp_path: Any
) -> None:
    async with running(make_config(csms.url, tmp_path)):
        await settled(csms)
        reply = await answer(csms, "p1", '[2,"p1","GetConfiguration",{"key":["\\ud83d\\udd0c"]}]')
        assert reply == [3, "p1", {"configurationKey": [], "unknownKey": ["\U0001f50c"]}]


# -- numbers ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("limit", ["1e999", "-1e999", "1e400", "1e300", "123456789012345678901234567890.5"])
async def test_limits_out_of_range_are_a_property_constraint_violation(
    csms: StrictCentralSystem, tmp_path: Any, limit: str
) -> None:
    body = json.dumps({"connectorId": 1, "csChargingProfiles": profile()}).replace(
        '"limit": 16', f'"limit": {limit}'
    )
    async with running(make_config(csms.url, tmp_path)):
        await settled(csms)
        reply = await answer(csms, "n1", f'[2,"n1","SetChargingProfile",{body}]')
        assert reply[:3] == [4, "n1", "PropertyConstraintViolation"]
        await still_alive(csms)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("chargingProfileId", 10**400),
        ("chargingProfileId", 2**63),
        ("stackLevel", 2**64),
        ("duration", -(2**63) - 1),
    ],
)
async def test_integers_beyond_64_bits_are_refused_and_later_profiles_still_persist(
    csms: StrictCentralSystem, tmp_path: Any, field: str, value: int
) -> None:
    bad = profile()
    if field == "duration":
        bad["chargingSchedule"]["duration"] = value
    else:
        bad[field] = value
    body = json.dumps({"connectorId": 1, "csChargingProfiles": bad})
    async with running(make_config(csms.url, tmp_path)) as daemon:
        await settled(csms)
        reply = await answer(csms, "big", f'[2,"big","SetChargingProfile",{body}]')
        assert reply[:3] == [4, "big", "PropertyConstraintViolation"]
        # The largest id SQLite can hold is taken, and saved.
        good = {**profile(), "chargingProfileId": 2**63 - 1}
        reply = await answer(
            csms,
            "ok",
            json.dumps([2, "ok", "SetChargingProfile", {"connectorId": 1, "csChargingProfiles": good}]),
        )
        assert reply == [3, "ok", {"status": "Accepted"}]
        rows = daemon.store.charging_profiles("CP-1")
        assert [json.loads(body)["chargingProfileId"] for _, body, _ in rows] == [2**63 - 1]
        await still_alive(csms)


def test_an_answer_with_an_integer_beyond_64_bits_is_an_invalid_answer() -> None:
    """StartTransaction.conf with transactionId 2^64 is never taken (nor stored): invalid, as D1 counts it."""
    answer = json.dumps([3, "x", {"idTagInfo": {"status": "Accepted"}, "transactionId": 2**64}])
    decoded = decode(answer)
    assert decoded.beyond_range == "an integer outside the signed 64-bit range"
    with pytest.raises(InvalidResponse, match="64-bit"):
        parse_answer("StartTransaction", decoded.frame, decoded.beyond_range)


# -- dates -----------------------------------------------------------------------------------------
async def test_an_invalid_start_schedule_gets_one_answer_whichever_message_carries_it(
    csms: StrictCentralSystem, tmp_path: Any
) -> None:
    bad = profile(startSchedule="2024-13-45T25:61:61Z")
    tx_bad = {**bad, "chargingProfilePurpose": "TxProfile"}
    async with running(make_config(csms.url, tmp_path)):
        await settled(csms)
        set_reply = await answer(
            csms,
            "d1",
            json.dumps([2, "d1", "SetChargingProfile", {"connectorId": 1, "csChargingProfiles": bad}]),
        )
        start_reply = await answer(
            csms,
            "d2",
            json.dumps(
                [
                    2,
                    "d2",
                    "RemoteStartTransaction",
                    {"idTag": "A", "connectorId": 1, "chargingProfile": tx_bad},
                ]
            ),
        )
        assert set_reply[2] == start_reply[2] == "PropertyConstraintViolation"
        assert "startSchedule" in set_reply[3] and "startSchedule" in start_reply[3]
        await asyncio.sleep(0.3)
        assert csms.calls("CP-1", "StartTransaction") == []  # nothing was started
        await still_alive(csms)


# -- size ------------------------------------------------------------------------------------------
def local_list(entries: int) -> str:
    items = [
        {
            "idTag": f"TAG{n:017d}",
            "idTagInfo": {
                "status": "Accepted",
                "expiryDate": "2030-12-31T23:59:59.000Z",
                "parentIdTag": f"GROUP{n % 97:015d}",
            },
        }
        for n in range(entries)
    ]
    return json.dumps(
        [2, "big", "SendLocalList", {"listVersion": 1, "updateType": "Full", "localAuthorizationList": items}]
    )


async def test_a_local_list_of_10000_entries_fits_in_a_frame(
    csms: StrictCentralSystem, tmp_path: Any
) -> None:
    frame = local_list(10_000)
    assert len(frame.encode()) > 1024 * 1024  # beyond the websockets library's default limit
    async with running(make_config(csms.url, tmp_path)):
        await settled(csms)
        reply = await answer(csms, "big", frame)
        assert reply == [3, "big", {"status": "Accepted"}]  # read, taken and answered
        await still_alive(csms)


async def test_a_frame_over_max_frame_bytes_closes_the_link_with_1009_and_it_comes_back(
    csms: StrictCentralSystem, tmp_path: Any
) -> None:
    async with running(make_config(csms.url, tmp_path, max_frame_bytes=65536)):
        await settled(csms)
        first = csms.links[0]
        data = "x" * 70_000
        try:
            await csms.send_raw(
                "CP-1", json.dumps([2, "huge", "DataTransfer", {"vendorId": "x", "data": data}])
            )
        except ConnectionClosed:
            pass
        await csms.wait_until(lambda: first.closed and len(csms.links) == 2, 10, "a new connection")
        assert [
            f.message for f in first.frames if f.direction == "in" and f.message and f.message[1] == "huge"
        ] == []
        result = await csms.call("CP-1", call.GetConfiguration(key=["HeartbeatInterval"]))
        assert result.configuration_key[0]["key"] == "HeartbeatInterval"


@pytest.mark.parametrize(
    ("value", "message"), [(1000, "at least 65536"), (2**40, "at most 67108864"), ("4M", "whole number")]
)
def test_max_frame_bytes_out_of_bounds_is_a_configuration_error(
    tmp_path: Any, value: Any, message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        make_config("ws://127.0.0.1:9/ocpp", tmp_path, max_frame_bytes=value)
    assert "charge_points[0].max_frame_bytes" in str(error.value) and message in str(error.value)


@pytest.mark.parametrize("first", [float, decimal.Decimal])
def test_our_schema_check_does_not_depend_on_which_validator_the_library_cached_first(first: Any) -> None:
    """The `ocpp` library caches one validator per action whatever parse_float asked for; another
    user of the library in the process (a central system in a test, a tool) may have cached either."""
    from ocpp import messages

    from bridge.ocpp import schema

    messages._validators.pop("SetChargingProfile_1.6", None)
    schema.forget_validators()
    messages.get_validator(2, "SetChargingProfile", "1.6", parse_float=first)
    payload = {"connectorId": 1, "csChargingProfiles": profile()}
    payload["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] = 6.1
    assert schema.violation(2, "SetChargingProfile", payload) is None
    payload["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] = 6.05
    error = schema.violation(2, "SetChargingProfile", payload)
    assert error is not None and str(error.code) == "PropertyConstraintViolation"
