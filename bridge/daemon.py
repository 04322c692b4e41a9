"""Wiring and lifecycle: configuration → devices → charge points → local API.

Each charge point of the file gets its own websocket and session; they run
side by side and one failing device or central system never stops the
others. A stop (SIGTERM, SIGINT, or `stop()`) cancels everything and
closes connections and devices; a running transaction is not stopped by it
(the charger keeps charging, and the next start takes the transaction up).

Under systemd (`Type=notify`, see `bridge.sd_notify` and docs/service.md):
`READY=1` once the store is open and its state restored (the central system
need not answer: a bridge that is offline is still running), `STATUS=` a
one-line summary whenever it changes, `STOPPING=1` when a stop begins, and
with `WatchdogSec=` a `WATCHDOG=1` every `WATCHDOG_USEC/2` while `health()`
finds nothing wrong. An unhealthy daemon stops pinging, and systemd kills
and restarts it.

Health. `health()` lists what is wrong, in words an installer can act on;
empty means healthy. It is cheap and synchronous (nothing in it waits on
I/O, so the watchdog pings are never late because of a check):
- a charge point's task has ended (a bug: its sessions and devices are dead,
  the other charge points go on);
- the store thread has not answered a round trip for `STORE_TIMEOUT_S`: a
  probe task sends a no-op through `Store.run` every `STORE_PROBE_EVERY_S`
  and the check looks at how long the one in flight has been waiting;
- a connector's poll loop has not gone round (its coordinator's `polled_at`)
  for its poll interval (the wait it chose, `due_at`) plus `POLL_SLACK_S`
  (device reads have their own timeouts, far below that); a loop that waits
  for a device's reports with no read due cannot be late;
- a session is wedged. The signal, from what the session shows publicly:
  * online (connected, Boot Accepted) with HeartbeatInterval > 0, the
    session sends a Heartbeat after HeartbeatInterval without another CALL,
    and every CALL is answered or times out within MessageTimeout. So no
    CALL leaving (seen through the session's frame observer) for
    HeartbeatInterval + MessageTimeout + `SESSION_SLACK_S` means its sender
    or heartbeat is stuck (e.g. a websocket send that never returns);
  * offline, every connection attempt ends within MessageTimeout (the open
    timeout) and a failed one is recorded in `link.last_error_at`; the next
    comes within `reconnect.max_s`. So a link status unchanged for
    reconnect.max_s + MessageTimeout + `SESSION_SLACK_S` means the connect
    loop is stuck. Values are only compared for change, never subtracted,
    so a wall clock that jumps (a Pi without a real-time clock) does not
    matter.
  A central system that is down, refuses us or keeps the boot Pending is
  not a problem of ours: a restart would not help, so it never fails the
  check.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import itertools
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from adapters.transports.pool import Transports
from bridge import collector
from bridge.chargepoint import ChargePoint
from bridge.clock import Clock
from bridge.config import Config
from bridge.devices import build_charger, device_state_file
from bridge.firmware.install import RESTART_EXIT_CODE
from bridge.mqtt_state import start_mqtt_state
from bridge.runtime.coordinator import DEFAULT_POLL_INTERVAL_S, DeviceCoordinator
from bridge.runtime.diagnostics import configuration_text
from bridge.runtime.firmware import installer_for
from bridge.runtime.frame_ring import ring_share
from bridge.sd_notify import Notifier
from bridge.security.cert_store import with_certificates
from bridge.store import Store

log = logging.getLogger("bridge.daemon")

STORE_PROBE_EVERY_S = 2.0  # a round trip to the store thread this often
STORE_TIMEOUT_S = 5.0  # a round trip waiting longer than this is a stuck store
POLL_SLACK_S = 60.0  # a poll loop may be late by this much beyond its interval
SESSION_SLACK_S = 60.0  # see "a session is wedged" above
STATUS_EVERY_S = 1.0  # the summary is recomputed this often (and sent when it changed)
BOOT_PAUSE_S = 60.0  # the collector is paused at most this long while the charge points boot
HEALTH_EVERY_S = 10.0  # the checks run this often, and before each watchdog ping


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _noop() -> None:
    pass


@dataclass
class _SessionWatch:
    """What the health check remembers of one session between looks (monotonic times)."""

    last_call_sent: float  # when a CALL last left, per the session's frame observer
    link: tuple[Any, ...] | None = None  # (connected, connected_since, last_error_at) as last seen
    link_seen_at: float = 0.0  # when `link` was first seen with that value


class Daemon:
    def __init__(self, config: Config, clock: Clock | None = None, notifier: Notifier | None = None) -> None:
        """Builds everything and opens the store (a few milliseconds of blocking file I/O: done
        before the daemon's work starts)."""
        self.config = config
        self.clock = clock or Clock()
        self.notifier = notifier or Notifier()
        self.store = Store.open(config.state_dir)
        self._config_text = configuration_text(config.source)  # for diagnostics archives
        # One sequence for the whole database: local transaction ids are never reused.
        new_transaction_id = itertools.count(self.store.next_transaction_id()).__next__
        self.charge_points: dict[str, ChargePoint] = {}
        self.transports = Transports()
        certificate_folders = with_certificates(config.state_dir)
        with collector.paused():  # nothing built here is garbage yet
            for cp_cfg in config.charge_points:
                chargers = {
                    c.id: build_charger(
                        c, self.transports, device_state_file(config.state_dir, cp_cfg.id, c.id)
                    )
                    for c in cp_cfg.connectors
                }
                cp = self.charge_points[cp_cfg.id] = ChargePoint(
                    cp_cfg, chargers, self.clock, self.store, new_transaction_id
                )
                cp.diagnostics.archive_from(config.state_dir, self._config_text)
                cp.security.attach(config.state_dir, certificate_folders)
                installer = installer_for(
                    cp_cfg.firmware, list(chargers.values()), config.state_dir, config.source, cp_cfg.csms_url
                )
                cp.firmware.install_with(installer, config.state_dir, self.restart)
            share = ring_share(len(self.charge_points))  # the page's live logs share one budget
            for cp in self.charge_points.values():
                cp.frames.limit(*share)
            # What was built here stays for the daemon's life: later collections need not walk it
            # (they fired during the restore and walked ~640,000 objects at 5,000 charge points).
            collector.freeze_what_stays(collect=False)
        self.exit_code = 0  # RESTART_EXIT_CODE after `restart`: the service starts us again
        self._stop = asyncio.Event()
        self.api_address: tuple[str, int] | None = None
        self._cp_tasks: dict[str, asyncio.Task[None]] = {}
        self._started_at: float | None = None  # monotonic, when the charge points started
        self._store_probe: asyncio.Task[None] | None = None
        self._store_waiting_since: float | None = None  # the probe in flight, if any
        self._watches: dict[str, _SessionWatch] = {}
        self._boot_pause: collector.Pause | None = None  # from the restore until every charge point booted

    def stop(self) -> None:
        self._stop.set()

    def restart(self) -> None:
        """Stop, with the exit code that has systemd start the service again (into a new release)."""
        self.exit_code = RESTART_EXIT_CODE
        self.stop()

    async def run(self, on_ready: Callable[[], None] | None = None) -> None:
        try:
            await self._run(on_ready)
        finally:
            if self._boot_pause is not None:
                self._boot_pause.end()
            gc.unfreeze()  # what the charge points held is garbage now like the rest
            await asyncio.to_thread(self.store.close)
            self.notifier.close()

    async def _run(self, on_ready: Callable[[], None] | None) -> None:
        # First of all, so that a stop asked for during start-up is a clean one.
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop)
        self.notifier.notify("STATUS=restoring the stored state")
        # Every charge point's rows in one job on the store thread, not six round trips each.
        page = max((cp.messages.outbox.page for cp in self.charge_points.values()), default=1)
        stored = await self.store.run(self.store.stored_states, list(self.charge_points), page)
        for cp_id, cp in self.charge_points.items():
            await cp.restore(stored[cp_id])
        # Without a collection: what was built so far holds no garbage in cycles (at 5,000 charge
        # points one found none of 640,000 objects, in 0.3 s before the first connection).
        collector.freeze_what_stays(collect=False)
        # Nor while they connect and boot (the heap only grows then): until all have booted, or
        # BOOT_PAUSE_S at most (a central system that is away must not hold it off for good).
        self._boot_pause = collector.Pause()
        for cp in self.charge_points.values():
            if cp.cfg.has_primary:  # reporting only: no primary link to watch
                self._watch_session(cp)
        self._started_at = self.clock.monotonic()
        for cp_id, cp in self.charge_points.items():
            task = asyncio.create_task(cp.run(), name=cp_id)
            task.add_done_callback(self._charge_point_ended)
            self._cp_tasks[cp_id] = task
        tasks = list(self._cp_tasks.values())
        publisher = start_mqtt_state(self.config.mqtt, self.charge_points)  # optional `mqtt:` state
        tasks += [publisher] if publisher is not None else []
        self._store_probe = asyncio.create_task(self._probe_store(), name="store probe")
        supervisor: asyncio.Task[None] | None = None
        runner = None
        try:
            if self.config.api.listen is not None:
                # aiohttp takes ~0.1 s to import: done in a thread so that the sessions,
                # already connecting, are not held up by it.
                api = await asyncio.to_thread(importlib.import_module, "bridge.api.server")
                runner, self.api_address = await api.start_api(self, *self.config.api.listen)
                log.info("local API on http://%s:%d", *self.api_address)
            # Ready: configuration loaded, store open and restored, sessions connecting. Not
            # "the central system answered": offline is a state the bridge runs in.
            status = self.status_line()
            self.notifier.notify("READY=1", f"STATUS={status}")
            supervisor = asyncio.create_task(self._supervise(status), name="supervisor")
            if on_ready is not None:
                on_ready()
            await self._stop.wait()
        finally:
            log.info("stopping")
            self.notifier.notify("STOPPING=1", "STATUS=stopping")
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
            if supervisor is not None:
                supervisor.cancel()
            self._store_probe.cancel()
            # All at once, each bounded (Session.close): a dead central system costs 2 s, not 2 s
            # per charge point, and no session reconnects meanwhile.
            await asyncio.gather(
                *(cp.session.close() for cp in self.charge_points.values()),
                *(cp.reporting.close() for cp in self.charge_points.values()),  # reporting targets' links
                return_exceptions=True,
            )
            for task in tasks:
                task.remove_done_callback(self._charge_point_ended)
                task.cancel()
            await asyncio.gather(*tasks, self._store_probe, return_exceptions=True)
            if supervisor is not None:
                await asyncio.gather(supervisor, return_exceptions=True)
            if runner is not None:
                await runner.cleanup()
            # All at once: a simulated box writes its state file as it closes, and one after another
            # 5,000 of them added seconds to the stop.
            chargers = [rt.charger for cp in self.charge_points.values() for rt in cp.connectors.values()]
            await asyncio.gather(*(charger.close() for charger in chargers), return_exceptions=True)
            with contextlib.suppress(Exception):
                await self.transports.close()

    def _charge_point_ended(self, task: asyncio.Task[None]) -> None:
        error = None if task.cancelled() else task.exception()
        log.error(
            "charge point %s stopped: %r; the others go on (under systemd the watchdog restarts the service)",
            task.get_name(),
            error,
            exc_info=error,
        )

    # -- health and systemd --------------------------------------------------
    # The checks read the few live facts they need from the parts, not a full snapshot of each
    # charge point: at 1,000 charge points snapshots once a second were most of the idle cost.
    def status_line(self) -> str:
        """One line for `systemctl status`, e.g. "2 charge points: 2 connected, 2 accepted; 1 transaction
        running"."""
        cps = self.charge_points.values()
        connected = sum(cp.session.link.connected for cp in cps)
        accepted = sum(cp.session.online for cp in cps)
        running = sum(cp.transactions_running for cp in cps)
        return (
            f"{_plural(len(cps), 'charge point')}: {connected} connected, {accepted} accepted; "
            f"{_plural(running, 'transaction')} running"
        )

    def health(self) -> list[str]:
        """What is wrong, one line per problem; empty when healthy. See the module's docstring."""
        now = self.clock.monotonic()
        problems: list[str] = []
        for cp_id, task in self._cp_tasks.items():
            if task.done():
                problems.append(f"{cp_id}: the charge point's task has ended")
        probe = self._store_probe
        if probe is not None and probe.done() and not self._stop.is_set():
            problems.append("the store probe has ended")
        waiting = self._store_waiting_since
        if waiting is not None and now - waiting > STORE_TIMEOUT_S:
            problems.append(f"the store thread has not answered a round trip within {STORE_TIMEOUT_S:g} s")
        for cp_id, cp in self.charge_points.items():
            cp_task = self._cp_tasks.get(cp_id)
            if cp_task is None or cp_task.done():
                continue
            for cid, rt in cp.connectors.items():
                limit = self._late_poll(rt.device, now)
                if limit is not None:
                    problems.append(
                        f"{cp_id}/{cid}: the poll loop has not gone round for more than {limit:g} s"
                    )
            problem = self._session_problem(cp, now)
            if problem is not None:
                problems.append(f"{cp_id}: {problem}")
        return problems

    def _late_poll(self, device: DeviceCoordinator, now: float) -> float | None:
        """The limit a connector's poll loop is past, or None when it is on time."""
        if device.polled_at is None:  # not round once yet: its start, its first read
            last, interval = self._started_at, device.poll_interval_s or DEFAULT_POLL_INTERVAL_S
        elif device.due_at is None:
            return None  # it waits for the device's reports: nothing can be late
        else:
            last, interval = device.polled_at, device.due_at - device.polled_at
        limit = interval + POLL_SLACK_S
        return limit if last is not None and now - last > limit else None

    def _watch_session(self, cp: ChargePoint) -> None:
        """Note when each CALL leaves, through the session's frame observer (chained to any other)."""
        watch = _SessionWatch(last_call_sent=self.clock.monotonic())
        self._watches[cp.cfg.id] = watch
        previous = cp.session.observer

        def observe(direction: str, kind: str, action: str, payload: Any) -> None:
            if direction == "out" and kind == "call":
                watch.last_call_sent = self.clock.monotonic()
            if previous is not None:
                previous(direction, kind, action, payload)

        cp.session.observer = observe

    def _session_problem(self, cp: ChargePoint, now: float) -> str | None:
        watch = self._watches.get(cp.cfg.id)
        if watch is None:
            return None
        link = cp.session.link
        seen = (link.connected, link.connected_since, link.last_error_at)
        if seen != watch.link:
            watch.link, watch.link_seen_at = seen, now
        message_timeout = max(0, cp.configuration.get_int("MessageTimeout"))
        if not link.connected:
            limit = cp.cfg.reconnect.max_s + message_timeout + SESSION_SLACK_S
            if now - watch.link_seen_at > limit:
                return f"offline and no connection attempt has ended for more than {limit:g} s"
            return None
        heartbeat = cp.configuration.get_int("HeartbeatInterval")
        if cp.session.online and heartbeat > 0:
            limit = heartbeat + message_timeout + SESSION_SLACK_S
            if now - max(watch.last_call_sent, watch.link_seen_at) > limit:
                return f"online and no message has been sent for more than {limit:g} s"
        return None

    async def _probe_store(self) -> None:
        while True:
            self._store_waiting_since = self.clock.monotonic()
            await self.store.run(_noop)
            self._store_waiting_since = None
            await asyncio.sleep(STORE_PROBE_EVERY_S)

    async def _supervise(self, last_status: str | None = None) -> None:
        """STATUS= when the summary changes; WATCHDOG=1 every WATCHDOG_USEC/2 while healthy; new
        problems logged once. The checks run before each ping, and every HEALTH_EVERY_S without one."""
        ping_every = self.notifier.watchdog_interval_s
        tick = STATUS_EVERY_S if ping_every is None else min(STATUS_EVERY_S, ping_every)
        loop = asyncio.get_running_loop()
        next_ping = next_check = loop.time()
        problems: list[str] = []
        booted = False
        while True:
            now = loop.time()
            if not booted:
                booted = self._end_boot_pause()
            # Half a tick early rather than a tick late: the gap never exceeds ping_every + tick / 2.
            ping_due = ping_every is not None and now + tick / 2 >= next_ping
            if ping_due or now >= next_check:
                next_check = now + HEALTH_EVERY_S
                problems = self._check(problems)
            if self.notifier.enabled:
                status = "unhealthy: " + "; ".join(problems) if problems else self.status_line()
                if status != last_status:
                    self.notifier.notify(f"STATUS={status}")
                    last_status = status
            if ping_due and not problems:
                self.notifier.notify("WATCHDOG=1")
                next_ping = now + (ping_every or 0.0)
            await asyncio.sleep(tick)

    def _end_boot_pause(self) -> bool:
        """Once every charge point has booted and its statuses are answered (or BOOT_PAUSE_S after the
        start, whichever is first), what the boots built is frozen and the collector runs again; True
        when that is done. One full collection on the loop, once (~0.4 s at 5,000 charge points):
        after the statuses, so that it does not hold up the last of them."""
        started = self._started_at
        waited_enough = started is None or self.clock.monotonic() - started > BOOT_PAUSE_S
        if not waited_enough and not all(cp.session.settled_in() for cp in self.charge_points.values()):
            return False
        collector.freeze_what_stays()  # the sessions' connections, boots and statuses: there to stay
        if self._boot_pause is not None:
            self._boot_pause.end()
        return True

    def _check(self, reported: list[str]) -> list[str]:
        """The problems now; those not `reported` before are logged (and a return to health)."""
        try:
            problems = self.health()
        except Exception as exc:  # a bug in a check is a failed check, not a dead supervisor
            log.exception("health check failed")
            problems = [f"the health check failed: {exc!r}"]
        new = [p for p in problems if p not in reported]
        if new:
            stopped = "; watchdog pings stopped" if self.notifier.watchdog_interval_s is not None else ""
            log.error("unhealthy%s: %s", stopped, "; ".join(new))
        elif reported and not problems:
            log.warning("healthy again")
        return problems
