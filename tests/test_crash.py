"""Kill -9 the daemon at random points of a transaction, restart it, and check the central system's record.

Each run is a real `python -m bridge.cli run` process with its own strict central system and state
directory: boot, plug, tap a tag of its own ("RUN-17"), maybe end the session (tap again or unplug) at
a random moment, kill -9 at a random moment, restart with the same state directory, let the restarted
daemon deliver what it holds (it ends a transaction left open by the crash with PowerLoss), stop it
with SIGTERM. Then, on what the central system received:

- at most one StartTransaction per session, counted by message id (a resend after a crash keeps its
  message id; such redeliveries are counted and reported, they are no failure);
- for every StartTransaction exactly one StopTransaction, carrying the transactionId of the last
  answer to that StartTransaction (-1 only if it was never answered), after every delivery of the
  StartTransaction and of the transaction's MeterValues; no StopTransaction without a StartTransaction;
- a stop reason that fits what was done (Local for the tap, EVDisconnected for the unplug, PowerLoss
  for a session the crash ended), and a session ended well before the kill reported before it;
- meterStop >= meterStart, and not below a register value already sent in MeterValues;
- the transaction's MeterValues carry strictly increasing timestamps, between start and stop;
- no OCPP violation (`assert_clean`), no traceback in the daemon's log, and after the clean stop the
  store holds no transaction and no queued message (else a later restart would send more).

Delays come from `random.Random(seed)` with seed = CRASH_TEST_SEED (default 1600) + run number, so a
failing run can be replayed: CRASH_TEST_SEED / CRASH_TEST_RUNS change the base seed and the number of
runs. Two runs go on at once (separate central systems, ports and state directories).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import random
import signal
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.csms import Frame, StrictCentralSystem
from tests.processes import free_port, start_daemon, stop_process

ROOT = Path(__file__).resolve().parent.parent
CP_ID = "CP-1"
RUNS = int(os.environ.get("CRASH_TEST_RUNS", "36"))  # ~50 s; more with CRASH_TEST_RUNS
BASE_SEED = int(os.environ.get("CRASH_TEST_SEED", "1600"))
LANES = 2  # runs going on at once
DETAILED_FAILURES = 3  # runs whose frames and logs are shown
MAX_FRAME_LINES = 150  # frames shown per run (first and last)
BOOT_LIMIT_S = 15.0
SETTLE_LIMIT_S = 15.0  # for the restarted daemon to deliver every StopTransaction
QUIET_S = 0.5  # nothing more comes: no frame for this long
STOP_DELIVERY_S = 1.0  # a session ended this long before the kill was reported before it


# -- the plan of one run ---------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    run: int
    seed: int
    kill_s: float  # after the tap request was sent
    stop: str | None = None  # "tap" | "unplug": end the session before the kill
    stop_s: float | None = None
    start_answer_delay_s: float = 0.0  # the central system takes this long to answer StartTransaction

    @property
    def id_tag(self) -> str:
        return f"RUN-{self.run}"

    def describe(self) -> str:
        stop = f", {self.stop} at +{self.stop_s:.3f} s" if self.stop else ""
        delay = (
            f", StartTransaction answered after {self.start_answer_delay_s:.3f} s"
            if self.start_answer_delay_s
            else ""
        )
        return (
            f"run {self.run} (seed {self.seed}): kill -9 at +{self.kill_s:.3f} s after the tap{stop}{delay}"
        )


def make_plan(run: int) -> Plan:
    seed = BASE_SEED + run
    rng = random.Random(seed)
    # The tap, Authorize, persisting and sending StartTransaction take ~6 ms: a third of the kills
    # land there, the rest anywhere in the meter values (one a second).
    kill_s = rng.uniform(0.0, 0.012) if rng.random() < 0.3 else rng.uniform(0.012, 2.5)
    # A slow central system in a fifth of the runs: the kill often lands while StartTransaction waits.
    delay = rng.uniform(0.0, 0.1) if rng.random() < 0.2 else 0.0
    if rng.random() < 0.5:
        return Plan(run, seed, kill_s, start_answer_delay_s=delay)
    stop = rng.choice(["tap", "unplug"])
    # Half of the stops just before the kill (the kill lands while the stop is handled, persisted, sent).
    before = rng.uniform(0.0, 0.012) if rng.random() < 0.5 else rng.uniform(0.0, kill_s)
    return Plan(run, seed, kill_s, stop, max(0.0, kill_s - before), delay)


# -- the record of one run -------------------------------------------------------------------


@dataclass
class Call:
    """One delivery of a CALL from the charge point, with the central system's answer if any."""

    order: tuple[float, int, int]  # (time received, link, frame): global order of the run
    link: int
    message_id: str
    action: str
    payload: dict[str, Any]
    answer: dict[str, Any] | None = None
    answered_at: float | None = None  # when the central system sent the answer


