"""The firmware shell's own choices: the installer each `firmware.install` gets, and the name an image
is stored under (the rest is end to end in test_update_firmware*.py)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from adapters.base import Charger
from bridge.config import FirmwareConfig
from bridge.firmware.command import CommandInstaller
from bridge.firmware.device import DeviceInstaller
from bridge.firmware.install import NoInstaller
from bridge.firmware.self_update import BridgeInstaller
from bridge.runtime.firmware import image_file_name, installer_for


@pytest.mark.parametrize(
    ("location", "name"),
    [
        ("http://h/fw/ocpp_bridge-1.2.0-py3-none-any.whl", "ocpp_bridge-1.2.0-py3-none-any.whl"),
        ("ftp://u:p@h:21/dir/image%20v2.bin", "image_v2.bin"),  # unquoted, made safe
        ("https://h/download?id=7", "download"),
        ("https://h/", "firmware.bin"),
        ("http://h/..", "firmware.bin"),  # never a path out of the job's directory
        ("http://h/.hidden", "hidden"),
        ("not a url at all", "not_a_url_at_all"),
        ("http://[::1/x", "firmware.bin"),  # a URL that does not parse
    ],
)
def test_the_image_keeps_the_name_of_its_url_made_safe(location: str, name: str) -> None:
    assert image_file_name(location) == name


def test_each_kind_of_install_gets_its_installer(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    chargers: list[Charger] = []
    state, source = tmp_path / "state", str(tmp_path / "config.yaml")

    def of(cfg: FirmwareConfig, url: str = "wss://csms.example/ocpp") -> object:
        return installer_for(cfg, chargers, state, source, url)

    assert isinstance(of(FirmwareConfig()), NoInstaller)
    command = of(FirmwareConfig("command", ("/bin/flash", "-v"), timeout_s=30))
    assert isinstance(command, CommandInstaller) and command.argv == ["/bin/flash", "-v"]
    assert command.timeout_s == 30
    assert isinstance(of(FirmwareConfig("device")), DeviceInstaller)
    with caplog.at_level(logging.WARNING, "bridge.firmware"):
        assert isinstance(of(FirmwareConfig("bridge", boot_timeout_s=9)), BridgeInstaller)
        assert not caplog.records  # wss://: nothing to warn about
        risky = of(FirmwareConfig("bridge", accept_remote_code_risk=True), "ws://192.0.2.1/ocpp")
    assert isinstance(risky, BridgeInstaller)
    assert "anyone on the network path can install code" in caplog.text
