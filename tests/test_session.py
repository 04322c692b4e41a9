"""The session against a strict central system: boot sequences, reconnects, back-off, auth."""

from __future__ import annotations

import asyncio
import itertools
import logging
import ssl
import time
from typing import Any

import pytest
from ocpp.v16 import call
from websockets.asyncio.server import serve

from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.processes import free_port


def boot_times(cs: StrictCentralSystem, cp_id: str = "CP-1") -> list[float]:
    return [
        f.at
        for link in cs.links
        if link.cp_id == cp_id
        for f in link.frames
        if f.direction == "in" and f.message and f.message[0] == 2 and f.message[2] == "BootNotification"
    ]


async def test_accepted_boot_then_status_of_connector_zero_and_every_connector_then_heartbeats(
    tmp_path: Any,
) -> None:
    async with StrictCentralSystem(boot=[("Accepted", 1)]) as cs:
        async with running(make_config(cs.url, tmp_path, connectors=2)) as daemon:
            await cs.wait_for_call("CP-1", "Heartbeat", count=2, timeout=5)
            cp = daemon.charge_points["CP-1"]
            assert cp.configuration.get_int("HeartbeatInterval") == 1  # adopted from the boot answer
        cs.assert_clean()
    actions = cs.actions("CP-1")
    assert actions[:4] == [
        "BootNotification",
        "StatusNotification",
        "StatusNotification",
        "StatusNotification",
    ]
    statuses = cs.calls("CP-1", "StatusNotification")
    assert [(s["connectorId"], s["status"], s["errorCode"]) for s in statuses] == [
        (0, "Available", "NoError"),
        (1, "Available", "NoError"),
        (2, "Available", "NoError"),
    ]
    beats = [
        f.at
        for f in cs.link("CP-1").frames
        if f.message and f.message[0] == 2 and f.message[2] == "Heartbeat"
    ]
    assert 0.7 <= beats[1] - beats[0] <= 2.0


async def test_boot_content_is_what_the_configuration_says(csms: StrictCentralSystem, tmp_path: Any) -> None:
    config = make_config(
        csms.url, tmp_path, vendor="Acme", model="Box-9", serial_number="SN-1", firmware_version="1.2.3"
    )
    async with running(config):
        boot = await csms.wait_for_call("CP-1", "BootNotification")
    assert boot == {
        "chargePointVendor": "Acme",
        "chargePointModel": "Box-9",
        "chargePointSerialNumber": "SN-1",
        "firmwareVersion": "1.2.3",
    }


async def test_pending_answers_calls_but_sends_nothing_until_accepted(tmp_path: Any) -> None:
    async with StrictCentralSystem(boot=[("Pending", 2), ("Accepted", 300)]) as cs:
        async with running(make_config(cs.url, tmp_path)):
            await cs.wait_for_call("CP-1", "BootNotification")
            result = await cs.call("CP-1", call.GetConfiguration(key=["HeartbeatInterval"]))
            assert result.configuration_key == [
                {"key": "HeartbeatInterval", "readonly": False, "value": "300"}
            ]
            changed = await cs.call(
                "CP-1", call.ChangeConfiguration(key="MeterValueSampleInterval", value="30")
            )
            assert changed.status == "Accepted"
            rejected = await cs.call("CP-1", call.RemoteStartTransaction(id_tag="X", connector_id=1))
            assert rejected.status == "Rejected"  # not allowed while Pending
            await cs.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)
        cs.assert_clean()  # includes: nothing but BootNotification before Accepted
    first, second = boot_times(cs)
    assert 1.9 <= second - first <= 3.5
    assert cs.actions("CP-1")[:3] == ["BootNotification", "BootNotification", "StatusNotification"]


async def test_rejected_is_silent_until_the_interval_passes(tmp_path: Any) -> None:
    async with StrictCentralSystem(boot=[("Rejected", 2), ("Accepted", 300)]) as cs:
        async with running(make_config(cs.url, tmp_path)):
            await cs.wait_for_call("CP-1", "BootNotification")
            link = cs.link("CP-1")
            await cs.wait_until(
                lambda: any(f.direction == "out" and f.action == "BootNotification" for f in link.frames),
                what="the Rejected answer",
            )
            await cs.send_raw("CP-1", '[2,"while-rejected","GetConfiguration",{}]')
            await asyncio.sleep(1.0)
            assert not [
                f
                for f in link.frames
                if f.message and f.message[1] == "while-rejected" and f.direction == "in"
            ], "answered while Rejected"
            await cs.wait_for_call("CP-1", "BootNotification", count=2, timeout=5)
            await cs.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)
            reply = await cs.call("CP-1", call.GetConfiguration(key=["HeartbeatInterval"]))
            assert reply.configuration_key
    first, second = boot_times(cs)
    assert 1.9 <= second - first <= 3.5
    cs.violations = [v for v in cs.violations if "answer to no call" not in v]
    cs.assert_clean()


