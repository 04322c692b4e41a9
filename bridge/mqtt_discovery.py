"""Home Assistant MQTT discovery for the state `bridge.mqtt_state` publishes, and the names both use.

One retained config per entity under `<discovery_prefix>/<sensor|binary_sensor>/<unique id>/config`,
one device per charge point, every entity available while `<prefix>/bridge/availability` says online.
A value template turns the empty payload into Home Assistant's "None" (unknown). Unique ids carry the
bridge's topic prefix, so two bridges with the same charge point id stay two devices.

A charge point id becomes a topic level unless it holds an MQTT wildcard, and part of a unique id
unless it holds characters Home Assistant does not allow there: then a readable stand-in with a short
hash of the id takes its place.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Protocol

from bridge import __version__
from bridge.config import MqttStateConfig
from bridge.core.connector import Status
from bridge.core.diagnostics import DiagnosticsStatus
from bridge.core.firmware import FirmwareState
from bridge.runtime.snapshot import ChargePointSnapshot

ONLINE, OFFLINE = "online", "offline"
MANUFACTURER = "ocpp-bridge"
UNKNOWN_AS_NONE = "{{ value if value else None }}"  # empty payload → Home Assistant's unknown


class Observed(Protocol):
    """What the publisher needs of a charge point: its snapshot."""

    def snapshot(self) -> ChargePointSnapshot: ...


# -- names ------------------------------------------------------------------------------------


def _slug(cp_id: str, bad: str) -> str:
    """`cp_id` when it holds none of the characters of regex class `bad`, else a readable, unique stand-in."""
    if re.search(f"[{bad}]", cp_id) is None:
        return cp_id
    digest = hashlib.sha1(cp_id.encode()).hexdigest()[:6]
    return re.sub(f"[{bad}]", "_", cp_id) + "_" + digest


def topic_level(cp_id: str) -> str:
    """The charge point's level in topics: its id, unless it holds an MQTT wildcard (+ or #)."""
    return _slug(cp_id, "+#")


def object_id(cp_id: str) -> str:
    """The charge point's part of unique ids and discovery topics (Home Assistant allows [a-zA-Z0-9_-])."""
    return _slug(cp_id, "^a-zA-Z0-9_-")


def availability_topic(config: MqttStateConfig) -> str:
    return f"{config.topic_prefix}/bridge/availability"


# -- discovery ---------------------------------------------------------------------------------


# (key, component, name, fields) per connector; the name is prefixed with "Connector <n> ".
_CONNECTOR_ENTITIES: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    ("status", "sensor", "status", {"device_class": "enum", "options": [str(s) for s in Status]}),
    ("power_w", "sensor", "power", {
        "device_class": "power", "state_class": "measurement", "unit_of_measurement": "W",
        "value_template": UNKNOWN_AS_NONE,
    }),
    ("energy_wh", "sensor", "energy", {
        "device_class": "energy", "state_class": "total_increasing", "unit_of_measurement": "Wh",
        "value_template": UNKNOWN_AS_NONE,
    }),
    ("current_limit_a", "sensor", "current limit", {
        "device_class": "current", "state_class": "measurement", "unit_of_measurement": "A",
        "value_template": UNKNOWN_AS_NONE,
    }),
    ("transaction", "sensor", "transaction", {"icon": "mdi:identifier", "value_template": UNKNOWN_AS_NONE}),
)  # fmt: skip
_CHARGE_POINT_ENTITIES: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    ("connected", "binary_sensor", "Connected to the central system", {"device_class": "connectivity"}),
    ("accepted", "binary_sensor", "Accepted by the central system", {"device_class": "connectivity"}),
)
_BINARY = {"payload_on": "true", "payload_off": "false", "entity_category": "diagnostic"}
# A state sensor each, with the status API's object (or list) as its attributes: the transfer jobs,
_ATTRIBUTED_ENTITIES: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    ("firmware", "sensor", "Firmware update", {
        "device_class": "enum", "options": [str(s) for s in FirmwareState], "icon": "mdi:update",
        "entity_category": "diagnostic",
    }),
    ("diagnostics", "sensor", "Diagnostics upload", {
        "device_class": "enum", "options": [str(DiagnosticsStatus.IDLE), str(DiagnosticsStatus.UPLOADING)],
        "icon": "mdi:file-upload", "entity_category": "diagnostic",
    }),
    # The local authorization list: its size (its version among the attributes); the reservations held:
    # how many (each one, with its connector, tag and expiry, among the attributes).
    ("local_list", "sensor", "Local authorization list", {
        "state_class": "measurement", "unit_of_measurement": "entries", "icon": "mdi:card-account-details",
        "entity_category": "diagnostic",
    }),
    ("reservations", "sensor", "Reservations", {"state_class": "measurement", "icon": "mdi:calendar-clock"}),
)  # fmt: skip


def discovery_payloads(config: MqttStateConfig, cp: Observed) -> dict[str, dict[str, Any]]:
    """Discovery topic → config for every entity of one charge point (Home Assistant MQTT discovery)."""
    cfg = cp.snapshot()
    # The bridge's topic prefix is part of every id: two bridges (different prefixes) with the same
    # charge point id stay two devices. The default prefix gives ocpp-bridge_<cp>_... as before.
    root = f"{object_id(config.topic_prefix)}_{object_id(cfg.id)}"
    base = f"{config.topic_prefix}/{topic_level(cfg.id)}"
    device = {
        "identifiers": [root],
        "name": cfg.id,
        "manufacturer": MANUFACTURER,
        "model": cfg.model,
        "sw_version": __version__,
    }
    common = {
        "availability_topic": availability_topic(config),
        "payload_available": ONLINE,
        "payload_not_available": OFFLINE,
        "device": device,
        "origin": {"name": "ocpp-bridge", "sw_version": __version__},
    }
    # (component, unique id, name, state topic, fields)
    entities: list[tuple[str, str, str, str, dict[str, Any]]] = []
    for key, component, name, fields in _CHARGE_POINT_ENTITIES:
        entities.append((component, f"{root}_{key}", name, f"{base}/{key}", {**_BINARY, **fields}))
    for key, component, name, fields in _ATTRIBUTED_ENTITIES:
        extra = {"json_attributes_topic": f"{base}/{key}/attributes", "value_template": UNKNOWN_AS_NONE}
        entities.append((component, f"{root}_{key}", name, f"{base}/{key}", {**fields, **extra}))
    for n in sorted(c.id for c in cfg.connectors):
        for key, component, name, fields in _CONNECTOR_ENTITIES:
            unique = f"{root}_{n}_{key}"
            entities.append((component, unique, f"Connector {n} {name}", f"{base}/{n}/{key}", fields))
    return {
        f"{config.discovery_prefix}/{component}/{unique}/config": {
            "unique_id": unique, "name": name, "state_topic": topic, **fields, **common,
        }
        for component, unique, name, topic, fields in entities
    }  # fmt: skip
