"""The A/B self-update of the bridge (bridge/firmware/self_update.py) with real releases: wheels of
this project built with their own versions (tests/helpers/wheels.py), installed into venvs under a
temporary state dir, started by `ocpp-bridge run` under a supervisor that restarts it as systemd does
(tests/helpers/supervisor.py), and rolled back."""

from __future__ import annotations

import json
import logging
import subprocess
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.core.firmware_effects import InstallFailed, InstallRestarting, RolledBack
from bridge.firmware.install import Installer
from bridge.firmware.releases import MAX_TRIAL_STARTS, RELEASE_ENV, Releases, Trial
from bridge.firmware.self_update import BOOT_TIMED_OUT, BridgeInstaller
from tests.helpers.supervisor import Supervisor
from tests.helpers.wheels import built_releases, remove_built
from tests.processes import free_port

pytestmark = pytest.mark.slow
NOW = 1_800_000_000.0


@pytest.fixture(scope="session")
def release_wheels() -> Iterator[dict[str, Path]]:
    yield built_releases()
    remove_built()


class Wall:
    """The installer's wall clock, moved by the test."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def write_config(tmp_path: Path) -> Path:
    """A valid configuration whose central system is not there: the daemon runs and keeps retrying."""
    config = tmp_path / "config.yaml"
    config.write_text(
        f"state_dir: {tmp_path / 'state'}\napi: {{listen: null}}\ncharge_points:\n  - id: CP-1\n"
        f"    csms_url: ws://127.0.0.1:{free_port()}/ocpp\n"
        "    connectors:\n      - id: 1\n        charger: {type: simulated}\n"
    )
    return config


def installer(tmp_path: Path, wall: Wall | None = None, boot_timeout_s: float = 120.0) -> BridgeInstaller:
    return BridgeInstaller(
        tmp_path / "state", write_config(tmp_path), boot_timeout_s, logging.getLogger("tests.firmware"),
        wall=wall or Wall(),
    )  # fmt: skip


def run(*argv: str | Path) -> str:
    """A release's program, from a directory that holds no `bridge` package (as the service's "/")."""
    done = subprocess.run(
        [str(a) for a in argv], cwd="/", capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip()


def fake_release(releases: Releases, name: str) -> None:
    """A release dir that is complete as far as the links care (its program only says who it is)."""
    exe = releases.dir(name) / "bin" / "ocpp-bridge"
    exe.parent.mkdir(parents=True)
    exe.write_text(f"#!/bin/sh\necho {name}\n")
    exe.chmod(0o755)


def du_mib(path: Path) -> float:
    return sum(p.lstat().st_size for p in path.rglob("*")) / 2**20


# -- install -------------------------------------------------------------------------------------------
async def test_a_release_is_installed_into_its_own_venv_and_made_active_on_trial(
    tmp_path: Path, release_wheels: dict[str, Path]
) -> None:
    wall = Wall()
    bridge: Installer = installer(tmp_path, wall, boot_timeout_s=90)
    assert bridge.kind == "bridge"
    # The downloaded file's name is the location's: the release is known by its metadata.
    image = tmp_path / "state" / "firmware-download.bin"
    image.parent.mkdir()
    image.write_bytes(release_wheels["9.0.1"].read_bytes())
    started = time.monotonic()
    out = await bridge.install(image, 1)
    took = time.monotonic() - started
    assert out == InstallRestarting(1, "9.0.1-1", 90)
    releases = Releases(tmp_path / "state")
    release = releases.dir("9.0.1-1")
    assert (releases.link("active"), releases.link("previous")) == ("9.0.1-1", None)
    assert json.loads(releases.trial_file.read_text()) == {
        "target": "9.0.1-1",
        "deadline": NOW + 90,
        "starts": 0,
    }
    assert run(release / "bin" / "ocpp-bridge", "--version") == "ocpp-bridge 9.0.1"
    code = "import bridge; print(bridge.__version__); print(bridge.__file__)"
    version, where = run(release / "bin" / "python", "-c", code).splitlines()
    assert version == "9.0.1" and Path(where).is_relative_to(release / "lib")
    # Only the runtime closure came along: no test tool, no second ocpp-bridge.
    listed = run(
        release / "bin" / "python", "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"
    )
    names = {line.split("==")[0].lower() for line in listed.splitlines()}
    assert {"ocpp-bridge", "websockets", "ocpp", "aiohttp", "pymodbus", "pyserial", "pip"} <= names
    assert names.isdisjoint({"pytest", "hypothesis", "mypy", "ruff", "pyftpdlib", "setuptools"})
    assert "ocpp-bridge==9.0.1" in listed.splitlines()
    assert [p.name for p in releases.root.iterdir() if p.name.startswith(".")] == []  # no staging left
    print(f"\ninstall of one release: {took:.1f} s; release dir {du_mib(release):.1f} MiB")


async def test_the_next_release_keeps_the_running_one_as_previous_and_confirm_removes_older_ones(
    tmp_path: Path, release_wheels: dict[str, Path]
) -> None:
    bridge = installer(tmp_path)
    releases = Releases(tmp_path / "state")
    releases.make()
    fake_release(releases, "8.0.0-0")  # from an update before: neither active nor previous once confirmed
    releases.set_link("active", "8.0.0-0")
    assert await bridge.install(release_wheels["9.0.1"], 1) == InstallRestarting(1, "9.0.1-1", 120)
    assert (releases.link("active"), releases.link("previous")) == ("9.0.1-1", "8.0.0-0")
    bridge.confirm("9.0.1-1")
    assert releases.read_trial() is None
    assert sorted(p.name for p in releases.root.iterdir()) == ["8.0.0-0", "9.0.1-1", "active", "previous"]

    assert await bridge.install(release_wheels["9.0.2"], 2) == InstallRestarting(2, "9.0.2-2", 120)
    assert (releases.link("active"), releases.link("previous")) == ("9.0.2-2", "9.0.1-1")
    assert run(releases.dir("9.0.2-2") / "bin" / "ocpp-bridge", "--version") == "ocpp-bridge 9.0.2"
    bridge.confirm("9.0.2-2")
    assert sorted(p.name for p in releases.root.iterdir()) == ["9.0.1-1", "9.0.2-2", "active", "previous"]
    assert releases.read_trial() is None


async def test_a_release_whose_check_refuses_the_configuration_is_not_installed(
    tmp_path: Path, release_wheels: dict[str, Path]
) -> None:
    bridge = installer(tmp_path)
    releases = Releases(tmp_path / "state")
    releases.make()
    fake_release(releases, "9.0.1-1")
    releases.set_link("active", "9.0.1-1")
    out = await bridge.install(release_wheels["check-refuses"], 2)
    assert isinstance(out, InstallFailed) and out.job == 2
    assert out.reason.startswith("release 9.0.3-2 was not installed: ocpp-bridge check exited with code 1")
    assert out.reason.endswith("its last output:\nthis release refuses every configuration")
    assert (releases.link("active"), releases.link("previous"), releases.read_trial()) == (
        "9.0.1-1",
        None,
        None,
    )
    assert sorted(p.name for p in releases.root.iterdir()) == ["9.0.1-1", "active"]  # the new venv is gone


async def test_a_file_that_is_not_an_ocpp_bridge_release_is_refused(tmp_path: Path) -> None:
    bridge = installer(tmp_path)
    junk = tmp_path / "fw.bin"
    junk.write_bytes(b"\x7fELF firmware for another device")
    out = await bridge.install(junk, 1)
    assert out == InstallFailed(1, "the downloaded file is not an ocpp-bridge release: it is neither a wheel "
                                   "(zip) nor an sdist (tar.gz)")  # fmt: skip
    other = tmp_path / "other.whl"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("requests-2.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: requests\nVersion: 2.0\n")
        z.writestr("requests-2.0.dist-info/WHEEL", "Wheel-Version: 1.0\nTag: py3-none-any\n")
    out = await bridge.install(other, 2)
    assert out == InstallFailed(2, "the downloaded file is not an ocpp-bridge release: it is a release of "
                                   "'requests', not of ocpp-bridge")  # fmt: skip
    out = await bridge.install(tmp_path / "gone.whl", 3)
    assert isinstance(out, InstallFailed) and "cannot be read" in out.reason
    assert not (tmp_path / "state" / "firmware" / "releases" / "active").exists()


# -- after a restart -------------------------------------------------------------------------------------
async def test_an_install_interrupted_after_the_switch_is_awaiting_its_boot(
    tmp_path: Path, release_wheels: dict[str, Path]
) -> None:
    wall = Wall()
    bridge = installer(tmp_path, wall, boot_timeout_s=100)
    assert await bridge.install(release_wheels["9.0.1"], 1) == InstallRestarting(1, "9.0.1-1", 100)
    wall.now += 30
    assert await bridge.resolve_interrupted(release_wheels["9.0.1"], 1) == InstallRestarting(1, "9.0.1-1", 70)
    # The process that resolves it after the restart is the new release (the launcher exec'd it).
    probe = (
        "import logging, pathlib; from bridge.firmware.self_update import BridgeInstaller; "
        f"i = BridgeInstaller(pathlib.Path({str(tmp_path / 'state')!r}), pathlib.Path('c'), 1, "
        "logging.getLogger()); print(i.is_running('9.0.1-1'), i.is_running('9.0.0-1'))"
    )
    python = Releases(tmp_path / "state").dir("9.0.1-1") / "bin" / "python"
    assert run(python, "-c", probe) == "True False"
    assert bridge.is_running("9.0.1-1") is False  # this test's process is the base installation


async def test_an_install_interrupted_before_the_switch_failed_and_leaves_nothing(tmp_path: Path) -> None:
    bridge = installer(tmp_path)
    releases = Releases(tmp_path / "state")
    releases.make()
    fake_release(releases, "9.0.1-1")
    releases.set_link("active", "9.0.1-1")
    (releases.dir("9.0.2-2") / "lib").mkdir(parents=True)  # half made
    (releases.root / ".staging-2").mkdir()
    releases.write_trial(Trial("9.0.2-2", NOW + 100, 0))  # written, then the power went
    out = await bridge.resolve_interrupted(tmp_path / "x.whl", 2)
    assert out == InstallFailed(2, "interrupted by a restart before the switch")
    assert sorted(p.name for p in releases.root.iterdir()) == ["9.0.1-1", "active"]


# -- roll back -------------------------------------------------------------------------------------------
async def test_the_release_on_trial_rolls_itself_back_and_asks_for_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wall = Wall()
    bridge = installer(tmp_path, wall)
    releases = Releases(tmp_path / "state")
    releases.make()
    for name in ("9.0.1-1", "9.0.2-2"):
        fake_release(releases, name)
    releases.set_link("previous", "9.0.1-1")
    releases.set_link("active", "9.0.2-2")
    releases.write_trial(Trial("9.0.2-2", NOW - 1, 1))
    monkeypatch.setenv(RELEASE_ENV, "9.0.2-2")  # as the launcher started it
    assert await bridge.roll_back(3) == (RolledBack(3, BOOT_TIMED_OUT), True)
    assert (releases.link("active"), releases.link("previous"), releases.read_trial()) == (
        "9.0.1-1",
        None,
        None,
    )
    assert json.loads(releases.rolled_back_file.read_text()) == {
        "target": "9.0.2-2", "reason": BOOT_TIMED_OUT, "at": NOW,
    }  # fmt: skip
    # The old release, started again, finds it done: the reason, and no restart.
    monkeypatch.setenv(RELEASE_ENV, "9.0.1-1")
    assert await bridge.roll_back(3) == (RolledBack(3, BOOT_TIMED_OUT), False)
    assert releases.link("active") == "9.0.1-1"


async def test_the_old_version_reports_the_launchers_reason(tmp_path: Path) -> None:
    bridge = installer(tmp_path)
    releases = Releases(tmp_path / "state")
    releases.make()
    fake_release(releases, "9.0.2-2")
    releases.set_link("active", "9.0.2-2")
    releases.write_trial(Trial("9.0.2-2", NOW + 100, MAX_TRIAL_STARTS + 1))
    releases.roll_back("9.0.2-2", "the new release was started 4 times without booting", NOW)
    assert await bridge.roll_back(2) == (
        RolledBack(2, "the new release was started 4 times without booting"),
        False,
    )


# -- as the service runs it -------------------------------------------------------------------------------
def cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def environ(pid: int) -> str:
    return Path(f"/proc/{pid}/environ").read_bytes().replace(b"\0", b"\n").decode()


async def test_the_service_starts_the_release_on_trial_and_rolls_back_past_its_deadline(
    tmp_path: Path, release_wheels: dict[str, Path]
) -> None:
    bridge = installer(tmp_path, Wall(), boot_timeout_s=3600)
    bridge.wall = time.time
    assert await bridge.install(release_wheels["9.0.1"], 1) == InstallRestarting(1, "9.0.1-1", 3600)
    releases = Releases(tmp_path / "state")
    release = releases.dir("9.0.1-1")
    log = tmp_path / "run.log"
    service = Supervisor(bridge.config_file, log)
    await service.start()
    try:
        await service.wait_for(lambda s: s.running() and str(release) in cmdline(s.pids[-1]), 30)
        await service.wait_for(lambda s: "connection refused" in log.read_text(), 30)
        assert service.running() and service.exits == []
        assert f"{RELEASE_ENV}=9.0.1-1" in environ(service.pids[-1]).splitlines()
        trial = releases.read_trial()
        assert isinstance(trial, Trial) and trial.starts == 1
    finally:
        await service.stop()
    # Past the deadline (the daemon did not boot to a central system in time): the next start rolls back.
    assert isinstance(trial, Trial)
    releases.write_trial(Trial(trial.target, time.time() - 1, trial.starts))
    log.write_text("")
    service = Supervisor(bridge.config_file, log)
    await service.start()
    try:
        await service.wait_for(lambda s: "connection refused" in log.read_text(), 30)
        assert service.running() and str(release) not in cmdline(service.pids[-1])
        assert RELEASE_ENV not in environ(service.pids[-1])
        assert (releases.link("active"), releases.read_trial()) == (None, None)
        assert json.loads(releases.rolled_back_file.read_text())["reason"].endswith("within its boot timeout")
        assert "release 9.0.1-1 rolled back to the base installation" in log.read_text()
    finally:
        await service.stop()


async def test_a_release_that_crashes_at_start_is_rolled_back_after_its_fourth_start(
    tmp_path: Path, release_wheels: dict[str, Path]
) -> None:
    bridge = installer(tmp_path, Wall(), boot_timeout_s=3600)
    bridge.wall = time.time
    out = await bridge.install(release_wheels["crashes"], 1)
    assert out == InstallRestarting(1, "9.0.4-1", 3600)
    log = tmp_path / "run.log"
    service = Supervisor(bridge.config_file, log, restart_s=0.1)
    await service.start()
    try:
        await service.wait_for(lambda s: "connection refused" in log.read_text(), 60)
        text = log.read_text()
        assert service.exits == [1] * (MAX_TRIAL_STARTS + 1)  # then the base installation runs
        assert service.running() and len(service.pids) == MAX_TRIAL_STARTS + 2
        assert text.count("release 9.0.4 crashes at start") == MAX_TRIAL_STARTS + 1
        assert "release 9.0.4-1 rolled back to the base installation" in text
    finally:
        await service.stop()
    record = json.loads(Releases(tmp_path / "state").rolled_back_file.read_text())
    assert record["target"] == "9.0.4-1"
    assert (
        record["reason"]
        == f"the new release was started {MAX_TRIAL_STARTS + 1} times without booting to the central system"
    )
    assert await bridge.roll_back(1) == (RolledBack(1, record["reason"]), False)


def test_confirm_never_deletes_the_release_this_process_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bridge = installer(tmp_path)
    releases = Releases(tmp_path / "state")
    releases.make()
    for name in ("1-1", "2-2", "3-3", "4-4"):
        fake_release(releases, name)
    releases.set_link("previous", "3-3")
    releases.set_link("active", "4-4")
    monkeypatch.setenv(RELEASE_ENV, "2-2")
    bridge.confirm("4-4")
    assert sorted(p.name for p in releases.root.iterdir()) == ["2-2", "3-3", "4-4", "active", "previous"]
