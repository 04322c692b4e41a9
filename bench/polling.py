"""Polling devices: N go-e or OpenEVSE chargers (HTTP) or N Eastron meters (Modbus TCP), read every second.

Run as `.venv/bin/python bench/polling.py [--sizes 1,10,50] [--seconds 10] [--kinds ...] [--quick]` (or
`make bench`; about two minutes with the defaults). Not a test: it prints a table. `--quick` (in `make
test`) polls 2 devices of each kind every 0.25 s for 1 s, in a few seconds: it proves the benchmark still
runs; its figures mean nothing.

Each row is one configuration, measured in fresh processes:
  - an emulator process serves N devices on 127.0.0.1 (tests/emulators: GoeEmulator, the pymodbus
    Eastron emulator), so that their work is not counted as the bridge's;
  - a poller process builds the real drivers on one shared `adapters.transports.pool.Transports` and reads
    every device once a second, each from its own task in one event loop, as the daemon's poll loops do
    (all devices due at the same instant: the burst the daemon makes), for `--seconds`. The drivers get
    no listener, so they only read (as `ocpp-bridge probe`); the daemon's go-e driver also writes the
    force state once, at its first read.
Kinds:
  goe-http        go-e Charger, HTTP API v2: `GET /api/status?filter=...`, one HTTP connection per box
                  on the shared aiohttp session (the charger charging, so every value moves);
  openevse-http   OpenEVSE (ESP32 WiFi gateway) over HTTP: `GET /status`, one HTTP connection per box on
                  the shared aiohttp session (the box charging; no claim is made: the drivers only read);
  keba-udp        KEBA P30 over UDP: one emulated box per loopback address (127.0.2.1, .2, ...), the
                  poller's drivers on one shared UDP socket (Transports.udp), the boxes charging. A box
                  takes the same report at most every 5 s (the guide): report 3 is asked every 5 s and
                  report 2 is kept current by the box's own datagrams (E pres every second while
                  charging, handled in the poller), so most reads answer from the driver's cache;
  sdm630-tcp      SDM630 meters, one Modbus TCP endpoint each (a meter with Ethernet, or one gateway
                  per meter): N buses, N clients, 3 requests per read;
  sdm630-gateway  SDM630 meters behind one Modbus TCP gateway, device ids 1..N: one bus, one client,
                  one request at a time (RS485 behind it), so a read waits for the reads before it.
  generic-modbus  the same gateway and meters, each read by a generic device (type: generic): a meter
                  described by two sources, energy and power (float32 input registers): 2 requests
                  per read (registers 0x48 and 0x34 are not neighbours: join_registers cannot join them).
  heidelberg-rtu  Heidelberg Energy Control boxes on one RS485 bus (a socat pseudo-terminal pair at
                  19200 baud), device ids 1..N, charging, read only: one request per read, one at a
                  time and 100 ms apart on the bus (the boxes' pacing), so one bus carries at most
                  ~9 reads a second: more boxes than that cannot each be read every second.
Figures per row, over the polling window only (after each driver's probe and one warm-up read):
  polls     reads done (failed ones in brackets) out of N x seconds;
  latency   mean, p95 and max of one driver read (time.perf_counter around `await driver.read()`;
            for sdm630-gateway this includes the wait for the bus);
  CPU       the poller's process CPU time (time.process_time: every thread) per poll, and as a share
            of one core over the window (the fixed cost of an idle event loop is in both);
  RSS       the poller's VmRSS growth for building N drivers and their connections, and during polling
            (a leak would show there);
  emu CPU   the emulator process's CPU use during the window (a saturated emulator would make the
            latencies its own).
Every process is stopped by its pid: SIGTERM, then SIGKILL after 5 s (tests/processes.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve()
REPO = SCRIPT.parent.parent
sys.path.insert(0, str(REPO))  # the repository: adapters, tests.emulators, tests.processes
from tests.processes import child_env, first_line, stop_process, vmrss_mib  # noqa: E402

KINDS = (
    "goe-http", "openevse-http", "keba-udp", "sdm630-tcp", "sdm630-gateway", "generic-modbus",
    "heidelberg-rtu",
)  # fmt: skip
HTTP_KINDS = ("goe-http", "openevse-http")
CLK_TCK = os.sysconf("SC_CLK_TCK")
START_TIMEOUT_S = 60.0
# The defaults: devices per configuration, polling window (s), poll interval (s); and with --quick.
DEFAULTS = ("1,10,50", 10.0, 1.0)
QUICK = ("2", 1.0, 0.25)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("0.0.0.0", 0))
        port: int = s.getsockname()[1]
        return port


def cpu_s(pid: int) -> float:
    """utime + stime of a process, in seconds (/proc/<pid>/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


# -- the emulator process ------------------------------------------------------------------------------


async def serve(kind: str, n: int) -> None:
    """Serves N devices of `kind`; prints {"urls": [...], "device_ids": [...]}; runs until SIGTERM."""
    from tests.emulators.eastron import EmulatedMeter, eastron_tcp
    from tests.emulators.goe import GoeEmulator
    from tests.emulators.openevse import OpenEvseEmulator

    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    async with contextlib.AsyncExitStack() as stack:
        urls: list[str] = []
        ids: list[int] = []
        if kind == "goe-http":
            for _ in range(n):
                emu = GoeEmulator()
                stack.push_async_callback(emu.close)
                urls.append(await emu.start_http())
                emu.plug()
                emu.keys["frc"] = 2  # charging: energy, power and currents change at every read
                ids.append(0)
        elif kind == "openevse-http":
            for _ in range(n):
                box = OpenEvseEmulator()
                stack.push_async_callback(box.close)
                urls.append(await box.start())
                box.plug()  # no claim: the box's default state (active), so it charges
                ids.append(0)
        elif kind == "keba-udp":
            from tests.emulators.keba_udp import KebaUdpBox, KebaUdpEmulator

            for i in range(n):  # each box on its own address, as on a LAN; answers to the sender's port
                keba = KebaUdpEmulator(KebaUdpBox(plugged=True), host=f"127.0.2.{i + 1}")
                await keba.start()
                stack.push_async_callback(keba.stop)
                urls.append(f"udp://{keba.host}:{keba.port}")
                ids.append(0)
        elif kind == "heidelberg-rtu":
            from tests.emulators.heidelberg import HeidelbergBox, heidelberg_rtu

            tty_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-heidelberg-")))
            boxes = [HeidelbergBox(device_id=i, plugged=True) for i in range(1, n + 1)]
            line = await stack.enter_async_context(heidelberg_rtu(tty_dir, *boxes))
            urls, ids = [line.url] * n, [box.device_id for box in boxes]
        elif kind == "sdm630-tcp":
            for _ in range(n):
                meter = EmulatedMeter("sdm630", 1)
                meter.set(energy_kwh=1234.5, power_w=7360.0, current_a=(10.7, 10.6, 10.7))
                urls.append((await stack.enter_async_context(eastron_tcp(meter))).url)
                ids.append(1)
        else:
            meters = [EmulatedMeter("sdm630", i) for i in range(1, n + 1)]
            for meter in meters:
                meter.set(energy_kwh=1234.5, power_w=7360.0, current_a=(10.7, 10.6, 10.7))
            gateway = await stack.enter_async_context(eastron_tcp(*meters))
            urls, ids = [gateway.url] * n, [m.device_id for m in meters]
        print(json.dumps({"urls": urls, "device_ids": ids}), flush=True)
        await stopping.wait()


def generic_meters(urls: list[str], ids: list[int], transports: Any) -> list[Any]:
    """Generic meters (adapters/generic) of two sources each: the SDM630's import energy and power."""
    from adapters.generic.device import GenericMeter
    from adapters.generic.options import GenericMeterOptions, MeterRead, ModbusSource, Source

    def value(url: str, device_id: int, register: int, **pipeline: Any) -> Source:
        modbus = ModbusSource(url, register, device_id, function="input", type="float32", timeout_s=5)
        return Source(modbus=modbus, **pipeline)

    return [
        GenericMeter(GenericMeterOptions(read=MeterRead(
            energy_wh=value(url, i, 0x0048, unit="kWh"), power_w=value(url, i, 0x0034),
        )), transports)
        for url, i in zip(urls, ids, strict=True)
    ]  # fmt: skip


# -- the poller process --------------------------------------------------------------------------------


async def poll(kind: str, urls: list[str], ids: list[int], seconds: float, interval: float) -> None:
    """Reads every device each `interval` for `seconds`; prints "ready" before the window, then a JSON
    line with the figures."""
    from adapters.base import DeviceError
    from adapters.chargers.goe import GoeCharger, GoeOptions
    from adapters.chargers.openevse import OpenEvseCharger, OpenEvseOptions
    from adapters.meters.eastron import EastronOptions, Sdm630
    from adapters.transports.pool import Transports

    transports = Transports()
    if kind == "keba-udp":
        local_port = free_udp_port()
        transports.udp(local_port)  # imports the transport now
    elif kind not in HTTP_KINDS:
        transports.modbus(urls[0])  # imports pymodbus now, so that its import is not counted per device
    else:
        transports.http()
    rss_empty = vmrss_mib()
    drivers: list[Any]
    if kind == "goe-http":
        drivers = [GoeCharger(GoeOptions(url=url, timeout_s=5), transports) for url in urls]
    elif kind == "openevse-http":
        drivers = [OpenEvseCharger(OpenEvseOptions(url=url, timeout_s=5), transports) for url in urls]
    elif kind == "keba-udp":
        from adapters.chargers.keba_udp import KebaUdpCharger, KebaUdpOptions

        drivers = []
        for url in urls:
            host, port = url.removeprefix("udp://").split(":")
            options = KebaUdpOptions(host=host, port=int(port), local_port=local_port, timeout_s=5)
            drivers.append(KebaUdpCharger(options, transports))
    elif kind == "heidelberg-rtu":
        from adapters.chargers.heidelberg import HeidelbergCharger, HeidelbergOptions

        drivers = [
            HeidelbergCharger(HeidelbergOptions(modbus=url, device_id=i, timeout_s=5), transports)
            for url, i in zip(urls, ids, strict=True)
        ]
    elif kind == "generic-modbus":
        drivers = generic_meters(urls, ids, transports)
    else:
        drivers = [
            Sdm630(EastronOptions("sdm630", url, i, timeout_s=5), transports)
            for url, i in zip(urls, ids, strict=True)
        ]
    for driver in drivers:  # one at a time: setting up is not what is measured
        await driver.start()
        await driver.read()  # warm-up: connections open, filter syntax known
    rss_ready = vmrss_mib()

    latencies: list[float] = []
    failures: list[str] = []
    loop = asyncio.get_running_loop()
    print("ready", flush=True)
    cpu_before = time.process_time()
    began = loop.time() + 0.05  # every device due at the same instants: the daemon's burst

    async def one(driver: Any) -> None:
        k = 0
        while (due := began + k * interval) < began + seconds:
            await asyncio.sleep(max(0.0, due - loop.time()))
            t0 = time.perf_counter()
            try:
                await driver.read()
            except DeviceError as exc:
                failures.append(str(exc))
            else:
                latencies.append(time.perf_counter() - t0)
            k += 1

    await asyncio.gather(*(one(d) for d in drivers))
    cpu = time.process_time() - cpu_before
    rss_end = vmrss_mib()
    for driver in drivers:
        await driver.close()
    await transports.close()
    print(
        json.dumps({
            "latencies": latencies, "failures": failures[:5], "failed": len(failures), "cpu_s": cpu,
            "rss_empty": rss_empty, "rss_ready": rss_ready, "rss_end": rss_end,
        }),
        flush=True,
    )  # fmt: skip


# -- the orchestrator ----------------------------------------------------------------------------------


@dataclass
class Result:
    kind: str
    devices: int
    expected: int
    latencies: list[float]
    failed: int
    failures: list[str]
    cpu_s: float
    rss_setup_mib: float
    rss_polling_mib: float
    emulator_cpu_percent: float

    @property
    def polls(self) -> int:
        return len(self.latencies) + self.failed


async def _line(proc: asyncio.subprocess.Process, what: str, log: Path) -> str:
    line = await first_line(proc, START_TIMEOUT_S)
    if line is None:
        raise RuntimeError(f"{what}: no answer (exit code {proc.returncode}); log:\n{_tail(log)}")
    return line


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:]


