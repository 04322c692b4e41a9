"""The last frames of one charge point's link, for the page's live log (GET .../frames, .../stream).

The session's endpoint hands every frame to `FrameRing.add` (bridge/ocpp/ports.py FrameSink) on the
event loop. Adding costs O(1) and never blocks: the text is masked as the frame log masks it
(bridge.log.redact_frame; a frame over MAX_FRAME_CHARS is kept as a note, never unmasked), its head
(type, message id, action) read by one regex, and the frame kept in a deque bounded by count and by
bytes of text. The JSON object a client sees is built only when one asks (`frame_json`), so a ring
nobody reads costs no parsing.

Live readers subscribe: each gets a bounded queue of its own; one that falls behind by more than
`max_waiting` frames is dropped (`Subscription.dropped`) rather than buffered without bound.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bridge.flag import Flag
from bridge.log import redact_frame

MAX_FRAMES = 500
MAX_BYTES = 512 * 1024
TOTAL_FRAMES = 16 * MAX_FRAMES  # the daemon's budget, shared when it runs more than 16 charge points
TOTAL_BYTES = 16 * MAX_BYTES
MIN_FRAMES, MIN_BYTES = 4, 4096
MAX_WAITING = 256  # frames queued for one live reader before it is dropped
MAX_SUBSCRIBERS = 16
MAX_FRAME_CHARS = 64 * 1024  # a longer frame is kept as its head and a note: masking it costs the loop
_OPEN_CALLS = 64  # CALLs whose answer is awaited, remembered to name a CALLRESULT's action

_TYPES = {"2": "CALL", "3": "CALLRESULT", "4": "CALLERROR"}
_OPPOSITE = {"in": "out", "out": "in"}  # an answer crosses the wire the other way from its CALL
# `[2,"id","Action"` / `[3,"id"` / `[4,"id","Code"`: only the head; the payload is parsed on demand.
_HEAD = re.compile(r'\s*\[\s*([234])\s*,\s*"((?:[^"\\]|\\.)*)"\s*(?:,\s*"((?:[^"\\]|\\.)*)")?')


@dataclass(slots=True)
class Frame:
    seq: int
    at: float  # epoch seconds
    direction: str  # "out": sent by the bridge, "in": received
    type: str | None  # CALL, CALLRESULT, CALLERROR; None: not an OCPP frame
    id: str | None
    action: str | None  # for an answer: the action of the CALL it answers, when still known
    text: str  # masked


class Subscription:
    """One live reader's queue: `frames()` after `wait()`; `dropped` once it fell too far behind."""

    __slots__ = ("_max", "_queue", "dropped", "flag", "on_dropped")

    def __init__(self, max_waiting: int) -> None:
        self._queue: deque[Frame] = deque()
        self._max = max_waiting
        self.dropped = False
        self.flag = Flag()
        # Called once when the reader falls too far behind: its stream closes its connection, since
        # a reader that stopped reading leaves its writer blocked, never seeing `dropped`.
        self.on_dropped: Callable[[], None] | None = None

    def push(self, frame: Frame) -> None:
        if self.dropped:
            return
        if len(self._queue) >= self._max:
            self.dropped = True
            self._queue.clear()
            if self.on_dropped is not None:
                self.on_dropped()
        else:
            self._queue.append(frame)
        self.flag.set()

    async def wait(self, timeout_s: float) -> bool:
        """Until a frame arrives, the reader is dropped or `timeout_s` passed; whether one did."""
        if not self._queue and not self.dropped:
            await self.flag.wait_at_most(timeout_s)
        self.flag.clear()
        return bool(self._queue) or self.dropped

    def close(self) -> None:
        """Ends the reader's stream (the daemon stops): its next `wait` returns at once."""
        self.dropped = True
        self._queue.clear()
        self.flag.set()

    def frames(self) -> list[Frame]:
        taken = list(self._queue)
        self._queue.clear()
        return taken


