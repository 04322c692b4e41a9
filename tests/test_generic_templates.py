"""The generic device's templates (adapters/generic/templates.py): finding, loading and rendering them
with `${param}`, the errors that name the template and the param; and the SDM630 template reading what
the built-in Eastron driver reads from the same emulated meter."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.base import DeviceUnreachable
from adapters.generic import templates
from adapters.generic.device import GenericMeter
from adapters.generic.templates import TemplateError
from adapters.meters.eastron import EastronOptions, Sdm630
from adapters.transports.pool import Transports
from tests.emulators.eastron import EmulatedMeter, eastron_tcp
from tests.helpers.generic import options as generic_options
from tests.helpers.generic import sdm630_block

TEMPLATE = """\
name: box
kind: charger
description: "A box"
params:
  - {name: host, description: "its address", required: true}
  - {name: unit, default: 1}
  - {name: scale, default: 0.1}
device:
  name: "box at ${host}"
  read:
    status: {modbus: {url: "tcp://${host}:502", unit: "${unit}", register: 100}, scale: "${scale}"}
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "box.yaml").write_text(TEMPLATE)
    return tmp_path


def test_a_whole_string_param_keeps_its_type_and_text_is_substituted(folder: Path) -> None:
    block = templates.expand(
        {"type": "generic", "template": "box", "params": {"host": "192.0.2.7", "unit": 7}, "phases": 1},
        "charger",
        folder,
    )
    assert block["name"] == "box at 192.0.2.7" and block["phases"] == 1 and block["type"] == "generic"
    status = block["read"]["status"]
    assert status["modbus"] == {"url": "tcp://192.0.2.7:502", "unit": 7, "register": 100}
    assert status["scale"] == 0.1  # the default, a number still


@pytest.mark.parametrize(
    ("block", "field", "words"),
    [
        ({"template": "bx"}, "template", "unknown template 'bx'; known templates: box"),
        ({"template": "box"}, "params", "template 'box' needs the param 'host': its address"),
        ({"template": "box", "params": {"host": "h", "port": 1}}, "params.port", "has no param 'port'"),
        ({"template": "box", "params": {"host": "h"}, "read": {}}, "read", "comes from template 'box'"),
        ({"template": "../box"}, "template", "lower-case letters"),
    ],
)
def test_errors_name_the_template_and_the_param(
    folder: Path, block: dict[str, object], field: str, words: str
) -> None:
    with pytest.raises(TemplateError) as error:
        templates.expand({"type": "generic", **block}, "charger", folder)
    assert error.value.field == field and words in str(error.value)


def test_a_template_used_as_the_wrong_kind_says_so(folder: Path) -> None:
    with pytest.raises(TemplateError, match="'box' describes a charger, not a meter"):
        templates.expand({"type": "generic", "template": "box", "params": {"host": "h"}}, "meter", folder)


def test_a_placeholder_that_is_no_param_is_a_bug_of_the_template(tmp_path: Path) -> None:
    (tmp_path / "box.yaml").write_text(TEMPLATE.replace("${host}:502", "${hots}:502"))
    with pytest.raises(TemplateError, match=r"\$\{hots\} is used but not a declared param"):
        templates.load("box", tmp_path)


def test_every_shipped_template_loads() -> None:
    found = templates.available()
    assert "sdm630" in [t.name for t in found]
    for template in found:
        assert template.kind in ("charger", "meter") and template.description


# -- the SDM630 template against the built-in driver ----------------------------------------------


@pytest.mark.parametrize(
    "values",
    [
        {"energy_kwh": 1234.567, "power_w": 7325.5, "voltage_v": (230.1, 231.2, 229.8),
         "current_a": (10.5, 11.0, 9.75), "frequency_hz": 49.98},
        {"energy_kwh": 0.001, "power_w": 0.0, "voltage_v": (0.0, 239.99, 1.5),
         "current_a": (0.013, 31.7, 0.0), "frequency_hz": 50.02},
    ],
)  # fmt: skip
async def test_the_sdm630_template_reads_what_the_eastron_driver_reads(
    values: dict[str, object], tmp_path: Path, transports: Transports
) -> None:
    meter = EmulatedMeter("sdm630", 7)
    meter.set(**values)  # type: ignore[arg-type]
    async with eastron_tcp(meter) as emu:
        generic = GenericMeter(generic_options(tmp_path, meter=sdm630_block(emu.url, 7)), transports)
        builtin = Sdm630(EastronOptions(type="sdm630", modbus=emu.url, device_id=7), transports)
        await generic.start()
        await builtin.start()
        before = len(emu.requests_to(7))
        reading = await generic.read()
        # Registers that follow each other are read together: voltages and currents, frequency and
        # energy, power: three requests for nine values.
        asked = {(r.address, r.count) for r in emu.requests_to(7)[before:]}
        assert asked == {(0x0000, 12), (0x0034, 2), (0x0046, 4)}
        assert reading == await builtin.read()
        assert reading.energy_wh == round(float(values["energy_kwh"]) * 1000, 3)  # type: ignore[arg-type]
        assert generic.description == f"SDM630 #7 on {emu.url}"
        await generic.close()


async def test_the_sdm630_template_on_a_silent_meter_is_unreachable(
    tmp_path: Path, transports: Transports
) -> None:
    meter = EmulatedMeter("sdm630", 3)
    async with eastron_tcp(meter, gateway=True) as emu:
        generic = GenericMeter(generic_options(tmp_path, meter=sdm630_block(emu.url, 3)), transports)
        await generic.start()
        meter.silent = True
        with pytest.raises(DeviceUnreachable, match="device 3"):
            await generic.read()
        meter.silent = False
        assert (await generic.read()).frequency_hz == 50.0
