"""The "bridge" install: an A/B update of the bridge itself, with roll back.

install(image): the image must be an ocpp-bridge wheel or sdist. It goes into a fresh venv
`releases/<version>-<job>/` (made with the running interpreter's base Python, the running
environment's runtime closure copied in, then `pip install` of the image: pip fetches only what is
missing), whose `ocpp-bridge check` must pass the running configuration. Then trial.json is written
(the target, the boot deadline, 0 starts), `previous` set to what ran and `active` switched to the new
release, and InstallRestarting returned: the runner stores the machine's record and exits with
install.RESTART_EXIT_CODE; systemd starts the service again and the launcher (launch.py) execs the
active release. A release that has not booted to the central system by the deadline, or that was
started more than MAX_TRIAL_STARTS times, is switched back (by itself, through roll_back, or by the
launcher), and the old version reports InstallationFailed with the reason from rolled_back.json.

The steps that take time run off the event loop: the subprocesses are awaited, the copies run in a
thread. See releases.py for the files.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bridge.core.firmware_effects import InstallFailed, InstallRestarting, RolledBack
from bridge.firmware.closure import copy_closure
from bridge.firmware.command import OutputTail, exit_text, kill_group, read_lines
from bridge.firmware.image import NotARelease, read_release
from bridge.firmware.install import InstallOutcome
from bridge.firmware.releases import RELEASE_ENV, STAGING_PREFIX, Releases, Trial

STEP_TIMEOUT_S = 600.0  # venv, pip, check: each; a slow SD card and a pip that must download
BOOT_TIMED_OUT = "the new release did not boot to the central system within its boot timeout"
NOT_ACTIVE = "the new release is not the active one any more"


class StepFailed(Exception):
    """One step of the install failed; the message names the step and what it said."""


class BridgeInstaller:
    kind = "bridge"

    def __init__(
        self,
        state_dir: Path,
        config_file: Path,
        boot_timeout_s: float,
        log: logging.Logger,
        *,
        wall: Callable[[], float] = time.time,
        base_python: str | None = None,
    ) -> None:
        if not boot_timeout_s > 0:
            raise ValueError(f"firmware boot timeout must be > 0 s, got {boot_timeout_s!r}")
        self.releases = Releases(state_dir)
        self.config_file = config_file
        self.boot_timeout_s = boot_timeout_s
        self.log = log
        self.wall = wall
        # The interpreter the venvs are made with: the running one's own base, not a venv's.
        self.base_python = base_python or getattr(sys, "_base_executable", None) or sys.executable

    # -- install -----------------------------------------------------------------------------------
    async def install(self, image: Path, job: int) -> InstallOutcome:
        try:
            release = await asyncio.to_thread(read_release, image)
        except NotARelease as exc:
            return InstallFailed(job, f"the downloaded file is not an ocpp-bridge release: {exc}")
        except OSError as exc:
            return InstallFailed(job, f"the downloaded file cannot be read: {exc.strerror or exc}")
        target = f"{release.version}-{job}"
        new = self.releases.dir(target)
        staging = self.releases.root / f"{STAGING_PREFIX}{job}"
        began = time.monotonic()
        try:
            await asyncio.to_thread(self._prepare, new, staging)
            await self._run("make the venv", [self.base_python, "-m", "venv", "--without-pip", str(new)])
            site = await asyncio.to_thread(_site_packages, new)
            names, size = await asyncio.to_thread(copy_closure, site)
            self.log.info("firmware: %s: copied %d libraries (%.1f MiB)", target, len(names), size / 2**20)
            staged = staging / release.standard_name
            await asyncio.to_thread(_link_or_copy, image, staged)
            await self._run("pip install", [
                str(new / "bin" / "python"), "-m", "pip", "install", "--no-input",
                "--disable-pip-version-check", "--no-cache-dir", "--no-warn-script-location", str(staged),
            ])  # fmt: skip
            await self._run("ocpp-bridge check", [
                str(new / "bin" / "ocpp-bridge"), "check", "--config", str(self.config_file),
            ])  # fmt: skip
        except (StepFailed, OSError) as exc:
            await asyncio.to_thread(_remove, new, staging)
            text = str(exc) if isinstance(exc, StepFailed) else f"a file step failed: {exc}"
            return InstallFailed(job, f"release {target} was not installed: {text}")
        except asyncio.CancelledError:
            await asyncio.to_thread(_remove, new, staging)
            raise
        await asyncio.to_thread(shutil.rmtree, staging, True)
        await asyncio.to_thread(self._switch, target)
        self.log.info("firmware: release %s installed in %.1f s and active; the bridge restarts into it",
                      target, time.monotonic() - began)  # fmt: skip
        return InstallRestarting(job, target, self.boot_timeout_s)

    def _prepare(self, new: Path, staging: Path) -> None:
        r = self.releases
        r.make()
        r.clear_trial()  # a trial still here ended before this install (the machine waits for it)
        r.clear_rolled_back()
        r.prune({r.link("active"), r.link("previous"), self.running()})
        _remove(new, staging)
        staging.mkdir()

    def _switch(self, target: str) -> None:
        """trial.json first, then `previous`, then `active`: a crash before the last step leaves the
        old release active and a trial that names another (resolve_interrupted: not switched)."""
        r = self.releases
        r.write_trial(Trial(target, self.wall() + self.boot_timeout_s, 0))
        running = r.link("active")
        r.set_link("previous", running if running is not None and r.is_complete(running) else None)
        r.set_link("active", target)

    async def _run(self, step: str, argv: list[str]) -> None:
        """Runs one step's program; StepFailed naming the step, its exit and its last output."""
        env = {k: v for k, v in os.environ.items() if k not in (RELEASE_ENV, "PYTHONPATH", "PYTHONHOME")}
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT, start_new_session=True, env=env,
            )  # fmt: skip
        except OSError as exc:
            raise StepFailed(f"{step}: {argv[0]} could not start: {exc.strerror or exc}") from None
        assert proc.stdout is not None
        tail = OutputTail()
        reader = asyncio.create_task(read_lines(proc.stdout, tail, self.log, step))
        try:
            await asyncio.wait_for(proc.wait(), STEP_TIMEOUT_S)
            await asyncio.wait_for(reader, 5.0)
        except TimeoutError:
            await kill_group(proc)
            raise StepFailed(f"{step} timed out after {STEP_TIMEOUT_S:g} s{_last(tail)}") from None
        except asyncio.CancelledError:
            await kill_group(proc)
            raise
        finally:
            reader.cancel()
        assert proc.returncode is not None
        if proc.returncode != 0:
            raise StepFailed(f"{step} {exit_text(proc.returncode)}{_last(tail)}")

    # -- after a restart -----------------------------------------------------------------------------
    async def resolve_interrupted(self, image: Path, job: int) -> InstallOutcome:
        return await asyncio.to_thread(self._resolve, job)

    def _resolve(self, job: int) -> InstallOutcome:
        r = self.releases
        trial = r.read_trial()
        active = r.link("active")
        if isinstance(trial, Trial) and trial.target == active and r.is_complete(active):
            left = max(0.0, trial.deadline - self.wall())
            return InstallRestarting(job, trial.target, left)
        r.clear_trial()
        r.prune({active, r.link("previous"), self.running()})  # the half-made venv
        return InstallFailed(job, "interrupted by a restart before the switch")

    def running(self) -> str | None:
        """The release this process runs (None: the base installation); never deleted under it."""
        named = os.environ.get(RELEASE_ENV)
        if named:
            return named
        prefix = Path(sys.prefix)
        return prefix.name if prefix.parent.resolve() == self.releases.root.resolve() else None

    def is_running(self, target: str) -> bool:
        return self.running() == target

    async def roll_back(self, job: int) -> tuple[RolledBack, bool]:
        return await asyncio.to_thread(self._roll_back, job)

    def _roll_back(self, job: int) -> tuple[RolledBack, bool]:
        r = self.releases
        trial = r.read_trial()
        active = r.link("active")
        if isinstance(trial, Trial) and trial.target == active:
            # Still switched to the release on trial: its boot timed out. Back, and restart if it runs.
            back = r.roll_back(active, BOOT_TIMED_OUT, self.wall())
            self.log.warning("firmware: release %s rolled back to %s: %s",
                             active, back or "the base installation", BOOT_TIMED_OUT)  # fmt: skip
            return RolledBack(job, BOOT_TIMED_OUT), self.is_running(active)
        done = r.read_rolled_back()
        reason = str(done["reason"]) if done and done.get("reason") else NOT_ACTIVE
        return RolledBack(job, reason), False

    def confirm(self, target: str) -> None:
        r = self.releases
        trial = r.read_trial()
        if isinstance(trial, Trial) and trial.target == target:
            r.clear_trial()
        r.clear_rolled_back()
        gone = r.prune({r.link("active"), r.link("previous"), self.running()})
        self.log.info("firmware: release %s confirmed%s", target,
                      f"; removed {', '.join(sorted(gone))}" if gone else "")  # fmt: skip


def _site_packages(venv: Path) -> Path:
    found = sorted((venv / "lib").glob("python3*/site-packages"))
    if len(found) != 1:
        raise OSError(f"no single site-packages in the new venv {venv}")
    return found[0]


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _remove(*paths: Path) -> None:
    for p in paths:
        shutil.rmtree(p, ignore_errors=True)


def _last(tail: OutputTail) -> str:
    return f"; its last output:\n{tail.text()}" if tail.lines else ""
