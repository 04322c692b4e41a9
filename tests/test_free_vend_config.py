"""`free_vend_id_tag` in the configuration: per charge point and per connector (the connector's wins,
"" leaves it out there), an idTag's limits, and a relay wallbox refused with the field and the fix
named (it cannot sense the plug: there is no plug-in to start at)."""

from __future__ import annotations

import pytest

from bridge.config import ConfigError, Problem, parse_config


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
