"""What a reporting target (`report_to:`, docs/reporting.md) costs the primary: the store's time per
transaction message, the primary's MeterValues latency with a target up or down, and memory.

Run as `.venv/bin/python bench/reporting.py [-n RUNS] [--messages N] [--seconds S] [--quick]` (about
three minutes with the defaults; or `make bench`). Not a test: it prints a table, each figure beside
its baseline measured in the same run. `--quick` (in `make test`) does every part once, briefly: it
proves the benchmark still runs; its figures mean nothing.

  (a) the store: one transaction (StartTransaction, N MeterValues, StopTransaction) through the
      daemon's own `bridge.outbox.TransactionMessages` into a fresh `bridge.store.Store`, one durable
      commit per message as the daemon writes them, with 0, 1 and 2 targets' queues attached
      (`bridge.outbox.reports.ReportMessages`: their copies are written in the same commit); nothing
      sends. Messages/s and ms per message over the whole transaction; RUNS runs of each, the counts
      interleaved (0, 1, 2, 0, 1, 2, ...), the median.
  (b) end to end: `python -m bridge.cli run` (a subprocess) with one charge point of CONNECTORS
      simulated chargers, plugged at start and charging by `free_vend_id_tag`, MeterValueSampleInterval
      1 s (AllowOfflineTxForUnknownId: the plug is seen before the link is up), against a bare
      websockets central system in this process (no `ocpp` routing; it answers every CALL at once).
      Latency of each of the primary's MeterValues: the sample's timestamp (the daemon stamps it when
      the reading is taken) -> its arrival here (same host, same clock); median, p95 and max, with no
      target, with one target up (a second such server), and with one target down (its URL on a port
      that refuses connections, tests/processes.py dead_port). Each scenario runs ROUNDS times, the
      three in turns, S seconds in all, each run's first WARMUP_S not counted. The target's outage
      must cost the primary nothing.
  (c) memory: the daemon's VmRSS with CPS idle charge points and 0, 1, 2 targets each (all up),
      SETTLE_S after every BootNotification (the primary's and each target's) arrived.
Targets: a target adds at most +30 % to the store's time per message; the primary's p95 latency with a
target down at most +10 ms over none.

Every process is stopped by its pid: SIGTERM, then SIGKILL after 5 s (tests/processes.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the repository: bridge, adapters, bench, tests
from adapters.base import ChargerReading  # noqa: E402
from bridge.clock import iso, parse_iso  # noqa: E402
from bridge.core.meter_values import sampled_values  # noqa: E402
from bridge.outbox import Outbox, TransactionMessages  # noqa: E402
from bridge.outbox.reports import ReportMessages  # noqa: E402
from bridge.store import Store  # noqa: E402
from bridge.store.reporting import target_key  # noqa: E402
from tests.helpers.bare_csms import BareCentralSystem, Call  # noqa: E402
from tests.processes import dead_port, start_daemon, stop_process, vmrss_mib  # noqa: E402

CP_ID = "BENCH-1"
ID_TAG = "BENCH-TAG"
TARGET_STORE_PCT = 30.0  # one target adds at most this much to the store's time per message
TARGET_DOWN_P95_MS = 10.0  # the primary's p95 latency with a target down, at most this much over none
MEASURANDS = ["Energy.Active.Import.Register", "Power.Active.Import", "Current.Import"]
SAMPLE_INTERVAL_S = 10  # between the MeterValues of (a)'s transaction; each target takes every one
WARMUP_S, QUICK_WARMUP_S = 2.0, 0.0  # (b): samples taken this soon after the first start are not counted
ROUNDS = 3  # (b): each scenario runs this many times, in turns, its seconds shared among them
SETTLE_S, QUICK_SETTLE_S = 3.0, 0.3
START_TIMEOUT_S = 30.0
QUICK = {"runs": 1, "messages": 20, "seconds": 1.5, "connectors": 1, "cps": 2}
FULL = {"runs": 7, "messages": 300, "seconds": 45.0, "connectors": 4, "cps": 10}


# -- (a) the store ---------------------------------------------------------------------------


class _NoSender:
    """TransactionMessages attaches its outbox to a session; here nothing sends."""

    def attach(self, durable: Outbox) -> None:
        pass


def _reading(energy_wh: float) -> ChargerReading:
    return ChargerReading(plugged=True, ev_requesting=True, energy_allowed=True,
                          energy_wh=round(energy_wh, 1), power_w=11_040.0,
                          current_a=(16.0, 16.0, 16.0))  # fmt: skip


async def store_run(state_dir: Path, targets: int, n: int) -> float:
    """Seconds per message of one transaction of n + 2 messages with `targets` queues attached."""
    store = Store.open(state_dir)
    try:
        messages = TransactionMessages(CP_ID, store, _NoSender(), 1_000_000, lambda *_: None, lambda *_: None)
        for k in range(targets):
            key = target_key(CP_ID, f"REPORT-{k}", f"ws://target-{k}.example/ocpp")
            copy = ReportMessages(key, store, 1_000_000, lambda: SAMPLE_INTERVAL_S)
            await copy.restore()
            messages.copies.append(copy)
        await messages.restore()
        tx = store.next_transaction_id()
        started = datetime.now(UTC).replace(microsecond=0)
        energy = 1_234_567.0
        began = time.perf_counter()
        await messages.start(tx, 1, ID_TAG, int(energy), iso(started))
        for k in range(1, n + 1):
            reading = _reading(energy)
            energy += 11_040.0 * SAMPLE_INTERVAL_S / 3600
            at = iso(started + timedelta(seconds=SAMPLE_INTERVAL_S * k))
            sampled = sampled_values(reading, MEASURANDS, "Sample.Periodic")
            await messages.meter_values(tx, 1, reading.energy_wh, at, sampled)
        at = iso(started + timedelta(seconds=SAMPLE_INTERVAL_S * (n + 1)))
        await messages.stop(tx, int(energy), at, "Local", ID_TAG)
        elapsed = time.perf_counter() - began
        # Every queue took every message: the figure is of the work asked for.
        queued = [messages.outbox.pending(), *(c.outbox.pending() for c in messages.copies)]
        if queued != [n + 2] * (targets + 1):
            raise RuntimeError(f"store: {targets} targets: queued {queued}, expected {n + 2} in each")
    finally:
        await asyncio.to_thread(store.close)
    return elapsed / (n + 2)


async def store_costs(workdir: Path, runs: int, n: int) -> dict[int, list[float]]:
    costs: dict[int, list[float]] = defaultdict(list)
    await store_run(workdir / "store-warm-up", 1, min(n, 20))  # not counted: imports, page cache
    for run in range(runs):
        for targets in (0, 1, 2):
            costs[targets].append(await store_run(workdir / f"store-{run}-{targets}", targets, n))
    return costs


# -- the central systems ---------------------------------------------------------------------


@dataclass
class Seen:
    """What one charge point id (a primary's or a target's link) sent."""

    boots: int = 0
    starts: list[float] = field(default_factory=list)  # arrival, time.time()
    samples: list[tuple[float, str]] = field(default_factory=list)  # (arrival, the sample's timestamp)


class CentralSystem(BareCentralSystem):
    """The bare central system, recording what each id sent."""

    def __init__(self) -> None:
        super().__init__(clock=time.time, compression=None, ping_interval=None)
        self.seen: dict[str, Seen] = defaultdict(Seen)

    def reset(self) -> None:
        self.seen.clear()

    def record(self, call: Call) -> None:
        seen = self.seen[call.cp_id]
        if call.action == "BootNotification":
            seen.boots += 1
        elif call.action == "StartTransaction":
            seen.starts.append(call.arrived)
        elif call.action == "MeterValues":
            for value in call.payload.get("meterValue", []):
                seen.samples.append((call.arrived, value["timestamp"]))

    async def wait(self, condition: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            await asyncio.sleep(0.02)


# -- (b) end to end, (c) memory ----------------------------------------------------------------


def _config(workdir: Path, name: str, primary: str, cps: int, connectors: int, targets: list[str],
            charging: bool) -> Path:  # fmt: skip
    def cp(n: int) -> dict[str, Any]:
        cp_id = CP_ID if cps == 1 else f"BENCH-{n}"
        return {
            "id": cp_id,
            "csms_url": primary,
            # The plug is seen before the link is up: the free-vend tag may start a session offline.
            "ocpp": {"MeterValueSampleInterval": 1, "WebSocketPingInterval": 0,
                     "AllowOfflineTxForUnknownId": True},
            **({"free_vend_id_tag": ID_TAG} if charging else {}),
            "report_to": [{"csms_url": url, "id": f"{cp_id}-R{k}"} for k, url in enumerate(targets)],
            "connectors": [{"id": c, "charger": {"type": "simulated", "plugged": charging}}
                           for c in range(1, connectors + 1)],
        }  # fmt: skip

    doc = {"state_dir": str(workdir / f"state-{name}"), "api": {"listen": None},
           "charge_points": [cp(n) for n in range(1, cps + 1)]}  # fmt: skip
    path = workdir / f"{name}.yaml"
    path.write_text(json.dumps(doc))  # JSON is YAML
    return path


@dataclass
class Latency:
    samples_ms: list[float]
    reported: int  # MeterValues the target got (0 unless it is up)

    def stat(self, p: float) -> float:
        ordered = sorted(self.samples_ms)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else float("nan")


async def latency_run(primary: CentralSystem, workdir: Path, name: str, targets: list[str], connectors: int,
                      seconds: float, warmup_s: float) -> Latency:  # fmt: skip
    primary.reset()
    config = _config(workdir, name, primary.url, 1, connectors, targets, charging=True)
    proc = await start_daemon(config, workdir / f"{name}.log", "--log-level", "WARNING")
    try:
        seen = primary.seen[CP_ID]
        await primary.wait(lambda: len(seen.starts) >= connectors, START_TIMEOUT_S, f"{name}: the starts")
        counted_from = seen.starts[0] + warmup_s
        await asyncio.sleep(warmup_s + seconds)
        if proc.returncode is not None:
            raise RuntimeError(f"{name}: the daemon exited ({proc.returncode})")
    finally:
        await stop_process(proc)
    taken = [(arrived, parse_iso(stamp).timestamp()) for arrived, stamp in seen.samples]
    return Latency([1000 * (arrived - at) for arrived, at in taken if at >= counted_from], 0)


async def rss_run(primary: CentralSystem, target: CentralSystem, workdir: Path, k: int, cps: int,
                  settle_s: float) -> float:  # fmt: skip
    primary.reset()
    target.reset()
    urls = [target.url] * k  # one server; each target its own id
    config = _config(workdir, f"rss-{k}", primary.url, cps, 1, urls, charging=False)
    proc = await start_daemon(config, workdir / f"rss-{k}.log", "--log-level", "WARNING")
    try:

        def booted() -> bool:
            ours = sum(1 for s in primary.seen.values() if s.boots)
            theirs = sum(1 for s in target.seen.values() if s.boots)
            return ours >= cps and theirs >= cps * k

        await primary.wait(booted, START_TIMEOUT_S, f"rss {k}: every BootNotification")
        await asyncio.sleep(settle_s)
        return vmrss_mib(proc.pid)
    finally:
        await stop_process(proc)


# -- main --------------------------------------------------------------------------------------


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


async def main(runs: int, n: int, seconds: float, connectors: int, cps: int, quick: bool) -> int:
    rounds = 1 if quick else ROUNDS
    with tempfile.TemporaryDirectory(prefix="bench-reporting-") as tmp:
        workdir = Path(tmp)
        costs = await store_costs(workdir, runs, n)
        print("store done", file=sys.stderr, flush=True)
        primary, target = CentralSystem(), CentralSystem()
        await primary.start()
        await target.start()
        try:
            warmup = QUICK_WARMUP_S if quick else WARMUP_S
            scenarios = {"none": [], "up": [target.url], "down": [f"ws://127.0.0.1:{dead_port()}/ocpp"]}
            if not quick:  # not counted: bytecode, page cache
                await latency_run(primary, workdir, "warm-up", [], 1, 0.5, 0.0)
            # The scenarios take turns (rounds), so a change of the machine's load meets each alike.
            latency = {name: Latency([], 0) for name in scenarios}
            for turn in range(rounds):
                for name, urls in scenarios.items():
                    target.reset()
                    run = await latency_run(primary, workdir, f"{name}-{turn}", urls, connectors,
                                            seconds / rounds, warmup)  # fmt: skip
                    if not run.samples_ms:
                        raise RuntimeError(f"{name}: no MeterValues after the warm-up; see {name}-{turn}.log")
                    latency[name].samples_ms += run.samples_ms
                    latency[name].reported += sum(len(s.samples) for s in target.seen.values())
                    print(f"latency {name}: {len(run.samples_ms)} samples", file=sys.stderr, flush=True)
            if latency["up"].reported == 0:
                raise RuntimeError("the target up was told of no MeterValues")
            settle = QUICK_SETTLE_S if quick else SETTLE_S
            rss = {k: await rss_run(primary, target, workdir, k, cps, settle) for k in (0, 1, 2)}
        except RuntimeError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        finally:
            await primary.stop()
            await target.stop()

    per = {k: statistics.median(v) for k, v in costs.items()}
    one_pct = 100 * (per[1] - per[0]) / per[0]
    two_pct = 100 * (per[2] - per[0]) / per[0]
    print(f"What a reporting target costs the primary ({runs} store runs of {n + 2} messages each; "
          f"{seconds:g} s of samples, {connectors} connectors; {cps} charge points for memory)"
          + (" [--quick: figures mean nothing]" if quick else ""))  # fmt: skip
    print()
    print("(a) the store: a transaction's messages, one durable commit each, median of the runs")
    print("| targets | messages/s | ms per message | over none | target | verdict |")
    print("|---|---|---|---|---|---|")
    print(f"| 0 (baseline) | {1 / per[0]:.0f} | {1000 * per[0]:.3f} | | | |")
    print(f"| 1 | {1 / per[1]:.0f} | {1000 * per[1]:.3f} | {one_pct:+.1f} % | +{TARGET_STORE_PCT:g} % | "
          f"{_verdict(one_pct <= TARGET_STORE_PCT)} |")  # fmt: skip
    print(f"| 2 | {1 / per[2]:.0f} | {1000 * per[2]:.3f} | "
          f"{two_pct:+.1f} % ({two_pct / 2:+.1f} % per target) | +{TARGET_STORE_PCT:g} % per target | "
          f"{_verdict(two_pct / 2 <= TARGET_STORE_PCT)} |")  # fmt: skip
    spread = {k: f"{1000 * min(v):.3f}-{1000 * max(v):.3f}" for k, v in costs.items()}
    print(f"  (ms per message, range of the runs: 0: {spread[0]}, 1: {spread[1]}, 2: {spread[2]})")
    print()
    print("(b) the primary's MeterValues: sample taken -> arrived at the primary, ms")
    print("| target | samples | median | p95 | max | p95 over none | target | verdict |")
    print("|---|---|---|---|---|---|---|---|")
    base_p95 = latency["none"].stat(0.95)
    for name, label in (("none", "none (baseline)"), ("up", "one, up"), ("down", "one, down (refusing)")):
        lat = latency[name]
        over = lat.stat(0.95) - base_p95
        goal = f"+{TARGET_DOWN_P95_MS:g} ms" if name == "down" else ""
        verdict = _verdict(over <= TARGET_DOWN_P95_MS) if name == "down" else ""
        extra = f" ({lat.reported} to the target, warm-up included)" if name == "up" else ""
        print(f"| {label} | {len(lat.samples_ms)}{extra} | {lat.stat(0.5):.2f} | {lat.stat(0.95):.2f} | "
              f"{max(lat.samples_ms):.2f} | {'' if name == 'none' else f'{over:+.2f}'} | {goal} | "
              f"{verdict} |")  # fmt: skip
    print()
    print(f"(c) the daemon's VmRSS, {cps} idle charge points, every link booted, after {settle:g} s")
    print("| targets per charge point | VmRSS | over none | per target link |")
    print("|---|---|---|---|")
    print(f"| 0 (baseline) | {rss[0]:.1f} MiB | | |")
    for k in (1, 2):
        grown = rss[k] - rss[0]
        print(f"| {k} | {rss[k]:.1f} MiB | {grown:+.1f} MiB ({100 * grown / rss[0]:+.1f} %) | "
              f"{1024 * grown / (k * cps):+.0f} KiB |")  # fmt: skip
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "-n", "--runs", type=int, help=f"store runs per target count (default {FULL['runs']})"
    )
    parser.add_argument(
        "--messages", type=int, help=f"MeterValues per transaction (default {FULL['messages']})"
    )
    parser.add_argument(
        "--seconds", type=float, help=f"seconds of samples per scenario (default {FULL['seconds']:g})"
    )
    parser.add_argument(
        "--connectors", type=int, help=f"connectors charging in (b) (default {FULL['connectors']})"
    )
    parser.add_argument("--cps", type=int, help=f"charge points in (c) (default {FULL['cps']})")
    parser.add_argument(
        "--quick", action="store_true", help="every part once, briefly: it still runs (make test)"
    )
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL

    def pick(name: str) -> Any:
        value = getattr(args, name)
        return plan[name] if value is None else value

    sys.exit(asyncio.run(main(max(1, pick("runs")), max(1, pick("messages")), pick("seconds"),
                              max(1, pick("connectors")), max(1, pick("cps")), args.quick)))  # fmt: skip
