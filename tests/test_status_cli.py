"""`ocpp-bridge status`: the running bridge's state in words, from its local API."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from typing import Any

import yaml

from bridge.config import parse_config
from bridge.status_cli import format_status, show_status
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.processes import free_port


async def test_status_prints_the_facts_an_installer_asks_first(
    csms: StrictCentralSystem, tmp_path: Any
) -> None:
    port = free_port()
    config = make_config(csms.url, tmp_path, api=f"127.0.0.1:{port}", connectors=2)
    async with running(config) as daemon:
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 2)
        sim = daemon.charge_points["CP-1"].connectors[1].charger
        sim.plug()
        sim.tap("TAG-1")
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Charging")
        daemon.charge_points["CP-1"].connectors[2].charger.silence()
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Faulted", timeout=10)
        printed: list[str] = []
        code = await asyncio.to_thread(show_status, config.api, printed.append)
    assert code == 0
    text = printed[0]
    assert text.startswith(f"CP-1  {csms.url}\n")
    assert "  connected since " in text and "  accepted since " in text
    assert "heartbeat every 300 s, meter values every 60 s, clock-aligned values off" in text
    assert "connector 1: Charging" in text and "by TAG-1" in text and "limit 16 A" in text
    assert "connector 2: Faulted  (OtherError)" in text
    assert "simulated charger DOES NOT ANSWER: simulated charger: no answer (simulated)" in text


def test_status_says_how_to_find_a_bridge_that_does_not_answer(tmp_path: Any) -> None:
    config = make_config("ws://127.0.0.1:1/ocpp", tmp_path, api=f"127.0.0.1:{free_port()}")
    printed: list[str] = []
    assert show_status(config.api, printed.append) == 1
    assert "cannot reach the bridge" in printed[0] and "journalctl -u ocpp-bridge" in printed[0]


def test_a_disconnected_charge_point_reads_plainly() -> None:
    body = {"charge_points": [{
        "id": "CP-9", "csms_url": "wss://cs.example/ocpp", "connected": False, "accepted": False,
        "boot_state": "NotBooted", "last_error": "connection refused by cs.example:443",
        "last_error_at": "2026-11-22T09:00:00.000Z", "heartbeat_interval_s": 0,
        "meter_value_sample_interval_s": 0, "clock_aligned_data_interval_s": 900,
        "queued_transaction_messages": 3, "connectors": [],
    }]}  # fmt: skip
    text = format_status(body, datetime(2026, 11, 22, 9, 5, tzinfo=UTC))
    assert "  NOT connected\n  not accepted (boot state NotBooted)\n" in text
    assert "last error: connection refused by cs.example:443 (since 2026-11-22 09:00:00 UTC (5 min))" in text
    assert "heartbeat off, meter values off, clock-aligned values every 900 s" in text
    assert "3 transaction messages waiting to be sent" in text


async def test_the_status_command_reads_the_api_of_the_configuration_given(
    csms: StrictCentralSystem, tmp_path: Any
) -> None:
    port = free_port()
    path = tmp_path / "bridge.yaml"
    connector = {"id": 1, "charger": {"type": "simulated"}}
    doc = {
        "state_dir": str(tmp_path / "state"),
        "api": {"listen": f"127.0.0.1:{port}", "token": "t0ken-123"},  # the command must send it
        "charge_points": [{"id": "CP-1", "csms_url": csms.url, "connectors": [connector]}],
    }
    path.write_text(yaml.safe_dump(doc))
    async with running(parse_config(path.read_text(), str(path))):
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bridge.cli", "status", "--config", str(path),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, err.decode()
    assert out.decode().startswith(f"CP-1  {csms.url}\n") and "connector 1: Available" in out.decode()