@dataclass
class Outcome:
    plan: Plan
    phase: str = "?"
    problems: list[str] = field(default_factory=list)
    redelivered: Counter[str] = field(default_factory=Counter)  # action -> deliveries of a known id
    frames: str = ""
    logs: str = ""
    seconds: float = 0.0

    def report(self, detailed: bool) -> str:
        head = f"{self.plan.describe()} [{self.phase}]:\n  " + "\n  ".join(self.problems)
        if not detailed:
            return head
        return f"{head}\n frames of the run:\n{self.frames}\n daemon logs (tails):\n{self.logs}"


def calls_of(cs: StrictCentralSystem) -> list[Call]:
    """Every CALL the charge point delivered, in the order received, with its answer (if one was sent)."""
    out: list[Call] = []
    for n, link in enumerate(cs.links):
        pending: dict[str, Call] = {}
        for i, f in enumerate(link.frames):
            m = f.message
            if not m:
                continue
            if f.direction == "in" and m[0] == 2 and len(m) == 4:
                c = Call((f.at, n, i), n, m[1], m[2], m[3])
                pending[m[1]] = c
                out.append(c)
            elif f.direction == "out" and m[0] == 3 and m[1] in pending:
                c = pending.pop(m[1])
                c.answer, c.answered_at = m[2], f.at
    return sorted(out, key=lambda c: c.order)


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _registers(meter_values: dict[str, Any]) -> list[float]:
    return [
        float(s["value"])
        for mv in meter_values.get("meterValue", [])
        for s in mv.get("sampledValue", [])
        if s.get("measurand", "Energy.Active.Import.Register") == "Energy.Active.Import.Register"
    ]


