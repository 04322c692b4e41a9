"""The systemd unit, checked offline with systemd-analyze, and the notify protocol against a fake
NOTIFY_SOCKET: READY=1 after start, WATCHDOG=1 well within WATCHDOG_USEC, STATUS= when the summary
changes, STOPPING=1 at a stop, and no WATCHDOG=1 while `Daemon.health()` finds a problem.

Running the unit under a real systemd (PID 1) needs a Pi or a VM: see docs/service.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import secrets
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

import bridge.daemon as daemon_module
from bridge.chargepoint import ChargePoint
from bridge.sd_notify import Notifier
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.helpers.systemd import systemd_analyze
from tests.processes import child_env, start_daemon, stop_process

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "systemd" / "ocpp-bridge.service"
MAX_EXPOSURE = 2.0  # systemd-analyze security's 0-10 scale; the unit scores 1.5
WATCHDOG_USEC = 400_000  # pings every 0.2 s


# -- the unit, offline -------------------------------------------------------------------------


def checkable_unit(tmp_path: Path) -> Path:
    """A copy of the unit whose ExecStart program exists here.

    `systemd-analyze verify` fails on an ExecStart that is not executable, and the unit's
    /opt/ocpp-bridge/.venv/bin/ocpp-bridge exists only where `make install` put it; the copy runs
    /bin/true with the same arguments. Every other line is the unit's own.
    """
    text = UNIT.read_text(encoding="utf-8")
    assert len(re.findall(r"^ExecStart=", text, flags=re.M)) == 1
    copy = tmp_path / "ocpp-bridge.service"  # verify takes the unit's name from the file's
    copy.write_text(re.sub(r"^ExecStart=\S+", "ExecStart=/bin/true", text, flags=re.M), encoding="utf-8")
    return copy


def test_the_unit_passes_systemd_analyze_verify_without_a_word(tmp_path: Path) -> None:
    # verify exits 0 even for unknown keys and bad values (they are warnings): the output must be empty.
    done = subprocess.run(
        [systemd_analyze(), "verify", "--man=no", str(checkable_unit(tmp_path))],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_the_unit_is_hardened_below_the_exposure_threshold(tmp_path: Path) -> None:
    # --threshold is in tenths of the printed 0-10 exposure (1.6 passes 17, fails 15).
    done = subprocess.run(
        [systemd_analyze(), "security", "--offline=yes", f"--threshold={int(MAX_EXPOSURE * 10)}",
         "--no-pager", str(checkable_unit(tmp_path))],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    found = re.search(r"Overall exposure level for ocpp-bridge\.service: (\d+\.\d+)", done.stdout)
    assert found is not None, done.stdout + done.stderr
    assert float(found[1]) <= MAX_EXPOSURE, done.stdout
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_unit_is_what_the_service_needs() -> None:
    """The lines the daemon and the installation rely on, beyond what systemd checks."""
    lines = set(UNIT.read_text(encoding="utf-8").splitlines())
    for line in [
        "Type=notify",
        "WatchdogSec=30s",
        "DynamicUser=yes",
        "StateDirectory=ocpp-bridge",
        "SupplementaryGroups=dialout",
        "ProtectSystem=strict",
        "CapabilityBoundingSet=",
        "LoadCredential=config.yaml:/etc/ocpp-bridge/config.yaml",
        "ExecStart=/opt/ocpp-bridge/.venv/bin/ocpp-bridge run --config %d/config.yaml",
        "RestartPreventExitStatus=2",  # ocpp-bridge's exit code for a configuration error
    ]:
        assert line in lines, line
    example = (ROOT / "config" / "service.yaml").read_text(encoding="utf-8")
    assert "state_dir: /var/lib/ocpp-bridge" in example  # the StateDirectory
    assert "listen: 127.0.0.1:" in example


# -- the notify protocol ---------------------------------------------------------------------


def test_notifier_reads_the_environment() -> None:
    assert not Notifier({}).enabled
    assert not Notifier({}).notify("READY=1")  # a no-op without NOTIFY_SOCKET
    assert Notifier({"NOTIFY_SOCKET": "@x"}).address == "\0x"
    assert Notifier({"NOTIFY_SOCKET": "/run/x"}).address == "/run/x"
    assert Notifier({"NOTIFY_SOCKET": "relative"}).address is None
    env = {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "30000000"}
    assert Notifier(env).watchdog_interval_s == 15.0
    assert Notifier({**env, "WATCHDOG_PID": "4242"}, pid=4242).watchdog_interval_s == 15.0
    assert Notifier({**env, "WATCHDOG_PID": "4242"}, pid=4243).watchdog_interval_s is None  # not ours
    assert Notifier({"WATCHDOG_USEC": "30000000"}).watchdog_interval_s is None  # nobody to ping
    assert Notifier({**env, "WATCHDOG_USEC": "0"}).watchdog_interval_s is None


class NotifySocket:
    """A real AF_UNIX datagram socket standing in for systemd's; records each field with its time."""

    def __init__(self, tmp_path: Path, abstract: bool) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"ocpp-bridge-test-{secrets.token_hex(8)}"
            self.sock.bind("\0" + name)
            self.env_value = "@" + name
        else:
            path = tmp_path / "notify.sock"
            self.sock.bind(str(path))
            self.env_value = str(path)
        self.sock.setblocking(False)
        self.fields: list[tuple[float, str]] = []  # (monotonic time received, "KEY=value")
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            data = await loop.sock_recv(self.sock, 4096)
            at = time.monotonic()
            self.fields += [(at, field) for field in data.decode().split("\n") if field]
            self._changed.set()

    async def __aenter__(self) -> NotifySocket:
        self._task = asyncio.create_task(self._pump())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self.sock.close()

    def times(self, field: str, after: float = 0.0) -> list[float]:
        return [at for at, f in self.fields if f == field and at > after]

    def statuses(self) -> list[str]:
        return [f.removeprefix("STATUS=") for _, f in self.fields if f.startswith("STATUS=")]

    async def wait_for(self, found: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
        deadline = time.monotonic() + timeout
        while not (result := found()):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {what or found}; got {self.fields}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.1))
        return result


