"""What runs: Python, the platform, ocpp-bridge and the libraries whose version explains a behaviour."""

from __future__ import annotations

import importlib.metadata
import platform
import sys
from typing import Any

# Distribution names, as pip knows them.
LIBRARIES = (
    "websockets",
    "ocpp",
    "aiohttp",
    "aiomqtt",
    "paho-mqtt",
    "pymodbus",
    "pyserial",
    "PyYAML",
    "fastjsonschema",
    "jsonschema",
    "prometheus-client",
    "aioftp",
    "cryptography",
)


def version_of(distribution: str) -> str | None:
    """The installed version of a distribution, None when it is not installed."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions() -> dict[str, Any]:
    return {
        "ocpp-bridge": version_of("ocpp-bridge"),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "executable": sys.executable,  # which venv runs (after an A/B update: the active one)
        "libraries": {name: version_of(name) for name in LIBRARIES},
    }