def check_record(
    cs: StrictCentralSystem, id_tag: str, reasons: set[str], redelivered: Counter[str]
) -> list[str]:
    """What is wrong in the central system's record of one run (empty: nothing).

    `reasons`: the stop reasons that fit what was done at the box (PowerLoss: ended after the crash).
    """
    problems = [f"OCPP violation: {v}" for v in cs.violations]
    calls = calls_of(cs)
    seen: set[str] = set()
    for c in calls:
        if c.action in ("StartTransaction", "MeterValues", "StopTransaction") and c.message_id in seen:
            redelivered[c.action] += 1
        seen.add(c.message_id)

    def by_id(action: str) -> dict[str, list[Call]]:
        groups: dict[str, list[Call]] = {}
        for c in calls:
            if c.action == action:
                groups.setdefault(c.message_id, []).append(c)
        return groups

    starts, meters, stops = by_id("StartTransaction"), by_id("MeterValues"), by_id("StopTransaction")
    tags = [d[0].payload.get("idTag") for d in starts.values()]
    if len(starts) > 1:
        problems.append(f"{len(starts)} StartTransactions with different message ids for one session: {tags}")
    if any(t != id_tag for t in tags):
        problems.append(f"StartTransaction for an id tag this run never used: {tags}")
    for group in (starts, meters, stops):
        for message_id, deliveries in group.items():
            payloads = {repr(d.payload) for d in deliveries}
            if len(payloads) > 1:
                problems.append(
                    f"{deliveries[0].action} {message_id} resent with a different payload: {sorted(payloads)}"
                )
    matched_stops: set[str] = set()
    matched_meters: set[str] = set()
    for start_id, deliveries in starts.items():
        start = deliveries[0].payload
        answered = [d.answer["transactionId"] for d in deliveries if d.answer is not None]
        ids = set(answered) if answered else {-1}
        expected_id = answered[-1] if answered else -1
        mine = {k: v for k, v in stops.items() if v[0].payload.get("transactionId") in ids}
        matched_stops |= mine.keys()
        what = f"StartTransaction {start_id} (transactionId {sorted(ids)})"
        if len(mine) != 1:
            problems.append(f"{what}: {len(mine)} StopTransactions (by message id), expected exactly 1")
        if not mine:
            continue
        stop = next(iter(mine.values()))[0]
        if stop.payload.get("reason") not in reasons:
            problems.append(
                f"{what}: StopTransaction reason {stop.payload.get('reason')},"
                f" expected one of {sorted(reasons)}"
            )
        if stop.payload["transactionId"] != expected_id:
            problems.append(
                f"{what}: StopTransaction carries transactionId {stop.payload['transactionId']}, but the last"
                f" answer to the StartTransaction gave {expected_id}"
            )
        if stop.order < deliveries[-1].order:
            problems.append(f"{what}: StopTransaction delivered before (a resend of) its StartTransaction")
        if stop.payload["meterStop"] < start["meterStart"]:
            problems.append(
                f"{what}: meterStop {stop.payload['meterStop']} < meterStart {start['meterStart']}"
            )
        if _ts(stop.payload["timestamp"]) < _ts(start["timestamp"]):
            problems.append(f"{what}: StopTransaction timestamp before the StartTransaction's")
        mvs = {k: v for k, v in meters.items() if v[0].payload.get("transactionId") in ids}
        matched_meters |= mvs.keys()
        last_stamp: datetime | None = None
        for mv_id, mv_deliveries in mvs.items():
            mv = mv_deliveries[0].payload
            if mv_deliveries[-1].order > stop.order:
                problems.append(f"{what}: MeterValues {mv_id} delivered after the StopTransaction")
            for value in mv["meterValue"]:
                stamp = _ts(value["timestamp"])
                if last_stamp is not None and stamp <= last_stamp:
                    problems.append(
                        f"{what}: MeterValues {mv_id} timestamp {value['timestamp']} not increasing"
                    )
                if not _ts(start["timestamp"]) <= stamp <= _ts(stop.payload["timestamp"]):
                    problems.append(
                        f"{what}: MeterValues {mv_id} timestamp {value['timestamp']} outside the"
                        f" transaction ({start['timestamp']} .. {stop.payload['timestamp']})"
                    )
                last_stamp = stamp
            for register in _registers(mv):
                if register < start["meterStart"] or math.floor(register) > stop.payload["meterStop"]:
                    problems.append(
                        f"{what}: MeterValues {mv_id} register {register} Wh outside meterStart"
                        f" {start['meterStart']} .. meterStop {stop.payload['meterStop']}"
                    )
    for k, v in stops.items():
        if k not in matched_stops:
            problems.append(f"StopTransaction {k} without a StartTransaction: {v[0].payload}")
    for k, v in meters.items():
        if k not in matched_meters:
            problems.append(f"MeterValues {k} of no known transaction: {v[0].payload}")
    return problems


IN_FLIGHT_S = 0.005  # an answer sent this shortly before the kill may not have been taken in


def check_stop_reported(
    cs: StrictCentralSystem, plan: Plan, requested_at: float, answered_at: float, kill_at: float
) -> list[str]:
    """A session ended well before the kill was reported to the central system before the kill."""
    if kill_at - answered_at < STOP_DELIVERY_S:
        return []
    first = [c for c in calls_of(cs) if c.link == 0]
    if not any(c.action == "StartTransaction" and c.order[0] < requested_at for c in first):
        return []  # the transaction may not have existed yet when the stop came: it need not end
    reason = "Local" if plan.stop == "tap" else "EVDisconnected"
    if any(c.action == "StopTransaction" and c.payload.get("reason") == reason for c in first):
        return []
    return [
        f"the session was ended ({plan.stop}, answered {kill_at - answered_at:.2f} s before the kill)"
        f" but no StopTransaction ({reason}) reached the central system before the kill"
    ]


