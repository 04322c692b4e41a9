"""A transaction as the connector knows it, why one stops, and how id tags compare (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class StopReason(StrEnum):
    LOCAL = "Local"
    REMOTE = "Remote"
    EV_DISCONNECTED = "EVDisconnected"
    HARD_RESET = "HardReset"
    SOFT_RESET = "SoftReset"
    REBOOT = "Reboot"
    POWER_LOSS = "PowerLoss"
    UNLOCK_COMMAND = "UnlockCommand"
    DE_AUTHORIZED = "DeAuthorized"
    EMERGENCY_STOP = "EmergencyStop"
    OTHER = "Other"


@dataclass(frozen=True)
class Transaction:
    local_id: int  # ours, stable before the central system's id is known
    id_tag: str
    meter_start_wh: int
    started_at: datetime
    parent_id_tag: str | None = None  # the tag's group, once the central system named it
    # Set when StartTransaction.conf said the tag is not valid: energy flows up to this register
    # value (MaxEnergyOnInvalidId), then the transaction stops or is suspended.
    invalid_energy_limit_wh: float | None = None
    deauthorized: bool = False  # invalid, energy stopped, the transaction continues


def same_tag(a: str, b: str) -> bool:
    """IdTokens are case-insensitive (OCPP 1.6 §3.9)."""
    return a.casefold() == b.casefold()
