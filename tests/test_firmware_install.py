"""The installers of UpdateFirmware that finish in place (bridge/firmware): none configured, an
integrator's command (real processes: sh scripts in tmp_path), and the device's own install."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from adapters.base import (
    Charger,
    ChargerCapabilities,
    ChargerReading,
    DeviceRefused,
    DeviceUnreachable,
    NotSupportedByDevice,
)
from bridge.core.firmware_effects import InstallFailed, InstallSucceeded, RolledBack
from bridge.firmware.command import LINE_MAX, TAIL_LINES, CommandInstaller
from bridge.firmware.device import DeviceInstaller
from bridge.firmware.install import NO_INSTALL, Installer, NoInstaller

LOG = "tests.firmware.command"


def script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def command(argv: list[str], timeout_s: float = 30.0) -> CommandInstaller:
    return CommandInstaller(argv, timeout_s, logging.getLogger(LOG))


def pid_alive(pid: int) -> bool:
    """Running, not a zombie waiting to be reaped by its (new) parent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


# -- none configured ---------------------------------------------------------------------------------
async def test_no_installer_fails_every_install_saying_how_to_configure_one(tmp_path: Path) -> None:
    installer: Installer = NoInstaller()
    assert installer.kind == "none"
    assert await installer.install(tmp_path / "fw.bin", 4) == InstallFailed(4, NO_INSTALL)
    assert "firmware.install" in NO_INSTALL
    assert await installer.resolve_interrupted(tmp_path / "fw.bin", 4) == InstallFailed(4, NO_INSTALL)
    assert await installer.roll_back(4) == (RolledBack(4, "nothing to roll back"), False)
    assert installer.is_running("anything") is False


# -- a command ---------------------------------------------------------------------------------------
async def test_exit_0_is_installed_and_the_output_goes_to_the_log_line_by_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tool = script(tmp_path, "flash", 'echo "flashing $1"\necho "to stderr" >&2\necho done\n')
    image = tmp_path / "fw.bin"
    image.write_bytes(b"image")
    installer: Installer = command([str(tool)])
    assert installer.kind == "command"
    with caplog.at_level(logging.INFO, logger=LOG):
        assert await installer.install(image, 1) == InstallSucceeded(1)
    said = [r.getMessage() for r in caplog.records if r.name == LOG]
    assert said[:3] == [f"flash: flashing {image}", "flash: to stderr", "flash: done"]


async def test_a_non_zero_exit_fails_naming_the_code_and_the_last_lines(tmp_path: Path) -> None:
    body = "i=0\nwhile [ $i -lt 30 ]; do echo line $i; i=$((i+1)); done\necho 'no space left' >&2\nexit 3\n"
    tool = script(tmp_path, "flash", body)
    out = await command([str(tool)]).install(tmp_path / "fw.bin", 2)
    assert isinstance(out, InstallFailed) and out.job == 2
    assert f"{tool} exited with code 3" in out.reason
    lines = out.reason.split("its last output:\n", 1)[1].splitlines()
    assert len(lines) == TAIL_LINES
    assert lines[-1] == "no space left"
    assert lines[0] == "line 11"  # the 31 lines' last 20


