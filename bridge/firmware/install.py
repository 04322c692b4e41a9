"""The one interface the runtime installs through, and the installer of "nothing configured".

An installer never raises for an install that fails: it returns InstallFailed with a reason an
installer of the charge point understands (which command, which exit code, which step), and no
secret.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, TypeAlias

from bridge.core.firmware_effects import InstallFailed, InstallRestarting, InstallSucceeded, RolledBack

InstallOutcome: TypeAlias = InstallSucceeded | InstallFailed | InstallRestarting

# The exit code of a daemon that stops so that the service restarts into another release: non-zero,
# so systemd's Restart=on-failure restarts it, and not 2 (RestartPreventExitStatus=2: a bad
# configuration). 75 is EX_TEMPFAIL of sysexits.h: "try again later".
RESTART_EXIT_CODE = 75


class Installer(Protocol):
    kind: str  # "none" | "command" | "device" | "bridge" (the configuration's firmware.install)

    async def install(self, image: Path, job: int) -> InstallOutcome: ...

    async def resolve_interrupted(self, image: Path, job: int) -> InstallOutcome:
        """After a restart that came during install(): what that install left behind."""
        ...

    async def roll_back(self, job: int) -> tuple[RolledBack, bool]:
        """Switch back to what ran before (bridge kind); the bool: the daemon must restart now."""
        ...

    def is_running(self, target: str) -> bool:
        """After a restart in AWAITING_BOOT: whether this process is the `target` of InstallRestarting."""
        ...

    def confirm(self, target: str) -> None:
        """The new version booted to the central system (NewVersionBooted): make it permanent."""
        ...


NO_INSTALL = (
    "no firmware install is configured: set firmware.install in the configuration "
    "(docs/firmware-and-diagnostics.md)"
)


class NoInstaller:
    """D5: with nothing configured the request is still answered; the install fails, saying why."""

    kind = "none"

    async def install(self, image: Path, job: int) -> InstallOutcome:
        return InstallFailed(job, NO_INSTALL)

    async def resolve_interrupted(self, image: Path, job: int) -> InstallOutcome:
        return InstallFailed(job, NO_INSTALL)

    async def roll_back(self, job: int) -> tuple[RolledBack, bool]:
        return RolledBack(job, "nothing to roll back"), False

    def is_running(self, target: str) -> bool:
        return False

    def confirm(self, target: str) -> None:
        """Nothing was installed: nothing to keep."""
