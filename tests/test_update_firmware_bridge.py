"""The bridge updating itself by UpdateFirmware, end to end: `ocpp-bridge run` under a supervisor that
restarts it as systemd does, the strict central system, and real releases of this project (wheels
built at test time with their own versions, tests/helpers/wheels.py) served over HTTP. What the
central system sees: the statuses, the restart, the new release's BootNotification, and a roll back
that the old release reports."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from ocpp.v16 import call

from bridge import __version__
from bridge.clock import iso
from bridge.firmware.install import RESTART_EXIT_CODE
from tests.csms import StrictCentralSystem
from tests.helpers.http_files import http_files
from tests.helpers.supervisor import Supervisor
from tests.helpers.wheels import built_releases, remove_built

pytestmark = pytest.mark.slow
BASE = f"ocpp-bridge {__version__}"  # what the installation under test reports


@pytest.fixture(scope="module")
def releases() -> Iterator[dict[str, Path]]:
    yield built_releases()
    remove_built()


def write_config(tmp_path: Path, csms_url: str, boot_timeout_s: float = 60) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"state_dir: {tmp_path / 'state'}\napi: {{listen: null}}\ncharge_points:\n  - id: CP-1\n"
        f"    csms_url: {csms_url}\n    reconnect: {{initial_s: 0.2, max_s: 1}}\n"
        "    ocpp: {MessageTimeout: 5, WebSocketPingInterval: 0}\n"
        "    firmware: {install: bridge, accept_remote_code_risk: true, "
        f"boot_timeout_s: {boot_timeout_s}}}\n"
        "    connectors:\n      - id: 1\n        charger: {type: simulated}\n"
    )
    return config


def statuses(cs: StrictCentralSystem) -> list[str]:
    return [p["status"] for p in cs.calls("CP-1", "FirmwareStatusNotification")]


def booted_versions(cs: StrictCentralSystem) -> list[str]:
    return [p.get("firmwareVersion", "") for p in cs.calls("CP-1", "BootNotification")]


def served(tmp_path: Path, wheel: Path) -> Path:
    root = tmp_path / "www"
    root.mkdir()
    (root / wheel.name).write_bytes(wheel.read_bytes())
    return root


async def updated(
    cs: StrictCentralSystem, tmp_path: Path, wheel: Path, last: str, boot_timeout_s: float = 60,
    restart_s: float = 0.2,
) -> Supervisor:  # fmt: skip
    """The bridge under a supervisor, asked to install `wheel` (served over HTTP) now, until the
    central system has seen `last`; returns the stopped supervisor (its exits)."""
    config = write_config(tmp_path, cs.url, boot_timeout_s)
    async with http_files(served(tmp_path, wheel), tmp_path) as site:
        service = Supervisor(config, tmp_path / "daemon.log", restart_s=restart_s)
        await service.start()
        try:
            await cs.wait_until(lambda: cs.calls("CP-1", "StatusNotification"), 30, "the first boot")
            location = f"{site.base}/files/{wheel.name}"
            await cs.call(
                "CP-1", call.UpdateFirmware(location=location, retrieve_date=iso(datetime.now(UTC)))
            )
            await cs.wait_until(lambda: last in statuses(cs), 120, last)
        finally:
            await service.stop()
    return service


async def test_the_bridge_installs_a_new_release_restarts_into_it_and_reports_installed(
    tmp_path: Path, releases: dict[str, Path]
) -> None:
    async with StrictCentralSystem() as cs:
        service = await updated(cs, tmp_path, releases["9.0.1"], "Installed")
        cs.assert_clean()
    assert statuses(cs) == ["Downloading", "Downloaded", "Installing", "Installed"]
    assert booted_versions(cs) == [BASE, "ocpp-bridge 9.0.1"]  # the new release booted to us
    assert service.exits[0] == RESTART_EXIT_CODE  # the old one stopped for systemd to start it again
    release = (tmp_path / "state" / "firmware" / "releases" / "active").resolve()
    assert release.name.startswith("9.0.1-")
    assert not (tmp_path / "state" / "firmware" / "releases" / "trial.json").exists()  # confirmed
    # The connectors were held through the install and are back.
    connector = [p["status"] for p in cs.calls("CP-1", "StatusNotification") if p["connectorId"] == 1]
    assert "Unavailable" in connector and connector[-1] == "Available"


async def test_a_release_that_crashes_at_start_is_rolled_back_and_the_old_one_reports_it(
    tmp_path: Path, releases: dict[str, Path]
) -> None:
    async with StrictCentralSystem() as cs:
        service = await updated(cs, tmp_path, releases["crashes"], "InstallationFailed", restart_s=0.1)
        cs.assert_clean()
    assert statuses(cs) == ["Downloading", "Downloaded", "Installing", "InstallationFailed"]
    assert booted_versions(cs) == [BASE, BASE]  # the broken release never reached us
    assert service.exits[0] == RESTART_EXIT_CODE and service.exits[1:5] == [1, 1, 1, 1]
    assert not (tmp_path / "state" / "firmware" / "releases" / "active").exists()  # the base runs


async def test_a_release_the_central_system_does_not_accept_in_time_rolls_itself_back(
    tmp_path: Path, releases: dict[str, Path]
) -> None:
    """The new release runs but its boot stays Pending past boot_timeout_s: it switches back and
    restarts; the old release boots and sends the InstallationFailed the new one queued."""
    boots = (("Accepted", 300), ("Pending", 300), ("Accepted", 300))
    async with StrictCentralSystem(boot=boots) as cs:
        service = await updated(cs, tmp_path, releases["9.0.2"], "InstallationFailed", boot_timeout_s=6)
        cs.assert_clean()
    assert statuses(cs) == ["Downloading", "Downloaded", "Installing", "InstallationFailed"]
    assert booted_versions(cs) == [BASE, "ocpp-bridge 9.0.2", BASE]
    assert service.exits[:2] == [RESTART_EXIT_CODE, RESTART_EXIT_CODE]  # into it, and back out
    assert "did not boot" in (tmp_path / "daemon.log").read_text()
