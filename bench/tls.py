"""The cost of TLS: connect and boot over wss:// against ws://, and a daemon's memory with 100 charge
points on wss:// against ws://, in the same run.

Run as `.venv/bin/python bench/tls.py [-n CONNECTS] [--cps 100] [--quick]` (or `make bench`). Not a
test: it prints a table. `--quick` (in `make test`) does 3 connects and 5 charge points with short
waits: it proves the benchmark still runs; its figures mean nothing.

A test PKI is made at the start (tests/helpers/pki.py: ECDSA P-256, a root and an intermediate, the
server's chain holding both certificates below the root). The central system is a bare websockets
server in this process (no `ocpp` routing) on two ports, one plain and one behind TLS with that chain;
it answers every CALL at once and counts the BootNotifications.
  (a) connect and boot: the bridge's own `open_connection` (bridge/ocpp/connection.py) with the
      context `bridge.security.tls.client_context` builds for `tls: {ca_file: root}` (verification
      on, the white paper's suites), then one BootNotification and its answer; N times for each
      scheme, interleaved (ws, wss, ws, ...), median and p95 of each. Both ends of the handshake run
      in this one process, so the figure holds the server's share too: an upper bound of what the
      charge point pays. Building the context (once: it is cached) is timed apart.
  (b) memory: `python -m bridge.cli run` with CPS simulated charge points (local API off), once with
      a ws:// URL and once with wss:// and the `tls:` block; VmRSS (/proc/<pid>/status) SETTLE_S
      after all CPS BootNotifications arrived.
Targets (issue 16): at most +50 ms per connect, at most +20 % RSS.

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
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the repository: bench, bridge, tests.processes, tests.helpers.pki
from bridge.config import parse_config  # noqa: E402
from bridge.ocpp.connection import open_connection  # noqa: E402
from bridge.ocpp.ports import ConnectOptions  # noqa: E402
from bridge.security.tls import DefaultTls, clear_cache, client_context  # noqa: E402
from tests.helpers.bare_csms import BareCentralSystem, Call  # noqa: E402
from tests.helpers.pki import TestPki, make_test_pki  # noqa: E402
from tests.processes import child_env, stop_process, vmrss_mib  # noqa: E402

TARGET_CONNECT_MS = 50.0  # wss at most this much slower per connect, median
TARGET_RSS_PCT = 20.0  # a daemon on wss at most this much larger
SETTLE_S, QUICK_SETTLE_S = 3.0, 0.3
BOOT = [2, "1", "BootNotification", {"chargePointVendor": "bench", "chargePointModel": "bench"}]


class CentralSystem(BareCentralSystem):
    """The bare central system counting BootNotifications, ws:// and wss:// on two ports."""

    def __init__(self, pki: TestPki) -> None:
        super().__init__(interval=86400)
        self.pki = pki
        self.boots: set[str] = set()
        self.expected = 0
        self.all_booted: asyncio.Future[None] | None = None

    def expect(self, n: int) -> asyncio.Future[None]:
        self.boots, self.expected = set(), n
        self.all_booted = asyncio.get_running_loop().create_future()
        return self.all_booted

    def record(self, call: Call) -> None:
        if call.action == "BootNotification":
            self.boots.add(call.cp_id)
            done = self.all_booted
            if done is not None and not done.done() and len(self.boots) >= self.expected:
                done.set_result(None)


async def connect_and_boot(cfg: Any, options: ConnectOptions) -> float:
    """Seconds from the first byte of the connection to the BootNotification's answer."""
    began = time.perf_counter()
    ws = await open_connection(cfg, options, open_timeout=10)
    try:
        await ws.send(json.dumps(BOOT))
        await ws.recv()
        return time.perf_counter() - began
    finally:
        await ws.close()


def _config_text(workdir: Path, name: str, url: str, cps: int, tls: dict[str, str] | None) -> str:
    doc: dict[str, Any] = {
        "state_dir": str(workdir / f"state-{name}"),
        "api": {"listen": None},
        "charge_points": [
            {
                "id": f"TLS-{k:04d}",
                "csms_url": url,
                "connectors": [{"id": 1, "charger": {"type": "simulated"}}],
                **({"tls": tls} if tls else {}),
            }
            for k in range(1, cps + 1)
        ],
    }
    return json.dumps(doc)  # JSON is YAML


