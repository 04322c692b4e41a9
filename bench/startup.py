"""Start-up cost of `ocpp-bridge run`: time to the first BootNotification, and memory once booted.

Run as `.venv/bin/python bench/startup.py [-n RUNS] [--quick]` (or `make bench`). Not a test: it prints
a table. `--quick` (in `make test`) does every row once, reading VmRSS 0.2 s after boot, in a few
seconds: it proves the benchmark still runs; its figures mean nothing.

A minimal central system in this process (a websockets server, no `ocpp` routing, so it adds no
latency of its own) timestamps the arrival of the first BootNotification frame of each connection.
Each row spawns a process N times and measures
  (a) boot: wall time from spawning the process to that frame's arrival (one monotonic clock), and
  (b) VmRSS of the process (from /proc/<pid>/status) 1 s after the frame arrived.
Rows: the daemon with one simulated charge point and the local API off, the same with the API on,
and as baselines bare `python -c` clients that import websockets and ocpp, connect and send one
BootNotification-shaped frame: what any Python OCPP client pays before doing anything useful.

Each command runs once untimed first (warm page cache and .pyc files, as on a Pi after install).
Finally the daemon runs once per configuration under `python -X importtime`, writing out sys.modules
when it stops, and the script lists which `adapters.*` modules it imported (drivers no charge point
uses must not be among them) and where the import time goes.

Every process is stopped by its pid: SIGTERM, then SIGKILL if it has not exited within 10 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository: bench, tests
from tests.helpers.bare_csms import BareCentralSystem, Call
from tests.processes import child_env, free_port, stop_process, vmrss_mib

TARGET_BOOT_S = 0.6
TARGET_RSS_MIB = 60.0
SETTLE_S = 1.0  # VmRSS is read this long after the BootNotification arrived
QUICK_SETTLE_S = 0.2  # the same with --quick
BOOT_TIMEOUT_S = 20.0
CP_ID = "BENCH-1"

BIN = Path(sys.executable).parent
OCPP_BRIDGE = BIN / "ocpp-bridge"

# The baselines: a client that imports the libraries, connects, sends one BootNotification-shaped
# frame, reads the answer and then idles until it is stopped. argv[1] is the endpoint URL.
BASELINE_CLIENT = """
import asyncio, json, sys
import websockets, ocpp{extra}
from websockets.asyncio.client import connect

async def main():
    async with connect(sys.argv[1], subprotocols=["ocpp1.6"]) as ws:
        frame = [2, "1", "BootNotification", {{"chargePointVendor": "bench", "chargePointModel": "bench"}}]
        await ws.send(json.dumps(frame))
        await ws.recv()
        await asyncio.Event().wait()

asyncio.run(main())
"""


class BootClock(BareCentralSystem):
    """The bare central system, timestamping each connection's first Boot."""

    def __init__(self) -> None:
        super().__init__()
        self._waiting: dict[str, asyncio.Future[float]] = {}

    def expect(self, cp_id: str) -> asyncio.Future[float]:
        """A future for the arrival time (time.perf_counter) of the next BootNotification from cp_id."""
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiting[cp_id] = future
        return future

    def record(self, call: Call) -> None:
        if call.action == "BootNotification":
            waiting = self._waiting.get(call.cp_id)
            if waiting is not None and not waiting.done():
                waiting.set_result(call.arrived)


@dataclass
class Row:
    name: str
    is_daemon: bool
    boot_s: list[float] = field(default_factory=list)
    rss_mib: list[float] = field(default_factory=list)
    exit_codes: list[int] = field(default_factory=list)


@dataclass
class Command:
    argv: list[str]
    cp_id: str
    env: dict[str, str]
    log: Path


async def measure_once(
    cs: BootClock, make: Callable[[], Command], cwd: Path, settle_s: float
) -> tuple[float, float, int]:
    """Spawns one process: (seconds to its BootNotification, VmRSS MiB `settle_s` later, exit code
    after SIGTERM)."""
    command = make()
    arrival = cs.expect(command.cp_id)
    with command.log.open("ab") as log:
        spawned = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            *command.argv,
            cwd=cwd,
            env=command.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    try:
        ended = asyncio.ensure_future(proc.wait())
        done, _ = await asyncio.wait(
            [arrival, ended], timeout=BOOT_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
        )
        ended.cancel()
        if arrival not in done:
            tail = command.log.read_text(errors="replace")[-2000:]
            why = f"exited with {proc.returncode}" if proc.returncode is not None else "timed out"
            raise RuntimeError(f"{' '.join(command.argv)}: no BootNotification ({why}); log:\n{tail}")
        boot_s = arrival.result() - spawned
        await asyncio.sleep(settle_s)
        if proc.returncode is not None:
            raise RuntimeError(f"{' '.join(command.argv)} exited with {proc.returncode} after booting")
        rss = vmrss_mib(proc.pid)
    finally:
        code = await stop_process(proc)
    return boot_s, rss, code


