"""What the generic device's tests share: its blocks built through the real configuration loader (so
the options a test drives are the ones `check` accepts), and the go-e, KEBA and Tasmota devices
described generically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bridge.config import ConfigError
from tests.conftest import make_config

NOWHERE = "ws://127.0.0.1:9/ocpp"


def options(
    tmp_path: Path, *, charger: dict[str, Any] | None = None, meter: dict[str, Any] | None = None
) -> Any:
    """The options of a `charger:` (or, with `meter`, a `meter:`) block, as the loader builds them."""
    config = make_config(NOWHERE, tmp_path, charger=charger, meter=meter)
    connector = config.charge_points[0].connectors[0]
    return connector.meter.options if meter is not None else connector.charger.options


def problems(tmp_path: Path, **blocks: Any) -> list[tuple[str, int | None, str]]:
    """(path, line, message) of every problem the loader finds with these blocks."""
    try:
        make_config(NOWHERE, tmp_path, **blocks)
    except ConfigError as error:
        return [(p.path, p.line, p.message) for p in error.problems]
    return []


def sdm630_block(url: str, unit: int) -> dict[str, Any]:
    return {"type": "generic", "template": "sdm630", "params": {"url": url, "unit": unit}}