def phase_of(cs: StrictCentralSystem, stop_sent: bool, kill_at: float | None) -> str:
    """Where the kill landed, as seen from the central system (first link: the killed daemon)."""
    calls = calls_of(cs)
    first = [c for c in calls if c.link == 0]

    def in_flight(c: Call) -> bool:
        return c.answered_at is None or kill_at is None or kill_at - c.answered_at < IN_FLIGHT_S

    starts = [c for c in calls if c.action == "StartTransaction"]
    if not starts:
        auth = [c for c in first if c.action == "Authorize"]
        if not auth:
            where = "before Authorize was sent"
        elif in_flight(auth[-1]):
            where = "Authorize in flight"
        else:
            where = "after Authorize was answered"
        return f"before StartTransaction was persisted ({where})"
    start_first = [c for c in first if c.action == "StartTransaction"]
    if stop_sent:
        stop = next((c for c in calls if c.action == "StopTransaction"), None)
        stop_first = [c for c in first if c.action == "StopTransaction"]
        if stop is not None and stop.payload.get("reason") == "PowerLoss":
            where = "stop not yet persisted: ended with PowerLoss"
        elif not stop_first:
            where = "StopTransaction persisted, not sent"
        elif in_flight(stop_first[-1]):
            where = "StopTransaction in flight"
        else:
            where = "after StopTransaction was answered"
        if not start_first:
            where += "; StartTransaction not yet sent"
        return f"around the stop ({where})"
    if not start_first:
        return "StartTransaction persisted, not yet sent"
    if in_flight(start_first[-1]):
        return "StartTransaction in flight"
    meter_values = [c for c in first if c.action == "MeterValues"]
    if not meter_values:
        return "StartTransaction answered, before the first MeterValues"
    if in_flight(meter_values[-1]):
        return "during meter values (MeterValues in flight)"
    return "during meter values (between two)"


