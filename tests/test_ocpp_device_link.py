"""A `type: ocpp` charger's link on the wire, seen by a raw websocket client (no OCPP library between
it and the frames): every call is checked against its OCPP 1.6 schema and a malformed one gets the
CALLERROR that names what is wrong while the link goes on; a charger that reconnects while its old
socket went silent is answered at once on the new one."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from adapters.base import DeviceUnreachable
from adapters.chargers import ocpp_device_switch as switch_module
from adapters.chargers.ocpp_device import OcppDeviceCharger
from adapters.chargers.ocpp_device_hub import Attached, ChargerHub
from adapters.chargers.ocpp_device_link import ChargerLink
from adapters.chargers.ocpp_device_options import OcppDeviceOptions
from adapters.chargers.ocpp_device_state import (
    CALL_TIMEOUTS_CLOSE,
    SILENCE_SLACK_S,
    ChargerState,
    Decisions,
    Seat,
    silent,
)
from adapters.transports.pool import Transports
from tests.processes import free_port

IDENTITY, PASSWORD = "WB-1", "link-test-secret"
NOW = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
BOOT = {"chargePointVendor": "raw", "chargePointModel": "frames"}


@pytest.fixture
async def wired() -> AsyncIterator[tuple[str, OcppDeviceCharger]]:
    """One driver of charger WB-1 on its own endpoint (a free port), started as the coordinator does
    (a listener set: its read never waits as `probe`'s does)."""
    pool = Transports()
    listen = f"127.0.0.1:{free_port()}"
    options = OcppDeviceOptions(
        identity=IDENTITY, password=PASSWORD, listen=listen, call_timeout_s=1, card_wait_s=1
    )
    driver = OcppDeviceCharger(dataclasses.replace(options), pool)
    driver.set_listener(lambda event: None)
    await driver.start()
    try:
        yield f"ws://{listen}/ocpp/{IDENTITY}", driver
    finally:
        await driver.close()
        await pool.close()


@pytest.fixture
def url(wired: tuple[str, OcppDeviceCharger]) -> str:
    return wired[0]


def connect_raw(url: str) -> Any:
    token = base64.b64encode(f"{IDENTITY}:{PASSWORD}".encode()).decode()
    return connect(url, subprotocols=["ocpp1.6"], additional_headers={"Authorization": f"Basic {token}"})


async def answer(ws: ClientConnection, unique_id: str) -> list[Any]:
    """The answer to our call `unique_id` (the bridge's own calls meanwhile are left unanswered)."""
    while True:
        frame = json.loads(await ws.recv())
        if frame[0] in (3, 4) and frame[1] == unique_id:
            return list(frame)


async def call(ws: ClientConnection, unique_id: str, action: str, payload: Any) -> list[Any]:
    await ws.send(json.dumps([2, unique_id, action, payload]))
    return await answer(ws, unique_id)


async def test_a_malformed_call_gets_its_callerror_and_the_link_goes_on(url: str) -> None:
    async with connect_raw(url) as ws:
        boot = await call(ws, "b", "BootNotification", BOOT)
        assert boot[0] == 3 and boot[2]["status"] == "Accepted" and boot[2]["interval"] > 0
        register = [{"timestamp": NOW, "sampledValue": [{"value": "1.5", "unit": "kWh"}]}]
        cases = {
            "TypeConstraintViolation": ("MeterValues", {"connectorId": "c0nnect0r", "meterValue": register}),
            "ProtocolError": ("MeterValues", {"connectorId": 1}),
            "FormationViolation": ("MeterValues", {"connectorId": 1, "meterValue": register, "x": 1}),
            "PropertyConstraintViolation": (
                "StatusNotification",
                {"connectorId": 1, "errorCode": "NoError", "status": "Flying"},
            ),
            "NotImplemented": ("Teleport", {}),
            "NotSupported": ("FirmwareStatusNotification", {"status": "Idle"}),  # 1.6, not routed
        }
        for n, (code, (action, payload)) in enumerate(cases.items()):
            refused = await call(ws, f"e{n}", action, payload)
            assert refused[:3] == [4, f"e{n}", code], (action, payload, refused)
            assert (
                "c0nnect0r" not in refused[3] and "Flying" not in refused[3]
            )  # names the field, not the value
        bad_time = [{"timestamp": "2024-13-45T25:61:61Z", "sampledValue": [{"value": "1"}]}]
        refused = await call(ws, "t", "MeterValues", {"connectorId": 1, "meterValue": bad_time})
        assert refused[:3] == [4, "t", "PropertyConstraintViolation"] and "timestamp" in refused[3]
        await ws.send("not json at all")  # no id to answer: ignored
        await ws.send(json.dumps([2, "short", "Heartbeat"]))
        assert (await answer(ws, "short"))[:3] == [4, "short", "FormationViolation"]
        # The link lives on: the same calls, well formed, are answered.
        ok = await call(ws, "m", "MeterValues", {"connectorId": 1, "meterValue": register})
        assert ok == [3, "m", {}]
        status = {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
        assert await call(ws, "s", "StatusNotification", status) == [3, "s", {}]
        heartbeat = await call(ws, "h", "Heartbeat", {})
        assert heartbeat[0] == 3 and "currentTime" in heartbeat[2]


async def test_a_charger_that_reconnects_past_its_silent_socket_is_answered_at_once(url: str) -> None:
    """Its first connection completed the handshake and then went silent (a reboot without a close):
    the new connection's BootNotification is answered without waiting out the old one's close."""
    async with connect_raw(url) as old:
        assert (await call(old, "b0", "BootNotification", BOOT))[0] == 3
        old.transport.pause_reading()  # it never reads, so never answers the close
        began = time.monotonic()
        async with connect_raw(url) as new:
            async with asyncio.timeout(1.0):
                boot = await call(new, "b1", "BootNotification", BOOT)
            assert boot[0] == 3 and boot[2]["status"] == "Accepted"
            assert time.monotonic() - began < 1.0
        old.transport.abort()


async def bridge_call(ws: ClientConnection, action: str) -> list[Any]:
    """The bridge's next call `action` to the charger (its answers to ours meanwhile are skipped)."""
    while True:
        frame = json.loads(await ws.recv())
        if frame[0] == 2 and frame[2] == action:
            return list(frame)


async def test_a_charger_that_reconnects_without_booting_again_is_served_as_booted(
    wired: tuple[str, OcppDeviceCharger],
) -> None:
    """OCPP 1.6 asks for a BootNotification after a boot only: a charger whose Wi-Fi dropped comes back
    without one. It is reachable at once, its calls are no deviation, and the after-boot work (what it
    honours asked, its set-point sent again) runs on the new connection."""
    url, driver = wired
    available = {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
    async with connect_raw(url) as ws:
        assert (await call(ws, "b", "BootNotification", BOOT))[0] == 3
        assert await call(ws, "s", "StatusNotification", available) == [3, "s", {}]
        assert (await driver.read()).plugged is False
    async with connect_raw(url) as ws:  # no BootNotification
        preparing = {**available, "status": "Preparing"}
        assert await call(ws, "s2", "StatusNotification", preparing) == [3, "s2", {}]
        async with asyncio.timeout(2):
            await bridge_call(ws, "GetConfiguration")  # its after-boot work, at once
        assert (await driver.read()).plugged is True
        assert not [d for d in driver.deviations if "BootNotification" in d]
        said = driver.probe_lines()[0]
        assert said == "connected: yes; booted: True (reconnected without a BootNotification)"


async def test_a_call_before_any_boot_is_a_deviation_and_the_charger_unreachable(
    wired: tuple[str, OcppDeviceCharger],
) -> None:
    """A charger never booted in this run is not served as booted: only a boot makes it so, which
    the bridge asks for (TriggerMessage BootNotification)."""
    url, driver = wired
    async with connect_raw(url) as ws:
        assert (await call(ws, "h", "Heartbeat", {}))[0] == 3
        assert driver.deviations[-1].endswith("Heartbeat before its BootNotification on this connection")
        with pytest.raises(DeviceUnreachable, match="not connected"):
            await driver.read()
        # Asked to boot (the bridge restarted, the charger did not): once it does, it is served.
        async with asyncio.timeout(2):
            trigger = await bridge_call(ws, "TriggerMessage")
        assert trigger[3] == {"requestedMessage": "BootNotification"}
        await ws.send(json.dumps([3, trigger[1], {"status": "Accepted"}]))
        assert (await call(ws, "b", "BootNotification", BOOT))[0] == 3
        available = {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
        assert await call(ws, "s", "StatusNotification", available) == [3, "s", {}]
        assert (await driver.read()).plugged is False


async def test_a_frame_nested_past_the_stack_is_ignored_and_the_link_goes_on(
    wired: tuple[str, OcppDeviceCharger],
) -> None:
    url, driver = wired
    async with connect_raw(url) as ws:
        assert (await call(ws, "b", "BootNotification", BOOT))[0] == 3
        await ws.send("[" * 30_000 + "]" * 30_000)  # json.loads raises RecursionError
        await ws.send("[2, " + "[" * 5000 + "]" * 5000 + ', "Heartbeat", {}]')
        heartbeat = await call(ws, "h", "Heartbeat", {})
        assert heartbeat[0] == 3 and "currentTime" in heartbeat[2]
        assert driver.probe_lines()[0].startswith("connected: yes")


async def test_calls_sent_while_one_waits_past_the_queue_get_a_generic_error(url: str) -> None:
    """OCPP-J allows one outstanding call: an Authorize waits for the bridge (card_wait_s, 1 s here);
    the calls sent behind it are queued up to CALLS_QUEUED, the rest refused at once, never held."""
    from adapters.chargers.ocpp_device_link import CALLS_QUEUED

    async with connect_raw(url) as ws:
        assert (await call(ws, "b", "BootNotification", BOOT))[0] == 3
        await ws.send(json.dumps([2, "a", "Authorize", {"idTag": "CARD"}]))
        extra = CALLS_QUEUED + 5
        for n in range(extra):
            await ws.send(json.dumps([2, f"h{n}", "Heartbeat", {}]))
        answers: dict[str, list[Any]] = {}
        async with asyncio.timeout(5):
            while len(answers) < extra + 1:
                frame = json.loads(await ws.recv())
                if frame[0] in (3, 4):
                    answers[frame[1]] = frame
        refused = [k for k, f in answers.items() if f[0] == 4]
        assert all(answers[k][2] == "GenericError" for k in refused)
        # The worker may not yet have taken the Authorize from the queue when the reader fills it.
        assert extra - CALLS_QUEUED <= len(refused) <= extra - CALLS_QUEUED + 1
        assert answers["a"][2]["idTagInfo"]["status"] == "Invalid"  # the bridge never switched on
        # The queue emptied: the link serves calls again.
        assert (await call(ws, "later", "Heartbeat", {}))[0] == 3


async def test_the_largest_meter_values_fits_and_a_bigger_frame_closes_the_connection(url: str) -> None:
    """The endpoint takes frames up to MAX_FRAME_BYTES: a MeterValues of 4 samples, each with every
    measurand per phase in full, is a fraction of it; a frame past it is refused by closing (1009)."""
    from websockets.exceptions import ConnectionClosed

    from adapters.transports.ocpp_server import MAX_FRAME_BYTES

    full = {"context": "Sample.Periodic", "format": "Raw", "location": "Outlet", "unit": "A"}
    measurands = ("Current.Import", "Current.Offered", "Voltage", "Power.Active.Import", "Frequency")
    values = [
        {**full, "value": "16.123", "measurand": m, "phase": p}
        for m in measurands
        for p in ("L1", "L2", "L3")
    ]
    values = (values + values)[:22]
    sample = [{"timestamp": NOW, "sampledValue": values} for _ in range(4)]
    payload = {"connectorId": 1, "transactionId": 1234567, "meterValue": sample}
    assert len(json.dumps([2, "m", "MeterValues", payload])) < MAX_FRAME_BYTES / 4
    async with connect_raw(url) as ws:
        assert (await call(ws, "b", "BootNotification", BOOT))[0] == 3
        assert await call(ws, "m", "MeterValues", payload) == [3, "m", {}]  # its values all taken
        await ws.send(
            json.dumps([2, "big", "DataTransfer", {"vendorId": "v", "data": "x" * MAX_FRAME_BYTES}])
        )
        with pytest.raises(ConnectionClosed) as closed:
            await answer(ws, "big")
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


def hours_ago(hours: float, *, naive: bool = False) -> str:
    moment = (datetime.now(UTC) - timedelta(hours=hours)).isoformat(timespec="seconds")
    return moment.replace("+00:00", "") if naive else moment.replace("+00:00", "Z")


def start(timestamp: str) -> dict[str, Any]:
    return {"connectorId": 1, "idTag": "CARD", "meterStart": 1000, "timestamp": timestamp}


def stale_noted(driver: OcppDeviceCharger) -> bool:
    return any("before it connected" in text for text in driver.deviations)


async def test_a_start_the_bridge_asked_for_is_accepted_whatever_the_chargers_clock_says(
    wired: tuple[str, OcppDeviceCharger],
) -> None:
    """Energy allowed (the bridge's RemoteStart, unanswered here): its StartTransaction stamped by a
    clock two hours behind is the start the bridge asked for, never stale."""
    url, driver = wired
    async with connect_raw(url) as ws:
        assert (await call(ws, "b", "BootNotification", BOOT))[0] == 3
        with pytest.raises(DeviceUnreachable):
            await driver.set_enabled(True)  # its RemoteStart is never answered: energy stays allowed
        started = await call(ws, "st", "StartTransaction", start(hours_ago(2)))
        assert started[2]["idTagInfo"]["status"] == "Accepted" and not stale_noted(driver)
        assert driver.state.transaction_id == started[2]["transactionId"]


async def test_a_start_is_judged_stale_by_the_chargers_own_clock(
    wired: tuple[str, OcppDeviceCharger],
) -> None:
    """A charger sending local time without an offset, five hours west of UTC: its own start (the
    bridge not asked) is not stale, as its StatusNotification's time tells its clock. One begun well
    before it connected, by that clock, still is."""
    url, driver = wired
    async with connect_raw(url) as ws:
        assert (await call(ws, "b", "BootNotification", BOOT))[0] == 3
        status = {"connectorId": 1, "errorCode": "NoError", "status": "Preparing"}
        status["timestamp"] = hours_ago(5, naive=True)
        assert await call(ws, "s", "StatusNotification", status) == [3, "s", {}]
        fresh = await call(ws, "st", "StartTransaction", start(hours_ago(5, naive=True)))
        assert fresh[2]["idTagInfo"]["status"] == "Invalid"  # no decision of the bridge within 1 s
        assert not stale_noted(driver)
        began = time.monotonic()
        old = await call(ws, "st2", "StartTransaction", start(hours_ago(6, naive=True)))
        assert old[2]["idTagInfo"]["status"] == "Invalid" and time.monotonic() - began < 0.5  # at once
        assert stale_noted(driver)


async def test_refused_connections_are_logged_once_a_minute_per_status(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The installer's mistyped password is logged at once; a scanner's storm of wrong passwords and
    unknown ids does not fill the log (one line per status, the rest counted for the next line)."""
    wrong = base64.b64encode(f"{IDENTITY}:not-it".encode()).decode()
    unknown = url.replace(f"/{IDENTITY}", "/WB-9")
    with caplog.at_level("WARNING", logger="adapters.ocpp_server"):
        for target, headers in [(url, {"Authorization": f"Basic {wrong}"})] * 5 + [(unknown, {})] * 5:
            with pytest.raises(InvalidStatus) as refused:
                async with connect(target, subprotocols=["ocpp1.6"], additional_headers=headers):  # type: ignore[list-item]
                    pass
            assert refused.value.response.status_code in (401, 404)
    lines = [r.getMessage() for r in caplog.records if "connection refused" in r.getMessage()]
    assert [line.split(")")[0] for line in lines] == [
        "OCPP endpoint: connection refused (401",
        "OCPP endpoint: connection refused (404",
    ]
    assert "not-it" not in caplog.text
    async with connect_raw(url) as ws:  # the right one still connects
        assert (await call(ws, "b1", "BootNotification", BOOT))[0] == 3


def test_a_charger_is_silent_after_twice_its_heartbeat_interval_and_slack() -> None:
    assert not silent(1000.0, 1000.0 + 2 * 10 + SILENCE_SLACK_S, 10)
    assert silent(1000.0, 1000.1 + 2 * 10 + SILENCE_SLACK_S, 10)
    assert not silent(1000.0, 1000.0 + 600, 300)  # a heartbeat of 5 minutes: 10 and more


async def test_a_charger_that_leaves_the_bridges_calls_unanswered_is_disconnected(
    wired: tuple[str, OcppDeviceCharger],
) -> None:
    """Its socket open, its pings answered, the bridge's calls never: after CALL_TIMEOUTS_CLOSE in a
    row (its after-boot calls count) the bridge drops the connection, so that it reconnects."""
    url, driver = wired
    async with connect_raw(url) as ws:
        assert (await call(ws, "b", "BootNotification", BOOT))[0] == 3
        closed = asyncio.ensure_future(ws.wait_closed())
        unanswered = 0
        while not closed.done() and unanswered < CALL_TIMEOUTS_CLOSE:
            with pytest.raises(DeviceUnreachable):
                await driver.unlock()  # each waits call_timeout_s (1 s)
            unanswered += 1
        async with asyncio.timeout(1):
            await closed
    with pytest.raises(DeviceUnreachable, match="not connected"):
        await driver.read()


async def test_a_start_it_accepted_but_never_made_is_asked_for_again(
    wired: tuple[str, OcppDeviceCharger], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Energy allowed, its RemoteStartTransaction answered Accepted, no StartTransaction ever: after
    START_PENDING_S (0.5 s here) the driver asks again and notes it, rather than wait forever."""
    monkeypatch.setattr(switch_module, "START_PENDING_S", 0.5)
    url, driver = wired
    async with connect_raw(url) as ws:
        assert (await call(ws, "b", "BootNotification", BOOT))[0] == 3
        asked = asyncio.get_running_loop().create_future()

        async def answer_the_bridge() -> None:
            starts = 0
            async for raw in ws:
                frame = json.loads(raw)
                if frame[0] != 2:
                    continue
                starts += frame[2] == "RemoteStartTransaction"
                if starts == 2 and not asked.done():
                    asked.set_result(None)
                reply = {"configurationKey": []} if frame[2] == "GetConfiguration" else {"status": "Accepted"}
                await ws.send(json.dumps([3, frame[1], reply]))

        responder = asyncio.create_task(answer_the_bridge())
        try:
            await driver.set_enabled(True)
            async with asyncio.timeout(3):
                await asked
        finally:
            responder.cancel()
        assert any("no StartTransaction within" in text for text in driver.deviations)


async def test_a_driver_whose_after_boot_work_fails_leaves_the_connection_up() -> None:
    """The hub runs each connector's after-boot work beside the shared connection: a bug in one is
    logged, the charger's calls are answered on."""
    pool = Transports()
    listen = f"127.0.0.1:{free_port()}"
    options = OcppDeviceOptions(identity=IDENTITY, password=PASSWORD, listen=listen)
    failed = asyncio.Event()

    async def after_boot(link: ChargerLink) -> None:
        await link.boot_seen.wait()
        failed.set()
        raise RuntimeError("a bug in the driver")

    server = pool.ocpp_server(listen)
    hub = ChargerHub.of(server, options)
    seat = Seat(ChargerState(connector_id=1), Decisions(), lambda: None, lambda tag: None)
    attached = Attached(options, seat, lambda link: None, after_boot)
    hub.attach(attached)
    try:
        await server.open()
        async with connect_raw(f"ws://{listen}/ocpp/{IDENTITY}") as ws:
            assert (await call(ws, "b", "BootNotification", BOOT))[0] == 3
            async with asyncio.timeout(2):
                await failed.wait()
            await asyncio.sleep(0.05)  # the task group would have torn the connection down by now
            assert (await call(ws, "h", "Heartbeat", {}))[0] == 3
    finally:
        await hub.detach(attached)
        await pool.close()
