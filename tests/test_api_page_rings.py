"""The page's rings in themselves: the frame ring (bounds, masking, the answer's action, live readers
dropped when slow), a connector's readings ring, and the login sessions. Time is passed, never slept."""

from __future__ import annotations

import json

import pytest

from bridge.api.auth import IDLE_S, MAX_SESSIONS, Sessions
from bridge.runtime.frame_ring import MAX_BYTES, MAX_FRAMES, FrameRing, frame_json, json_lines, ring_share
from bridge.runtime.readings_ring import ReadingsRing


def _ring(**kwargs: int) -> FrameRing:
    moments = iter(range(1_796_630_400, 1_796_630_400 + 10_000))
    return FrameRing(now=lambda: float(next(moments)), **kwargs)


def test_frames_become_the_api_objects_with_the_answered_action_and_secrets_masked() -> None:
    ring = _ring()
    ring.add("in", '[2,"c1","ChangeConfiguration",{"key":"AuthorizationKey","value":"0123456789abcdef"}]')
    ring.add("out", '[3,"c1",{"status":"Accepted"}]')
    ring.add(
        "out", '[2,"s1","StartTransaction",{"connectorId":1,"idTag":"ABC","meterStart":0,"timestamp":"x"}]'
    )
    ring.add("in", '[4,"s1","InternalError","boom",{}]')
    ring.add("in", "not json")
    lines = [json.loads(line) for line in json_lines(ring.since())]
    assert [(f["seq"], f["dir"], f["type"], f["action"], f["id"]) for f in lines] == [
        (1, "in", "CALL", "ChangeConfiguration", "c1"),
        (2, "out", "CALLRESULT", "ChangeConfiguration", "c1"),
        (3, "out", "CALL", "StartTransaction", "s1"),
        (4, "in", "CALLERROR", "StartTransaction", "s1"),
        (5, "in", None, None, None),
    ]
    assert lines[0]["payload"] == {"key": "AuthorizationKey", "value": "***"}
    assert "0123456789abcdef" not in "".join(json_lines(ring.since()))
    assert lines[1]["payload"] == {"status": "Accepted"}
    assert lines[3]["payload"] == {
        "errorCode": "InternalError",
        "errorDescription": "boom",
        "errorDetails": {},
    }
    assert lines[4]["payload"] == {"text": "not json"}
    assert lines[0]["at"] == "2026-12-07T08:00:00.000Z" and lines[1]["at"] == "2026-12-07T08:00:01.000Z"
    assert frame_json(ring.since()[0]) == json.dumps(lines[0], separators=(",", ":"))


def test_an_answer_names_the_call_of_the_other_direction_with_its_id() -> None:
    ring = _ring()
    ring.add("out", '[2,"1","Heartbeat",{}]')  # both ends may number their CALLs alike
    ring.add("in", '[2,"1","Reset",{"type":"Soft"}]')
    ring.add("out", '[3,"1",{"status":"Accepted"}]')  # answers the central system's Reset
    ring.add("in", '[3,"1",{"currentTime":"x"}]')  # answers the bridge's Heartbeat
    assert [f.action for f in ring.since()] == ["Heartbeat", "Reset", "Reset", "Heartbeat"]


def test_an_answer_to_a_call_no_longer_known_has_no_action() -> None:
    ring = _ring()
    ring.add("in", '[3,"never-sent",{}]')
    assert ring.since()[0].action is None


def test_the_ring_keeps_the_last_frames_by_count_and_by_bytes() -> None:
    ring = _ring(max_frames=3, max_bytes=10_000)
    for n in range(10):
        ring.add("out", f'[2,"{n}","Heartbeat",{{}}]')
    assert [f.seq for f in ring.since()] == [8, 9, 10] and ring.last_seq == 10
    assert [f.seq for f in ring.since(8)] == [9, 10] and [f.seq for f in ring.since(limit=1)] == [10]
    small = _ring(max_frames=100, max_bytes=100)
    for n in range(10):
        small.add("out", f'[2,"{n:02}","Heartbeat",{{}}]')  # 23 characters each
    assert len(small) == 4 and small.bytes == 92
    small.add("out", "x" * 500)  # one frame larger than the ring: kept alone
    assert len(small) == 1 and small.since()[0].seq == 11


