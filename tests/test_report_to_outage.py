"""A reporting target that is down, or silent after its boot: the primary is not delayed (compared
with a run without a target), and the target's backlog arrives in order
when it returns, in the same run (a target that swallows connections and never answers) and after a
kill -9 of the daemon (a real `bridge.cli run` process). docs/reporting.md, "Outages"."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.helpers.flow import ready, sim_of
from tests.processes import free_port, start_daemon, stop_process

BROKER_ID = "NL-ABC-123"
BROKER_FIRST_ID = 7000


class BlackHole:
    """A port that takes connections and never answers (a target whose server hangs)."""

    def __init__(self) -> None:
        self.port = 0
        self._server: asyncio.Server | None = None
        self._held: list[asyncio.StreamWriter] = []

    async def open(self) -> BlackHole:
        self._server = await asyncio.start_server(self._swallow, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _swallow(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._held.append(writer)
        with contextlib.suppress(ConnectionError):
            await reader.read()  # until the charge point gives up

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for writer in self._held:
            writer.close()
        await self._server.wait_closed()
        self._server = None


def transaction_messages(cs: StrictCentralSystem, cp: str) -> list[dict[str, Any]]:
    return [
        c for c in cs.delivered(cp) if c["action"] in ("StartTransaction", "MeterValues", "StopTransaction")
    ]


def arrivals(cs: StrictCentralSystem, cp: str, action: str) -> list[float]:
    """When each `action` from `cp` reached the central system (monotonic seconds)."""
    frames = [f for link in cs.links if link.cp_id == cp for f in link.frames if f.direction == "in"]
    return [f.at for f in frames if f.message and f.message[0] == 2 and f.message[2] == action]


def assert_backlog(primary: list[dict[str, Any]], reported: list[dict[str, Any]], cs_id: int) -> None:
    """The target got the primary's transaction messages, in their order, each with its own id."""
    assert [m["action"] for m in reported] == [m["action"] for m in primary]
    assert reported[0]["action"] == "StartTransaction" and reported[-1]["action"] == "StopTransaction"
    assert {m["transactionId"] for m in reported[1:]} == {cs_id}
    strip = [{k: v for k, v in m.items() if k != "transactionId"} for m in primary]
    assert [{k: v for k, v in m.items() if k != "transactionId"} for m in reported] == strip


async def test_a_hanging_target_delays_nothing_and_gets_its_backlog_in_order(
    csms: StrictCentralSystem, tmp_path: Path
) -> None:
    hole = await BlackHole().open()
    try:
        target = {"csms_url": f"ws://127.0.0.1:{hole.port}/ocpp", "id": BROKER_ID}
        # MessageTimeout 5 s: a link that waited for the target would wait that long per attempt.
        config = make_config(csms.url, tmp_path, ocpp={"MeterValueSampleInterval": 1}, report_to=[target])
        async with running(config) as daemon:
            await ready(csms)
            sim = sim_of(daemon)
            sim.plug()
            tapped = time.monotonic()
            sim.tap("TAG-1")
            await csms.wait_for_call("CP-1", "StartTransaction")
            started = arrivals(csms, "CP-1", "StartTransaction")[0] - tapped
            await csms.wait_for_call("CP-1", "MeterValues", count=3)
            sim.unplug()
            await csms.wait_for_call("CP-1", "StopTransaction")
            cp = daemon.charge_points["CP-1"]
            await csms.wait_until(
                lambda: cp.snapshot().queued_messages == 0, what="the primary's queue to empty"
            )
            waiting = cp.snapshot().report_to[0]
            assert waiting["connected"] is False and waiting["queued"] == len(
                transaction_messages(csms, "CP-1")
            )
            # The target comes back on its port.
            await hole.close()
            async with on_port(hole.port) as broker:
                await broker.wait_for_call(BROKER_ID, "StopTransaction", timeout=10)
                await broker.wait_until(lambda: cp.snapshot().report_to[0]["queued"] == 0, what="the backlog")
                reported = transaction_messages(broker, BROKER_ID)
                broker.assert_clean()
    finally:
        await hole.close()
    # The primary was not held up: its start went out at once, its samples every second.
    assert started < 1.0, f"the primary's StartTransaction took {started:.2f} s after the tap"
    samples = arrivals(csms, "CP-1", "MeterValues")
    assert max(b - a for a, b in itertools.pairwise(samples)) < 2.0
    assert_backlog(transaction_messages(csms, "CP-1"), reported, BROKER_FIRST_ID + 1)


async def primary_timings(csms: StrictCentralSystem, daemon: Any, since: float) -> tuple[float, float]:
    """One transaction of three samples: how long the primary's StartTransaction took after the tap,
    and the longest gap between its samples (the arrivals after `since`, monotonic seconds)."""
    sim = sim_of(daemon)
    sim.plug()
    tapped = time.monotonic()
    sim.tap("TAG-1")
    before = len(arrivals(csms, "CP-1", "MeterValues"))
    await csms.wait_until(lambda: [a for a in arrivals(csms, "CP-1", "StartTransaction") if a > since],
                          what="the StartTransaction")  # fmt: skip
    await csms.wait_until(lambda: len(arrivals(csms, "CP-1", "MeterValues")) >= before + 3, what="samples")
    started = next(a for a in arrivals(csms, "CP-1", "StartTransaction") if a > since) - tapped
    samples = [a for a in arrivals(csms, "CP-1", "MeterValues") if a > since]
    sim.unplug()
    return started, max(b - a for a, b in itertools.pairwise(samples))


