"""`ocpp-bridge probe`: each configured device read once, a verdict per device, the exit code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bridge.config import parse_config
from bridge.probe import probe
from tests.emulators.eastron import EmulatedMeter, eastron_tcp
from tests.helpers.cli import run_cli


def _config(tmp_path: Path, connectors: list[dict[str, Any]]) -> Any:
    doc = {
        "state_dir": str(tmp_path / "state"),
        "charge_points": [{"id": "CP-1", "csms_url": "ws://127.0.0.1:9/ocpp", "connectors": connectors}],
    }
    return doc


async def test_probe_reports_each_device_and_fails_for_a_silent_one(tmp_path: Path) -> None:
    good = EmulatedMeter("sdm630", device_id=1)
    good.set(energy_kwh=1234.5, power_w=7400.5, voltage_v=(230.1, 231, 229), current_a=(10.7, 10.7, 10.7))
    silent = EmulatedMeter("sdm120", device_id=2)
    silent.silent = True
    async with eastron_tcp(good, silent) as emu:
        doc = _config(tmp_path, [
            {"id": 1, "charger": {"type": "simulated"},
             "meter": {"type": "sdm630", "modbus": emu.url, "device_id": 1, "timeout_s": 0.3}},
            {"id": 2, "charger": {"type": "simulated", "phases": 1},
             "meter": {"type": "sdm120", "modbus": emu.url, "device_id": 2, "timeout_s": 0.3}},
        ])  # fmt: skip
        lines: list[str] = []
        code = await probe(parse_config(yaml.safe_dump(doc)), lines.append, timeout_s=5)
    text = "\n".join(lines)
    assert code == 1
    first, second = text.split("CP-1 connector 2:")
    assert first.startswith("CP-1 connector 1: simulated charger with SDM630 #1 on tcp://127.0.0.1:")
    assert "energy register: 1234500 Wh" in first
    assert "power: 7400.5 W" in first and "voltage: 230.1/231/229 V" in first
    assert "can: plug sensing yes" in first and first.rstrip().endswith("OK")
    assert "FAILED: device 2 on tcp://127.0.0.1:" in second and "OK" not in second
    assert lines[-1] == "1 of 2 device setups answer; 1 failed"


async def test_probe_command_exits_0_when_every_device_answers(tmp_path: Path) -> None:
    config = tmp_path / "sim.yaml"
    config.write_text(yaml.safe_dump(_config(tmp_path, [{"id": 1, "charger": {"type": "simulated"}}])))
    code, out, err = await run_cli("probe", "--config", str(config))
    assert code == 0, err
    assert out.splitlines()[0] == "CP-1 connector 1: simulated charger"
    assert out.splitlines()[-1] == "1 of 1 device setups answer"
