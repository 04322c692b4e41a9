"""Flushing a backlog of transaction messages after a reconnect: rate, start-up, memory.

Run as `.venv/bin/python bench/outbox.py [-n RUNS] [--messages N] [--no-profile] [--quick]` (about two
minutes with the defaults). Not a test: it prints a table. `--quick` (in `make test`) does everything
once with a 200-message backlog, in a few seconds: it proves the benchmark still runs; its figures
mean nothing.

The scenario: charge point BENCH-1 was offline during one long transaction, so its store holds N
(default 10,000) queued transaction messages: one StartTransaction, N - 2 MeterValues (Energy.Active.
Import.Register, Power.Active.Import, Current.Import L1-L3, context Sample.Periodic, every 10 s) and
one StopTransaction. They are written with the real `bridge.store.Store` methods on its store thread,
one durable commit each, as the daemon writes them while offline; that time is reported too. The
daemon then starts (`python -m bridge.cli run`, a subprocess: its own event loop and core), connects,
boots and sends the backlog.

The central system is a bare websockets server in this process (no `ocpp` routing, no validation). It
answers every CALL at once with the right CALLRESULT and records the arrival and answer time of each
transaction message (time.perf_counter). Each run (a fresh backlog each time) measures
  (a) start-up: spawn -> BootNotification arrived, with the backlog, and with an empty state_dir;
  (b) the flush: (N - 1) / (StopTransaction arrived - first transaction message arrived), after
      checking the messages: exactly N, StartTransaction first, StopTransaction last, the message ids
      in the order they were persisted, payloads equal to those persisted (transactionId filled in),
      MeterValues timestamps non-decreasing; after the daemon stopped, its outbox must be empty;
  (c) the baseline: a bare `websockets.asyncio.client` in a subprocess sends the same N frames, one
      at a time, each after the answer to the previous one (OCPP-J allows one CALL in flight), to the
      same server; the same formula gives the physical limit on loopback;
  (d) the daemon's VmRSS when its BootNotification arrived (the backlog taken up: its count and
      first page; the rest is read page by page as it is sent).
Also: from /proc, the CPU time the daemon's threads, the baseline client and this server spent during
each flush; the round trip split into the server's time and the sender's turnaround (our answer sent
-> its next CALL arrived); how long the first StatusNotification waited behind the backlog.

Then the steps the daemon takes per queued MeterValues are timed one by one in this process, with the
daemon's own functions (no profiler overhead), with the cost of taking up the backlog at start-up and
the memory it holds.

The target is the issue's: the median of the per-run ratios daemon / baseline at least 0.6.

Finally one more flush runs under cProfile: a wrapper starts the profiler of the daemon's main thread
at the first transaction message (SIGUSR1) and stops it at the StopTransaction (SIGUSR2); the store
thread is profiled by a second profiler for its whole life. The script prints the top functions and
the main thread's self time by area. (cProfile slows the daemon about 2x: read it for shares.)

Every process is stopped by its pid: SIGTERM, then SIGKILL after 5 s (tests/processes.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import platform
import pstats
import random
import shutil
import signal
import statistics
import sys
import sysconfig
import tempfile
import time
import tracemalloc
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ocpp.charge_point import camel_to_snake_case
from ocpp.v16 import call, call_result

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the repository: tests.processes, bridge, adapters, bench
from adapters.base import ChargerReading  # noqa: E402
from bridge.clock import iso  # noqa: E402
from bridge.config import parse_config  # noqa: E402
from bridge.core.meter_values import sampled_values  # noqa: E402
from bridge.ocpp import schema  # noqa: E402
from bridge.ocpp.wire import encode, to_wire  # noqa: E402
from bridge.outbox import Outbox, TransactionMessages  # noqa: E402
from bridge.outbox.queue import BATCH, PAGE  # noqa: E402
from bridge.store import Store  # noqa: E402
from tests.helpers.bare_csms import BareCentralSystem, Call  # noqa: E402
from tests.processes import child_env, stop_process, vmrss_mib  # noqa: E402

CP_ID = "BENCH-1"
TARGET_RATIO = 0.6  # flush rate / baseline rate, the median of the runs at least
TARGET_BOOT_S = 2.0  # spawn -> BootNotification with the backlog, at most
BOOT_TIMEOUT_S = 30.0
FLUSH_TIMEOUT_S = 900.0
SETTLE_TIMEOUT_S = 10.0
STEP_SAMPLES = 2000  # timings of each step in print_step_costs
QUICK_MESSAGES = 200  # --quick: the backlog
QUICK_STEP_SAMPLES = 100
SAMPLE_INTERVAL_S = 10  # MeterValueSampleInterval of the transaction that made the backlog
MEASURANDS = ["Energy.Active.Import.Register", "Power.Active.Import", "Current.Import"]
ID_TAG = "BENCH-TAG-0001"
TX_ACTIONS = frozenset({"StartTransaction", "MeterValues", "StopTransaction"})
CLK_TCK = os.sysconf("SC_CLK_TCK")
LOAD_AT_START = os.getloadavg()[0]

# The baseline: a plain websockets client, nothing else. argv: URL, the file with the frames.
# compression=None, as the daemon's connection (bridge/ocpp/connection.py).
BASELINE_CLIENT = """
import asyncio, json, sys
from websockets.asyncio.client import connect