@contextlib.asynccontextmanager
async def notify_socket(tmp_path: Path, abstract: bool = False) -> AsyncIterator[NotifySocket]:
    async with NotifySocket(tmp_path, abstract) as ns:
        yield ns


def assert_pings_in_time(ns: NotifySocket, since: float, until: float) -> None:
    """WATCHDOG=1 from `since` to `until` with no gap reaching WATCHDOG_USEC."""
    pings = ns.times("WATCHDOG=1", after=since)
    pings = [t for t in pings if t <= until]
    assert len(pings) >= 3, ns.fields
    gaps = [b - a for a, b in zip([since, *pings], [*pings, until], strict=True)]
    assert max(gaps) < WATCHDOG_USEC / 1e6, gaps


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
async def test_ready_watchdog_status_and_stopping_from_the_real_process(
    tmp_path: Path, abstract: bool
) -> None:
    config = tmp_path / "config.yaml"
    log = tmp_path / "run.log"
    async with StrictCentralSystem() as cs, notify_socket(tmp_path, abstract) as ns:
        config.write_text(
            f"state_dir: {tmp_path / 'state'}\n"
            "api: {listen: null}\n"
            "charge_points:\n"
            "  - id: CP-1\n"
            f"    csms_url: {cs.url}\n"
            "    ocpp: {WebSocketPingInterval: 0}\n"
            "    connectors: [{id: 1, charger: {type: simulated}}]\n",
            encoding="utf-8",
        )
        env = child_env(NOTIFY_SOCKET=ns.env_value, WATCHDOG_USEC=str(WATCHDOG_USEC))
        proc = await start_daemon(config, log, env=env)
        try:
            ready = (await ns.wait_for(lambda: ns.times("READY=1"), what="READY=1"))[0]
            await ns.wait_for(
                lambda: "1 charge point: 1 connected, 1 accepted; 0 transactions running" in ns.statuses(),
                what="the summary after the boot",
            )
            await asyncio.sleep(max(0.0, ready + 1.2 - time.monotonic()))
            stopped_at = time.monotonic()
            code = await stop_process(proc)
        finally:
            await stop_process(proc)
        await ns.wait_for(lambda: ns.times("STOPPING=1"), timeout=2, what="STOPPING=1")
    assert code == 0, log.read_text()
    assert_pings_in_time(ns, ready, stopped_at)
    statuses = ns.statuses()
    assert statuses[0] == "restoring the stored state"  # before READY
    assert statuses[1] == "1 charge point: 0 connected, 0 accepted; 0 transactions running"  # with READY
    assert statuses[-1] == "stopping"
    assert all(a != b for a, b in itertools.pairwise(statuses))  # sent when it changes
    assert ns.times("STATUS=restoring the stored state")[0] <= ready


