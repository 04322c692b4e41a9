"""Property: whatever the central system sends, the answer is right and the link survives.

Payloads are generated from the OCPP 1.6 JSON schemas (hypothesis-jsonschema) for every action a
central system can send, plus the two most common wrong-direction ones; some are then broken on
purpose: one value replaced by something absurd (nested 40 or 1,000 deep, a lone surrogate, a number
beyond 64 bits or beyond a float, the wrong type). Each frame goes over a real websocket to a running
daemon, through the strict central system of tests/csms.py. Every answer must be a CALLRESULT that
validates against the action's `.conf` schema (checked with the `ocpp` library's own validators, not
ours) or a CALLERROR with an OCPP 1.6 error code other than InternalError (which would mean a handler
failed on its input); no answer may be missing; the daemon keeps the one websocket it opened.

Reset is left out: it closes the link by design (1012, then a new boot). The examples are
derandomized, so CI runs the same frames every time; FUZZ_EXAMPLES=5000 runs more locally.
"""

from __future__ import annotations

import asyncio
import contextlib
import decimal
import json
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem, validator_1_6

CENTRAL_SYSTEM_ACTIONS = [
    "CancelReservation", "ChangeAvailability", "ChangeConfiguration", "ClearCache", "ClearChargingProfile",
    "DataTransfer", "GetCompositeSchedule", "GetConfiguration", "GetDiagnostics", "GetLocalListVersion",
    "RemoteStartTransaction", "RemoteStopTransaction", "ReserveNow", "SendLocalList", "SetChargingProfile",
    "TriggerMessage", "UnlockConnector", "UpdateFirmware",
    "Heartbeat", "BootNotification",  # the wrong direction: a charge point does not take these
]  # fmt: skip
ERROR_CODES_1_6 = {
    "NotImplemented", "NotSupported", "InternalError", "ProtocolError", "SecurityError",
    "FormationViolation", "PropertyConstraintViolation", "OccurenceConstraintViolation",
    "TypeConstraintViolation", "GenericError",
}  # fmt: skip
DECIMAL_ANSWERS = {"GetCompositeSchedule"}
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "250"))

# Values JSON can carry and Python parses, that no OCPP field can hold, spliced into the text: numbers
# beyond a float or 64 bits, and nesting past the parser's recursion limit (not buildable as a value).
_RAW = [
    "1e999", "-1e999", "1e400", "1e300", str(10**400), str(2**63), str(-(2**63) - 1),
    '{"a":' * 1000 + "1" + "}" * 1000, "[" * 1000 + "]" * 1000,
]  # fmt: skip
_MARK = "\u0001raw:"


def _schema(action: str) -> dict[str, Any]:
    # Floats for the generator (hypothesis-jsonschema cannot take Decimals).
    schema: dict[str, Any] = json.loads(json.dumps(validator_1_6(2, action).schema, default=float))
    schema.pop("$schema", None)
    schema.pop("id", None)
    return schema


def _absurd() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.just(json.loads('{"a":' * 40 + "1" + "}" * 40)),  # parses, but deeper than any 1.6 message
        st.sampled_from(["\ud800", "key \udfff", "\ud83d"]),
        st.integers(0, len(_RAW) - 1).map(lambda n: f"{_MARK}{n}"),
        st.none(),
        st.booleans(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.text(max_size=600),
        st.lists(st.integers(), max_size=3),
    )


def _paths(value: Any, here: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield here
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*here, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*here, index))


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    return [_replace(item, rest, new) if i == head else item for i, item in enumerate(value)]


@st.composite
def frames(draw: Callable[..., Any]) -> tuple[str, str]:
    """(action, the payload's JSON text): valid per the schema, or with one value made absurd."""
    action = draw(st.sampled_from(CENTRAL_SYSTEM_ACTIONS))
    payload = draw(from_schema(_schema(action)))
    if draw(st.booleans()):
        paths = list(_paths(payload))
        path = paths[draw(st.integers(0, len(paths) - 1))]
        payload = _replace(payload, path, draw(_absurd()))
    text = json.dumps(payload, ensure_ascii=True)  # a lone surrogate goes as a \ud800 escape
    for n, raw in enumerate(_RAW):
        text = text.replace(json.dumps(f"{_MARK}{n}"), raw)
    return action, text


class Harness:
    """A daemon and the strict central system, on an event loop of their own in a thread, so that
    hypothesis (synchronous) can drive them."""

    def __init__(self, tmp_path: Any) -> None:
        self._tmp_path = tmp_path
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fuzz harness", daemon=True)
        self._stop: asyncio.Event | None = None
        self._main: Future[None] | None = None
        self.cs: StrictCentralSystem | None = None
        self._ready = threading.Event()
        self._count = 0

    def __enter__(self) -> Harness:
        self._thread.start()
        self._main = asyncio.run_coroutine_threadsafe(self._serve(), self._loop)
        if not self._ready.wait(20):
            self._main.result(timeout=1)
            raise TimeoutError("the daemon did not come up")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None and self._main is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        with contextlib.suppress(Exception):
            self._main.result(timeout=20)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with StrictCentralSystem() as cs:
            self.cs = cs
            async with running(make_config(cs.url, self._tmp_path, connectors=2)):
                await cs.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 2)
                self._ready.set()
                await self._stop.wait()

    def exchange(self, action: str, payload_text: str) -> list[Any]:
        """Send one CALL and return the charge point's answer."""
        assert self.cs is not None
        self._count += 1
        unique_id = f"fz{self._count}"
        frame = f'[2,"{unique_id}","{action}",{payload_text}]'

        async def go() -> list[Any]:
            assert self.cs is not None
            await self.cs.send_raw("CP-1", frame)
            return await self.cs.answer_of("CP-1", unique_id, timeout=10)

        return asyncio.run_coroutine_threadsafe(go(), self._loop).result(timeout=15)

    def links(self) -> list[Any]:
        assert self.cs is not None
        return list(self.cs.links)

    def violations(self) -> list[str]:
        assert self.cs is not None
        return list(self.cs.violations)


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    with Harness(tmp_path_factory.mktemp("fuzz")) as h:
        yield h


def _valid_answer(action: str, payload: Any) -> bool:
    validator = validator_1_6(3, action)
    if action in DECIMAL_ANSWERS:
        payload = json.loads(json.dumps(payload), parse_float=decimal.Decimal)
    return bool(validator.is_valid(payload))


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
@given(frame=frames())
def test_every_frame_gets_a_valid_answer_or_a_1_6_callerror_and_the_link_survives(
    harness: Harness, frame: tuple[str, str]
) -> None:
    action, payload_text = frame
    answer = harness.exchange(action, payload_text)
    if answer[0] == 3:
        assert _valid_answer(action, answer[2]), f"{action} answered with an invalid payload: {answer}"
    else:
        assert answer[0] == 4, answer
        assert answer[2] in ERROR_CODES_1_6, answer
        # InternalError means a handler failed on what it was given: no frame may cause that.
        assert answer[2] != "InternalError", answer
        assert isinstance(answer[3], str) and isinstance(answer[4], dict), answer
    links = harness.links()
    assert len(links) == 1 and not links[0].closed, "the link did not survive"
    assert harness.violations() == []
