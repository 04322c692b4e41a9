"""What a configuration key is (`KeySpec`: kind, access, profile, bounds) and the items its lists may
hold (measurands, phases, phase rotations, feature profiles, ...).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Kind = Literal["bool", "int", "csl", "str"]
Access = Literal["R", "RW", "W"]
Profile = Literal[
    "Core", "LocalAuthListManagement", "Reservation", "SmartCharging", "FirmwareManagement", "Security"
]


@dataclass(frozen=True)
class ItemRule:
    """How the items of a comma-separated list are checked."""

    allowed: str  # what is allowed, in words, for error messages and the docs
    canonical: Callable[[str], str | None]  # the canonical spelling of an item, or None if not allowed


@dataclass(frozen=True, kw_only=True)
class KeySpec:
    name: str  # canonical spelling
    kind: Kind
    access: Access
    profile: Profile
    feature: str | None = None  # the key exists only when the charge point implements this
    default: str | None = None  # wire form; None: no value unless `fixed` gives one
    minimum: int | None = None
    maximum: int | None = None
    csl_values: tuple[str, ...] | None = None  # the items a list may hold ...
    csl_item_check: ItemRule | None = None  # ... or the rule its items follow
    max_items_key: str | None = None  # the <Key>MaxLength key bounding the list
    reboot_required: bool = False
    derived: bool = False  # computed by the bridge; never set from the file or the central system
    description: str = ""


MEASURANDS: tuple[str, ...] = (
    "Energy.Active.Export.Register",
    "Energy.Active.Import.Register",
    "Energy.Reactive.Export.Register",
    "Energy.Reactive.Import.Register",
    "Energy.Active.Export.Interval",
    "Energy.Active.Import.Interval",
    "Energy.Reactive.Export.Interval",
    "Energy.Reactive.Import.Interval",
    "Power.Active.Export",
    "Power.Active.Import",
    "Power.Offered",
    "Power.Reactive.Export",
    "Power.Reactive.Import",
    "Power.Factor",
    "Current.Import",
    "Current.Export",
    "Current.Offered",
    "Voltage",
    "Frequency",
    "Temperature",
    "SoC",
    "RPM",
)
PHASES: tuple[str, ...] = ("L1", "L2", "L3", "N", "L1-N", "L2-N", "L3-N", "L1-L2", "L2-L3", "L3-L1")
PHASE_ROTATIONS: tuple[str, ...] = ("NotApplicable", "Unknown", "RST", "RTS", "SRT", "STR", "TRS", "TSR")
FEATURE_PROFILES: tuple[str, ...] = (
    "Core",
    "FirmwareManagement",
    "LocalAuthListManagement",
    "Reservation",
    "SmartCharging",
    "RemoteTrigger",
)
FILE_TRANSFER_PROTOCOLS: tuple[str, ...] = ("FTP", "FTPS", "HTTP", "HTTPS")
CHARGING_RATE_UNITS: tuple[str, ...] = ("Current", "Power")

# Every measurand with and without a phase suffix, by lower case: lists are accepted in any case.
_MEASURAND_ITEMS: dict[str, str] = {m.lower(): m for m in MEASURANDS} | {
    f"{m}.{p}".lower(): f"{m}.{p}" for m in MEASURANDS for p in PHASES
}
_ROTATION_ITEM = re.compile(r"(?:([0-9]{1,3})\.)?([A-Za-z]+)")
_ROTATIONS_BY_LOWER = {r.lower(): r for r in PHASE_ROTATIONS}


def _measurand_item(item: str) -> str | None:
    return _MEASURAND_ITEMS.get(item.lower())


def _phase_rotation_item(item: str) -> str | None:
    match = _ROTATION_ITEM.fullmatch(item)
    if match is None:
        return None
    rotation = _ROTATIONS_BY_LOWER.get(match[2].lower())
    if rotation is None:
        return None
    return rotation if match[1] is None else f"{int(match[1])}.{rotation}"


MEASURAND_ITEMS = ItemRule(
    allowed="OCPP 1.6 measurands, each optionally with a phase suffix (e.g. Voltage.L1, Current.Import.L2)",
    canonical=_measurand_item,
)
PHASE_ROTATION_ITEMS = ItemRule(
    allowed=f"phase rotations ({', '.join(PHASE_ROTATIONS)}), optionally per connector as <id>.<rotation>",
    canonical=_phase_rotation_item,
)
