"""The installer page's cost: the frame ring on the link's path, and the daemon's memory with the page
open and the live log streaming.

Run as `.venv/bin/python bench/page.py [--quick]` (or `make bench`; about a minute). Not a test: it
prints two tables. `--quick` (in `make test`) does each part briefly: it proves the benchmark still
runs; its figures mean little.

1. Frames/s: a mix of realistic frames (MeterValues with 3 phases, its empty CALLRESULT,
   StatusNotification, Heartbeat, a ChangeConfiguration of the AuthorizationKey) goes through what the
   RPC layer does for each frame anyway (encode the frame, `log_frame` with the frame log off), the
   baseline, and through the same plus `FrameRing.add` (masking, the head's regex, the bounded deque),
   in turns, in one process. Then, each in a fresh process, VmRSS before and after 1 and 16 full rings
   (the daemon's budget: 16 rings of 500 frames / 512 KiB; beyond 16 charge points they share it).
2. The daemon's RSS: two daemons (`python -m bridge.cli run`, one simulated charger each, meter values
   every second) run the same charging sessions, driven through the API, against the strict central
   system, for T seconds. One has the page open: index.html and its files fetched, the status polled
   every 2 s and the frames streamed over Server-Sent Events; the other has nobody looking. Their VmRSS
   at the end, and the difference. Target: the page adds under 5 MiB.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the repository: bridge, tests
import aiohttp  # noqa: E402

from bridge.log import log_frame  # noqa: E402
from bridge.ocpp.wire import encode  # noqa: E402
from bridge.runtime.frame_ring import FrameRing  # noqa: E402
from tests.csms import StrictCentralSystem  # noqa: E402
from tests.processes import free_port, start_daemon, stop_process, vmrss_mib  # noqa: E402

TARGET_PAGE_MIB = 5.0
_PHASES = ("L1", "L2", "L3")
_SAMPLE = [
    *({"value": "230.1", "measurand": "Voltage", "phase": p, "unit": "V"} for p in _PHASES),
    *({"value": "16.02", "measurand": "Current.Import", "phase": p, "unit": "A"} for p in _PHASES),
    {"value": "12368412", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
    {"value": "11040", "measurand": "Power.Active.Import", "unit": "W"},
]


def frame_mix() -> list[list[Any]]:
    """One round of a charging link's traffic: mostly meter values and their answers."""
    stamp = "2026-12-07T10:00:00.000Z"
    frames: list[list[Any]] = []
    for n in range(8):
        frames.append([2, f"mv-{n}", "MeterValues", {"connectorId": 1, "transactionId": 17,
                       "meterValue": [{"timestamp": stamp, "sampledValue": _SAMPLE}]}])  # fmt: skip
        frames.append([3, f"mv-{n}", {}])
    frames.append(
        [2, "st", "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Charging"}]
    )
    frames.append([3, "st", {}])
    frames.append([2, "hb", "Heartbeat", {}])
    frames.append([3, "hb", {"currentTime": stamp}])
    frames.append(
        [2, "ck", "ChangeConfiguration", {"key": "AuthorizationKey", "value": "00112233445566778899"}]
    )
    frames.append([3, "ck", {"status": "Accepted"}])
    return frames


def frames_per_second(n: int, with_ring: bool) -> float:
    mix = frame_mix()
    ring = FrameRing()
    sink = ring.add
    began = time.perf_counter()
    for i in range(n):
        frame = mix[i % len(mix)]
        text = encode(frame)  # what RpcEndpoint._send does for every frame
        log_frame("CP-1", "->", text)
        if with_ring:
            sink("out", text)
    return n / (time.perf_counter() - began)


_RSS_CHILD = textwrap.dedent("""
    import gc, json, sys
    sys.path.insert(0, {repo!r})
    from bridge.ocpp.wire import encode
    from bridge.runtime.frame_ring import FrameRing
    from tests.processes import vmrss_mib
    sys.path.insert(0, {bench!r})
    from page import frame_mix
    texts = [encode(f) for f in frame_mix()]
    gc.collect()
    before = vmrss_mib()
    rings = [FrameRing() for _ in range({rings})]
    for ring in rings:
        for i in range(2000):  # 4 times what a ring keeps: it is full and has evicted
            ring.add("out" if i % 2 else "in", texts[i % len(texts)])
    gc.collect()
    print(json.dumps({{"mib": vmrss_mib() - before, "frames": sum(len(r) for r in rings),
                       "text_kib": sum(r.bytes for r in rings) / 1024}}))
""")


def ring_rss(rings: int) -> dict[str, float]:
    code = _RSS_CHILD.format(repo=str(REPO), bench=str(REPO / "bench"), rings=rings)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    result: dict[str, float] = json.loads(out.stdout)
    return result


def _config(folder: Path, cp_id: str, csms_url: str, port: int) -> Path:
    path = folder / f"{cp_id}.yaml"
    path.write_text(
        f"state_dir: {folder / cp_id}\n"
        f"api: {{listen: '127.0.0.1:{port}'}}\n"
        "charge_points:\n"
        f"  - id: {cp_id}\n"
        f"    csms_url: {csms_url}\n"
        "    reconnect: {initial_s: 0.2, max_s: 1}\n"
        "    ocpp: {MessageTimeout: 5, WebSocketPingInterval: 0, MeterValueSampleInterval: 1}\n"
        "    connectors: [{id: 1, charger: {type: simulated}}]\n"
    )
    return path


