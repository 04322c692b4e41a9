"""What a charge point says of itself: its BootNotification and the keys its chargers decide."""

from __future__ import annotations

from collections.abc import Iterable

from ocpp.v16 import call

from adapters.base import Charger
from bridge import __version__
from bridge.config import ChargePointConfig


def boot_notification(c: ChargePointConfig) -> call.BootNotification:
    """firmwareVersion is the bridge's release unless the file sets one: after a self-update the
    central system sees the new release booted."""
    return call.BootNotification(
        charge_point_vendor=c.vendor,
        charge_point_model=c.model,
        charge_point_serial_number=c.serial_number,
        firmware_version=c.firmware_version or f"ocpp-bridge {__version__}",
        meter_type=c.meter_type,
        meter_serial_number=c.meter_serial_number,
    )


def phase_switching(chargers: Iterable[Charger]) -> str:
    """ConnectorSwitch3to1PhaseSupported: true when a charger of this charge point can switch."""
    return "true" if any(c.capabilities.can_switch_phases for c in chargers) else "false"