async def main():
    with open(sys.argv[2], encoding="utf-8") as f:
        frames = json.load(f)
    async with connect(sys.argv[1], subprotocols=["ocpp1.6"], compression=None, ping_interval=None) as ws:
        for frame in frames:
            await ws.send(json.dumps(frame, separators=(",", ":"), ensure_ascii=False))
            answer = json.loads(await ws.recv())
            if answer[0] != 3 or answer[1] != frame[1]:
                sys.exit(f"unexpected answer {answer!r} to {frame[1]}")

asyncio.run(main())
"""

# Runs bridge.cli as `python -m` does, with two profilers: the main thread's is switched on by
# SIGUSR1 and off by SIGUSR2 (the flush); the store thread's runs for that thread's whole life.
# Both are written (argv[1] + ".main" / ".store") when the daemon exits after SIGTERM. Two profilers
# at once work on Python 3.11 (per-thread hooks); from 3.12 (sys.monitoring) the second is refused.
PROFILED_DAEMON = """
import atexit, cProfile, contextlib, runpy, signal, sys, threading
out = sys.argv.pop(1)
flush, store = cProfile.Profile(), cProfile.Profile()

def start(*_):
    with contextlib.suppress(ValueError):  # Python >= 3.12: one profiler at a time
        flush.enable()

signal.signal(signal.SIGUSR1, start)
signal.signal(signal.SIGUSR2, lambda *_: flush.disable())

def first_event(frame, event, arg):
    sys.setprofile(None)
    if threading.current_thread().name.startswith("store"):
        with contextlib.suppress(ValueError):
            store.enable()

threading.setprofile(first_event)

def dump():
    flush.dump_stats(out + ".main")
    store.dump_stats(out + ".store")

