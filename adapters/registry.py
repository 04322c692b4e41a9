"""Driver names as they appear in the configuration, and where each lives.

Modules are imported only when a configuration names them, so a daemon
pays (start-up time, memory) only for the drivers it uses.
"""

from __future__ import annotations

import importlib

from adapters.base import Charger

# type name in `charger: {type: ...}` -> "module:Class"
CHARGER_TYPES: dict[str, str] = {
    "simulated": "adapters.simulated:SimulatedCharger",
}


class UnknownDriver(LookupError):
    pass


def charger_class(type_name: str) -> type[Charger]:
    try:
        target = CHARGER_TYPES[type_name]
    except KeyError:
        known = ", ".join(sorted(CHARGER_TYPES))
        raise UnknownDriver(f"unknown charger type {type_name!r}; known types: {known}") from None
    module_name, _, class_name = target.partition(":")
    cls: type[Charger] = getattr(importlib.import_module(module_name), class_name)
    return cls