def render_frames(cs: StrictCentralSystem, t0: float, kill_at: float | None) -> str:
    rows: list[tuple[float, str]] = []
    for n, link in enumerate(cs.links):
        f: Frame
        for f in link.frames:
            arrow = "cp->cs" if f.direction == "in" else "cs->cp"
            rows.append((f.at, f"  {f.at - t0:+8.3f} s  link {n}  {arrow}  {f.raw[:240]}"))
    if kill_at is not None:
        rows.append((kill_at, f"  {kill_at - t0:+8.3f} s  ----- kill -9 -----"))
    lines = [text for _, text in sorted(rows, key=lambda r: r[0])]
    if len(lines) > MAX_FRAME_LINES:
        counts = [Counter(c.action for c in calls_of(cs) if c.link == n) for n in range(len(cs.links))]
        left_out = len(lines) - MAX_FRAME_LINES
        lines = [
            *lines[: MAX_FRAME_LINES * 2 // 3],
            f"  ... {left_out} frames left out; CALLs per link: {[dict(c) for c in counts]} ...",
            *lines[-(MAX_FRAME_LINES // 3) :],
        ]
    return "\n".join(lines)


# -- processes -------------------------------------------------------------------------------


def write_config(directory: Path, csms_url: str, api_port: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    text = (
        f"state_dir: {directory / 'state'}\n"
        "api:\n"
        f"  listen: 127.0.0.1:{api_port}\n"
        "charge_points:\n"
        f"  - id: {CP_ID}\n"
        f"    csms_url: {csms_url}\n"
        "    reconnect: {initial_s: 0.1, max_s: 0.5}\n"
        "    ocpp:\n"
        "      MeterValueSampleInterval: 1\n"
        "      MessageTimeout: 5\n"
        "      WebSocketPingInterval: 0\n"
        "    connectors:\n"
        "      - id: 1\n"
        "        charger: {type: simulated, initial_energy_wh: 1000, time_scale: 100}\n"
    )
    path = directory / "bridge.yaml"
    path.write_text(text, encoding="utf-8")
    return path


async def wait_booted(cs: StrictCentralSystem, link: int, proc: asyncio.subprocess.Process) -> None:
    """Until the daemon's `link`-th connection reported connector 1 after an accepted boot."""

    def booted() -> bool:
        if proc.returncode is not None:
            raise AssertionError(f"the daemon exited with {proc.returncode} before it booted")
        links = [x for x in cs.links if x.cp_id == CP_ID]
        return len(links) > link and any(
            f.direction == "in"
            and f.message
            and f.message[0] == 2
            and f.message[2] == "StatusNotification"
            and f.message[3].get("connectorId") == 1
            for f in links[link].frames
        )

    await cs.wait_until(booted, BOOT_LIMIT_S, f"boot of daemon #{link + 1}")


async def wait_api(http: aiohttp.ClientSession, base: str, proc: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + BOOT_LIMIT_S
    while True:
        if proc.returncode is not None:
            raise AssertionError(f"the daemon exited with {proc.returncode} before its API answered")
        with contextlib.suppress(aiohttp.ClientConnectionError):
            async with http.get(f"{base}/api/v1/status") as response:
                if response.status == 200 and (await response.json())["charge_points"][0]["accepted"]:
                    return
        if time.monotonic() > deadline:
            raise AssertionError(f"the local API did not answer within {BOOT_LIMIT_S} s")
        await asyncio.sleep(0.02)


async def sim(
    http: aiohttp.ClientSession,
    base: str,
    action: str,
    id_tag: str | None = None,
    answered_at: list[float] | None = None,
) -> None:
    body: dict[str, str] = {"action": action}
    if id_tag is not None:
        body["id_tag"] = id_tag
    async with http.post(f"{base}/api/v1/charge_points/{CP_ID}/connectors/1/sim", json=body) as response:
        assert response.status == 200, f"sim {action}: {response.status} {await response.text()}"
    if answered_at is not None:
        answered_at.append(time.monotonic())


async def wait_settled(cs: StrictCentralSystem) -> None:
    """Until every StartTransaction has a StopTransaction and nothing came for QUIET_S (or time is up)."""
    deadline = time.monotonic() + SETTLE_LIMIT_S
    while time.monotonic() < deadline:
        calls = calls_of(cs)
        stopped = {c.payload.get("transactionId") for c in calls if c.action == "StopTransaction"}
        answers: dict[str, set[Any]] = {}
        for c in calls:
            if c.action == "StartTransaction":
                ids = answers.setdefault(c.message_id, set())
                if c.answer is not None:
                    ids.add(c.answer["transactionId"])
        unstopped = [m for m, ids in answers.items() if not (ids or {-1}) & stopped]
        last = max((f.at for link in cs.links for f in link.frames), default=0.0)
        if not unstopped and time.monotonic() - last >= QUIET_S:
            return
        await asyncio.sleep(0.05)


def store_leftovers(state_dir: Path) -> list[str]:
    """What the store still holds after a clean stop with everything delivered (should be nothing)."""
    path = state_dir / "ocpp-bridge.sqlite3"
    if not path.exists():
        return ["no database in the state directory"]
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        outbox = db.execute("SELECT action, tx, payload FROM outbox ORDER BY seq").fetchall()
        open_tx = db.execute("SELECT id, id_tag, cs_id, stopped_at FROM transactions").fetchall()
    finally:
        db.close()
    problems = []
    if outbox:
        problems.append(f"after the clean stop the outbox still holds {outbox} (a later restart sends them)")
    if open_tx:
        problems.append(f"after the clean stop the store still holds transactions {open_tx}")
    return problems


def _tail(log: Path, lines: int = 25) -> str:
    if not log.exists():
        return "  (no log)"
    text = log.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join(f"    {line}" for line in text)


# -- one run -----------------------------------------------------------------------------------


async def one_run(plan: Plan, directory: Path) -> Outcome:
    outcome = Outcome(plan)
    begun = time.monotonic()
    logs = [directory / "daemon-1.log", directory / "daemon-2.log"]
    procs: list[asyncio.subprocess.Process] = []
    t0 = kill_at = stop_requested_at = None
    stop_answered_at: list[float] = []
    stop_sent = False
    requests: list[asyncio.Task[None]] = []
    async with StrictCentralSystem() as cs, aiohttp.ClientSession() as http:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        config = write_config(directory, cs.url, port)
        try:
            first = await start_daemon(config, logs[0])
            procs.append(first)
            await wait_booted(cs, 0, first)
            await wait_api(http, base, first)
            await sim(http, base, "plug")
            await cs.wait_for_call(CP_ID, "StatusNotification", lambda p: p["status"] == "Preparing")
            cs.answer_delay["StartTransaction"] = plan.start_answer_delay_s
            t0 = time.monotonic()
            # The requests go on while the kill comes: it may land before the daemon even read them.
            requests.append(asyncio.create_task(sim(http, base, "tap", plan.id_tag)))
            if plan.stop is not None and plan.stop_s is not None:
                await asyncio.sleep(max(0.0, t0 + plan.stop_s - time.monotonic()))
                stop_tag = plan.id_tag if plan.stop == "tap" else None
                stop_requested_at = time.monotonic()
                requests.append(asyncio.create_task(sim(http, base, plan.stop, stop_tag, stop_answered_at)))
                stop_sent = True
            await asyncio.sleep(max(0.0, t0 + plan.kill_s - time.monotonic()))
            os.kill(first.pid, signal.SIGKILL)
            kill_at = time.monotonic()
            await first.wait()
            for request in requests:  # answered, or cut off by the kill
                with contextlib.suppress(aiohttp.ClientError):
                    await request

            second = await start_daemon(config, logs[1])
            procs.append(second)
            await wait_booted(cs, 1, second)
            await wait_settled(cs)
            await wait_api(http, base, second)  # its SIGTERM handler is in place once the API answers
            code = await stop_process(second)
            if code != 0:
                outcome.problems.append(f"the restarted daemon exited with {code} on SIGTERM")
            outcome.problems += store_leftovers(directory / "state")
        except Exception as exc:
            outcome.problems.append(f"the run broke off: {type(exc).__name__}: {exc}")
        finally:
            for request in requests:
                request.cancel()
            await asyncio.gather(*requests, return_exceptions=True)
            for proc in procs:
                await stop_process(proc)
        reasons = {"PowerLoss"}
        if stop_sent:
            reasons.add("Local" if plan.stop == "tap" else "EVDisconnected")
        outcome.problems += check_record(cs, plan.id_tag, reasons, outcome.redelivered)
        if stop_answered_at and stop_requested_at is not None and kill_at is not None:
            outcome.problems += check_stop_reported(cs, plan, stop_requested_at, stop_answered_at[0], kill_at)
        for n, log in enumerate(logs):
            if log.exists() and "Traceback" in log.read_text(errors="replace"):
                outcome.problems.append(f"a traceback in the log of daemon #{n + 1}")
        outcome.phase = phase_of(cs, stop_sent, kill_at)
        outcome.frames = render_frames(cs, t0 if t0 is not None else begun, kill_at)
        outcome.logs = "\n".join(f"  daemon #{n + 1}:\n{_tail(log)}" for n, log in enumerate(logs))
    outcome.seconds = time.monotonic() - begun
    return outcome


# -- the test ---------------------------------------------------------------------------------


@pytest.mark.slow
async def test_kill_9_anywhere_in_a_transaction_then_restart(tmp_path: Path) -> None:
    assert RUNS >= 1
    plans = [make_plan(run) for run in range(1, RUNS + 1)]
    outcomes: list[Outcome] = []
    begun = time.monotonic()

    async def lane(mine: list[Plan]) -> None:
        for plan in mine:
            outcomes.append(await one_run(plan, tmp_path / f"run-{plan.run}"))

    async with asyncio.TaskGroup() as group:
        for n in range(LANES):
            group.create_task(lane(plans[n::LANES]))
    outcomes.sort(key=lambda o: o.plan.run)

    phases = Counter(o.phase for o in outcomes)
    redelivered: Counter[str] = Counter()
    for o in outcomes:
        redelivered.update(o.redelivered)
    summary = (
        f"{len(outcomes)} runs in {time.monotonic() - begun:.1f} s"
        f" (seeds {BASE_SEED + 1}..{BASE_SEED + RUNS}), where the kill landed:\n"
        + "\n".join(f"  {count:3d}  {phase}" for phase, count in sorted(phases.items()))
        + "\nmessages delivered again after the restart with their original message id: "
        + (", ".join(f"{action} x{count}" for action, count in sorted(redelivered.items())) or "none")
    )
    print("\n" + summary)
    failed = [o for o in outcomes if o.problems]
    assert not failed, (
        f"{len(failed)} of {len(outcomes)} runs failed: {[o.plan.run for o in failed]}\n{summary}\n\n"
        + "\n\n".join(o.report(detailed=i < DETAILED_FAILURES) for i, o in enumerate(failed))
    )
