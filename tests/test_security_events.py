"""Security events (white paper A04): critical ones delivered whatever happens (an outage, a kill -9),
the others once the link is up and one per type; every one in the security log; and whether they
are sent at all (`security_events`).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml

from bridge.clock import Clock
from bridge.core import security_events
from bridge.runtime.security_events import SecurityEvents
from bridge.store import FILENAME
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.helpers.outage import on_port
from tests.helpers.pki import make_test_pki
from tests.processes import free_port, start_daemon, stop_process


def sent(cs: StrictCentralSystem, kind: str | None = None) -> list[dict[str, str]]:
    return [c for c in cs.calls("CP-1", "SecurityEventNotification") if kind is None or c["type"] == kind]


def test_the_catalogue_is_the_white_papers_and_fits_the_schema() -> None:
    assert len(security_events.EVENTS) == 18
    assert all(len(kind) <= security_events.TYPE_MAX for kind in security_events.EVENTS)
    critical = {k for k, v in security_events.EVENTS.items() if v}
    assert critical == {
        "FirmwareUpdated", "SettingSystemTime", "StartupOfTheDevice", "ResetOrReboot",
        "SecurityLogWasCleared", "MemoryExhaustion", "TamperDetectionActivated",
    }  # fmt: skip
    with pytest.raises(ValueError, match="unknown security event type 'Nonsense'"):
        security_events.is_critical("Nonsense")
    assert security_events.tech_info("x" * 300) == "x" * 252 + "..."


async def test_events_raised_during_an_outage_arrive_after_it(tmp_path: Path) -> None:
    """A critical event is delivered from the outbox; three of one non-critical type wait as one,
    with the newest details. Every event is in the security log."""
    port = free_port()
    cs = await on_port(port)
    config = make_config(cs.url, tmp_path, security_events="on")
    try:
        async with running(config) as daemon:
            await cs.wait_until(lambda: sent(cs, "StartupOfTheDevice"), what="StartupOfTheDevice")
            await cs.stop()
            events = daemon.charge_points["CP-1"].security.events
            await asyncio.sleep(0.3)
            events.emit("TamperDetectionActivated", "the enclosure was opened")
            for n in (1, 2, 3):
                events.emit("InvalidMessages", f"bad frame {n}")
            await asyncio.sleep(0.5)
            cs = await on_port(port)
            await cs.wait_until(lambda: sent(cs, "TamperDetectionActivated") and sent(cs, "InvalidMessages"))
            await asyncio.sleep(0.5)  # nothing more comes
    finally:
        await cs.stop()
    assert [e["techInfo"] for e in sent(cs, "TamperDetectionActivated")] == ["the enclosure was opened"]
    assert [e["techInfo"] for e in sent(cs, "InvalidMessages")] == ["bad frame 3"]
    log = (tmp_path / "state" / "security" / "security.log").read_text()
    assert "TamperDetectionActivated (critical): the enclosure was opened" in log
    assert all(f"InvalidMessages: bad frame {n}" in log for n in (1, 2, 3))


async def test_security_events_off_keeps_them_in_the_log_only(tmp_path: Path) -> None:
    async with StrictCentralSystem() as cs:
        async with running(make_config(cs.url, tmp_path)) as daemon:  # auto, with profile 0: not sent
            await cs.wait_for_call("CP-1", "StatusNotification")
            daemon.charge_points["CP-1"].security.events.emit("TamperDetectionActivated", "opened")
            await asyncio.sleep(0.5)
    assert sent(cs) == []
    log = (tmp_path / "state" / "security" / "security.log").read_text()
    assert "StartupOfTheDevice (critical)" in log and "TamperDetectionActivated (critical): opened" in log


def queued_events(state: Path) -> int:
    """SecurityEventNotifications in the store's outbox (0 while the daemon has not made its schema)."""
    db = sqlite3.connect(state / FILENAME)
    try:
        query = "SELECT count(*) FROM outbox WHERE action = 'SecurityEventNotification'"
        return int(db.execute(query).fetchone()[0])
    except sqlite3.OperationalError:  # no such table yet: the daemon is creating the store
        return 0
    finally:
        db.close()


async def test_a_critical_event_survives_a_kill_9(tmp_path: Path) -> None:
    """StartupOfTheDevice, raised while the central system is away, is in the store; the process is
    killed; the next run delivers it beside its own."""
    port = free_port()
    config = make_config(f"ws://127.0.0.1:{port}/ocpp", tmp_path, security_events="on")
    doc = {
        "state_dir": str(config.state_dir),
        "api": {"listen": None},  # its default port is one for every test process beside this one
        "charge_points": [
            {
                "id": "CP-1",
                "csms_url": f"ws://127.0.0.1:{port}/ocpp",
                "security_events": "on",
                "reconnect": {"initial_s": 0.2, "max_s": 0.5},
                "connectors": [{"id": 1, "charger": {"type": "simulated"}}],
            }
        ],
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(doc))
    first = await start_daemon(path, tmp_path / "daemon-1.log")
    try:
        for _ in range(200):
            if (config.state_dir / FILENAME).exists() and queued_events(config.state_dir) >= 1:
                break
            await asyncio.sleep(0.05)
        assert queued_events(config.state_dir) == 1
        os.kill(first.pid, signal.SIGKILL)
        await first.wait()
    finally:
        await stop_process(first)
    cs = await on_port(port)
    second = await start_daemon(path, tmp_path / "daemon-2.log")
    try:
        await cs.wait_until(
            lambda: len(sent(cs, "StartupOfTheDevice")) >= 2, timeout=15, what="both startups"
        )
        await cs.wait_until(lambda: queued_events(config.state_dir) == 0, what="the outbox emptied")
    finally:
        await stop_process(second)
        await cs.stop()
    assert len(sent(cs, "StartupOfTheDevice")) == 2
    first_at, second_at = (e["timestamp"] for e in sent(cs, "StartupOfTheDevice"))
    assert first_at < second_at  # the older one first: the outbox keeps the order