async def _spawn(log: Path, *args: str) -> asyncio.subprocess.Process:
    with log.open("ab") as sink:
        return await asyncio.create_subprocess_exec(
            sys.executable, str(SCRIPT), *args, cwd=REPO, env=child_env(),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=sink,
        )  # fmt: skip


async def measure(kind: str, n: int, seconds: float, interval: float, workdir: Path) -> Result:
    log = workdir / f"{kind}-{n}.log"
    emulator = await _spawn(log, "--serve", kind, str(n))
    poller: asyncio.subprocess.Process | None = None
    try:
        endpoints = json.loads(await _line(emulator, f"{kind} emulators", log))
        spec = workdir / f"{kind}-{n}.json"
        spec.write_text(json.dumps(endpoints))
        poller = await _spawn(
            log,
            "--poll",
            kind,
            "--endpoints",
            str(spec),
            "--seconds",
            str(seconds),
            "--interval",
            str(interval),
        )
        if await _line(poller, f"{kind} poller", log) != "ready":
            raise RuntimeError(f"{kind} poller: unexpected output; log in {log}")
        emulator_cpu, t0 = cpu_s(emulator.pid), time.perf_counter()
        figures = json.loads(await _line(poller, f"{kind} poller", log))
        emulator_share = (cpu_s(emulator.pid) - emulator_cpu) / (time.perf_counter() - t0) * 100
    finally:
        if poller is not None:
            await stop_process(poller)
        await stop_process(emulator)
    return Result(
        kind, n, n * int(seconds / interval), figures["latencies"], figures["failed"], figures["failures"],
        figures["cpu_s"], figures["rss_ready"] - figures["rss_empty"],
        figures["rss_end"] - figures["rss_ready"], emulator_share,
    )  # fmt: skip


