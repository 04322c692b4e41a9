"""Secrets never reach a log line, whatever path a frame takes through the RPC layer."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from bridge.log import apply_levels
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem

KEY = "0123456789abcdef0123456789abcdef01234567"
NUMERIC_KEY = "98765432109876543210"


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    apply_levels("DEBUG", frames=True)  # the most talkative setting a user can choose
    yield caplog
    for name in ("websockets", "ocpp", "ocpp.frames"):  # back to how the other tests found them
        logging.getLogger(name).setLevel(logging.NOTSET)


def logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() for r in caplog.records)


async def test_a_key_sent_while_boot_is_rejected_is_not_logged(tmp_path: Any, all_logs: Any) -> None:
    async with StrictCentralSystem(boot=[("Rejected", 60)]) as cs:
        async with running(make_config(cs.url, tmp_path)):
            await cs.wait_for_call("CP-1", "BootNotification")
            link = cs.link("CP-1")
            await cs.wait_until(lambda: any(f.direction == "out" for f in link.frames), what="the answer")
            await cs.send_raw(
                "CP-1", f'[2,"k1","ChangeConfiguration",{{"key":"AuthorizationKey","value":"{KEY}"}}]'
            )
            await cs.wait_until(
                lambda: "not answering ChangeConfiguration" in logged(all_logs), what="the log"
            )
    assert KEY not in logged(all_logs)
    assert "***" in logged(all_logs)  # the frame log shows the frame, masked


async def test_a_key_of_the_wrong_type_is_not_echoed_in_logs_or_the_callerror(
    csms: StrictCentralSystem, tmp_path: Any, all_logs: Any
) -> None:
    async with running(make_config(csms.url, tmp_path)):
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)
        await csms.send_raw(
            "CP-1", f'[2,"k2","ChangeConfiguration",{{"key":"AuthorizationKey","value":{NUMERIC_KEY}}}]'
        )
        answer = await csms.answer_of("CP-1", "k2")
    assert answer[2] == "TypeConstraintViolation"
    assert answer[3] == "value: must be of type string"
    assert NUMERIC_KEY not in logged(all_logs)
