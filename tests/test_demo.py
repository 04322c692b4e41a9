"""`ocpp-bridge demo` as a real process: a whole session, in order, against the embedded and a strict CSMS."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

from tests.csms import StrictCentralSystem
from tests.processes import stop_process

ROOT = Path(__file__).resolve().parent.parent
DEMO_TIMEOUT_S = 30.0
# "  +  0.01s  CP → CS  BootNotification   chargePointVendor=..." -> the action (".conf" for answers)
_FRAME_LINE = re.compile(r"^\s*\+\s*[\d.]+s\s+CP . CS\s+(\S+)")
EXPECTED_ORDER = [
    "BootNotification",
    "StatusNotification",
    "Authorize",
    "StartTransaction",
    "MeterValues",
    "RemoteStopTransaction",
    "StopTransaction",
]


async def _demo(*args: str) -> tuple[int, str, str]:
    """Runs `ocpp-bridge demo` to its end (stopped by pid if it overruns): (exit code, stdout, stderr)."""
    env = dict(os.environ)
    env.pop("JOURNAL_STREAM", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bridge.cli",
        "demo",
        *args,
        cwd=ROOT,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), DEMO_TIMEOUT_S)
    finally:
        await stop_process(proc)
    assert proc.returncode is not None
    return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def _actions(out: str) -> list[str]:
    return [m[1] for line in out.splitlines() if (m := _FRAME_LINE.match(line))]


def _delivered_wh(out: str) -> float:
    last = out.rstrip().splitlines()[-1]
    assert last.startswith("session complete:"), f"last line: {last!r}\n{out}"
    match = re.search(r"(-?\d+(?:\.\d+)?) Wh", last)
    assert match is not None, last
    return float(match[1])


async def test_demo_plays_a_whole_session_in_order() -> None:
    code, out, err = await _demo()
    assert code == 0, f"stdout:\n{out}\nstderr:\n{err}"
    actions = _actions(out)
    missing = [a for a in EXPECTED_ORDER if a not in actions]
    assert not missing, f"not shown: {missing}\n{out}"
    firsts = [actions.index(a) for a in EXPECTED_ORDER]
    assert firsts == sorted(firsts), f"out of order: {[actions[i] for i in sorted(firsts)]}\n{out}"
    # Each call is answered, and the meter moved while charging.
    for action in ("BootNotification", "Authorize", "StartTransaction", "MeterValues", "StopTransaction"):
        assert f"{action}.conf" in actions, f"{action} got no answer\n{out}"
    assert _delivered_wh(out) > 0
    assert "Traceback" not in err


async def test_demo_against_a_strict_central_system_stops_with_a_second_tap() -> None:
    async with StrictCentralSystem(boot=[("Accepted", 300)]) as cs:
        code, out, err = await _demo("--csms", cs.url)
        assert code == 0, f"stdout:\n{out}\nstderr:\n{err}"
        stops = cs.calls("DEMO-1", "StopTransaction")
        assert len(stops) == 1, cs.actions("DEMO-1")
        assert stops[0]["reason"] == "Local"
        (start,) = cs.calls("DEMO-1", "StartTransaction")
        assert stops[0]["transactionId"] == cs.last_transaction_id
        assert stops[0]["meterStop"] > start["meterStart"]
        cs.assert_clean()
    assert _delivered_wh(out) > 0
    assert "RemoteStopTransaction" not in _actions(out)