def print_table(results: list[Result], seconds: float, interval: float, quick: bool) -> None:
    print()
    if quick:
        print("QUICK MODE (--quick): a check that this benchmark runs; the figures below mean nothing")
    print(
        f"ocpp-bridge device polling: each device read every {interval:g} s for {seconds:g} s, "
        f"one event loop; python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{platform.platform(terse=True)}"
    )
    print(f"load average (1 min) now {os.getloadavg()[0]:.2f}: other work on the machine makes figures noisy")
    head = (
        f"{'kind':<15} {'devices':>7} {'polls (failed)':>15} {'mean ms':>8} {'p95 ms':>8} {'max ms':>8} "
        f"{'CPU/poll ms':>11} {'CPU':>5} {'RSS setup MiB':>13} {'RSS polling MiB':>15} {'emu CPU':>8}"
    )
    print(head)
    for r in results:
        ms = [x * 1000 for x in r.latencies]
        mean = statistics.fmean(ms) if ms else float("nan")
        p95 = (
            statistics.quantiles(ms, n=20, method="inclusive")[18]
            if len(ms) >= 2
            else (ms or [float("nan")])[0]
        )
        top = max(ms) if ms else float("nan")
        per_poll = r.cpu_s / r.polls * 1000 if r.polls else float("nan")
        polls = f"{r.polls}/{r.expected} ({r.failed})"
        print(
            f"{r.kind:<15} {r.devices:>7} {polls:>15} {mean:>8.2f} {p95:>8.2f} {top:>8.2f} "
            f"{per_poll:>11.3f} {r.cpu_s / seconds * 100:>4.1f}% "
            f"{r.rss_setup_mib:>+13.1f} {r.rss_polling_mib:>+15.1f} {r.emulator_cpu_percent:>7.0f}%"
        )
    for r in results:
        for failure in r.failures:
            print(f"note: {r.kind} x{r.devices}: a read failed: {failure}")