async def test_reconnect_without_changes_does_not_boot_again_and_resends_only_changed_status(
    csms: StrictCentralSystem, tmp_path: Any
) -> None:
    async with running(make_config(csms.url, tmp_path)) as daemon:
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)
        await csms.drop("CP-1")
        await csms.wait_until(lambda: len(csms.links) == 2, what="a reconnect")
        sim = daemon.charge_points["CP-1"].connectors[1].charger
        await asyncio.sleep(0.5)
        assert [f for f in csms.links[1].frames if f.direction == "in"] == []  # no boot, no stale status
        sim.plug()  # type: ignore[attr-defined]
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Preparing")
    assert csms.actions("CP-1").count("BootNotification") == 1


async def test_status_changed_while_offline_is_sent_after_reconnect(tmp_path: Any) -> None:
    port = free_port()
    cs = StrictCentralSystem()
    cs.port = port
    await cs.start()
    async with running(make_config(cs.url, tmp_path)) as daemon:
        await cs.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)
        await cs.stop()  # outage
        sim = daemon.charge_points["CP-1"].connectors[1].charger
        sim.plug()  # type: ignore[attr-defined]
        await asyncio.sleep(0.3)
        sim.ev_suspend()  # type: ignore[attr-defined]
        await asyncio.sleep(0.3)
        await cs.start()
        await cs.wait_until(lambda: len(cs.links) == 2, timeout=5, what="a reconnect")
        await cs.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Preparing")
        await asyncio.sleep(0.3)
    await cs.stop()
    # Only the current status, once: the transitions while offline are not replayed.
    assert [(s["connectorId"], s["status"]) for s in cs.calls("CP-1", "StatusNotification")] == [
        (0, "Available"),
        (1, "Available"),
        (1, "Preparing"),
    ]
    cs.assert_clean()


async def test_boot_on_reconnect_setting_forces_a_boot_on_every_connection(
    csms: StrictCentralSystem, tmp_path: Any
) -> None:
    async with running(make_config(csms.url, tmp_path, boot_on_reconnect=True)):
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)
        await csms.drop("CP-1")
        await csms.wait_for_call("CP-1", "BootNotification", count=2)
        # A fresh boot means every status again (ERRATA 3.22).
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1, count=2)


