"""Driver names as they appear in the configuration, and where each lives.

Each sub-package registers its own types: `adapters.chargers.CHARGER_TYPES`,
`adapters.meters.METER_TYPES` and `adapters.readers.CARD_READER_TYPES` map a type name to
"module:Class". Modules are imported only when a configuration names them, so a daemon pays
(start-up time, memory) only for the drivers it uses.

Every driver's constructor takes `(options, transports)`, the options being an instance of its
`Options` dataclass; a charger that keeps state across restarts (`Charger.keeps_state`) takes
`state_file=` as well; a card reader takes its options alone (it owns its port). The Protocols
below say so, which is how `new_charger`, `new_meter` and `new_card_reader` build any driver
without knowing its class.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Protocol

from adapters.base import CardReader, Charger, Meter
from adapters.chargers import CHARGER_TYPES
from adapters.meters import METER_TYPES
from adapters.readers import CARD_READER_TYPES
from adapters.transports.pool import Transports

__all__ = [
    "CARD_READER_TYPES",
    "CHARGER_TYPES",
    "METER_TYPES",
    "UnknownDriver",
    "card_reader_class",
    "charger_class",
    "meter_class",
    "new_card_reader",
    "new_charger",
    "new_meter",
]


class UnknownDriver(LookupError):
    pass


class NewCharger(Protocol):
    """A charger driver's class, as the registry calls it."""

    def __call__(self, options: Any, transports: Transports, /) -> Charger: ...


class NewStatefulCharger(Protocol):
    """The class of a charger driver that keeps state across restarts (`Charger.keeps_state`)."""

    def __call__(self, options: Any, transports: Transports, /, *, state_file: Path | None) -> Charger: ...


class NewMeter(Protocol):
    """A meter driver's class, as the registry calls it."""

    def __call__(self, options: Any, transports: Transports, /) -> Meter: ...


class NewCardReader(Protocol):
    """A card reader's class, as the registry calls it: a reader owns its port, it shares no transport."""

    def __call__(self, options: Any, /) -> CardReader: ...


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
    if charger_class(type_name).keeps_state:
        stateful: NewStatefulCharger = _load(CHARGER_TYPES, type_name, "charger")
        return stateful(options, transports, state_file=state_file)
    new: NewCharger = _load(CHARGER_TYPES, type_name, "charger")
    return new(options, transports)


def meter_class(type_name: str) -> type[Meter]:
    cls: type[Meter] = _load(METER_TYPES, type_name, "meter")
    return cls


def new_meter(type_name: str, options: Any, transports: Transports) -> Meter:
    """A meter driver, built from its configuration block's options."""
    new: NewMeter = _load(METER_TYPES, type_name, "meter")
    return new(options, transports)


def card_reader_class(type_name: str) -> type[CardReader]:
    cls: type[CardReader] = _load(CARD_READER_TYPES, type_name, "card reader")
    return cls


def new_card_reader(type_name: str, options: Any) -> CardReader:
    """A card reader (`card_reader:` beside a connector's charger), built from its block's options."""
    new: NewCardReader = _load(CARD_READER_TYPES, type_name, "card reader")
    return new(options)
