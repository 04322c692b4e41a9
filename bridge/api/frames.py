"""The page's live OCPP log: a charge point's recent frames as JSON lines, or pushed as Server-Sent
Events (bridge/runtime/frame_ring.py keeps them; docs/api.md)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from bridge.api.common import charge_point_of, error
from bridge.runtime.frame_ring import Frame, Subscription, frame_json, json_lines

KEEPALIVE_S = 15.0
WRITE_TIMEOUT_S = 20.0  # a reader that takes no bytes for this long is gone: its slot is freed
STREAMS: web.AppKey[set[Subscription]] = web.AppKey("streams")  # ended when the API stops


def _positive(request: web.Request, name: str) -> int | None:
    """The query parameter `name` as a non-negative integer, None when absent; ValueError otherwise."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    value = int(raw)
    if value < 0:
        raise ValueError(raw)
    return value


async def frames(request: web.Request) -> web.Response:
    cp = charge_point_of(request)
    try:
        limit = _positive(request, "limit")
    except ValueError:
        return error(400, "limit must be a positive integer")
    body = "".join(json_lines(cp.frames.since(0, limit))).encode()
    return web.Response(
        body=body,
        content_type="application/x-ndjson",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="frames-{cp.cfg.id}.jsonl"',
                 "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )  # fmt: skip


def _event(epoch: str, frame: Frame) -> bytes:
    return f"id: {epoch}:{frame.seq}\nevent: frame\ndata: {frame_json(frame)}\n\n".encode()


def _resume_from(request: web.Request, epoch: str, last_seq: int) -> int:
    """The seq a stream resumes after: `since`, else the EventSource's Last-Event-ID (`<epoch>:<seq>`,
    or a bare seq). An id of another run (the bridge restarted) or a seq beyond the ring's last one
    starts over from 0: waiting for that seq would leave the log silent. ValueError when malformed."""
    since = _positive(request, "since")
    if since is None:
        epoch_of, _, seq = request.headers.get("Last-Event-ID", "").rpartition(":")
        since = max(int(seq or 0), 0)
        if epoch_of and epoch_of != epoch:
            since = 0
    return 0 if since > last_seq else since


async def _write(response: web.StreamResponse, data: bytes) -> None:
    async with asyncio.timeout(WRITE_TIMEOUT_S):
        await response.write(data)


async def stream(request: web.Request) -> web.StreamResponse:
    cp = charge_point_of(request)
    ring = cp.frames
    try:
        since = _resume_from(request, ring.epoch, ring.last_seq)
    except ValueError:
        return error(400, "since must be the seq of a frame (a non-negative integer)")
    reader = ring.subscribe()  # before the backlog is taken: no frame falls between the two
    if reader is None:
        return error(503, f"too many live logs of {cp.cfg.id} are open")
    streams = request.app[STREAMS]
    streams.add(reader)
    transport = request.transport
    if transport is not None:  # a reader too far behind is blocked in a write: closing ends it
        reader.on_dropped = transport.close
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-store",
        "X-Accel-Buffering": "no",  # nginx: pass each event on at once
    })  # fmt: skip
    try:
        await response.prepare(request)
        last = since
        backlog = ring.since(since)
        if backlog:
            await _write(response, b"".join(_event(ring.epoch, f) for f in backlog))
            last = backlog[-1].seq
        else:
            await _write(response, b": connected\n\n")
        while True:
            if not await reader.wait(KEEPALIVE_S):
                await _write(response, b": keepalive\n\n")
                continue
            if reader.dropped:  # too slow for the traffic, or the API stops: its EventSource reconnects
                break
            new = [f for f in reader.frames() if f.seq > last]
            if new:
                await _write(response, b"".join(_event(ring.epoch, f) for f in new))
                last = new[-1].seq
    except (ConnectionResetError, ConnectionError):
        pass  # the browser went away
    except TimeoutError:  # it stopped reading: its connection is closed, its slot freed
        if transport is not None:
            transport.close()
    finally:
        ring.unsubscribe(reader)
        streams.discard(reader)
    return response


async def end_streams(app: web.Application) -> None:
    """on_shutdown: every open stream ends now, not after aiohttp's shutdown timeout."""
    streams: set[Subscription] = app[STREAMS]
    for reader in list(streams):
        reader.close()
