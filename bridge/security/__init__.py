"""The OCPP 1.6 security extension's I/O pieces: TLS contexts, the certificate store, the security log.

Below the runtime (which composes them per charge point), above the pure core; never imported by
`bridge.ocpp`, which sees them only through the Protocols of `bridge.ocpp.ports`.

`cryptography` costs ~16 MiB of memory and ~50 ms (several times that on a Pi) to import: the modules
that use it are imported when a certificate is first handled (`lazy_module`), so a charge point without
TLS certificates never loads it.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class _LazyModule(ModuleType):
    """A module imported at the first attribute read (type checkers see the real one: callers import
    it under TYPE_CHECKING)."""

    def __getattr__(self, name: str) -> Any:
        module = importlib.import_module(self.__name__)
        return getattr(module, name)


def lazy_module(name: str) -> Any:
    return _LazyModule(name)