atexit.register(dump)
sys.argv[0] = "ocpp-bridge"
runpy.run_module("bridge.cli", run_name="__main__", alter_sys=True)
"""


# -- /proc -------------------------------------------------------------------------


def thread_cpu_s(pid: int) -> dict[int, float]:
    """utime + stime of each live thread of `pid`, by thread id."""
    out: dict[int, float] = {}
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                text = (task / "stat").read_text()
            except OSError:
                continue
            fields = text[text.rindex(")") + 2 :].split()
            out[int(task.name)] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


@dataclass
class CpuSnapshot:
    peer: dict[int, float]  # thread id -> CPU seconds of the process that sends the backlog
    server: float  # CPU seconds of this process (the central system)


def snapshot(pid: int | None) -> CpuSnapshot:
    return CpuSnapshot(thread_cpu_s(pid) if pid else {}, time.process_time())


# -- the central system ------------------------------------------------------------


@dataclass
class Received:
    arrived: float
    answered: float
    size: int  # bytes of the frame
    frame: list[Any]


class Link:
    """What one charge point id sent: its transaction messages with their times."""

    def __init__(self, cp_id: str) -> None:
        loop = asyncio.get_running_loop()
        self.cp_id = cp_id
        self.pid: int | None = None  # of the process on the other end, for its CPU time
        self.boot: asyncio.Future[float] = loop.create_future()  # BootNotification arrived
        self.stopped: asyncio.Future[float] = loop.create_future()  # StopTransaction arrived
        self.tx: list[Received] = []
        self.others: list[tuple[float, str]] = []  # arrival and action of the other CALLs
        self.cpu_first: CpuSnapshot | None = None
        self.cpu_stop: CpuSnapshot | None = None
        self.on_first: Callable[[], None] | None = None
        self.on_stop: Callable[[], None] | None = None


class CentralSystem(BareCentralSystem):
    """The bare central system, recording the transaction messages of each charge point id."""

    def __init__(self) -> None:
        super().__init__(compression=None, ping_interval=None)
        self._links: dict[str, Link] = {}

    def expect(self, cp_id: str) -> Link:
        link = Link(cp_id)
        self._links[cp_id] = link
        return link

    def transaction_id(self, call: Call) -> int:
        return 1  # the backlog's frames carry transactionId 1 (make_backlog)

    def answered(self, call: Call, at: float) -> None:
        link = self._links.get(call.cp_id)
        if link is None:
            link = self._links[call.cp_id] = Link(call.cp_id)
        if call.action in TX_ACTIONS:
            link.tx.append(Received(call.arrived, at, call.size, call.frame))
            if len(link.tx) == 1:
                link.cpu_first = snapshot(link.pid)
                if link.on_first is not None:
                    link.on_first()
            if call.action == "StopTransaction" and not link.stopped.done():
                link.cpu_stop = snapshot(link.pid)
                if link.on_stop is not None:
                    link.on_stop()
                link.stopped.set_result(call.arrived)
            return
        link.others.append((call.arrived, call.action))
        if call.action == "BootNotification" and not link.boot.done():
            link.boot.set_result(call.arrived)


# -- the backlog ---------------------------------------------------------------------


@dataclass
class Backlog:
    state_dir: Path
    persist_s: float
    frames: list[list[Any]]  # what must arrive: [2, unique id, action, payload with transactionId]


def _reading(energy_wh: float, rng: random.Random) -> ChargerReading:
    currents = tuple(round(rng.uniform(15.6, 16.0), 2) for _ in range(3))
    power = round(sum(currents) * 230.0 + rng.uniform(-20, 20), 1)
    return ChargerReading(
        plugged=True,
        ev_requesting=True,
        energy_allowed=True,
        energy_wh=round(energy_wh, 1),
        power_w=power,
        current_a=currents,
    )


async def make_backlog(state_dir: Path, n: int) -> Backlog:
    """N transaction messages persisted as the daemon persists them while offline."""
    rng = random.Random(1)
    store = Store.open(state_dir)
    frames: list[list[Any]] = []
    try:
        tx = store.next_transaction_id()
        started = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=SAMPLE_INTERVAL_S * n)
        energy = 1_234_567.0  # the register of a meter that has seen some use (never rebased)
        meter_start = int(energy)
        began = time.perf_counter()
        uid = str(uuid.uuid4())
        at = iso(started)
        start = {"connectorId": 1, "idTag": ID_TAG, "meterStart": meter_start, "timestamp": at}
        begin = store.begin_transaction
        await store.run(begin, CP_ID, tx, 1, ID_TAG, meter_start, at, json.dumps(start), uid)
        frames.append([2, uid, "StartTransaction", start])
        for k in range(1, n - 1):
            reading = _reading(energy, rng)
            energy += (reading.power_w or 0.0) * SAMPLE_INTERVAL_S / 3600
            at = iso(started + timedelta(seconds=SAMPLE_INTERVAL_S * k))
            sampled = sampled_values(reading, MEASURANDS, "Sample.Periodic")
            payload = {"connectorId": 1, "meterValue": [{"timestamp": at, "sampledValue": sampled}]}
            uid = str(uuid.uuid4())
            text = json.dumps(payload)
            await store.run(store.record_meter_values, CP_ID, tx, reading.energy_wh, at, text, uid)
            frames.append([2, uid, "MeterValues", {**payload, "transactionId": 1}])
        at = iso(started + timedelta(seconds=SAMPLE_INTERVAL_S * (n - 1)))
        stop = {"meterStop": int(energy), "timestamp": at, "reason": "Local", "idTag": ID_TAG}
        uid = str(uuid.uuid4())
        await store.run(store.end_transaction, CP_ID, tx, int(energy), at, "Local", json.dumps(stop), uid)
        frames.append([2, uid, "StopTransaction", {**stop, "transactionId": 1}])
        persist_s = time.perf_counter() - began
        queued = len(await store.run(store.outbox, CP_ID))
        if queued != n:
            raise RuntimeError(f"the backlog holds {queued} messages, not {n}")
    finally:
        await asyncio.to_thread(store.close)
    return Backlog(state_dir, persist_s, frames)


async def wait_outbox_empty(state_dir: Path, timeout: float) -> None:
    """Until the running daemon has deleted its last answered row (the StopTransaction's), or `timeout`.
    A read through a second connection: WAL lets it run beside the daemon's writes."""
    store = await asyncio.to_thread(Store.open, state_dir)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not await store.run(store.outbox, CP_ID):
                return
            await asyncio.sleep(0.02)
    finally:
        await asyncio.to_thread(store.close)


def check_store_empty(state_dir: Path) -> str | None:
    """After the flush and the daemon's exit: nothing left to send, no transaction kept."""
    store = Store.open(state_dir)
    try:
        left, kept = len(store.outbox(CP_ID)), len(store.transactions(CP_ID))
    finally:
        store.close()
    return None if left == 0 and kept == 0 else f"{left} messages and {kept} transactions left in the store"


# -- processes ---------------------------------------------------------------------------


@dataclass
class Env:
    workdir: Path
    env: dict[str, str]
    cs: CentralSystem


def daemon_config(env: Env, state_dir: Path, name: str) -> Path:
    text = (
        f"state_dir: {state_dir}\n"
        "api:\n  listen: null\n"
        "charge_points:\n"
        f"  - id: {CP_ID}\n"
        f"    csms_url: {env.cs.url}\n"
        "    connectors:\n"
        "      - id: 1\n"
        "        charger: {type: simulated}\n"
    )
    path = env.workdir / f"{name}.yaml"
    parse_config(text, str(path), env={})  # fails here, with the reason, rather than in the daemon
    path.write_text(text, encoding="utf-8")
    return path


async def spawn(env: Env, argv: list[str], log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            *argv, cwd=env.workdir, env=env.env, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out
        )


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:] if log.exists() else ""


