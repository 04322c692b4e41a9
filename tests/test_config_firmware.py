"""The firmware: and diagnostics: blocks of a charge point: defaults, and an error naming the field
and the fix for each thing that is wrong."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from bridge.config import ConfigError, DiagnosticsConfig, FirmwareConfig, parse_config


def config_with(block: str, value: Any, csms_url: str = "ws://127.0.0.1:9/ocpp") -> Any:
    doc = {
        "charge_points": [{
            "id": "CP-1", "csms_url": csms_url, block: value,
            "connectors": [{"id": 1, "charger": {"type": "simulated"}}],
        }],
    }  # fmt: skip
    return parse_config(yaml.safe_dump(doc), "test.yaml").charge_points[0]


def problem(block: str, value: Any, csms_url: str = "ws://127.0.0.1:9/ocpp") -> str:
    with pytest.raises(ConfigError) as caught:
        config_with(block, value, csms_url)
    return str(caught.value)


def test_the_defaults_install_nothing_and_upload_by_put() -> None:
    cp = config_with("ocpp", {})
    assert cp.firmware == FirmwareConfig() and cp.firmware.install == "none"
    assert cp.diagnostics == DiagnosticsConfig() and cp.diagnostics.post_to == ()


def test_a_command_is_taken_as_a_list_or_split_as_a_shell_would() -> None:
    listed = config_with("firmware", {"install": "command", "command": ["/usr/bin/flash", "a b"]})
    assert listed.firmware.command == ("/usr/bin/flash", "a b")
    split = config_with(
        "firmware", {"install": "command", "command": "/usr/bin/flash --port '/dev/tty USB0'"}
    )
    assert split.firmware.command == ("/usr/bin/flash", "--port", "/dev/tty USB0")


@pytest.mark.parametrize(
    ("value", "path", "words"),
    [
        ({"install": "command"}, "firmware.command", "required with install: command"),
        ({"install": "none", "command": ["x"]}, "firmware.command", "only with install: command"),
        ({"install": "command", "command": "'unclosed"}, "firmware.command", "cannot be split"),
        ({"install": "command", "command": [1]}, "firmware.command", "a string or a list of strings"),
        ({"install": "flash"}, "firmware.install", "'none', 'command', 'device', 'bridge'"),
        ({"timeout_s": 0}, "firmware.timeout_s", "must be above 0"),
        ({"boot_timeout_s": 90000}, "firmware.boot_timeout_s", "at most 86400"),
        ({"instal": "none"}, "firmware.instal", "did you mean 'install'"),
    ],
)
def test_a_bad_firmware_block_names_the_field_and_the_fix(value: Any, path: str, words: str) -> None:
    message = problem("firmware", value)
    assert f"charge_points[0].{path}" in message and words in message


def test_installing_the_bridge_over_plain_ws_is_refused_unless_the_risk_is_accepted() -> None:
    message = problem("firmware", {"install": "bridge"})
    assert "charge_points[0].firmware.install" in message
    assert "wss://" in message and "accept_remote_code_risk" in message
    accepted = config_with("firmware", {"install": "bridge", "accept_remote_code_risk": True})
    assert accepted.firmware.install == "bridge"
    assert (
        config_with("firmware", {"install": "bridge"}, "wss://csms.example/ocpp").firmware.install == "bridge"
    )


def test_post_to_takes_http_prefixes_only() -> None:
    ok = config_with("diagnostics", {"post_to": ["https://csms.example/upload"], "post_field": "f"})
    assert ok.diagnostics == DiagnosticsConfig(("https://csms.example/upload",), "f")
    message = problem("diagnostics", {"post_to": ["ftp://x/"]})
    assert "charge_points[0].diagnostics.post_to[0]" in message and "http:// or https://" in message
    assert "charge_points[0].diagnostics.post_field" in problem("diagnostics", {"post_field": ""})
