"""The device drivers a configuration names, built for a connector, and where a driver keeps its state."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from adapters.base import Charger
from adapters.chargers.composed import MeteredCharger
from adapters.chargers.with_reader import with_card_reader
from adapters.registry import new_card_reader, new_charger, new_meter
from adapters.transports.pool import Transports
from bridge.config import ConnectorConfig


def device_state_file(state_dir: Path, cp_id: str, connector_id: int) -> Path:
    """Where a connector's driver keeps its own state across restarts (the simulated charger's)."""
    return state_dir / "devices" / f"{quote(cp_id, safe='')}.{connector_id}.json"


def build_charger(
    connector: ConnectorConfig, transports: Transports, state_file: Path | None = None
) -> Charger:
    """The connector's charger driver, composed with its meter of record and its card reader when
    configured.
    `state_file`: see `new_charger`; the daemon gives `device_state_file`, a probe none."""
    charger = new_charger(connector.charger.type, connector.charger.options, transports, state_file)
    if connector.meter is not None:
        meter = new_meter(connector.meter.type, connector.meter.options, transports)
        charger = MeteredCharger(charger, meter)
    if connector.card_reader is not None:
        reader = new_card_reader(connector.card_reader.type, connector.card_reader.options)
        charger = with_card_reader(charger, reader)
    return charger