async def wait_for(
    future: asyncio.Future[Any], proc: asyncio.subprocess.Process, timeout: float, what: str, log: Path
) -> Any:
    """The future's result, or RuntimeError (with the log's tail) if the process ended or time ran out."""
    ended = asyncio.ensure_future(proc.wait())
    try:
        done, _ = await asyncio.wait([future, ended], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        ended.cancel()
    if future not in done:
        why = f"exited with {proc.returncode}" if proc.returncode is not None else f"not within {timeout:g} s"
        raise RuntimeError(f"{what}: {why}; log:\n{tail(log)}")
    return future.result()


# -- measurements ------------------------------------------------------------------------


@dataclass
class Flow:
    """One sender's transaction messages as the central system saw them."""

    rate: float  # messages per second
    span_s: float
    turnaround_us: float  # mean: our answer sent -> the sender's next CALL arrived
    turnaround_median_us: float
    server_us: float  # mean: CALL arrived -> our answer sent (mean + mean = 1 / rate)
    mean_size: float
    main_cpu_ms: float  # per message: the sender's main thread
    other_cpu_ms: float  # per message: the sender's other threads (the store thread)
    server_cpu_ms: float  # per message: this process


def flow_of(link: Link, frames: list[list[Any]]) -> Flow:
    """Checks what arrived against `frames` and measures it; RuntimeError if it is wrong."""
    tx = link.tx
    problems = []
    if len(tx) != len(frames):
        problems.append(f"{len(tx)} transaction messages arrived, not {len(frames)}")
    if tx and tx[0].frame[2] != "StartTransaction":
        problems.append(f"the first transaction message is {tx[0].frame[2]}")
    if tx and tx[-1].frame[2] != "StopTransaction":
        problems.append(f"the last transaction message is {tx[-1].frame[2]}")
    ids = [r.frame[1] for r in tx]
    if len(set(ids)) != len(ids):
        problems.append(f"{len(ids) - len(set(ids))} message ids arrived twice")
    if ids != [f[1] for f in frames]:
        problems.append("the message ids are not those persisted, in their order")
    unequal = sum(1 for r, f in zip(tx, frames, strict=False) if r.frame != f)
    if unequal:
        problems.append(f"{unequal} payloads differ from those persisted")
    stamps = [
        datetime.fromisoformat(r.frame[3]["meterValue"][0]["timestamp"].replace("Z", "+00:00"))
        for r in tx
        if r.frame[2] == "MeterValues"
    ]
    if any(b < a for a, b in itertools.pairwise(stamps)):
        problems.append("MeterValues timestamps go backwards")
    if problems:
        raise RuntimeError(f"{link.cp_id}: " + "; ".join(problems))
    n = len(tx)
    span = tx[-1].arrived - tx[0].arrived
    first, last = link.cpu_first, link.cpu_stop
    assert first is not None and last is not None and link.pid is not None
    main = last.peer.get(link.pid, 0.0) - first.peer.get(link.pid, 0.0)
    other = sum(s - first.peer.get(tid, 0.0) for tid, s in last.peer.items() if tid != link.pid)
    per = 1000 / (n - 1)
    turnarounds = [b.arrived - a.answered for a, b in itertools.pairwise(tx)]
    return Flow(
        rate=(n - 1) / span,
        span_s=span,
        turnaround_us=1e6 * statistics.fmean(turnarounds),
        turnaround_median_us=1e6 * statistics.median(turnarounds),
        server_us=1e6 * statistics.fmean(r.answered - r.arrived for r in tx[:-1]),
        mean_size=statistics.fmean(r.size for r in tx),
        main_cpu_ms=main * per,
        other_cpu_ms=other * per,
        server_cpu_ms=(last.server - first.server) * per,
    )


@dataclass
class Boot:
    boot_s: float
    rss_mib: float


@dataclass
class FlushRun:
    persist_s: float
    boot: Boot
    rss_after_mib: float
    flow: Flow
    exit_code: int
    status_wait_s: float  # BootNotification -> first StatusNotification arrived (nan: none came)


async def boot_daemon(
    env: Env, argv: list[str], name: str, link: Link
) -> tuple[asyncio.subprocess.Process, Boot, Path]:
    log = env.workdir / f"{name}.log"
    spawned = time.perf_counter()
    proc = await spawn(env, argv, log)
    link.pid = proc.pid
    try:
        arrived = await wait_for(link.boot, proc, BOOT_TIMEOUT_S, f"{name}: no BootNotification", log)
        rss = vmrss_mib(proc.pid)
    except BaseException:
        await stop_process(proc)
        raise
    return proc, Boot(arrived - spawned, rss), log


def daemon_argv(config: Path) -> list[str]:
    return [sys.executable, "-m", "bridge.cli", "run", "--config", str(config)]


async def flush_once(env: Env, name: str, n: int, profile_to: Path | None = None) -> tuple[FlushRun, Backlog]:
    backlog = await make_backlog(env.workdir / f"state-{name}", n)
    config = daemon_config(env, backlog.state_dir, name)
    link = env.cs.expect(CP_ID)
    argv = daemon_argv(config)
    if profile_to is not None:
        argv = [sys.executable, "-c", PROFILED_DAEMON, str(profile_to), *argv[3:]]

        def signal_daemon(signum: int) -> Callable[[], None]:
            return lambda: os.kill(link.pid, signum) if link.pid else None

        link.on_first = signal_daemon(signal.SIGUSR1)
        link.on_stop = signal_daemon(signal.SIGUSR2)
    proc, boot, log = await boot_daemon(env, argv, name, link)
    try:
        await wait_for(link.stopped, proc, FLUSH_TIMEOUT_S, f"{name}: no StopTransaction", log)
        rss_after = vmrss_mib(proc.pid)
        # The StopTransaction's row goes once its answer is handled; the daemon sends nothing after
        # it, so the store is watched (and checked below, after the daemon's exit).
        await wait_outbox_empty(backlog.state_dir, SETTLE_TIMEOUT_S)
    finally:
        code = await stop_process(proc)
    flow = flow_of(link, backlog.frames)
    left = check_store_empty(backlog.state_dir)
    if left is not None:
        raise RuntimeError(f"{name}: after the flush, {left}")
    boot_at = link.boot.result()
    status_at = next((at for at, action in link.others if action == "StatusNotification"), math.nan)
    return FlushRun(backlog.persist_s, boot, rss_after, flow, code, status_at - boot_at), backlog


async def baseline_once(env: Env, name: str, frames_file: Path, frames: list[list[Any]]) -> Flow:
    cp_id = f"BASE-{name}"
    link = env.cs.expect(cp_id)
    log = env.workdir / f"{name}.log"
    proc = await spawn(
        env, [sys.executable, "-c", BASELINE_CLIENT, f"{env.cs.url}/{cp_id}", str(frames_file)], log
    )
    link.pid = proc.pid
    try:
        await wait_for(link.stopped, proc, FLUSH_TIMEOUT_S, f"{name}: no StopTransaction", log)
        code = await asyncio.wait_for(proc.wait(), BOOT_TIMEOUT_S)
    finally:
        await stop_process(proc)
    if code != 0:
        raise RuntimeError(f"{name}: the baseline client exited with {code}; log:\n{tail(log)}")
    return flow_of(link, frames)


async def empty_boot(env: Env, name: str) -> Boot:
    config = daemon_config(env, env.workdir / f"state-{name}", name)
    link = env.cs.expect(CP_ID)
    proc, boot, _ = await boot_daemon(env, daemon_argv(config), name, link)
    await stop_process(proc)
    return boot


# -- the report ------------------------------------------------------------------------


def _row(
    name: str,
    values: list[float],
    digits: int,
    higher_is_better: bool,
    target: str = "",
    ok: bool | None = None,
) -> None:
    worst = min(values) if higher_is_better else max(values)
    verdict = "" if ok is None else ("ok" if ok else "MISSED")
    median = statistics.median(values)
    print(f"{name:<58} {median:>10.{digits}f} {worst:>10.{digits}f}   {target:<9} {verdict}".rstrip())


def print_table(n: int, runs: list[FlushRun], baselines: list[Flow], empty: list[Boot], quick: bool) -> None:
    ratios = [r.flow.rate / b.rate for r, b in zip(runs, baselines, strict=True)]
    boots = [r.boot.boot_s for r in runs]
    print()
    if quick:
        print("QUICK MODE (--quick): a check that this benchmark runs; the figures below mean nothing")
    print(
        f"ocpp-bridge outbox flush: {n:,} transaction messages, "
        f"{len(runs)} run{'s' if len(runs) != 1 else ''}; "
        f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{platform.platform(terse=True)}"
    )
    print(
        "central system: bare websockets server in the benchmark process; daemon (python -m bridge.cli run) "
        "and baseline client: subprocesses; all on 127.0.0.1"
    )
    print(
        f"load average (1 min) at the start {LOAD_AT_START:.2f}, now {os.getloadavg()[0]:.2f}: "
        "other work on the machine makes the rates noisy"
    )
    print(f"{'':<58} {'median':>10} {'worst':>10}   {'target':<9}")
    _row("flush rate, daemon (msg/s)", [r.flow.rate for r in runs], 0, True)
    _row("baseline: bare websockets request/response loop (msg/s)", [b.rate for b in baselines], 0, True)
    _row(
        "ratio daemon / baseline (per run)",
        ratios,
        3,
        True,
        f">= {TARGET_RATIO:g}",
        statistics.median(ratios) >= TARGET_RATIO,
    )
    _row(
        f"start-up with {n:,}-message backlog: spawn -> Boot (s)",
        boots,
        3,
        False,
        f"< {TARGET_BOOT_S:g}",
        max(boots) < TARGET_BOOT_S,
    )
    _row("start-up, empty state_dir: spawn -> Boot (s)", [b.boot_s for b in empty], 3, False)
    _row("VmRSS at Boot, backlog taken up (MiB)", [r.boot.rss_mib for r in runs], 1, False)
    _row("VmRSS at Boot, empty state_dir (MiB)", [b.rss_mib for b in empty], 1, False)
    _row("VmRSS after the flush (MiB)", [r.rss_after_mib for r in runs], 1, False)
    _row(f"persisting the backlog offline: {n:,} durable commits (s)", [r.persist_s for r in runs], 2, False)
    _row("  the same per message (ms)", [1000 * r.persist_s / n for r in runs], 3, False)
    _row("flush duration, daemon (s)", [r.flow.span_s for r in runs], 2, False)
    _row("BootNotification -> first StatusNotification (s)", [r.status_wait_s for r in runs], 2, False)
    print()
    print(f"{'per message, median over the runs':<52} {'daemon':>9} {'baseline':>10}")
    pairs = [
        ("round trip (1 / rate), us", [1e6 / r.flow.rate for r in runs], [1e6 / b.rate for b in baselines]),
        (
            "= server: CALL arrived -> answer sent, mean us",
            [r.flow.server_us for r in runs],
            [b.server_us for b in baselines],
        ),
        (
            "+ sender: answer sent -> next CALL arrived, mean us",
            [r.flow.turnaround_us for r in runs],
            [b.turnaround_us for b in baselines],
        ),
        (
            "  the same, median us",
            [r.flow.turnaround_median_us for r in runs],
            [b.turnaround_median_us for b in baselines],
        ),
        (
            "sender CPU, main thread, ms",
            [r.flow.main_cpu_ms for r in runs],
            [b.main_cpu_ms for b in baselines],
        ),
        (
            "sender CPU, other threads (store), ms",
            [r.flow.other_cpu_ms for r in runs],
            [b.other_cpu_ms for b in baselines],
        ),
        (
            "server process CPU, ms",
            [r.flow.server_cpu_ms for r in runs],
            [b.server_cpu_ms for b in baselines],
        ),
        ("frame size, bytes", [r.flow.mean_size for r in runs], [b.mean_size for b in baselines]),
    ]
    for name, daemon, base in pairs:
        print(f"  {name:<50} {statistics.median(daemon):>9.3f} {statistics.median(base):>10.3f}")
    print(
        f"  (CPU from /proc in {1000 / CLK_TCK:g} ms ticks; the payloads were checked equal frame by frame)"
    )
    odd = [r.exit_code for r in runs if r.exit_code != 0]
    if odd:
        print(f"note: daemon exit codes after SIGTERM {odd} (expected 0)")


_STDLIB = sysconfig.get_paths()["stdlib"] + "/"
_PURELIB = sysconfig.get_paths()["purelib"] + "/"


def _short(file: str) -> str:
    for prefix in (_PURELIB, _STDLIB, str(REPO) + "/"):  # the venv may be inside the repository
        if file.startswith(prefix):
            return file[len(prefix) :]
    return file


def _where(func: tuple[str, int, str]) -> str:
    file, line, name = func
    return name if file == "~" else f"{_short(file)}:{line}({name})"


def _area(func: tuple[str, int, str]) -> str:
    file = func[0]
    if file == "~":
        return "C, called from C"
    if "jsonschema" in file or "referencing" in file or "/rpds" in file:
        return "schema validation (jsonschema)"
    if file.startswith(_PURELIB):
        top = _short(file).split("/")[0]
        if top == "ocpp":
            return "ocpp library (dataclasses <-> dicts, case conversion)"
        return top
    if file.startswith(_STDLIB):
        module = _short(file).removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        if module.startswith(("asyncio", "selectors")):
            return "asyncio event loop"
        if module.startswith("json"):
            return "JSON"
        if module.startswith(("concurrent", "threading", "queue")):
            return "thread hop (concurrent.futures, threading)"
        return f"stdlib: {module}"
    if file.startswith(str(REPO) + "/"):
        return "bridge (our code)"
    return "other: " + _where(func)


def _self_time_by_area(stats: dict[Any, Any]) -> dict[str, float]:
    """Self time of each function, grouped; a C function's time goes to the area of its caller."""
    areas: dict[str, float] = defaultdict(float)
    for func, (_, _, tt, _, callers) in stats.items():
        if func[2] == "<method 'poll' of 'select.epoll' objects>":
            areas["idle: waiting in epoll (for the peer or the store thread)"] += tt
        elif func[0] == "~" and callers:
            for caller, caller_stats in callers.items():
                area = _area(caller)
                if "sqlite3" in func[2]:
                    area = "sqlite3"
                elif "json" in func[2].lower() and area != "schema validation (jsonschema)":
                    area = "JSON"
                areas[area] += caller_stats[2]
        else:
            areas[_area(func)] += tt
    return areas


def _print_functions(stats: dict[Any, Any], key: int, count: int) -> None:
    top = sorted(stats.items(), key=lambda kv: kv[1][key], reverse=True)[:count]
    print(f"  {'calls':>9} {'self s':>8} {'cumul s':>8}  function")
    for func, (_, nc, tt, ct, _) in top:
        print(f"  {nc:>9} {tt:>8.3f} {ct:>8.3f}  {_where(func)}")


def _median_us(fn: Callable[[], Any], samples: int) -> float:
    times = []
    for _ in range(samples):
        began = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - began)
    return statistics.median(times) / 1000