async def connects(cs: CentralSystem, workdir: Path, n: int) -> tuple[list[float], list[float], float]:
    settings = DefaultTls(ca_file=cs.pki.root)
    clear_cache()
    began = time.perf_counter()
    context = await asyncio.to_thread(client_context, settings)
    build_s = time.perf_counter() - began
    plans = {}
    for scheme in ("ws", "wss"):
        text = _config_text(workdir, scheme, cs.urls[scheme], 1, None)
        cfg = parse_config(text, "bench").charge_points[0]
        plans[scheme] = (
            cfg,
            ConnectOptions(cs.urls[scheme], None, "plain", context if scheme == "wss" else None),
        )
    times: dict[str, list[float]] = {"ws": [], "wss": []}
    for scheme in ("ws", "wss"):  # once each untimed: imports, the first handshake's set-up
        await connect_and_boot(*plans[scheme])
    for _ in range(n):
        for scheme in ("ws", "wss"):
            times[scheme].append(await connect_and_boot(*plans[scheme]))
    return times["ws"], times["wss"], build_s


async def daemon_rss(
    cs: CentralSystem, workdir: Path, scheme: str, cps: int, settle_s: float
) -> tuple[float, float]:
    """(VmRSS MiB once all booted and settled, seconds from spawn to all BootNotifications)."""
    tls = {"ca_file": str(cs.pki.root)} if scheme == "wss" else None
    config = workdir / f"daemon-{scheme}.yaml"
    config.write_text(_config_text(workdir, f"daemon-{scheme}", cs.urls[scheme], cps, tls))
    log = workdir / f"daemon-{scheme}.log"
    booted = cs.expect(cps)
    spawned = time.perf_counter()
    with log.open("wb") as sink:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bridge.cli", "run", "--config", str(config), "--log-level", "WARNING",
            cwd=REPO, env=child_env(), stdin=asyncio.subprocess.DEVNULL, stdout=sink, stderr=sink,
        )  # fmt: skip
    try:
        ended = asyncio.ensure_future(proc.wait())
        done, _ = await asyncio.wait([booted, ended], timeout=60, return_when=asyncio.FIRST_COMPLETED)
        ended.cancel()
        if booted not in done:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{scheme}: {len(cs.boots)} of {cps} BootNotifications; log:\n{tail}")
        boot_s = time.perf_counter() - spawned
        await asyncio.sleep(settle_s)
        return vmrss_mib(proc.pid), boot_s
    finally:
        await stop_process(proc)


def _ms(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return 1000 * statistics.median(ordered), 1000 * ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


async def main(n: int, cps: int, quick: bool) -> int:
    with tempfile.TemporaryDirectory(prefix="bench-tls-") as tmp:
        workdir = Path(tmp)
        cs = CentralSystem(make_test_pki(workdir / "pki"))
        await cs.start()  # ws://
        await cs.start(cs.pki.server_context())  # wss://, the test PKI's chain
        try:
            ws_times, wss_times, build_s = await connects(cs, workdir, n)
            settle = QUICK_SETTLE_S if quick else SETTLE_S
            rss_ws, boot_ws = await daemon_rss(cs, workdir, "ws", cps, settle)
            rss_wss, boot_wss = await daemon_rss(cs, workdir, "wss", cps, settle)
        finally:
            await cs.stop()
    (ws_med, ws_p95), (wss_med, wss_p95) = _ms(ws_times), _ms(wss_times)
    extra_ms = wss_med - ws_med
    extra_pct = 100 * (rss_wss - rss_ws) / rss_ws
    ok_connect, ok_rss = extra_ms <= TARGET_CONNECT_MS, extra_pct <= TARGET_RSS_PCT
    print(f"TLS cost ({n} connects each, interleaved; {cps} charge points per daemon)"
          + (" [--quick: figures mean nothing]" if quick else ""))  # fmt: skip
    print("| measure | ws:// | wss:// | difference | target | verdict |")
    print("|---|---|---|---|---|---|")
    print(f"| connect + BootNotification, median (p95) | {ws_med:.1f} ms ({ws_p95:.1f}) | "
          f"{wss_med:.1f} ms ({wss_p95:.1f}) | {extra_ms:+.1f} ms | +{TARGET_CONNECT_MS:g} ms | "
          f"{'met' if ok_connect else 'MISSED'} |")  # fmt: skip
    print(f"| daemon VmRSS, {cps} charge points | {rss_ws:.1f} MiB | {rss_wss:.1f} MiB | "
          f"{extra_pct:+.1f} % | +{TARGET_RSS_PCT:g} % | {'met' if ok_rss else 'MISSED'} |")  # fmt: skip
    print(f"| daemon spawn -> all {cps} BootNotifications | {boot_ws:.2f} s | {boot_wss:.2f} s | "
          f"{boot_wss - boot_ws:+.2f} s | | |")  # fmt: skip
    print(f"building the client context (once; cached after): {1000 * build_s:.1f} ms")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=30, help="connects per scheme (default 30)")
    parser.add_argument("--cps", type=int, default=100, help="charge points per daemon (default 100)")
    parser.add_argument("--quick", action="store_true", help="3 connects, 5 charge points: it still runs")
    args = parser.parse_args()
    if args.quick:
        args.n, args.cps = 3, 5
    sys.exit(asyncio.run(main(args.n, args.cps, args.quick)))
