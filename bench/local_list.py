"""The local authorization list at 10,000 entries: a Full SendLocalList, the load at start, a lookup,
the memory it takes.

Run as `.venv/bin/python bench/local_list.py [-n RUNS] [--entries N] [--quick]` (or `make bench`; about
half a minute with the defaults). Not a test: it prints a table. `--quick` (in `make test`) does
everything once with 1,000 entries: it proves the benchmark still runs; its figures mean nothing.

Each figure stands beside a baseline measured in the same run:
  - SendLocalList Full of N entries (idTag, status, some with an expiryDate and a parentIdTag), from
    the frame sent to its CALLRESULT received, by a bare websockets central system in this process
    talking to the daemon (in this process too, `bridge.daemon.Daemon`, its store on disk); the
    baseline is GetLocalListVersion on the same link (the round trip without the list). The median of
    the runs, each a new list version; the target is < 1 s.
  - The load at start: `Store.stored_states` for the charge point, then `Authorizer.restore` building
    the list, on a fresh Store over the daemon's file; the baseline is the same for a charge point
    with no list. Target < 0.2 s.
  - A lookup: `LocalList.get` of N tags (hits in another case, and misses), each timed alone with
    perf_counter_ns; median and p99. Baseline: `dict.get` of the case-folded key. Target < 0.05 ms.
  - Memory: in a fresh process, VmRSS before and after N entries are built into a `LocalList` (the
    rows they came from freed), and tracemalloc's count of what the list holds; baseline: the same
    strings in a plain dict. Target < 10 MiB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the repository: bench, bridge, tests
from bridge.config import load_config  # noqa: E402
from bridge.core.config_keys import IMPLEMENTED_FEATURES, Configuration  # noqa: E402
from bridge.core.local_list import LocalList  # noqa: E402
from bridge.daemon import Daemon  # noqa: E402
from bridge.runtime.authorizer import Authorizer  # noqa: E402
from bridge.store import Store  # noqa: E402
from tests.helpers.bare_csms import BareCentralSystem, Call  # noqa: E402

CP = "BENCH-1"
TARGET_SEND_S, TARGET_LOAD_S, TARGET_LOOKUP_MS, TARGET_RSS_MIB = 1.0, 0.2, 0.05, 10.0


def list_entries(n: int, prefix: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(n):
        info: dict[str, Any] = {"status": "Accepted" if i % 10 else "Blocked"}
        if i % 3 == 0:
            info["expiryDate"] = "2030-01-01T00:00:00.000Z"
        if i % 5 == 0:
            info["parentIdTag"] = f"FLEET-{i % 50}"
        out.append({"idTag": f"{prefix}{i:07d}", "idTagInfo": info})
    return out


class CentralSystem(BareCentralSystem):
    """The bare central system: answers the charge point's calls at once, sends ours and times them."""

    def __init__(self) -> None:
        super().__init__()
        self.ready = asyncio.Event()
        self.answers: dict[str, asyncio.Future[tuple[float, Any]]] = {}

    def answered(self, call: Call, at: float) -> None:
        if call.action == "StatusNotification" and call.payload["connectorId"] == 1:
            self.ready.set()

    def result(self, cp_id: str, unique_id: str, payload: Any, arrived: float) -> None:
        if unique_id in self.answers:
            self.answers.pop(unique_id).set_result((arrived, payload))

    async def timed_call(self, unique_id: str, action: str, payload: dict[str, Any]) -> tuple[float, Any]:
        """Seconds from the CALL's send to its CALLRESULT's arrival (the JSON encoding not counted)."""
        frame = json.dumps([2, unique_id, action, payload])
        self.answers[unique_id] = asyncio.get_running_loop().create_future()
        sent = time.perf_counter()
        await self.links[CP].send(frame)
        at, answer = await self.answers[unique_id]
        return at - sent, answer


async def wire_figures(work: Path, n: int, runs: int) -> tuple[list[float], list[float]]:
    cs = CentralSystem()
    await cs.start()
    try:
        cfg_file = work / "config.yaml"
        cfg_file.write_text(json.dumps({
            "state_dir": str(work / "state"),
            "charge_points": [{"id": CP, "csms_url": cs.url,
                               "ocpp": {"WebSocketPingInterval": 0},
                               "connectors": [{"id": 1, "charger": {"type": "simulated"}}]}],
        }))  # fmt: skip
        daemon = Daemon(load_config(cfg_file))
        task = asyncio.create_task(daemon.run())
        try:
            await asyncio.wait_for(cs.ready.wait(), 30)
            sends, baseline = [], []
            for run in range(runs):
                took, answer = await cs.timed_call(f"full-{run}", "SendLocalList", {
                    "listVersion": run + 1, "updateType": "Full",
                    "localAuthorizationList": list_entries(n, f"R{run}-"),
                })  # fmt: skip
                assert answer == {"status": "Accepted"}, answer
                sends.append(took)
                took, answer = await cs.timed_call(f"version-{run}", "GetLocalListVersion", {})
                assert answer == {"listVersion": run + 1}, answer
                baseline.append(took)
        finally:
            daemon.stop()
            await asyncio.wait_for(task, 30)
    finally:
        await cs.stop()
    return sends, baseline


def configuration() -> Configuration:
    return Configuration(
        features=IMPLEMENTED_FEATURES,
        fixed={"NumberOfConnectors": "1", "SupportedFeatureProfiles": "Core,LocalAuthListManagement",
               "ConnectorSwitch3to1PhaseSupported": "false"},
    )  # fmt: skip