async def test_a_target_silent_after_its_boot_costs_the_primary_nothing(
    csms: StrictCentralSystem, tmp_path: Path
) -> None:
    ocpp = {"MeterValueSampleInterval": 1}
    since = time.monotonic()
    async with running(make_config(csms.url, tmp_path / "alone", ocpp=ocpp)) as daemon:
        await ready(csms)
        alone = await primary_timings(csms, daemon, since)
    async with StrictCentralSystem() as broker:
        # It accepts the boot, then answers no CALL while the test lasts (each answer would come
        # after 6 s, past the MessageTimeout of 5 s; longer would hold the broker's stop).
        broker.answer_delay.update(StatusNotification=6.0, StartTransaction=6.0)
        told = len(csms.calls("CP-1", "StatusNotification"))
        config = make_config(csms.url, tmp_path / "reported", ocpp=ocpp,
                             report_to=[{"csms_url": broker.url, "id": BROKER_ID}])  # fmt: skip
        since = time.monotonic()
        async with running(config) as daemon:
            await csms.wait_for_call("CP-1", "StatusNotification", count=told + 2)  # connectors 0 and 1
            await broker.wait_for_call(BROKER_ID, "StatusNotification")  # booted: now silent
            reported = await primary_timings(csms, daemon, since)
            assert daemon.charge_points["CP-1"].snapshot().report_to[0]["accepted"] is True
    # The primary's start and samples leave as they do without a target (timer slack allowed).
    assert reported[0] < alone[0] + 0.5, (alone, reported)
    assert reported[1] < alone[1] + 0.5, (alone, reported)
    assert reported[1] < 2.0


@contextlib.asynccontextmanager
async def on_port(port: int) -> AsyncIterator[StrictCentralSystem]:
    """A strict central system (the reporting target) on `port`."""
    broker = StrictCentralSystem()
    broker.last_transaction_id = BROKER_FIRST_ID
    broker.port = port
    yield await broker.start()
    await broker.stop()


def write_config(directory: Path, csms_url: str, broker_url: str, api_port: int) -> Path:
    text = (
        f"state_dir: {directory / 'state'}\n"
        f"api: {{listen: '127.0.0.1:{api_port}'}}\n"
        "charge_points:\n"
        "  - id: CP-1\n"
        f"    csms_url: {csms_url}\n"
        "    reconnect: {initial_s: 0.1, max_s: 0.5}\n"
        "    ocpp: {MeterValueSampleInterval: 1, MessageTimeout: 5, WebSocketPingInterval: 0}\n"
        "    report_to:\n"
        f"      - csms_url: {broker_url}\n"
        f"        id: {BROKER_ID}\n"
        "    connectors:\n"
        "      - id: 1\n"
        "        charger: {type: simulated, initial_energy_wh: 1000, time_scale: 100}\n"
    )
    path = directory / "bridge.yaml"
    path.write_text(text, encoding="utf-8")
    return path


async def status(http: aiohttp.ClientSession, base: str) -> dict[str, Any] | None:
    with contextlib.suppress(aiohttp.ClientConnectionError):
        async with http.get(f"{base}/api/v1/status") as response:
            if response.status == 200:
                found: dict[str, Any] = (await response.json())["charge_points"][0]
                return found
    return None


async def sim(http: aiohttp.ClientSession, base: str, action: str, id_tag: str | None = None) -> None:
    body = {"action": action, **({"id_tag": id_tag} if id_tag else {})}
    async with http.post(f"{base}/api/v1/charge_points/CP-1/connectors/1/sim", json=body) as response:
        assert response.status == 200, await response.text()


async def test_the_backlog_survives_a_kill_9(csms: StrictCentralSystem, tmp_path: Path) -> None:
    broker_port, api_port = free_port(), free_port()
    config = write_config(tmp_path, csms.url, f"ws://127.0.0.1:{broker_port}/ocpp", api_port)
    base = f"http://127.0.0.1:{api_port}"
    async with aiohttp.ClientSession() as http:
        first = await start_daemon(config, tmp_path / "first.log")
        try:
            await csms.wait_for_call(
                "CP-1", "StatusNotification", lambda p: p["connectorId"] == 1, timeout=15
            )
            deadline = time.monotonic() + 15
            while await status(http, base) is None:  # the API listens once the charge points are built
                assert first.returncode is None and time.monotonic() < deadline, "the API did not answer"
                await asyncio.sleep(0.05)
            await sim(http, base, "plug")
            await sim(http, base, "tap", "TAG-1")
            await csms.wait_for_call("CP-1", "MeterValues", count=2)
            await sim(http, base, "unplug")
            await csms.wait_for_call("CP-1", "StopTransaction")
            seen = await status(http, base)
            assert seen is not None and seen["report_to"][0]["connected"] is False
            assert seen["report_to"][0]["queued"] >= 4  # start, two samples, stop at least
        finally:
            os.kill(first.pid, signal.SIGKILL)
            await first.wait()
        async with on_port(broker_port) as broker:
            second = await start_daemon(config, tmp_path / "second.log")
            try:
                await broker.wait_for_call(BROKER_ID, "StopTransaction", timeout=15)
                deadline = time.monotonic() + 10
                while (seen := await status(http, base)) is None or seen["report_to"][0]["queued"] != 0:
                    assert time.monotonic() < deadline, f"the backlog stays queued: {seen}"
                    await asyncio.sleep(0.05)
            finally:
                assert await stop_process(second) == 0
            broker.assert_clean()
            reported = transaction_messages(broker, BROKER_ID)
    assert_backlog(transaction_messages(csms, "CP-1"), reported, BROKER_FIRST_ID + 1)
    assert "Traceback" not in (tmp_path / "second.log").read_text()