async def test_a_malformed_call_a_time_set_and_a_full_outbox_are_events(tmp_path: Path) -> None:
    """InvalidMessages for a CALL refused as not valid OCPP (not for one merely not supported);
    SettingSystemTime when the central system's time moves the bridge's by a minute or more;
    MemoryExhaustion when the outbox reaches its bound."""
    async with StrictCentralSystem() as cs:
        cs.clock_offset_s = 3600.0  # the central system is an hour ahead: the boot answer sets the time
        async with running(make_config(cs.url, tmp_path, security_events="on")) as daemon:
            await cs.wait_until(lambda: sent(cs, "SettingSystemTime"), what="SettingSystemTime")
            daemon.clock.move(daemon.clock.offset_s - 120)  # moved again within the hour: no second one
            await cs.send_raw("CP-1", '[2,"bad-1","ChangeConfiguration",{"key":5,"value":"1"}]')
            await cs.wait_until(lambda: sent(cs, "InvalidMessages"), what="InvalidMessages")
            daemon.charge_points["CP-1"].messages.outbox.on_bound(1)  # as the bound's first drop tells it
            await cs.wait_until(lambda: sent(cs, "MemoryExhaustion"), what="MemoryExhaustion")
    (time_set,) = sent(cs, "SettingSystemTime")  # one an hour at most
    assert time_set["techInfo"].startswith("the time was set +3600 s") or "+3599" in time_set["techInfo"]
    (invalid,) = sent(cs, "InvalidMessages")
    assert invalid["techInfo"].startswith("TypeConstraintViolation: ")
    (full,) = sent(cs, "MemoryExhaustion")
    assert full["techInfo"] == "the outbox is full (50000 messages): 1 MeterValues dropped"


async def test_tls_failures_are_events_sent_once_a_connection_works(tmp_path: Path) -> None:
    """An expired, a wrong-host and an unknown CA's certificate: each refused with its own words, each
    an InvalidCentralSystemCertificate line in the security log; on the wire, once the central system
    presents a good certificate, one event (one per type while offline) with the newest details."""
    pki = make_test_pki(tmp_path / "pki")
    port = free_port()
    servers = [
        (pki.expired, "has expired"),
        (pki.wrong_host, "does not name 127.0.0.1"),
        (pki.self_signed, "is self-signed"),
    ]
    config = make_config(f"wss://127.0.0.1:{port}/ocpp", tmp_path, tls={"ca_file": str(pki.root)},
                         security_events="on", reconnect={"initial_s": 0.1, "max_s": 0.2})  # fmt: skip
    async with running(config) as daemon:
        link = daemon.charge_points["CP-1"].session.link
        for issued, words in servers:
            bad = StrictCentralSystem(ssl_context=pki.server_context(issued))
            bad.port = port
            async with bad:
                await bad.wait_until(lambda w=words: w in (link.last_error or ""), what=words)
            assert bad.links == []  # never got as far as the websocket
        good = StrictCentralSystem(ssl_context=pki.server_context())
        good.port = port
        async with good:
            await good.wait_until(lambda: sent(good, "InvalidCentralSystemCertificate"), what="the event")
            await asyncio.sleep(0.3)
    (event,) = sent(good, "InvalidCentralSystemCertificate")
    assert "is self-signed" in event["techInfo"]  # the newest of the three
    log = (tmp_path / "state" / "security" / "security.log").read_text()
    lines = [line for line in log.splitlines() if "InvalidCentralSystemCertificate" in line]
    assert all(any(words in line for line in lines) for _, words in servers)


class RecordingLink:
    """The session's in-memory queue as the events see it: what was submitted, and its future."""

    def __init__(self) -> None:
        self.builds: list[Any] = []
        self.futures: list[asyncio.Future[Any]] = []

    def submit(self, build: Any, *, want_result: bool = False) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.builds.append(build)
        self.futures.append(future)
        return future


async def test_a_waiting_event_is_built_again_after_a_dropped_link_and_newer_details_follow() -> None:
    """The sender builds a message, meets a dropped link and keeps it for the next connection, where
    it is built again: the event must still be there (it was taken out at the first build). Details
    that come while it is on its way go in a notification of their own."""
    link = RecordingLink()
    events = SecurityEvents("CP-1", Clock(), None, link, None, lambda: True)  # type: ignore[arg-type]
    events.emit("InvalidMessages", "first")
    assert len(link.builds) == 1
    assert link.builds[0]().tech_info == "first"  # sent on a link that dropped: kept by the sender
    assert link.builds[0]().tech_info == "first"  # built again on the next connection
    events.emit("InvalidMessages", "second")  # while the first is on its way: no second submit yet
    assert len(link.builds) == 1
    link.futures[0].set_result(None)  # answered
    await asyncio.sleep(0)
    assert len(link.builds) == 2 and link.builds[1]().tech_info == "second"
    link.futures[1].set_result(None)
    await asyncio.sleep(0)
    events.emit("InvalidMessages", "third")  # nothing waits: a new notification at once
    assert len(link.builds) == 3