async def _ready(http: aiohttp.ClientSession, base: str) -> None:
    async with asyncio.timeout(30):
        while True:
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"{base}/api/v1/status") as r:
                    if r.status == 200 and (await r.json())["charge_points"][0]["accepted"]:
                        return
            await asyncio.sleep(0.2)


async def _sessions(
    http: aiohttp.ClientSession, cs: StrictCentralSystem, base: str, cp_id: str, until: float
) -> int:
    """Charging sessions, one after the other, until `until` (monotonic): plug, tap, charge, unplug."""
    sim = f"{base}/api/v1/charge_points/{cp_id}/connectors/1/sim"
    count = 0
    while time.monotonic() < until:
        count += 1
        for body in ({"action": "plug"}, {"action": "tap", "id_tag": f"TAG-{count}"}):
            async with http.post(sim, json=body) as r:
                assert r.status == 200
        await cs.wait_for_call(
            cp_id, "StartTransaction", lambda p, c=count: p["idTag"] == f"TAG-{c}", timeout=10
        )
        await asyncio.sleep(min(3.0, max(until - time.monotonic(), 0.5)))  # meter values every second
        async with http.post(sim, json={"action": "unplug"}) as r:
            assert r.status == 200
        await cs.wait_until(lambda c=count: len(cs.calls(cp_id, "StopTransaction")) >= c, timeout=10)
    return count


async def _page(http: aiohttp.ClientSession, base: str, cp_id: str, until: float) -> int:
    """What the open page does: its files once, the status every 2 s, the live log streamed."""
    async with http.get(f"{base}/") as r:
        await r.read()
    for name in ("app.js", "app.css"):
        async with http.get(f"{base}/static/{name}") as r:
            await r.read()
    events = 0

    async def poll() -> None:
        while time.monotonic() < until:
            async with http.get(f"{base}/api/v1/status") as r:
                await r.read()
            await asyncio.sleep(2)

    poller = asyncio.create_task(poll())
    async with http.get(f"{base}/api/v1/charge_points/{cp_id}/frames/stream") as stream:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(until - time.monotonic(), 0.1)):
                async for line in stream.content:
                    events += line.startswith(b"event: frame")
    await poller
    return events


async def daemon_rss(seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        async with StrictCentralSystem() as cs:
            ports = {"PAGE-OFF": free_port(), "PAGE-ON": free_port()}
            procs = {cp: await start_daemon(_config(folder, cp, cs.url, port), folder / f"{cp}.log")
                     for cp, port in ports.items()}  # fmt: skip
            try:
                async with aiohttp.ClientSession() as http:
                    bases = {cp: f"http://127.0.0.1:{port}" for cp, port in ports.items()}
                    for base in bases.values():
                        await _ready(http, base)
                    start = {cp: vmrss_mib(p.pid) for cp, p in procs.items()}
                    until = time.monotonic() + seconds
                    results = await asyncio.gather(
                        *(_sessions(http, cs, bases[cp], cp, until) for cp in bases),
                        _page(http, bases["PAGE-ON"], "PAGE-ON", until + 1),
                    )
                    end = {cp: vmrss_mib(p.pid) for cp, p in procs.items()}
            finally:
                for proc in procs.values():
                    await stop_process(proc)
    return {"start_off": start["PAGE-OFF"], "start_on": start["PAGE-ON"], "end_off": end["PAGE-OFF"],
            "end_on": end["PAGE-ON"], "sessions": float(results[0]), "events": float(results[2])}  # fmt: skip


async def main(quick: bool) -> int:
    n = 20_000 if quick else 300_000
    base_rates, ring_rates = [], []
    for _ in range(1 if quick else 3):  # in turns: the machine's state weighs on both alike
        base_rates.append(frames_per_second(n, with_ring=False))
        ring_rates.append(frames_per_second(n, with_ring=True))
    base, ring = max(base_rates), max(ring_rates)
    per_frame_us = (1 / ring - 1 / base) * 1e6
    print(f"frames/s, {n} frames of a charging link's mix, best of {len(base_rates)}")
    print(f"  {'encode + log_frame (baseline)':34} {base:>12,.0f}")
    print(f"  {'the same + FrameRing.add':34} {ring:>12,.0f}   (+{per_frame_us:.1f} µs a frame)")
    for rings in (1, 16):
        m = ring_rss(rings)
        print(f"  RSS of {rings:>2} full ring(s): +{m['mib']:.2f} MiB ({m['frames']:.0f} frames, "
              f"{m['text_kib']:.0f} KiB of text)")  # fmt: skip
    seconds = 4.0 if quick else 45.0
    r = await daemon_rss(seconds)
    growth = r["end_on"] - r["end_off"]
    print(
        f"daemon RSS (MiB), {seconds:g} s of charging sessions ({r['sessions']:.0f} each), meter values 1/s"
    )
    print(f"  {'':28} {'start':>8} {'end':>8}")
    print(f"  {'nobody looking':28} {r['start_off']:>8.1f} {r['end_off']:>8.1f}")
    print(f"  {'page open, log streaming':28} {r['start_on']:>8.1f} {r['end_on']:>8.1f}   "
          f"({r['events']:.0f} frames streamed)")  # fmt: skip
    verdict = "ok" if growth < TARGET_PAGE_MIB else "OVER"
    print(f"  the page adds {growth:+.1f} MiB (target < {TARGET_PAGE_MIB:g} MiB): {verdict}")
    if r["events"] < 1:
        print("error: the stream carried no frame", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="each part briefly (make test)")
    sys.exit(asyncio.run(main(parser.parse_args().quick)))
