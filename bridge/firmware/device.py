"""The "device" install: the image goes to each charger of the charge point that can take one.

Chargers that cannot (`can_install_firmware` false) are left alone; when none can, the install fails
naming the fix. The first driver error ends the install: a device error is a typed
`adapters.base.DeviceError` whose message says what the device answered.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from adapters.base import Charger, DeviceError
from bridge.core.firmware_effects import InstallFailed, InstallSucceeded, RolledBack
from bridge.firmware.install import InstallOutcome

NO_CAPABLE_DEVICE = (
    "no charger of this charge point can install a firmware image (its driver does not declare "
    "can_install_firmware): choose another firmware.install"
)


class DeviceInstaller:
    kind = "device"

    def __init__(self, chargers: Sequence[Charger]) -> None:
        self.chargers = tuple(chargers)

    async def install(self, image: Path, job: int) -> InstallOutcome:
        capable = [c for c in self.chargers if c.capabilities.can_install_firmware]
        if not capable:
            return InstallFailed(job, NO_CAPABLE_DEVICE)
        for charger in capable:
            try:
                await charger.install_firmware(image)
            except DeviceError as exc:
                kind = type(exc).__name__
                return InstallFailed(job, f"{charger.description} did not install the image ({kind}): {exc}")
        return InstallSucceeded(job)

    async def resolve_interrupted(self, image: Path, job: int) -> InstallOutcome:
        return InstallFailed(job, "interrupted by a restart: the device's install outcome is unknown")

    async def roll_back(self, job: int) -> tuple[RolledBack, bool]:
        return RolledBack(job, "nothing to roll back"), False

    def is_running(self, target: str) -> bool:
        return False

    def confirm(self, target: str) -> None:
        """A device's install is final when it returns."""