class _NoSender:
    """TransactionMessages attaches its outbox to a session; here nothing sends."""

    def attach(self, durable: Outbox) -> None:
        pass


async def print_step_costs(workdir: Path, n: int, samples: int) -> None:
    """What the daemon does per queued MeterValues, step by step, with its own functions, in this
    process (no profiler: the profile below inflates small calls); `samples` timings of each."""
    backlog = await make_backlog(workdir / "state-steps", n)
    payload = dict(backlog.frames[1][3])  # a MeterValues as sent, transactionId included
    unique_id = backlog.frames[1][1]
    message = call.MeterValues(**camel_to_snake_case(payload))
    wire = to_wire(message)
    answer = json.dumps([3, unique_id, {}])

    def parse_answer() -> Any:
        result = json.loads(answer)[2]
        schema.violation(schema.CALLRESULT, "MeterValues", result)
        return call_result.MeterValues(**camel_to_snake_case(result))

    store = Store.open(backlog.state_dir)
    try:
        # Start-up: the daemon reads the count, the newest seq and the first page only.
        began = time.perf_counter()
        count, _, _ = await store.run(store.outbox_state, CP_ID, PAGE)
        load_s = time.perf_counter() - began
        began = time.perf_counter()
        await store.run(store.outbox, CP_ID)
        whole_s = time.perf_counter() - began
        tracemalloc.start()
        try:
            messages = TransactionMessages(
                CP_ID, store, _NoSender(), 50_000, lambda *_: None, lambda *_: None
            )
            await messages.restore()
            held = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        outbox = messages.outbox
        in_memory = outbox.in_memory()
        start = outbox.head()
        assert start is not None and start.action == "StartTransaction"
        messages.ids.answered(start.tx or 0, 1)  # as the answer to the StartTransaction does
        await outbox.settle(start.seq, True)
        head = outbox.head()
        assert head is not None and head.action == "MeterValues"
        costs = [
            ("build the CALL: Message.build (json.loads + transactionId)", _median_us(head.build, samples)),
            (
                "(no longer on the path) schema check: schema.violation(CALL, MeterValues)",
                _median_us(lambda: schema.violation(schema.CALL, "MeterValues", wire), samples),
            ),
            (
                "encode the frame: rpc.encode",
                _median_us(lambda: encode([2, unique_id, "MeterValues", wire]), samples),
            ),
            ("parse the answer: json.loads, schema check, call_result", _median_us(parse_answer, samples)),
        ]
        # Settling an answered MeterValues: the outbox notes its seq (and now and then asks for the
        # next page, or writes a group of removals: those run on the store thread).
        settles = []
        for _ in range(min(samples, count - 2)):
            head = outbox.head()
            while head is None:
                await store.run(int)  # a page is being read
                head = outbox.head()
            began = time.perf_counter_ns()
            await outbox.settle(head.seq, True)
            settles.append(time.perf_counter_ns() - began)
        costs.append(("settle: Outbox.settle (the answered seq noted)", statistics.median(settles) / 1000))
        # The store thread, off the path: a grouped removal, per message, and a bare hop.
        seqs = tuple(r.seq for r in await store.run(store.outbox_page, CP_ID, 0, BATCH))
        began = time.perf_counter_ns()
        await store.run(store.remove_messages, CP_ID, seqs)
        per_removal = (time.perf_counter_ns() - began) / max(1, len(seqs))
        costs.append((f"(off the path) removal, grouped by {len(seqs)}, per message", per_removal / 1000))
        hops = []
        for _ in range(samples):
            began = time.perf_counter_ns()
            await store.run(int)
            hops.append(time.perf_counter_ns() - began)
        costs.append(
            ("(off the path) a bare thread hop: await store.run(int)", statistics.median(hops) / 1000)
        )
    finally:
        await asyncio.to_thread(store.close)
    print()
    print("the steps of sending one queued MeterValues, in this process with the daemon's code, median us:")
    for name, us in costs:
        print(f"  {name:<66} {us:>8.1f}")
    on_path = sum(us for name, us in costs if not name.startswith("("))
    print(f"  {'sum of the steps on the path':<66} {on_path:>8.1f}")
    print(
        f"start-up: the count and the first page of {count:,} queued messages in {load_s:.3f} s "
        f"(reading them all would take {whole_s:.3f} s)"
    )
    print(
        f"memory of the queue as restored: {in_memory} messages in memory, {held / 1024:,.0f} KiB "
        f"({held / count:,.0f} bytes per queued message)"
    )