class FrameRing:
    def __init__(
        self,
        max_frames: int = MAX_FRAMES,
        max_bytes: int = MAX_BYTES,
        now: Callable[[], float] = time.time,
        max_waiting: int = MAX_WAITING,
    ) -> None:
        if max_frames < 1 or max_bytes < 1:
            raise ValueError(f"a frame ring needs room: max_frames={max_frames}, max_bytes={max_bytes}")
        self._frames: deque[Frame] = deque()
        self._max_frames = max_frames
        self._max_bytes = max_bytes
        self._bytes = 0
        self._now = now
        self._seq = 0
        # Names this ring's run in the stream's event ids (`<epoch>:<seq>`): after a restart seq
        # starts at 1 again, and a reader that resumes from an old id must start over, not wait.
        self.epoch = secrets.token_hex(4)
        # (direction of the CALL, its id) → action: both ends number their CALLs, and may reuse ids
        self._open_calls: dict[tuple[str, str], str] = {}
        self._subscribers: set[Subscription] = set()
        self._max_waiting = max_waiting

    def limit(self, max_frames: int, max_bytes: int) -> None:
        """New bounds (the daemon shares one budget among its charge points), applied from the next frame."""
        if max_frames < 1 or max_bytes < 1:
            raise ValueError(f"a frame ring needs room: max_frames={max_frames}, max_bytes={max_bytes}")
        self._max_frames, self._max_bytes = max_frames, max_bytes

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def bytes(self) -> int:
        """Characters of frame text kept (what `max_bytes` bounds)."""
        return self._bytes

    @property
    def last_seq(self) -> int:
        return self._seq

    def add(self, direction: str, text: str) -> None:
        """A frame crossed the wire (the session's FrameSink): kept, masked, and given to live readers."""
        if len(text) > MAX_FRAME_CHARS:  # its head still names it; its text is never shown
            head = _HEAD.match(text)
            text = f"<frame of {len(text)} characters not kept: the live log keeps up to {MAX_FRAME_CHARS}>"
        else:
            text = redact_frame(text)
            head = _HEAD.match(text)
        kind = ident = action = None
        if head is not None:
            kind, ident, third = _TYPES[head[1]], head[2], head[3]
            if kind == "CALL":
                action = third
                self._open_calls[direction, ident] = third
                if len(self._open_calls) > _OPEN_CALLS:  # answers that never came: forget the oldest
                    del self._open_calls[next(iter(self._open_calls))]
            else:
                action = self._open_calls.pop((_OPPOSITE.get(direction, direction), ident), None)
        self._seq += 1
        frame = Frame(self._seq, self._now(), direction, kind, ident, action, text)
        self._frames.append(frame)
        self._bytes += len(text)
        frames = self._frames
        while len(frames) > self._max_frames or (self._bytes > self._max_bytes and len(frames) > 1):
            self._bytes -= len(frames.popleft().text)
        for subscriber in self._subscribers:
            subscriber.push(frame)

    def since(self, seq: int = 0, limit: int | None = None) -> list[Frame]:
        """The kept frames newer than `seq`, oldest first; only the last `limit` of them if given."""
        frames = [f for f in self._frames if f.seq > seq]
        return frames if limit is None else frames[-limit:] if limit > 0 else []

    def subscribe(self) -> Subscription | None:
        """A live reader's queue (from the next frame on); None when MAX_SUBSCRIBERS already read.
        Dropped readers are not counted: their streams are ending."""
        self._subscribers = {s for s in self._subscribers if not s.dropped}
        if len(self._subscribers) >= MAX_SUBSCRIBERS:
            return None
        subscription = Subscription(self._max_waiting)
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)


def ring_share(charge_points: int) -> tuple[int, int]:
    """(max_frames, max_bytes) of each ring when `charge_points` share the daemon's budget: a few
    charge points keep 500 frames each; 5,000 keep a few each, not 2.5 GiB of frames."""
    n = max(charge_points, 1)
    frames = max(MIN_FRAMES, min(MAX_FRAMES, TOTAL_FRAMES // n))
    return frames, max(MIN_BYTES, min(MAX_BYTES, TOTAL_BYTES // n))


def iso_epoch(epoch: float) -> str:
    """Epoch seconds as the API writes times: 2026-12-07T10:00:00.123Z."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _payload(frame: Frame) -> Any:
    try:
        parsed = json.loads(frame.text)
    except ValueError:
        return {"text": frame.text}
    if not isinstance(parsed, list):
        return {"text": frame.text}
    if frame.type == "CALL" and len(parsed) > 3:
        return parsed[3]
    if frame.type == "CALLRESULT" and len(parsed) > 2:
        return parsed[2]
    if frame.type == "CALLERROR":
        keys = ("errorCode", "errorDescription", "errorDetails")
        return dict(zip(keys, parsed[2:5], strict=False))
    return {"text": frame.text}


def frame_json(frame: Frame) -> str:
    """The frame as the API's JSON object, on one line (docs/api.md)."""
    return json.dumps(
        {"seq": frame.seq, "at": iso_epoch(frame.at), "dir": frame.direction, "type": frame.type,
         "action": frame.action, "id": frame.id, "payload": _payload(frame)},
        separators=(",", ":"),
    )  # fmt: skip


def json_lines(frames: list[Frame]) -> Iterator[str]:
    for frame in frames:
        yield frame_json(frame) + "\n"
