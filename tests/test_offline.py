"""Transactions that start and stop while the central system is away, per the offline rules."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

from ocpp.v16 import call

from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.helpers.flow import ready, sim_of
from tests.helpers.outage import on_port
from tests.processes import free_port


def core_of(daemon: Any) -> Any:
    return daemon.charge_points["CP-1"].connectors[1].core


async def session_online(cs: StrictCentralSystem, daemon: Any, tag: str) -> None:
    """A whole session online, so the central system's answer for `tag` is in the cache."""
    sim = sim_of(daemon)
    sim.plug()
    sim.tap(tag)

    def started() -> bool:
        tx = core_of(daemon).transaction
        answered = daemon.charge_points["CP-1"].snapshot().connectors[0].transaction_id is not None
        return tx is not None and answered

    await cs.wait_until(started, what="started")
    sim.tap(tag)
    sim.unplug()
    await cs.wait_for_call("CP-1", "StopTransaction", lambda p: p.get("idTag") == tag)


async def test_an_unknown_tag_starts_offline_when_allowed_and_everything_is_delivered_later(
    tmp_path: Path,
) -> None:
    cs = await on_port(free_port())
    config = make_config(
        cs.url, tmp_path, ocpp={"AllowOfflineTxForUnknownId": True, "MeterValueSampleInterval": 1}
    )
    async with running(config) as daemon:
        await ready(cs)
        await cs.stop()
        await cs.wait_until(lambda: not daemon.charge_points["CP-1"].session.online, what="offline")
        sim = sim_of(daemon)
        sim.plug()
        sim.tap("STRANGER")
        await cs.wait_until(lambda: core_of(daemon).transaction is not None, what="an offline start")
        offline_start = datetime.now().astimezone()
        await asyncio.sleep(2.2)
        sim.tap("STRANGER")  # stopped offline too
        await asyncio.sleep(0.2)
        assert core_of(daemon).transaction is None
        await cs.start()
        stop = await cs.wait_for_call("CP-1", "StopTransaction", timeout=5)
    await cs.stop()
    cs.assert_clean()
    assert not cs.calls("CP-1", "Authorize")  # offline: no Authorize was possible, none is sent later
    start = cs.calls("CP-1", "StartTransaction")[0]
    started_at = datetime.fromisoformat(start["timestamp"].replace("Z", "+00:00"))
    assert abs((started_at - offline_start).total_seconds()) < 1.0  # when it happened, not when delivered
    actions = [a for a in cs.actions("CP-1") if a in ("StartTransaction", "MeterValues", "StopTransaction")]
    assert actions[0] == "StartTransaction" and actions[-1] == "StopTransaction" and "MeterValues" in actions
    assert stop["transactionId"] == cs.last_transaction_id and stop["reason"] == "Local"


async def test_an_unknown_tag_is_refused_offline_by_default(tmp_path: Path) -> None:
    cs = await on_port(free_port())
    async with running(make_config(cs.url, tmp_path)) as daemon:
        await ready(cs)
        await cs.stop()
        await cs.wait_until(lambda: not daemon.charge_points["CP-1"].session.online, what="offline")
        sim_of(daemon).plug()
        sim_of(daemon).tap("STRANGER")
        await asyncio.sleep(1.2)
        assert core_of(daemon).transaction is None
        assert daemon.charge_points["CP-1"].session.pending_transactional() == 0
    await cs.stop()


async def test_a_cached_tag_starts_offline_also_after_a_restart(tmp_path: Path) -> None:
    cs = await on_port(free_port())
    config = make_config(cs.url, tmp_path)
    async with running(config) as daemon:
        await ready(cs)
        await session_online(cs, daemon, "REGULAR")
    await cs.stop()
    async with running(config) as daemon:  # the cache comes back from the store
        sim = sim_of(daemon)
        sim.plug()
        sim.tap("regular")  # tags are case-insensitive
        await cs.wait_until(lambda: core_of(daemon).transaction is not None, what="an offline start")
        await cs.start()
        start = await cs.wait_for_call(
            "CP-1", "StartTransaction", lambda p: p["idTag"] == "regular", timeout=5
        )
    await cs.stop()
    cs.assert_clean()
    assert start["connectorId"] == 1


async def test_a_tag_known_as_invalid_is_refused_offline_even_when_unknown_ones_are_allowed(
    tmp_path: Path,
) -> None:
    cs = StrictCentralSystem(invalid_tags=["BANNED"])
    cs.port = free_port()
    await cs.start()
    config = make_config(cs.url, tmp_path, ocpp={"AllowOfflineTxForUnknownId": True})
    async with running(config) as daemon:
        await ready(cs)
        sim = sim_of(daemon)
        sim.plug()
        sim.tap("BANNED")  # refused online: the answer is cached
        await cs.wait_for_call("CP-1", "Authorize")
        await asyncio.sleep(0.3)
        await cs.stop()
        await cs.wait_until(lambda: not daemon.charge_points["CP-1"].session.online, what="offline")
        sim.tap("BANNED")
        await asyncio.sleep(1.2)
        assert core_of(daemon).transaction is None
    await cs.stop()


async def test_local_pre_authorize_starts_a_cached_tag_without_authorize(
    csms: StrictCentralSystem, tmp_path: Path
) -> None:
    async with running(make_config(csms.url, tmp_path, ocpp={"LocalPreAuthorize": True})) as daemon:
        await ready(csms)
        await session_online(csms, daemon, "FAST")
        sim = sim_of(daemon)
        sim.plug()
        sim.tap("FAST")
        await csms.wait_for_call("CP-1", "StartTransaction", count=2)
    assert len(csms.calls("CP-1", "Authorize")) == 1  # only the first time


async def test_clear_cache_forces_authorize_again(csms: StrictCentralSystem, tmp_path: Path) -> None:
    """OCTT TC_061: after ClearCache a tag is authorized again with the central system."""
    async with running(make_config(csms.url, tmp_path, ocpp={"LocalPreAuthorize": True})) as daemon:
        await ready(csms)
        await session_online(csms, daemon, "CACHED")
        assert (await csms.call("CP-1", call.ClearCache())).status == "Accepted"
        sim = sim_of(daemon)
        sim.plug()
        sim.tap("CACHED")
        await csms.wait_for_call("CP-1", "StartTransaction", count=2)
    assert len(csms.calls("CP-1", "Authorize")) == 2
