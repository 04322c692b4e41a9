"""Driver names as they appear in the configuration, and where each lives.

Modules are imported only when a configuration names them, so a daemon
pays (start-up time, memory) only for the drivers it uses.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from adapters.base import Charger, Meter
from adapters.transports import Transports

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


def new_charger(
    type_name: str, options: Any, transports: Transports, state_file: Path | None = None
) -> Charger:
    """A charger driver. `state_file` goes to a driver that keeps state across restarts
    (`Charger.keeps_state`, the simulated charger): a file of its own, which the caller places
    (the daemon: under state_dir); None, as for a probe, keeps nothing."""
    cls: Any = charger_class(type_name)
    if cls.keeps_state:
        return cls(options, transports, state_file=state_file)  # type: ignore[no-any-return]
    return cls(options, transports)  # type: ignore[no-any-return]


def meter_class(type_name: str) -> type[Meter]:
    cls: type[Meter] = _load(METER_TYPES, type_name, "meter")
    return cls