async def test_the_status_line_counts_running_transactions(
    csms: StrictCentralSystem, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with notify_socket(tmp_path) as ns:
        monkeypatch.setenv("NOTIFY_SOCKET", ns.env_value)
        monkeypatch.delenv("WATCHDOG_USEC", raising=False)
        config = make_config(csms.url, tmp_path, cp_ids=("CP-1", "CP-2"))
        async with running(config) as daemon:
            await ns.wait_for(
                lambda: "2 charge points: 2 connected, 2 accepted; 0 transactions running" in ns.statuses()
            )
            sim = daemon.charge_points["CP-1"].connectors[1].charger
            sim.plug()
            sim.tap("TAG-1")
            await csms.wait_for_call("CP-1", "StartTransaction")
            await ns.wait_for(
                lambda: "2 charge points: 2 connected, 2 accepted; 1 transaction running" in ns.statuses()
            )
            assert not ns.times("WATCHDOG=1")  # no WatchdogSec, no pings


# -- the health check gates the watchdog ----------------------------------------------------------


@contextlib.asynccontextmanager
async def watched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[NotifySocket]:
    """A notify socket, with the environment of a unit that has WatchdogSec (this process)."""
    async with notify_socket(tmp_path) as ns:
        monkeypatch.setenv("NOTIFY_SOCKET", ns.env_value)
        monkeypatch.setenv("WATCHDOG_USEC", str(WATCHDOG_USEC))
        monkeypatch.delenv("WATCHDOG_PID", raising=False)
        yield ns


async def unhealthy(ns: NotifySocket, daemon: Any, problem: str) -> float:
    """Waits until health() reports `problem` and STATUS says so; then no WATCHDOG=1 comes for 0.6 s
    (more than WATCHDOG_USEC: systemd would kill the service). Returns when STATUS said it."""
    await ns.wait_for(lambda: problem in daemon.health(), what=problem)
    said = (await ns.wait_for(lambda: [t for t, f in ns.fields if f == f"STATUS=unhealthy: {problem}"]))[0]
    await asyncio.sleep(0.6)
    assert not ns.times("WATCHDOG=1", after=said), ns.fields
    return said


def logged(caplog: pytest.LogCaptureFixture, text: str) -> int:
    return sum(text in r.getMessage() for r in caplog.records if r.name == "bridge.daemon")


async def test_no_watchdog_while_the_store_thread_does_not_answer(
    csms: StrictCentralSystem,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(daemon_module, "STORE_TIMEOUT_S", 0.4)
    monkeypatch.setattr(daemon_module, "STORE_PROBE_EVERY_S", 0.05)
    problem = "the store thread has not answered a round trip within 0.4 s"
    async with watched(tmp_path, monkeypatch) as ns, running(make_config(csms.url, tmp_path)) as daemon:
        await ns.wait_for(lambda: ns.times("WATCHDOG=1"))
        assert daemon.health() == []
        daemon.store.submit(time.sleep, 2.0)  # the store thread is busy for 2 s (a stuck SD card)
        said = await unhealthy(ns, daemon, problem)
        # The thread answers again: pings resume (systemd would have restarted us by now with
        # WatchdogSec=0.4 s, but with the real 30 s a short stall is ridden out).
        await ns.wait_for(lambda: ns.times("WATCHDOG=1", after=said), timeout=3)
        assert daemon.health() == []
    assert logged(caplog, problem) == 1  # once, not every tick
    assert logged(caplog, "healthy again") == 1


async def test_no_watchdog_while_a_poll_loop_is_stuck(
    csms: StrictCentralSystem, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(daemon_module, "POLL_SLACK_S", 0.3)
    config = make_config(csms.url, tmp_path, connectors=2, connector_fields={"poll_interval_s": 0.1})
    async with watched(tmp_path, monkeypatch) as ns, running(config) as daemon:
        await ns.wait_for(lambda: ns.times("WATCHDOG=1"))
        await asyncio.sleep(0.5)
        assert daemon.health() == []  # both loops go round

        async def never_answers() -> Any:
            await asyncio.sleep(3600)

        monkeypatch.setattr(daemon.charge_points["CP-1"].connectors[2].charger, "read", never_answers)
        await unhealthy(ns, daemon, "CP-1/2: the poll loop has not gone round for more than 0.4 s")
        assert daemon.health() == ["CP-1/2: the poll loop has not gone round for more than 0.4 s"]


async def test_a_charge_point_whose_task_ended_stops_the_watchdog_not_the_others(
    csms: StrictCentralSystem, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_run = ChargePoint.run

    async def run(self: ChargePoint) -> None:
        if self.cfg.id == "CP-1":
            raise RuntimeError("a bug")
        await real_run(self)

    monkeypatch.setattr(ChargePoint, "run", run)
    config = make_config(csms.url, tmp_path, cp_ids=("CP-1", "CP-2"))
    async with watched(tmp_path, monkeypatch) as ns, running(config) as daemon:
        await unhealthy(ns, daemon, "CP-1: the charge point's task has ended")
        await csms.wait_for_call("CP-2", "StatusNotification")  # the other one goes on
        assert daemon.charge_points["CP-2"].session.online


async def test_a_connect_loop_that_hangs_is_a_wedged_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(daemon_module, "SESSION_SLACK_S", 0.0)

    async def hangs(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(3600)

    monkeypatch.setattr("bridge.ocpp.session.open_connection", hangs)
    # Offline, an attempt ends within MessageTimeout (1 s) and the next comes within max_s (0.2 s).
    config = make_config(
        "ws://127.0.0.1:9/ocpp",
        tmp_path,
        ocpp={"MessageTimeout": 1},
        reconnect={"initial_s": 0.1, "max_s": 0.2},
    )
    async with watched(tmp_path, monkeypatch) as ns, running(config) as daemon:
        await ns.wait_for(lambda: ns.times("WATCHDOG=1"))
        await unhealthy(ns, daemon, "CP-1: offline and no connection attempt has ended for more than 1.2 s")


async def test_an_online_session_that_sends_nothing_is_wedged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(daemon_module, "SESSION_SLACK_S", 0.0)
    # Online, a Heartbeat leaves after 1 s (the boot interval) without another CALL and is
    # answered within MessageTimeout, 1 s.
    async with StrictCentralSystem(boot=[("Accepted", 1)]) as cs:
        config = make_config(cs.url, tmp_path, ocpp={"MessageTimeout": 1})
        async with watched(tmp_path, monkeypatch) as ns, running(config) as daemon:
            await cs.wait_for_call("CP-1", "Heartbeat", timeout=5)
            assert daemon.health() == []
            endpoint = daemon.charge_points["CP-1"].session.endpoint
            assert endpoint is not None

            async def never_returns(frame: Any) -> None:  # a websocket send stuck for good
                await asyncio.sleep(3600)

            monkeypatch.setattr(endpoint.connection, "send", never_returns)
            await unhealthy(ns, daemon, "CP-1: online and no message has been sent for more than 2 s")


async def test_an_offline_bridge_is_healthy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A central system that is down is not ours to fix: a restart would not help."""
    monkeypatch.setattr(daemon_module, "SESSION_SLACK_S", 0.0)
    port_with_nobody = socket.socket()
    port_with_nobody.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    try:
        url = f"ws://127.0.0.1:{port_with_nobody.getsockname()[1]}/ocpp"
        config = make_config(
            url, tmp_path, ocpp={"MessageTimeout": 1}, reconnect={"initial_s": 0.1, "max_s": 0.2}
        )
        async with watched(tmp_path, monkeypatch) as ns, running(config) as daemon:
            await asyncio.sleep(1.6)  # beyond the 1.2 s a stuck connect loop is given
            assert daemon.health() == []
            assert_pings_in_time(ns, ns.times("WATCHDOG=1")[0], time.monotonic())
    finally:
        port_with_nobody.close()
