"""The page's live OCPP log against a running daemon and the strict central system: the frames of a
session as JSON lines and as Server-Sent Events, in order, with the AuthorizationKey masked."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import socket
import time
from typing import Any

import aiohttp
import pytest
from ocpp.v16 import call

import bridge.api.frames as frames_api
from bridge.runtime.frame_ring import MAX_SUBSCRIBERS
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.helpers.api_page import TOKEN, with_api
from tests.processes import free_port

BEARER = {"Authorization": f"Bearer {TOKEN}"}


async def _events(content: aiohttp.StreamReader, until: Any, timeout: float = 5.0) -> list[dict[str, Any]]:
    """SSE `frame` events read until `until(frames)` holds; also checks each event's id is its seq."""
    frames: list[dict[str, Any]] = []
    fields: dict[str, str] = {}
    async with asyncio.timeout(timeout):
        while not until(frames):
            line = (await content.readline()).decode().rstrip("\n")
            if line == "":
                if fields.get("event") == "frame":
                    frame = json.loads(fields["data"])
                    epoch, _, seq = fields["id"].partition(":")
                    assert len(epoch) == 8 and seq == str(frame["seq"])
                    frames.append(frame)
                fields = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(": ")
                fields[name] = value
    return frames


async def _session(csms: StrictCentralSystem, http: aiohttp.ClientSession, sim: str) -> None:
    for body in ({"action": "plug"}, {"action": "tap", "id_tag": "TAG-1"}):
        async with http.post(sim, json=body, headers=BEARER) as r:
            assert r.status == 200
    await csms.wait_for_call("CP-1", "StartTransaction")
    async with http.post(sim, json={"action": "unplug"}, headers=BEARER) as r:
        assert r.status == 200
    await csms.wait_for_call("CP-1", "StopTransaction")


async def test_the_frames_of_a_session_in_order_with_the_key_masked(
    csms: StrictCentralSystem, tmp_path: Any
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}/api/v1/charge_points/CP-1"
    key = secrets.token_hex(20)
    async with running(with_api(make_config(csms.url, tmp_path), port)), aiohttp.ClientSession() as http:
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)
        await _session(csms, http, f"{base}/connectors/1/sim")
        # Last: the bridge reconnects with the new key (the CALLRESULT crossed the wire before).
        await csms.call("CP-1", call.ChangeConfiguration(key="AuthorizationKey", value=key))
        async with http.get(f"{base}/frames", headers=BEARER) as r:
            assert r.status == 200 and r.content_type == "application/x-ndjson"
            assert r.headers["Content-Disposition"] == 'attachment; filename="frames-CP-1.jsonl"'
            text = await r.text()
        async with http.get(f"{base}/frames?limit=2", headers=BEARER) as r:
            last_two = [json.loads(line) for line in (await r.text()).splitlines()]
        async with http.get(f"{base}/frames?limit=x", headers=BEARER) as r:
            assert r.status == 400
        async with http.get(f"{base.replace('CP-1', 'CP-9')}/frames", headers=BEARER) as r:
            assert r.status == 404
    assert key not in text
    frames = [json.loads(line) for line in text.splitlines()]
    assert [f["seq"] for f in frames] == list(range(1, len(frames) + 1))
    assert last_two == frames[-2:]
    calls = [(f["dir"], f["action"]) for f in frames if f["type"] == "CALL"]
    assert calls[0] == ("out", "BootNotification") and ("in", "ChangeConfiguration") in calls
    change = next(f for f in frames if f["action"] == "ChangeConfiguration" and f["type"] == "CALL")
    assert change["payload"] == {"key": "AuthorizationKey", "value": "***"}
    answer = next(f for f in frames if f["id"] == change["id"] and f["type"] == "CALLRESULT")
    assert answer["dir"] == "out" and answer["action"] == "ChangeConfiguration"
    # What the central system received before that answer (the same TCP stream), in the same order.
    sent = [
        f["action"] for f in frames if f["type"] == "CALL" and f["dir"] == "out" and f["seq"] < answer["seq"]
    ]
    assert csms.actions("CP-1")[: len(sent)] == sent and "StopTransaction" in sent
    start = next(f for f in frames if f["action"] == "StartTransaction" and f["type"] == "CALLRESULT")
    assert start["dir"] == "in" and start["payload"]["idTagInfo"]["status"] == "Accepted"
    assert all(f["at"].endswith("Z") for f in frames)


async def test_the_stream_sends_the_ring_then_each_new_frame(
    csms: StrictCentralSystem, tmp_path: Any
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}/api/v1/charge_points/CP-1"
    async with running(with_api(make_config(csms.url, tmp_path), port)), aiohttp.ClientSession() as http:
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)
        async with http.get(f"{base}/frames/stream", headers=BEARER) as stream:
            assert stream.status == 200 and stream.content_type == "text/event-stream"
            backlog = await _events(
                stream.content, lambda fs: any(f["action"] == "StatusNotification" for f in fs)
            )
            assert backlog[0]["seq"] == 1 and backlog[0]["action"] == "BootNotification"
            await _session(csms, http, f"{base}/connectors/1/sim")
            live = await _events(
                stream.content,
                lambda fs: any(f["action"] == "StopTransaction" and f["dir"] == "in" for f in fs),
            )
        seqs = [f["seq"] for f in backlog + live]
        assert seqs == list(range(1, len(seqs) + 1))  # no frame lost or repeated between the two
        async with http.get(f"{base}/frames/stream?since={seqs[-3]}", headers=BEARER) as resumed:
            again = await _events(resumed.content, lambda fs: len(fs) >= 2)
        assert [f["seq"] for f in again] == seqs[-2:]
        async with http.get(
            f"{base}/frames/stream", headers={"Last-Event-ID": str(seqs[-2]), **BEARER}
        ) as resumed:
            assert [f["seq"] for f in await _events(resumed.content, lambda fs: len(fs) >= 1)] == seqs[-1:]
        async with http.get(f"{base}/frames/stream?since=-1", headers=BEARER) as r:
            assert r.status == 400