async def test_http_404_is_retried_with_growing_back_off_and_logged_once(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with StrictCentralSystem(known_ids=["SOMEONE-ELSE"]) as cs:
        config = make_config(cs.url, tmp_path, reconnect={"initial_s": 0.2, "max_s": 0.8})
        async with running(config) as daemon:
            await cs.wait_until(lambda: len(cs.handshakes) >= 5, timeout=8, what="five attempts")
            status = daemon.charge_points["CP-1"].session.link
            assert status.last_error is not None and "404" in status.last_error
            assert not status.connected
    assert {s for _, s in cs.handshakes} == {404}
    assert all(path == "/ocpp/CP-1" for path, _ in cs.handshakes)
    messages = [
        r.getMessage() for r in caplog.records if "404" in r.getMessage() and r.levelno >= logging.WARNING
    ]
    assert len(messages) == 1, messages
    assert "does not know charge point id 'CP-1'" in messages[0]


async def test_back_off_delays_grow_and_are_capped(tmp_path: Any) -> None:
    stamps: list[float] = []
    async with StrictCentralSystem(known_ids=[]) as cs:
        original = cs._process_request

        def timed(connection: Any, request: Any) -> Any:
            stamps.append(time.monotonic())
            return original(connection, request)

        cs._process_request = timed  # type: ignore[method-assign]
        await cs.stop()
        await cs.start()
        config = make_config(cs.url, tmp_path, reconnect={"initial_s": 0.2, "max_s": 0.8})
        async with running(config):
            await cs.wait_until(lambda: len(stamps) >= 6, timeout=10, what="six attempts")
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert gaps[0] <= 0.35  # jittered 0.1..0.2 s plus handshake time
    assert max(gaps) <= 1.0  # capped at max_s (0.8) plus handshake time
    assert gaps[3] >= 0.35  # grown: base 0.8 -> at least 0.4


async def test_refused_connection_is_retried_until_the_central_system_appears(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    cs = StrictCentralSystem()
    cs.port = port
    async with running(make_config(cs.url, tmp_path)) as daemon:
        session = daemon.charge_points["CP-1"].session
        await cs.wait_until(lambda: session.link.last_error is not None, what="a recorded error")
        assert "connection refused" in (session.link.last_error or "")
        await asyncio.sleep(0.5)
        await cs.start()
        await cs.wait_for_call("CP-1", "BootNotification", timeout=5)
        await cs.wait_until(lambda: session.accepted, what="boot accepted")
    await cs.stop()
    cs.assert_clean()
    refused = [r for r in caplog.records if "refused" in r.getMessage() and r.levelno >= logging.WARNING]
    assert len(refused) == 1


async def test_identity_is_percent_encoded_in_the_url(tmp_path: Any) -> None:
    async with StrictCentralSystem() as cs:
        async with running(make_config(cs.url, tmp_path, cp_ids=("CP#7?Ä",))):
            await cs.wait_for_call("CP#7?Ä", "BootNotification")
    assert cs.handshakes[0][0] == "/ocpp/CP%237%3F%C3%84"


@pytest.mark.parametrize(
    ("given", "fmt", "expected_ok"),
    [
        ("s3cret-password-16", "plain", True),
        ("wrong-password-1234", "plain", False),
        ("73336372657421212121212121212121", "hex", True),  # hex of b"s3cret!!!!!!!!!!"
    ],
)
async def test_basic_auth_password(tmp_path: Any, given: str, fmt: str, expected_ok: bool) -> None:
    secret = "s3cret-password-16" if fmt == "plain" else "s3cret!!!!!!!!!!"
    async with StrictCentralSystem(password=secret) as cs:
        config = make_config(cs.url, tmp_path, password=given, password_format=fmt)
        async with running(config) as daemon:
            if expected_ok:
                await cs.wait_for_call("CP-1", "BootNotification")
            else:
                await cs.wait_until(lambda: cs.handshakes, what="an attempt")
                await cs.wait_until(
                    lambda: daemon.charge_points["CP-1"].session.link.last_error, what="error"
                )
                assert "401" in (daemon.charge_points["CP-1"].session.link.last_error or "")
    assert cs.handshakes[0][1] == (101 if expected_ok else 401)


async def test_several_charge_points_each_get_their_own_websocket(tmp_path: Any) -> None:
    async with StrictCentralSystem() as cs:
        async with running(make_config(cs.url, tmp_path, cp_ids=("CP-A", "CP-B", "CP-C"), connectors=2)) as d:
            for cp_id in ("CP-A", "CP-B", "CP-C"):
                await cs.wait_for_call(cp_id, "StatusNotification", lambda p: p["connectorId"] == 2)
            d.charge_points["CP-B"].connectors[2].charger.plug()  # type: ignore[attr-defined]
            await cs.wait_for_call("CP-B", "StatusNotification", lambda p: p["status"] == "Preparing")
        cs.assert_clean()
    assert sorted(link.cp_id for link in cs.links) == ["CP-A", "CP-B", "CP-C"]
    assert not [s for s in cs.calls("CP-A", "StatusNotification") if s["status"] == "Preparing"]


async def test_a_link_without_pongs_is_dropped_and_re_established(
    csms: StrictCentralSystem, tmp_path: Any
) -> None:
    config = make_config(csms.url, tmp_path, ocpp={"WebSocketPingInterval": 1})
    async with running(config) as daemon:
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)
        # The central system's side goes deaf: pings are no longer read, so no pong comes back.
        deaf = csms._cps["CP-1"]._connection.ws.transport
        deaf.pause_reading()
        await csms.wait_until(lambda: len(csms.links) == 2, timeout=8, what="a new connection")
        deaf.abort()  # the old server side would otherwise wait out its close timeout
        assert "no pong" in (daemon.charge_points["CP-1"].session.link.last_error or "")


async def test_tls_failure_is_reported_and_retried(tmp_path: Any) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    openssl = await asyncio.create_subprocess_exec(
        "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-days", "1", "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert await openssl.wait() == 0
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    attempts: list[float] = []

    async def never(ws: Any) -> None:
        await ws.close()

    def count(connection: Any, request: Any) -> None:
        attempts.append(time.monotonic())

    async with serve(never, "127.0.0.1", 0, ssl=context, process_request=count) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        config = make_config(f"wss://127.0.0.1:{port}/ocpp", tmp_path)
        async with running(config) as daemon:
            session = daemon.charge_points["CP-1"].session
            async with asyncio.timeout(5):
                # No event to wait on: the session's state is polled.
                while not (session.link.last_error and session.backoff.failures >= 3):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
    assert session.link.last_error == (
        "TLS: the central system's certificate is self-signed (127.0.0.1): add its CA to the system CA "
        "store (or set tls.ca_file)"
    )
    assert session.backoff.failures >= 3  # still retrying
    assert attempts == []  # the handshake never got as far as HTTP
