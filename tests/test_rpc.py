"""The RPC layer against a real central system: 1.6 error codes, malformed frames, liveness."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from ocpp.v16 import call
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from bridge.ocpp.errors import CallErrorReceived, CallTimeout, NotConnected
from bridge.ocpp.rpc import Endpoint
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem


async def booted(csms: StrictCentralSystem, tmp_path: Any) -> Any:
    return running(make_config(csms.url, tmp_path))


async def answer(csms: StrictCentralSystem, frame: str) -> list[Any]:
    unique_id = (
        json.loads(frame)[1] if frame.startswith("[2") and frame.endswith("}]") else frame.split('"')[1]
    )
    await csms.send_raw("CP-1", frame)
    return await csms.answer_of("CP-1", unique_id)


async def still_alive(csms: StrictCentralSystem) -> None:
    """The connection survived: a proper call is still answered."""
    result = await csms.call("CP-1", call.GetConfiguration(key=["HeartbeatInterval"]))
    assert result.configuration_key[0]["key"] == "HeartbeatInterval"


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        # OCPP-J Table 7: an action this side does not know at all
        ('[2,"u1","FooBar",{}]', "NotImplemented"),
        # a 1.6 action known, but not one a charge point takes (the charge point sends it)
        (
            '[2,"u2","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"Available"}]',
            "NotSupported",
        ),
        # additional property
        ('[2,"u3","GetConfiguration",{"key":["A"],"extra":1}]', "FormationViolation"),
        # wrong type
        ('[2,"u4","GetConfiguration",{"key":"HeartbeatInterval"}]', "TypeConstraintViolation"),
        # a CiString20 too long
        ('[2,"u5","RemoteStartTransaction",{"idTag":"ABCDEFGHIJKLMNOPQRSTU"}]', "TypeConstraintViolation"),
        # missing required field
        ('[2,"u6","ChangeConfiguration",{"key":"HeartbeatInterval"}]', "ProtocolError"),
        # invalid enum value (ERRATA 3.38)
        (
            '[2,"u7","RemoteStartTransaction",{"idTag":"A","chargingProfile":{"chargingProfileId":1,'
            '"stackLevel":0,"chargingProfilePurpose":"Sideways","chargingProfileKind":"Absolute",'
            '"chargingSchedule":{"chargingRateUnit":"A","chargingSchedulePeriod":[{"startPeriod":0,"limit":6}]}}}]',
            "PropertyConstraintViolation",
        ),
        # payload that is not an object
        ('[2,"u8","Heartbeat",[]]', "FormationViolation"),
        # not JSON, but the message id can be recovered
        ('[2,"u9","Heartbeat",{', "FormationViolation"),
        # message id longer than 36 characters
        ('[2,"' + "x" * 37 + '","Heartbeat",{}]', "ProtocolError"),
    ],
)
async def test_bad_calls_get_the_1_6_callerror_and_the_connection_lives_on(
    csms: StrictCentralSystem, tmp_path: Any, frame: str, code: str
) -> None:
    async with await booted(csms, tmp_path):
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)
        reply = await answer(csms, frame)
        assert reply[0] == 4, reply
        assert reply[2] == code, reply
        assert isinstance(reply[3], str) and isinstance(reply[4], dict)
        await still_alive(csms)


@pytest.mark.parametrize("frame", ["hello", "[]", '{"a":1}', '[7,"x",{}]', '[3,"nobody",{}]'])
async def test_frames_without_a_usable_call_are_dropped_and_the_connection_lives_on(
    csms: StrictCentralSystem, tmp_path: Any, frame: str
) -> None:
    async with await booted(csms, tmp_path):
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)
        link = csms.link("CP-1")
        frames_before = len([f for f in link.frames if f.direction == "in"])
        await csms.send_raw("CP-1", frame)
        await still_alive(csms)
        answers = [f for f in link.frames if f.direction == "in"][frames_before:]
        assert len(answers) == 1  # only the answer to GetConfiguration
        assert len(csms.links) == 1  # no reconnect happened


async def test_only_one_call_is_outstanding_at_a_time(csms: StrictCentralSystem, tmp_path: Any) -> None:
    """Status changes queue up behind a slow answer instead of being sent alongside it."""
    csms.answer_delay["StatusNotification"] = 0.3
    async with running(make_config(csms.url, tmp_path, connectors=3)):
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 3, timeout=5)
    statuses = csms.calls("CP-1", "StatusNotification")
    assert [s["connectorId"] for s in statuses] == [0, 1, 2, 3]
    # The fixture records a violation for any CALL sent while another is unanswered; none happened.


@contextlib.asynccontextmanager
async def endpoint_against(
    server_side: Callable[[ServerConnection], Awaitable[None]], timeout: float = 5.0
) -> AsyncIterator[tuple[Endpoint, asyncio.Task[None]]]:
    """An Endpoint connected to a bare websockets server that plays `server_side`."""
    async with serve(server_side, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}/x") as ws:
            endpoint = Endpoint(ws, object(), name="t", timeout=lambda: timeout)
            reader = asyncio.create_task(endpoint.run())
            try:
                yield endpoint, reader
            finally:
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)


async def test_an_outstanding_call_fails_at_once_when_the_socket_drops() -> None:
    async def swallow_then_close(ws: ServerConnection) -> None:
        await ws.recv()  # never answer
        await asyncio.sleep(0.2)
        await ws.close()

    async with endpoint_against(swallow_then_close, timeout=30.0) as (endpoint, reader):
        started = time.monotonic()
        with pytest.raises(NotConnected):
            await endpoint.call(call.Heartbeat())
        assert time.monotonic() - started < 2.0  # not the 30 s timeout
        await asyncio.gather(reader, return_exceptions=True)
        with pytest.raises(NotConnected):
            await endpoint.call(call.Heartbeat())


async def test_callerror_answers_are_raised_as_typed_errors() -> None:
    async def refuse(ws: ServerConnection) -> None:
        message = json.loads(await ws.recv())
        await ws.send(json.dumps([4, message[1], "NotSupported", "no heartbeats here", {}]))
        await ws.wait_closed()

    async with endpoint_against(refuse) as (endpoint, _):
        with pytest.raises(CallErrorReceived) as info:
            await endpoint.call(call.Heartbeat())
    assert info.value.code == "NotSupported"


async def test_invalid_outgoing_payloads_never_reach_the_wire() -> None:
    received: list[Any] = []

    async def record(ws: ServerConnection) -> None:
        received.append(await ws.recv())

    async with endpoint_against(record) as (endpoint, _):
        with pytest.raises(ValueError, match="chargePointVendor"):
            await endpoint.call(call.BootNotification(charge_point_vendor="v" * 21, charge_point_model="m"))
    assert received == []


async def test_a_call_without_answer_times_out_after_message_timeout() -> None:
    async def swallow(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.wait_closed()

    async with endpoint_against(swallow, timeout=0.5) as (endpoint, _):
        started = time.monotonic()
        with pytest.raises(CallTimeout):
            await endpoint.call(call.Heartbeat())
        assert 0.45 <= time.monotonic() - started < 1.5


async def test_an_answer_after_the_timeout_is_ignored_and_the_next_call_is_answered() -> None:
    async def late_then_prompt(ws: ServerConnection) -> None:
        first = json.loads(await ws.recv())
        second = json.loads(await ws.recv())  # sent once the first has timed out
        await ws.send(json.dumps([3, first[1], {"currentTime": "2025-01-01T00:00:00Z"}]))
        await ws.send(json.dumps([3, second[1], {"currentTime": "2025-01-01T00:00:01Z"}]))
        await ws.wait_closed()

    async with endpoint_against(late_then_prompt, timeout=0.2) as (endpoint, _):
        with pytest.raises(CallTimeout, match=r"no answer to Heartbeat within 0\.2 s"):
            await endpoint.call(call.Heartbeat())
        answer = await endpoint.call(call.Heartbeat())
        assert answer.current_time == "2025-01-01T00:00:01Z"
