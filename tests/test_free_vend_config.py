"""`free_vend_id_tag` in the configuration: per charge point and per connector (the connector's wins,
"" leaves it out there), an idTag's limits, and a relay wallbox refused with the field and the fix
named (it cannot sense the plug: there is no plug-in to start at)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bridge.config import ConfigError, Problem, parse_config
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.emulators.shelly import EvLoad, ShellyEmulator
from tests.helpers.cli import run_cli
from tests.helpers.flow import ready


def config_text(cp_line: str = "", *connector_lines: str, charger: str = "{type: simulated}") -> str:
    connectors = "".join(
        f"      - id: {n}\n        charger: {charger}\n" + (f"        {line}\n" if line else "")
        for n, line in enumerate(connector_lines or ("",), start=1)
    )
    return (
        "charge_points:\n"
        "  - id: CP-1\n"
        "    csms_url: ws://127.0.0.1:9000/ocpp\n"
        + (f"    {cp_line}\n" if cp_line else "")
        + "    connectors:\n"
        + connectors
    )


def problems(text: str) -> list[Problem]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "test.yaml")
    return info.value.problems


def test_the_connectors_setting_wins_and_an_empty_one_leaves_the_charge_points_out() -> None:
    text = config_text("free_vend_id_tag: HOUSE", "", "free_vend_id_tag: GARAGE", 'free_vend_id_tag: ""')
    cp = parse_config(text, "test.yaml").charge_points[0]
    assert [cp.free_vend_tag(n) for n in (1, 2, 3)] == ["HOUSE", "GARAGE", None]
    alone = parse_config(config_text("", "free_vend_id_tag: GARAGE", ""), "test.yaml").charge_points[0]
    assert [alone.free_vend_tag(n) for n in (1, 2)] == ["GARAGE", None]
    assert parse_config(config_text(), "test.yaml").charge_points[0].free_vend_tag(1) is None


@pytest.mark.parametrize(
    ("cp_line", "connector_line", "path", "message"),
    [
        ("free_vend_id_tag: ABCDEFGHIJKLMNOPQRSTU", "", "charge_points[0].free_vend_id_tag",
         "an idTag is 1 to 20 characters (OCPP CiString20), not 21"),
        ('free_vend_id_tag: ""', "", "charge_points[0].free_vend_id_tag",
         "an idTag is 1 to 20 characters (OCPP CiString20), not 0"),
        ("", 'free_vend_id_tag: " HOME"', "charge_points[0].connectors[0].free_vend_id_tag",
         "an idTag must not start or end with a space or hold control characters"),
        ("free_vend_id_tag: [HOME]", "", "charge_points[0].free_vend_id_tag", "expected"),
    ],
)  # fmt: skip
def test_a_bad_tag_is_named_with_its_field(
    cp_line: str, connector_line: str, path: str, message: str
) -> None:
    [problem] = problems(config_text(cp_line, connector_line))
    assert problem.path == path
    assert problem.message.startswith(message)
    assert problem.line is not None


RELAY = "{type: shelly, url: 'http://192.0.2.10', max_current_a: 16}"


def test_a_relay_wallbox_is_refused_at_the_field_that_set_the_tag() -> None:
    [own] = problems(config_text("", "free_vend_id_tag: HOME", charger=RELAY))
    assert own.path == "charge_points[0].connectors[0].free_vend_id_tag"
    assert "shelly relay cannot sense the plug" in own.message
    assert "remove it" in own.message and "RemoteStartTransaction" in own.message
    [inherited] = problems(config_text("free_vend_id_tag: HOME", charger=RELAY))
    assert inherited.path == "charge_points[0].free_vend_id_tag"
    assert 'set free_vend_id_tag: "" on connector 1' in inherited.message
    # The fix the message names is accepted.
    fixed = parse_config(
        config_text("free_vend_id_tag: HOME", 'free_vend_id_tag: ""', charger=RELAY), "t.yaml"
    )
    assert fixed.charge_points[0].free_vend_tag(1) is None


def test_a_tasmota_relay_is_refused_too() -> None:
    tasmota = "{type: tasmota, broker: 'mqtt://192.0.2.20', topic: wallbox, max_current_a: 16}"
    [problem] = problems(config_text("", "free_vend_id_tag: HOME", charger=tasmota))
    assert "tasmota relay cannot sense the plug" in problem.message


async def test_check_names_the_field_and_the_fix_for_a_relay(tmp_path: Path) -> None:
    path = tmp_path / "relay.yaml"
    path.write_text(config_text("free_vend_id_tag: HOME", charger=RELAY))
    code, out, err = await run_cli("check", "--config", str(path))
    assert code != 0
    assert (
        f"{path}:4: charge_points[0].free_vend_id_tag: connector 1's shelly relay cannot sense" in out + err
    )
    assert 'set free_vend_id_tag: "" on connector 1' in out + err


async def test_a_relay_given_a_free_tag_past_the_check_starts_nothing(
    csms: StrictCentralSystem, tmp_path: Path
) -> None:
    """Should a configuration reach the daemon without the check (built in code), the core is inert on a
    device that cannot sense the plug: no reading ever shows a plug-in, so the relay stays open."""
    async with ShellyEmulator(load=EvLoad(energy_wh=5000.0, plugged=True)) as emulator:
        config = make_config(csms.url, tmp_path, charger={"type": "shelly", "url": emulator.url})
        cp = config.charge_points[0]
        config = dataclasses.replace(
            config, charge_points=(dataclasses.replace(cp, free_vend_id_tag="HOME"),)
        )
        async with running(config) as daemon:
            await ready(csms)
            connector = daemon.charge_points["CP-1"].connectors[1]
            assert connector.core.free_tag == "HOME"
            await connector.device.refresh()
            await connector.device.refresh()
            assert connector.core.transaction is None
        assert csms.calls("CP-1", "Authorize") == [] and csms.calls("CP-1", "StartTransaction") == []
        assert ("Switch.Set", {"id": 0, "on": True}) not in emulator.calls
    csms.assert_clean()
