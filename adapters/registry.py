"""Driver names as they appear in the configuration, and where each lives.

Modules are imported only when a configuration names them, so a daemon
pays (start-up time, memory) only for the drivers it uses.
"""

from __future__ import annotations

import importlib
from typing import Any

from adapters.base import Charger, Meter

# type name in `charger: {type: ...}` -> "module:Class"
CHARGER_TYPES: dict[str, str] = {
    "simulated": "adapters.simulated:SimulatedCharger",
    "goe": "adapters.goe:GoeCharger",
    "shelly": "adapters.relay:ShellyCharger",
    "tasmota": "adapters.relay:TasmotaCharger",
}

# type name in `meter: {type: ...}` -> "module:Class"
METER_TYPES: dict[str, str] = {
    "sdm630": "adapters.eastron:Sdm630",
    "sdm120": "adapters.eastron:Sdm120",
    "sdm72": "adapters.eastron:Sdm72",
}


class UnknownDriver(LookupError):
    pass


def _load(table: dict[str, str], type_name: str, kind: str) -> Any:
    try:
        target = table[type_name]
    except KeyError:
        known = ", ".join(sorted(table))
        raise UnknownDriver(f"unknown {kind} type {type_name!r}; known types: {known}") from None
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def charger_class(type_name: str) -> type[Charger]:
    cls: type[Charger] = _load(CHARGER_TYPES, type_name, "charger")
    return cls


def meter_class(type_name: str) -> type[Meter]:
    cls: type[Meter] = _load(METER_TYPES, type_name, "meter")
    return cls