def daemon_command(
    cs: BootClock, workdir: Path, name: str, api: bool, env: dict[str, str]
) -> Callable[[], Command]:
    def make() -> Command:
        config = workdir / f"{name}.yaml"
        listen = f"127.0.0.1:{free_port()}" if api else "null"
        config.write_text(
            f"state_dir: {workdir / ('state-' + name)}\n"
            f"api:\n  listen: {listen}\n"
            "charge_points:\n"
            f"  - id: {CP_ID}\n"
            f"    csms_url: {cs.url}\n"
            "    connectors:\n"
            "      - id: 1\n"
            "        charger: {type: simulated}\n",
            encoding="utf-8",
        )
        argv = [str(OCPP_BRIDGE), "run", "--config", str(config)]
        return Command(argv, CP_ID, env, workdir / f"{name}.log")

    return make


def baseline_command(
    cs: BootClock, workdir: Path, name: str, extra: str, env: dict[str, str]
) -> Callable[[], Command]:
    code = BASELINE_CLIENT.format(extra=extra)
    cp_id = f"BASE-{name}"

    def make() -> Command:
        return Command([sys.executable, "-c", code, f"{cs.url}/{cp_id}"], cp_id, env, workdir / f"{name}.log")

    return make


_IMPORT_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)\s*$")


@dataclass
class Imports:
    modules: list[str]  # sys.modules at exit: complete
    self_us: dict[str, int]  # -X importtime: misses modules loaded by importlib.import_module


def parse_importtime(text: str) -> dict[str, int]:
    self_us: dict[str, int] = {}
    for line in text.splitlines():
        match = _IMPORT_LINE.match(line)
        if match:
            self_us[match[4]] = int(match[1])
    return self_us


# Runs bridge.cli as `python -m` does and, when the daemon exits (after SIGTERM), writes the names in
# sys.modules to argv[1]. -X importtime alone is not enough: it only sees `import` statements, not the
# importlib.import_module() calls with which adapters.registry loads the drivers.
MODULE_DUMP = """
import atexit, json, runpy, sys
out = sys.argv.pop(1)
def dump():
    with open(out, "w") as f:
        json.dump(sorted(sys.modules), f)
atexit.register(dump)
sys.argv[0] = "ocpp-bridge"
runpy.run_module("bridge.cli", run_name="__main__", alter_sys=True)
"""


async def imports_of(cs: BootClock, make: Callable[[], Command], cwd: Path, settle_s: float) -> Imports:
    """One run of the daemon under -X importtime, with sys.modules written out when it stops."""
    command = make()
    assert command.argv[0] == str(OCPP_BRIDGE)
    dump = command.log.with_suffix(".modules.json")
    command.argv = [sys.executable, "-X", "importtime", "-c", MODULE_DUMP, str(dump), *command.argv[1:]]
    command.log = command.log.with_suffix(".importtime")
    command.log.unlink(missing_ok=True)
    code = (await measure_once(cs, lambda: command, cwd, settle_s))[2]
    if not dump.exists():
        raise RuntimeError(f"the daemon (exit code {code}) did not write {dump.name}")
    modules = json.loads(dump.read_text())
    return Imports(modules, parse_importtime(command.log.read_text(errors="replace")))


_GROUP = 32  # width of each figure's column group


def _fmt(values: Sequence[float], digits: int, target: float | None) -> str:
    worst = max(values)
    mark = "" if target is None else ("ok" if worst < target else "OVER")
    return f"{statistics.median(values):>8.{digits}f} {worst:>8.{digits}f}  {mark}".ljust(_GROUP)


