"""`ocpp-bridge templates` lists the generic device's templates; `ocpp-bridge probe` reads a generic
charger (and a generic meter from a template) once and switches nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from adapters.generic import templates
from bridge.config import parse_config
from bridge.probe import probe
from tests.emulators.eastron import EmulatedMeter, eastron_tcp
from tests.emulators.goe import GoeEmulator
from tests.helpers.cli import run_cli
from tests.helpers.generic import goe_block, sdm630_block


async def test_templates_lists_each_template_its_kind_description_and_params() -> None:
    code, out, err = await run_cli("templates")
    assert code == 0, err
    lines = out.splitlines()
    for template in templates.available():
        header = f"{template.name} ({template.kind}): {template.description}"
        assert header in lines
        below = lines[lines.index(header) + 1 : lines.index(header) + 1 + len(template.params)]
        assert [line.split()[0] for line in below] == [p.name for p in template.params]
    sdm630 = lines.index(next(line for line in lines if line.startswith("sdm630 (meter): Eastron SDM630")))
    assert lines[sdm630 + 1].split()[:2] == ["url", "required:"]
    assert lines[sdm630 + 2].split()[:3] == ["unit", "default", "1:"]


async def test_probe_reads_a_generic_charger_and_meter_and_switches_nothing(tmp_path: Path) -> None:
    goe = GoeEmulator()
    await goe.start_http()
    meter = EmulatedMeter("sdm630", 4)
    meter.set(energy_kwh=99.5, power_w=0.0)
    try:
        async with eastron_tcp(meter) as emu:
            doc: dict[str, Any] = {
                "state_dir": str(tmp_path / "state"),
                "charge_points": [{"id": "CP-1", "csms_url": "ws://127.0.0.1:9/ocpp", "connectors": [
                    {"id": 1, "charger": goe_block(goe.url), "meter": sdm630_block(emu.url, 4)},
                ]}],
            }  # fmt: skip
            lines: list[str] = []
            code = await probe(parse_config(yaml.safe_dump(doc)), lines.append, timeout_s=5)
    finally:
        await goe.close()
    text = "\n".join(lines)
    assert code == 0, text
    assert lines[0] == f"CP-1 connector 1: go-e (generic) with SDM630 #4 on {emu.url}"
    assert "energy register: 99500 Wh" in text and "can: plug sensing yes" in text
    assert text.splitlines()[-2].strip() == "OK"
    assert goe.received == [] and not any(r.startswith("/api/set") for r in goe.requests)