def print_profile(profile: Path, n: int, run: FlushRun) -> None:
    main = pstats.Stats(str(profile) + ".main").stats  # type: ignore[attr-defined]
    store = pstats.Stats(str(profile) + ".store").stats  # type: ignore[attr-defined]
    print()
    print(
        f"profile of one flush ({n:,} messages, {run.flow.rate:.0f} msg/s under the profiler, "
        f"{run.flow.span_s:.2f} s): the daemon's main thread, first transaction message -> StopTransaction"
    )
    print("top 15 by cumulative time:")
    _print_functions(main, 3, 15)
    print("top 15 by self time:")
    _print_functions(main, 2, 15)
    areas = _self_time_by_area(main)
    total = sum(areas.values())
    print(f"main thread self time by area (total {total:.2f} s; C functions counted with their caller):")
    for area, seconds in sorted(areas.items(), key=lambda kv: kv[1], reverse=True):
        if seconds >= 0.005 * total:
            print(f"  {seconds:>8.3f} s {100 * seconds / total:>5.1f} %  {area}")
    print("the store thread, its whole life (restore included), top 10 by cumulative time:")
    _print_functions(store, 3, 10)


# -- main ------------------------------------------------------------------------------------


async def main(runs: int, n: int, profile: bool, save_profile: Path | None, quick: bool) -> int:
    env_vars = child_env()
    cs = CentralSystem()
    await cs.start()
    try:
        with tempfile.TemporaryDirectory(prefix="ocpp-bridge-outbox-") as tmp:
            workdir = Path(tmp)
            env_vars["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")  # bytecode as after an install
            env = Env(workdir, env_vars, cs)
            # Warm-up, not counted: bytecode, page cache.
            await empty_boot(env, "warm-up")
            runs_done: list[FlushRun] = []
            baselines: list[Flow] = []
            empty: list[Boot] = []
            frames_file = workdir / "frames.json"
            for i in range(runs):
                run, backlog = await flush_once(env, f"flush-{i}", n)
                runs_done.append(run)
                frames_file.write_text(json.dumps(backlog.frames), encoding="utf-8")
                if i == 0:
                    await baseline_once(env, "baseline-warm-up", frames_file, backlog.frames)
                baselines.append(await baseline_once(env, f"baseline-{i}", frames_file, backlog.frames))
                empty.append(await empty_boot(env, f"empty-{i}"))
                print(
                    f"run {i + 1}/{runs}: daemon {run.flow.rate:.0f} msg/s, "
                    f"baseline {baselines[-1].rate:.0f} msg/s, boot with backlog {run.boot.boot_s:.3f} s",
                    file=sys.stderr,
                    flush=True,
                )
            print_table(n, runs_done, baselines, empty, quick)
            await print_step_costs(workdir, n, QUICK_STEP_SAMPLES if quick else STEP_SAMPLES)
            if profile:
                target = workdir / "flush.prof"
                run, _ = await flush_once(env, "profiled", n, profile_to=target)
                print_profile(target, n, run)
                if save_profile is not None:
                    for part in (".main", ".store"):
                        shutil.copyfile(str(target) + part, str(save_profile) + part)
                    print(f"(profiles saved as {save_profile}.main and {save_profile}.store)")
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        await cs.stop()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-n", "--runs", type=int, help="timed flushes (default 3; 1 with --quick)")
    parser.add_argument(
        "--messages", type=int, help=f"backlog size (default 10,000; {QUICK_MESSAGES} with --quick)"
    )
    parser.add_argument("--no-profile", action="store_true", help="skip the profiled flush")
    parser.add_argument(
        "--save-profile", type=Path, metavar="PREFIX", help="keep the profiles as PREFIX.main, PREFIX.store"
    )
    parser.add_argument(
        "--quick", action="store_true", help="a few seconds, every step once: does it still run? (make test)"
    )
    args = parser.parse_args()
    runs = args.runs if args.runs is not None else (1 if args.quick else 3)
    messages = args.messages if args.messages is not None else (QUICK_MESSAGES if args.quick else 10_000)
    save = args.save_profile.resolve() if args.save_profile else None
    sys.exit(asyncio.run(main(max(1, runs), max(3, messages), not args.no_profile, save, args.quick)))