def print_table(rows: list[Row], runs: int, settle_s: float, quick: bool) -> None:
    print()
    if quick:
        print("QUICK MODE (--quick): a check that this benchmark runs; the figures below mean nothing")
    print(
        f"ocpp-bridge start-up: {runs} run{'s' if runs != 1 else ''} per row after one warm-up run; "
        f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{platform.platform(terse=True)}"
    )
    print(f"{'':<52}  {'spawn -> BootNotification, s':<{_GROUP}}VmRSS {settle_s:g} s after boot, MiB")
    medmax = f"{'median':>8} {'max':>8}".ljust(_GROUP)
    print(f"{'row':<52}  {medmax}{medmax}".rstrip())
    for row in rows:
        boot = _fmt(row.boot_s, 3, TARGET_BOOT_S if row.is_daemon else None)
        rss = _fmt(row.rss_mib, 1, TARGET_RSS_MIB if row.is_daemon else None)
        print(f"{row.name:<52}  {boot}{rss}".rstrip())
    boot_target = f"{'< ' + format(TARGET_BOOT_S, 'g'):>17}".ljust(_GROUP)
    rss_target = f"{'< ' + format(TARGET_RSS_MIB, 'g'):>17}"
    print(f"{'target (ocpp-bridge rows, on the max)':<52}  {boot_target}{rss_target}")
    print("(bytecode compiled by the warm-up run into a private PYTHONPYCACHEPREFIX, as after an install)")
    odd = [(row.name, row.exit_codes) for row in rows if row.is_daemon and any(row.exit_codes)]
    for name, codes in odd:
        print(f"note: {name}: exit codes after SIGTERM {codes} (expected 0)")


def print_imports(label: str, imports: Imports) -> None:
    adapters = [m for m in imports.modules if m == "adapters" or m.startswith("adapters.")]
    heavy: dict[str, int] = defaultdict(int)
    for module, us in imports.self_us.items():
        heavy[module.split(".")[0]] += us
    top = sorted(heavy.items(), key=lambda kv: kv[1], reverse=True)[:8]
    print(f"\nimports of `ocpp-bridge run` ({label}): {len(imports.modules)} modules")
    print(f"  adapters.*: {', '.join(adapters) or '(none)'}")
    print(f"  aiohttp imported: {'yes' if 'aiohttp' in imports.modules else 'no'}")
    print(
        "  most import time by top-level package (self time, inflated by -X importtime): "
        + ", ".join(f"{name} {us / 1000:.0f} ms" for name, us in top)
    )


async def main(runs: int, quick: bool) -> int:
    settle_s = QUICK_SETTLE_S if quick else SETTLE_S
    if not OCPP_BRIDGE.exists():
        print(f"error: {OCPP_BRIDGE} not found; install the project into this environment", file=sys.stderr)
        return 1
    env = child_env()
    cs = BootClock()
    await cs.start()
    try:
        with tempfile.TemporaryDirectory(prefix="ocpp-bridge-bench-") as tmp:
            workdir = Path(tmp)
            # Bytecode as on an installed system, written by the warm-up runs to a private cache
            # (whatever PYTHONDONTWRITEBYTECODE says here, and without touching the source tree).
            env["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
            plan: list[tuple[Row, Callable[[], Command]]] = [
                (
                    Row("ocpp-bridge run, 1 simulated CP, API off", True),
                    daemon_command(cs, workdir, "api-off", False, env),
                ),
                (
                    Row("ocpp-bridge run, 1 simulated CP, API on", True),
                    daemon_command(cs, workdir, "api-on", True, env),
                ),
                (
                    Row("baseline: python -c 'import websockets, ocpp' + Boot", False),
                    baseline_command(cs, workdir, "bare", "", env),
                ),
                (
                    Row("baseline: same, also importing ocpp.v16", False),
                    baseline_command(cs, workdir, "v16", ", ocpp.v16", env),
                ),
            ]
            for _, make in plan:
                await measure_once(cs, make, workdir, settle_s)  # warm-up, not counted
            # Interleaved, so a slow moment of the machine does not fall on one row only.
            for i in range(runs):
                for row, make in plan:
                    boot_s, rss, code = await measure_once(cs, make, workdir, settle_s)
                    row.boot_s.append(boot_s)
                    row.rss_mib.append(rss)
                    row.exit_codes.append(code)
                print(f"run {i + 1}/{runs} done", file=sys.stderr, flush=True)
            print_table([row for row, _ in plan], runs, settle_s, quick)
            print_imports("API off", await imports_of(cs, plan[0][1], workdir, settle_s))
            print_imports("API on", await imports_of(cs, plan[1][1], workdir, settle_s))
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        await cs.stop()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-n", "--runs", type=int, help="timed runs per row (default 5; 1 with --quick)")
    parser.add_argument(
        "--quick", action="store_true", help="a few seconds, every row once: does it still run? (make test)"
    )
    args = parser.parse_args()
    runs = args.runs if args.runs is not None else (1 if args.quick else 5)
    sys.exit(asyncio.run(main(max(1, runs), args.quick)))