def test_the_daemons_budget_is_shared_beyond_16_charge_points() -> None:
    assert ring_share(1) == ring_share(16) == (MAX_FRAMES, MAX_BYTES)
    frames, size = ring_share(5_000)
    assert frames * 5_000 <= 16 * MAX_FRAMES + 4 * 5_000 and size * 5_000 <= 16 * MAX_BYTES + 4096 * 5_000
    with pytest.raises(ValueError, match="max_frames=0"):
        FrameRing(max_frames=0)


async def test_a_live_reader_gets_new_frames_and_a_slow_one_is_dropped() -> None:
    ring = _ring(max_waiting=3)
    reader = ring.subscribe()
    assert reader is not None
    assert await reader.wait(0.01) is False  # nothing yet: the keepalive's turn
    ring.add("out", '[2,"a","Heartbeat",{}]')
    assert await reader.wait(1) is True and [f.seq for f in reader.frames()] == [1]
    for n in range(4):  # one more than it may have waiting
        ring.add("out", f'[2,"{n}","Heartbeat",{{}}]')
    assert reader.dropped and await reader.wait(1) is True and reader.frames() == []
    ring.unsubscribe(reader)
    ring.add("out", '[2,"b","Heartbeat",{}]')  # nobody listens: nothing waits anywhere
    assert len(ring) == 6


def test_subscribers_are_bounded() -> None:
    ring = _ring()
    readers = [ring.subscribe() for _ in range(16)]
    assert all(readers) and ring.subscribe() is None
    ring.unsubscribe(readers[0])  # type: ignore[arg-type]
    assert ring.subscribe() is not None


def test_readings_ring_keeps_one_point_per_5_s_for_10_minutes() -> None:
    ring = ReadingsRing()
    for second in range(0, 1_200):  # a reading every second for 20 minutes
        ring.add(1_000.0 + second, power_w=float(second), energy_wh=second * 2.0)
    points = ring.points(now=2_199.0)
    assert len(points) == 120 and points[0].at == 1_600.0 and points[-1].at == 2_195.0
    assert [p.at - q.at for p, q in zip(points[1:], points, strict=False)] == [5.0] * 119
    assert ring.points(now=5_000.0) == []  # nothing in the last 10 minutes
    few = ReadingsRing()
    few.add(10.0, power_w=None, energy_wh=5.0)  # a device without a power reading
    few.add(12.0, power_w=7.0, energy_wh=6.0)  # under 5 s later: not a point
    few.add(15.0, power_w=7.0, energy_wh=6.0)
    assert few.points(now=20.0) == [(10.0, None, 5.0), (15.0, 7.0, 6.0)]
    with pytest.raises(ValueError, match="every_s"):
        ReadingsRing(every_s=0)


def test_the_readings_ring_keeps_jittered_reads_and_follows_the_clock_back() -> None:
    ring = ReadingsRing()
    jittered = [1_002.5 + 5 * n + (0.2 if n % 2 else -0.2) for n in range(1, 21)]  # every 5 s ± 0.2
    for at in jittered:
        ring.add(at, power_w=1.0, energy_wh=2.0)
    assert [p.at for p in ring.points(now=1_101.0)] == jittered  # not one in two
    ring.add(500.0, power_w=3.0, energy_wh=4.0)  # the clock stepped back 10 minutes
    ring.add(505.0, power_w=5.0, energy_wh=6.0)
    assert ring.points(now=506.0) == [(500.0, 3.0, 4.0), (505.0, 5.0, 6.0)]


def test_login_sessions_expire_when_idle_and_are_bounded() -> None:
    now = [0.0]
    sessions = Sessions(now=lambda: now[0])
    sid, csrf = sessions.open()
    assert (
        sessions.csrf_of(sid) == csrf
        and sessions.csrf_of("forged") is None
        and sessions.csrf_of(None) is None
    )
    now[0] = IDLE_S - 1  # used just before it would expire: its idle time starts again
    assert sessions.csrf_of(sid) == csrf
    now[0] += IDLE_S + 1
    assert sessions.csrf_of(sid) is None and len(sessions) == 0
    first, _ = sessions.open()
    others = [sessions.open()[0] for _ in range(MAX_SESSIONS)]
    assert len(sessions) == MAX_SESSIONS and sessions.csrf_of(first) is None  # the oldest went
    assert all(sessions.csrf_of(s) for s in others)
    sessions.close(others[0])
    assert sessions.csrf_of(others[0]) is None