class NoLink:
    online = False


async def load_figures(work: Path, runs: int) -> tuple[list[float], list[float], Authorizer]:
    loads, baseline = [], []
    auth: Authorizer | None = None
    for _ in range(runs):
        store = Store.open(work / "state")
        try:
            for cp, into in ((CP, loads), ("NO-LIST", baseline)):
                started = time.perf_counter()
                stored = (await store.run(store.stored_states, [cp], 200))[cp]
                fresh = Authorizer(cp, configuration(), None, store, NoLink())  # type: ignore[arg-type]
                await fresh.restore(stored.cache_entries, stored.local_list)
                into.append(time.perf_counter() - started)
                if cp == CP:
                    auth = fresh
        finally:
            store.close()
    assert auth is not None
    return loads, baseline, auth


def lookup_figures(lst: LocalList, n: int, prefix: str) -> tuple[list[float], list[float]]:
    probes = [f"{prefix}{i:07d}".lower() for i in range(0, n, 2)] + [f"MISS{i:07d}" for i in range(n // 2)]
    plain = {e[0].casefold(): e for e in lst.entries()}
    got, base = [], []
    clock = time.perf_counter_ns
    for tag in probes:
        t0 = clock()
        lst.get(tag)
        t1 = clock()
        plain.get(tag.casefold())
        t2 = clock()
        got.append((t1 - t0) / 1e6)
        base.append((t2 - t1) / 1e6)
    return got, base


MEMORY = textwrap.dedent("""
    import gc, json, sys, tracemalloc
    sys.path.insert(0, sys.argv[1])
    from bridge.clock import parse_iso
    from bridge.core.authorization import IdTagInfo
    from bridge.core.local_list import LocalList

    def rss():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024

    n, what = int(sys.argv[2]), sys.argv[3]
    gc.collect()
    before = rss()
    tracemalloc.start()
    expiry = "2030-01-01T00:00:00+00:00"
    rows = [(f"T-{i:07d}", "Accepted" if i % 10 else "Blocked", expiry if i % 3 == 0 else None,
             f"FLEET-{i % 50}" if i % 5 == 0 else None) for i in range(n)]
    if what == "list":
        held = LocalList(n, ((t, IdTagInfo(s, parse_iso(e) if e else None, p)) for t, s, e, p in rows))
    else:
        held = {t.casefold(): t for t, _, _, _ in rows}
    del rows
    gc.collect()
    print(json.dumps({"rss": rss() - before, "traced": tracemalloc.get_traced_memory()[0] / 1048576}))
""")


def memory(n: int, what: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", MEMORY, str(REPO), str(n), what], capture_output=True,
                         text=True, check=True, timeout=120)  # fmt: skip
    result: dict[str, float] = json.loads(out.stdout)
    return result


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:8.1f} ms"


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def verdict(value: float, target: float) -> str:
    return "met" if value < target else "NOT MET"


async def main(runs: int, n: int, quick: bool) -> int:
    with tempfile.TemporaryDirectory(prefix="bench-local-list-") as tmp:
        work = Path(tmp)
        sends, round_trip = await wire_figures(work, n, runs)
        loads, empty_loads, auth = await load_figures(work, runs)
    lookups, dict_gets = lookup_figures(auth.local_list, n, f"R{runs - 1}-")
    mem_list, mem_dict = memory(n, "list"), memory(n, "dict")
    send_s, load_s = statistics.median(sends), statistics.median(loads)
    p50, p99 = statistics.median(lookups), pct(lookups, 0.99)
    print(f"local list, {n:,} entries, {runs} run(s){' (quick: the figures mean nothing)' if quick else ''}")
    base_p50, base_p99 = statistics.median(dict_gets) * 1000, pct(dict_gets, 0.99) * 1000
    rows = [
        ("SendLocalList Full, frame out -> answer in", ms(sends), f"GetLocalListVersion {ms(round_trip)}",
         f"< {TARGET_SEND_S:.0f} s", verdict(send_s, TARGET_SEND_S)),
        ("load at start (stored_states + restore)", ms(loads), f"no list {ms(empty_loads)}",
         f"< {TARGET_LOAD_S} s", verdict(load_s, TARGET_LOAD_S)),
        ("lookup (LocalList.get), median / p99", f"{p50 * 1000:.2f} / {p99 * 1000:.2f} us",
         f"dict.get {base_p50:.2f} / {base_p99:.2f} us", f"< {TARGET_LOOKUP_MS} ms",
         verdict(p99, TARGET_LOOKUP_MS)),
        ("RSS the list adds (traced)", f"{mem_list['rss']:.1f} MiB ({mem_list['traced']:.1f})",
         f"dict of the tags {mem_dict['rss']:.1f} MiB ({mem_dict['traced']:.1f})",
         f"< {TARGET_RSS_MIB:.0f} MiB",
         verdict(mem_list["rss"], TARGET_RSS_MIB)),
    ]  # fmt: skip
    for what, figure, baseline, target, met in rows:
        print(f"  {what:<44} {figure:>18}   baseline {baseline:<36} target {target:<9} {met}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", "--runs", type=int, default=5)
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    runs, entries = (1, 1000) if args.quick else (args.runs, args.entries)
    sys.exit(asyncio.run(main(runs, entries, args.quick)))
