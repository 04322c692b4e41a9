"""`ocpp-bridge demo`: a whole charging session in under half a minute.

A simulated charger behind the real daemon plays boot, plug-in, card tap,
Authorize, StartTransaction, MeterValues, a stop and unplug against an
embedded central system on a free loopback port (or, with --csms, against
a real one, where a second tap of the card stops the session). Every OCPP
message is printed as it crosses the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from ocpp.v16 import call

from bridge.central_system import DemoCentralSystem
from bridge.config import parse_config
from bridge.daemon import Daemon

CP_ID = "DEMO-1"
TAG = "DEMO-TAG-1"
STEP_TIMEOUT_S = 15.0

DEMO_CONFIG = """
state_dir: {state_dir}
api:
  listen: null
charge_points:
  - id: {cp_id}
    csms_url: {csms_url}
    vendor: ocpp-bridge
    model: Demo
    ocpp:
      MeterValueSampleInterval: 2
      MeterValuesSampledData: Energy.Active.Import.Register,Power.Active.Import
    connectors:
      - id: 1
        charger: {{type: simulated, max_current_a: 16, initial_energy_wh: 12000, time_scale: 60}}
"""

# The fields shown for each message: (action, kind) -> payload keys.
_KEY_FIELDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("BootNotification", "call"): ("chargePointVendor", "chargePointModel"),
    ("BootNotification", "result"): ("status", "interval"),
    ("StatusNotification", "call"): ("connectorId", "status", "errorCode"),
    ("Authorize", "call"): ("idTag",),
    ("Authorize", "result"): ("idTagInfo",),
    ("StartTransaction", "call"): ("connectorId", "idTag", "meterStart"),
    ("StartTransaction", "result"): ("transactionId", "idTagInfo"),
    ("MeterValues", "call"): ("connectorId", "transactionId", "meterValue"),
    ("StopTransaction", "call"): ("transactionId", "meterStop", "reason"),
    ("RemoteStopTransaction", "call"): ("transactionId",),
    ("RemoteStopTransaction", "result"): ("status",),
    ("Heartbeat", "result"): ("currentTime",),
}


def _show(value: Any) -> str:
    if isinstance(value, dict) and "status" in value:
        return str(value["status"])
    if isinstance(value, list):  # meterValue: the sampled values, briefly
        samples = [s for mv in value for s in mv.get("sampledValue", [])]
        return ", ".join(f"{s['value']} {s.get('unit', '')}".strip() for s in samples)
    return str(value)


@dataclass
class Frame:
    at: float
    direction: str
    kind: str
    action: str
    payload: Any


class Timeline:
    """Prints every frame the charge point exchanges and lets the script wait for one."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.frames: list[Frame] = []
        self.start = time.monotonic()
        self._changed = asyncio.Event()

    def observe(self, direction: str, kind: str, action: str, payload: Any) -> None:
        frame = Frame(time.monotonic() - self.start, direction, kind, action, payload)
        self.frames.append(frame)
        self._changed.set()
        arrow = "CP → CS" if direction == "out" else "CP ← CS"
        name = action + (".conf" if kind == "result" else "") if kind != "error" else f"CALLERROR {payload}"
        fields = _KEY_FIELDS.get((action, kind), ())
        shown = " ".join(
            f"{f}={_show(payload[f])}" for f in fields if isinstance(payload, dict) and f in payload
        )
        if isinstance(payload, dict) and payload.get("errorCode") == "NoError":
            shown = shown.replace(" errorCode=NoError", "")
        print(f"  +{frame.at:5.2f}s  {arrow}  {name:<26} {shown}", file=self.out, flush=True)

    def say(self, text: str) -> None:
        print(f"  +{time.monotonic() - self.start:5.2f}s  ── {text}", file=self.out, flush=True)

    async def wait_for(self, what: str, match: Callable[[Frame], bool], count: int = 1) -> Frame:
        deadline = time.monotonic() + STEP_TIMEOUT_S
        while True:
            found = [f for f in self.frames if match(f)]
            if len(found) >= count:
                return found[count - 1]
            self._changed.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"the demo waited {STEP_TIMEOUT_S:g} s for {what}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)


def _is(direction: str, kind: str, action: str, **fields: Any) -> Callable[[Frame], bool]:
    def match(f: Frame) -> bool:
        if (f.direction, f.kind, f.action) != (direction, kind, action):
            return False
        return all(isinstance(f.payload, dict) and f.payload.get(k) == v for k, v in fields.items())

    return match


async def run_demo(out: TextIO, csms_url: str | None = None) -> int:
    embedded = DemoCentralSystem() if csms_url is None else None
    url = await embedded.start() if embedded is not None else csms_url
    assert url is not None
    timeline = Timeline(out)
    where = "an embedded central system at " + url if embedded else url
    print(f"ocpp-bridge demo: simulated charge point {CP_ID} against {where}\n", file=out, flush=True)
    with tempfile.TemporaryDirectory(prefix="ocpp-bridge-demo-") as state_dir:
        config = parse_config(DEMO_CONFIG.format(state_dir=state_dir, cp_id=CP_ID, csms_url=url), "demo")
        daemon = Daemon(config)
        cp = daemon.charge_points[CP_ID]
        cp.session.observer = timeline.observe
        sim = cp.connectors[1].charger.simulator
        if sim is None:  # DEMO_CONFIG names a simulated charger
            raise RuntimeError("the demo's charger is not simulated")
        running = asyncio.create_task(daemon.run())
        try:
            await timeline.wait_for("the boot", _is("in", "result", "BootNotification", status="Accepted"))
            await timeline.wait_for(
                "connector 1's status", _is("out", "call", "StatusNotification", connectorId=1)
            )
            timeline.say("the driver plugs in")
            sim.plug()
            await timeline.wait_for("Preparing", _is("out", "call", "StatusNotification", status="Preparing"))
            timeline.say(f"the driver taps card {TAG}")
            sim.tap(TAG)
            start = await timeline.wait_for("StartTransaction.conf", _is("in", "result", "StartTransaction"))
            await timeline.wait_for("two meter values", _is("in", "result", "MeterValues"), count=2)
            if embedded is not None:
                timeline.say("the central system stops the session remotely")
                await embedded.call(
                    CP_ID, call.RemoteStopTransaction(transaction_id=start.payload["transactionId"])
                )
            else:
                timeline.say(f"the driver taps card {TAG} again to stop")
                sim.tap(TAG)
            stop = await timeline.wait_for("StopTransaction", _is("out", "call", "StopTransaction"))
            await timeline.wait_for("StopTransaction.conf", _is("in", "result", "StopTransaction"))
            timeline.say("the driver unplugs")
            sim.unplug()
            await timeline.wait_for(
                "Available",
                _is("out", "call", "StatusNotification", connectorId=1, status="Available"),
                count=2,
            )
        except TimeoutError as exc:
            print(f"\ndemo failed: {exc}", file=out, flush=True)
            return 1
        finally:
            daemon.stop()
            await running
            if embedded is not None:
                await embedded.stop()
    started = next(f for f in timeline.frames if f.kind == "call" and f.action == "StartTransaction")
    energy = stop.payload["meterStop"] - started.payload["meterStart"]
    calls = sum(1 for f in timeline.frames if f.kind == "call")
    print(
        f"\nsession complete: {energy} Wh delivered, {len(timeline.frames)} messages exchanged "
        f"({calls} calls) in {time.monotonic() - timeline.start:.1f} s",
        file=out,
        flush=True,
    )
    return 0