async def test_the_daemons_stop_ends_an_open_stream(csms: StrictCentralSystem, tmp_path: Any) -> None:
    """At once, not after aiohttp's shutdown timeout (2 s). The client's session is opened outside
    the daemon's run: it must still be open, reading, when the daemon stops."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/api/v1/charge_points/CP-1/frames/stream"
    async with aiohttp.ClientSession() as http:
        async with running(with_api(make_config(csms.url, tmp_path), port)):
            await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)
            stream = await http.get(url, headers=BEARER)
            await _events(stream.content, lambda fs: len(fs) >= 1)
            stopping = time.monotonic()
        assert time.monotonic() - stopping < 1.5
        with contextlib.suppress(aiohttp.ClientPayloadError):  # ended by the server, not left hanging
            async with asyncio.timeout(1):
                await stream.content.read()
        assert stream.content.at_eof()
        stream.release()


async def test_an_idle_stream_gets_keepalives(
    csms: StrictCentralSystem, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(frames_api, "KEEPALIVE_S", 0.05)  # 15 s in service
    port = free_port()
    url = f"http://127.0.0.1:{port}/api/v1/charge_points/CP-1/frames/stream"
    async with running(with_api(make_config(csms.url, tmp_path), port)), aiohttp.ClientSession() as http:
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)
        async with http.get(url, headers=BEARER) as stream:
            lines: list[bytes] = []
            async with asyncio.timeout(3):
                while lines.count(b": keepalive\n") < 2:
                    lines.append(await stream.content.readline())
    assert b"event: frame\n" in lines  # the ring first, then nothing new: keepalives


async def test_a_stream_resumed_from_another_run_or_a_later_seq_starts_over(
    csms: StrictCentralSystem, tmp_path: Any
) -> None:
    """After a restart seq starts at 1 again: an EventSource resuming with the old run's id, or a
    seq the ring has not reached, gets the ring from its start, not silence."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/api/v1/charge_points/CP-1/frames/stream"
    async with running(with_api(make_config(csms.url, tmp_path), port)), aiohttp.ClientSession() as http:
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)
        async with http.get(url, headers=BEARER) as stream:
            first = await _events(stream.content, lambda fs: len(fs) >= 2)
        async with http.get(url, headers={"Last-Event-ID": "0badc0de:1", **BEARER}) as other_run:
            assert [f["seq"] for f in await _events(other_run.content, lambda fs: len(fs) >= 2)] == [1, 2]
        async with http.get(f"{url}?since=99999", headers=BEARER) as later:
            assert [f["seq"] for f in await _events(later.content, lambda fs: len(fs) >= 2)] == [1, 2]
        async with http.get(url, headers={"Last-Event-ID": "x:y", **BEARER}) as bad:
            assert bad.status == 400
    assert [f["seq"] for f in first] == [1, 2]


async def test_readers_that_stop_reading_lose_their_slot(
    csms: StrictCentralSystem, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MAX_SUBSCRIBERS clients that open the stream and never read: once the frames fill their
    connections, each write times out, the connection is closed and the slot freed for a reader."""
    monkeypatch.setattr(frames_api, "WRITE_TIMEOUT_S", 0.3)  # 20 s in service
    port = free_port()
    path = "/api/v1/charge_points/CP-1/frames/stream"
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode()
    stalled: list[socket.socket] = []
    try:
        async with (
            running(with_api(make_config(csms.url, tmp_path), port)),
            aiohttp.ClientSession() as http,
        ):
            await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)
            for _ in range(MAX_SUBSCRIBERS):
                sock = socket.socket()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills after a few frames
                stalled.append(sock)
                sock.connect(("127.0.0.1", port))
                sock.sendall(request)
            url = f"http://127.0.0.1:{port}{path}"
            async with asyncio.timeout(5):
                while True:  # every slot taken by the stalled readers
                    async with http.get(url, headers=BEARER) as r:
                        if r.status == 503:
                            break
                    await asyncio.sleep(0.05)
            for _ in range(100):  # ~6 MB for each stalled reader: more than its socket buffers hold
                await csms.call("CP-1", call.DataTransfer(vendor_id="x", data="d" * 60_000))
            async with asyncio.timeout(5):  # a stalled reader's write timed out: its slot is free
                while True:
                    async with http.get(url, headers=BEARER) as r:
                        if r.status == 200:
                            break
                    await asyncio.sleep(0.1)
    finally:
        for sock in stalled:
            sock.close()
