"""What a tag gets when the central system's answer to Authorize is not a usable Authorize.conf.

A CALLERROR or an answer that breaks the schema comes from a central system that was reached: the
tag is refused, whatever AllowOfflineTxForUnknownId says. Only a central system that cannot be
reached (no answer in MessageTimeout, the link gone before the answer) leaves the tag to the offline
rules (OCPP 1.6 §3.5, §4.1).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ocpp.exceptions import InternalError
from ocpp.routing import on
from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action

import tests.csms
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem

UNKNOWN = "NEVER_ACCEPTED"
OFFLINE_UNKNOWN = {"AllowOfflineTxForUnknownId": True}


class _ScriptedAuthorize(tests.csms._LibraryCP):
    """The strict central system's view of a charge point, answering Authorize as the test says."""

    @on(Action.authorize, skip_schema_validation=True)  # so that it may answer what breaks the schema
    async def on_authorize(self, id_tag: str, **payload: Any) -> call_result.Authorize:
        how = getattr(self.cs, "authorize_answer", "valid")
        if how == "invalid":
            return call_result.Authorize(id_tag_info={})  # status is required
        if how == "callerror":
            raise InternalError(description="the tag database is down")
        if how == "late":
            await asyncio.sleep(getattr(self.cs, "late_by_s", 0.0))
        elif how == "drop":
            await self.cs.drop(self.id)
        return call_result.Authorize(id_tag_info=self.cs.id_tag_info(id_tag))


class ScriptedCentralSystem(StrictCentralSystem):
    """The strict central system; its Authorize answers follow `authorize_answer`."""

    def __init__(self, authorize_answer: str, late_by_s: float = 0.0) -> None:
        super().__init__()
        self.authorize_answer = authorize_answer  # valid | invalid | callerror | late | drop
        self.late_by_s = late_by_s


@pytest.fixture
def scripted_authorize(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(tests.csms, "_LibraryCP", _ScriptedAuthorize)
    yield


async def plug_and_tap(cs: StrictCentralSystem, daemon: Any) -> Any:
    """The connector's runtime, after a plug and a tap of the unknown tag and its Authorize."""
    await cs.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)
    rt = daemon.charge_points["CP-1"].connectors[1]
    rt.charger.plug()
    await cs.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Preparing")
    rt.charger.tap(UNKNOWN)
    await cs.wait_for_call("CP-1", "Authorize")
    return rt


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "bridge.chargepoint"]


@pytest.mark.parametrize(
    ("answer", "said"),
    [("invalid", "breaks the schema"), ("callerror", "CALLERROR InternalError")],
)
async def test_invalid_authorize_answer_refuses_unknown_tag_even_with_allow_offline(
    scripted_authorize: None, tmp_path: Path, caplog: pytest.LogCaptureFixture, answer: str, said: str
) -> None:
    caplog.set_level(logging.INFO, logger="bridge.chargepoint")
    async with ScriptedCentralSystem(answer) as cs:
        async with running(make_config(cs.url, tmp_path, ocpp=OFFLINE_UNKNOWN)) as daemon:
            rt = await plug_and_tap(cs, daemon)
            await cs.wait_until(lambda: not rt.core.authorizing, what="the Authorize outcome")
            # Decided: no transaction, and the tag does not wait for anything either.
            assert rt.core.transaction is None and rt.core.waiting_tag is None
        cs.assert_clean()
    assert not cs.calls("CP-1", "StartTransaction")
    statuses = [s["status"] for s in cs.calls("CP-1", "StatusNotification") if s["connectorId"] == 1]
    assert "Charging" not in statuses and "SuspendedEV" not in statuses
    told = [line for line in lines(caplog) if UNKNOWN in line]
    assert any("refused" in line and said in line for line in told), told
    assert not any("offline" in line for line in told), told


async def test_authorize_timeout_leaves_unknown_tag_to_the_offline_rules(
    scripted_authorize: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bridge.chargepoint")
    async with ScriptedCentralSystem("late", late_by_s=1.5) as cs:
        async with running(make_config(cs.url, tmp_path, ocpp=OFFLINE_UNKNOWN)) as daemon:
            await cs.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)
            changed = await cs.call("CP-1", call.ChangeConfiguration(key="MessageTimeout", value="1"))
            assert changed.status == "Accepted"
            await plug_and_tap(cs, daemon)
            start = await cs.wait_for_call("CP-1", "StartTransaction", timeout=5)
        cs.assert_clean()
    assert start["idTag"] == UNKNOWN
    told = [line for line in lines(caplog) if UNKNOWN in line]
    assert any("no answer" in line and "within 1 s" in line for line in told), told
    assert any("accepted (offline rules)" in line for line in told), told


async def test_link_lost_before_the_authorize_answer_leaves_unknown_tag_to_the_offline_rules(
    scripted_authorize: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bridge.chargepoint")
    async with ScriptedCentralSystem("drop") as cs:
        async with running(make_config(cs.url, tmp_path, ocpp=OFFLINE_UNKNOWN)) as daemon:
            await plug_and_tap(cs, daemon)
            # Started offline; its StartTransaction goes out on the next connection.
            start = await cs.wait_for_call("CP-1", "StartTransaction", timeout=5)
        cs.assert_clean()
    assert start["idTag"] == UNKNOWN and len(cs.links) >= 2
    told = [line for line in lines(caplog) if UNKNOWN in line]
    assert any("no answer" in line and "connection" in line for line in told), told
    assert any("accepted (offline rules)" in line for line in told), told