async def test_a_long_line_is_cut(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    tool = script(tmp_path, "flash", f"printf '%0{LINE_MAX * 3}d\\n' 0\nexit 1\n")
    with caplog.at_level(logging.INFO, logger=LOG):
        out = await command([str(tool)]).install(tmp_path / "fw.bin", 1)
    assert isinstance(out, InstallFailed)
    (line,) = [r.getMessage() for r in caplog.records if r.name == LOG]
    assert len(line) == len("flash: ") + LINE_MAX + 1  # and the ellipsis
    assert len(out.reason) < 2 * LINE_MAX


async def test_a_signal_is_named(tmp_path: Path) -> None:
    tool = script(tmp_path, "flash", "kill -KILL $$\n")
    out = await command([str(tool)]).install(tmp_path / "fw.bin", 1)
    assert isinstance(out, InstallFailed)
    assert "was killed by signal SIGKILL" in out.reason


async def test_argv_with_spaces_is_passed_word_for_word_and_no_shell_reads_it(tmp_path: Path) -> None:
    tool = script(tmp_path, "my flasher", 'for a in "$@"; do echo "[$a]"; done > "$(dirname "$0")/args"\n')
    image = tmp_path / "a dir" / "fw image.bin"
    image.parent.mkdir()
    image.write_bytes(b"x")
    out = await command([str(tool), "--mode", "two words", "$HOME;rm"]).install(image, 1)
    assert out == InstallSucceeded(1)
    assert (tmp_path / "args").read_text().splitlines() == [
        "[--mode]",
        "[two words]",
        "[$HOME;rm]",
        f"[{image}]",
    ]


async def test_past_its_time_limit_the_command_and_its_children_are_killed(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    # The child ignores TERM: the group's KILL 5 s later ends it.
    tool = script(tmp_path, "flash", f"sh -c 'trap \"\" TERM; echo $$ > {pids}; sleep 60' &\nwait\n")
    started = time.monotonic()
    out = await command([str(tool)], timeout_s=0.5).install(tmp_path / "fw.bin", 7)
    took = time.monotonic() - started
    assert isinstance(out, InstallFailed) and out.job == 7
    assert "timed out after 0.5 s" in out.reason
    child = int(pids.read_text())
    for _ in range(50):  # the killed child is reaped by init, not by us
        if not pid_alive(child):
            break
        await asyncio.sleep(0.1)
    assert not pid_alive(child)
    assert took < 0.5 + 5 + 3


async def test_a_program_that_does_not_exist_fails_naming_it(tmp_path: Path) -> None:
    out = await command([str(tmp_path / "nope")]).install(tmp_path / "fw.bin", 1)
    assert isinstance(out, InstallFailed)
    assert f"install command {tmp_path / 'nope'} could not start" in out.reason


async def test_a_command_interrupted_by_a_restart_has_an_unknown_outcome(tmp_path: Path) -> None:
    installer = command(["true"])
    assert await installer.resolve_interrupted(tmp_path / "fw.bin", 3) == InstallFailed(
        3, "interrupted by a restart: the command's outcome is unknown"
    )
    assert await installer.roll_back(3) == (RolledBack(3, "nothing to roll back"), False)


def test_a_bad_command_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="non-empty list"):
        command([])
    with pytest.raises(ValueError, match="timeout must be > 0"):
        command(["true"], timeout_s=0)


# -- the device ----------------------------------------------------------------------------------------
class Box(Charger):
    """A charger that may take an image, and may fail doing so."""

    def __init__(self, name: str, can: bool, error: Exception | None = None) -> None:
        super().__init__()
        self.name, self.can, self.error = name, can, error
        self.installed: list[Path] = []

    @property
    def capabilities(self) -> ChargerCapabilities:
        return ChargerCapabilities(
            can_sense_plug=True, can_unlock=False, fixed_cable=True, can_switch_phases=False,
            can_reset=False, has_meter=True, has_rfid=False, phases=3, min_current_a=6,
            max_current_a=16, current_step_a=1, can_install_firmware=self.can,
        )  # fmt: skip

    @property
    def description(self) -> str:
        return self.name

    async def read(self) -> ChargerReading:
        return ChargerReading(plugged=False, ev_requesting=False, energy_allowed=False)

    async def set_enabled(self, enabled: bool) -> None:
        pass

    async def set_current(self, amps: float) -> None:
        pass

    async def install_firmware(self, image: Path) -> None:
        if self.error is not None:
            raise self.error
        self.installed.append(image)


class Plain(Box):
    """A driver that does not override install_firmware: the base class's answer."""

    async def install_firmware(self, image: Path) -> None:
        await Charger.install_firmware(self, image)


async def test_a_driver_that_cannot_says_not_supported(tmp_path: Path) -> None:
    assert Plain("plain", can=False).capabilities.can_install_firmware is False
    with pytest.raises(NotSupportedByDevice, match="cannot install a firmware image"):
        await Plain("plain", can=False).install_firmware(tmp_path / "fw.bin")


async def test_the_image_goes_to_every_charger_that_can_take_one(tmp_path: Path) -> None:
    a, b, c = Box("a", True), Box("b", False), Box("c", True)
    installer: Installer = DeviceInstaller([a, b, c])
    assert installer.kind == "device"
    assert await installer.install(tmp_path / "fw.bin", 5) == InstallSucceeded(5)
    assert (a.installed, b.installed, c.installed) == ([tmp_path / "fw.bin"], [], [tmp_path / "fw.bin"])


async def test_no_charger_that_can_fails_naming_the_fix(tmp_path: Path) -> None:
    out = await DeviceInstaller([Box("a", False)]).install(tmp_path / "fw.bin", 5)
    assert isinstance(out, InstallFailed)
    assert "can_install_firmware" in out.reason and "firmware.install" in out.reason


@pytest.mark.parametrize(
    "error, kind",
    [
        (DeviceRefused("checksum mismatch"), "DeviceRefused"),
        (DeviceUnreachable("no answer"), "DeviceUnreachable"),
    ],
)
async def test_a_driver_error_fails_with_its_message(tmp_path: Path, error: Exception, kind: str) -> None:
    out = await DeviceInstaller([Box("go-e at 192.0.2.7", True, error)]).install(tmp_path / "fw.bin", 5)
    assert out == InstallFailed(5, f"go-e at 192.0.2.7 did not install the image ({kind}): {error}")


async def test_a_device_install_interrupted_by_a_restart_has_an_unknown_outcome(tmp_path: Path) -> None:
    out = await DeviceInstaller([Box("a", True)]).resolve_interrupted(tmp_path / "fw.bin", 2)
    assert isinstance(out, InstallFailed) and "interrupted by a restart" in out.reason


def test_the_capability_is_off_by_default() -> None:
    fields = {"can_sense_plug": True, "can_unlock": False, "fixed_cable": True, "can_switch_phases": False,
              "can_reset": False, "has_meter": True, "has_rfid": False, "phases": 1, "min_current_a": 6.0,
              "max_current_a": 16.0, "current_step_a": 1.0}  # fmt: skip
    assert ChargerCapabilities(**fields).can_install_firmware is False