async def main(kinds: list[str], sizes: list[int], seconds: float, interval: float, quick: bool) -> int:
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-polling-") as tmp:
        for kind in kinds:
            for n in sizes:
                try:
                    results.append(await measure(kind, n, seconds, interval, Path(tmp)))
                except RuntimeError as error:
                    print(f"error: {error}", file=sys.stderr)
                    return 1
                print(f"{kind} x{n} done", file=sys.stderr, flush=True)
    print_table(results, seconds, interval, quick)
    empty = [f"{r.kind} x{r.devices}" for r in results if not r.latencies]
    if empty:  # nothing measured: the drivers or the emulators no longer work together
        print(f"error: no read succeeded: {', '.join(empty)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated, from {', '.join(KINDS)}")
    parser.add_argument(
        "--sizes", help=f"devices per configuration (default {DEFAULTS[0]}; {QUICK[0]} with --quick)"
    )
    parser.add_argument(
        "--seconds", type=float, help=f"polling window (default {DEFAULTS[1]:g}; {QUICK[1]:g} with --quick)"
    )
    parser.add_argument(
        "--interval",
        type=float,
        help=f"poll interval in seconds (default {DEFAULTS[2]:g}; {QUICK[2]:g} with --quick)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a few seconds, every kind once: does it still run? (make test)"
    )
    parser.add_argument("--serve", nargs=2, metavar=("KIND", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--poll", metavar="KIND", help=argparse.SUPPRESS)
    parser.add_argument("--endpoints", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    preset = QUICK if args.quick else DEFAULTS
    sizes_text = args.sizes if args.sizes is not None else preset[0]
    seconds = args.seconds if args.seconds is not None else preset[1]
    interval = args.interval if args.interval is not None else preset[2]
    if args.serve:
        asyncio.run(serve(args.serve[0], int(args.serve[1])))
    elif args.poll:
        spec = json.loads(args.endpoints.read_text())
        asyncio.run(poll(args.poll, spec["urls"], spec["device_ids"], seconds, interval))
    else:
        kinds = [k for k in args.kinds.split(",") if k]
        unknown = sorted(set(kinds) - set(KINDS))
        if unknown:
            parser.error(f"unknown kind {unknown[0]!r}; kinds: {', '.join(KINDS)}")
        sizes = [int(s) for s in sizes_text.split(",") if s]
        sys.exit(asyncio.run(main(kinds, sizes, seconds, interval, args.quick)))
