"""Meter drivers: a `Meter` (adapters/base.py) is a meter of record, composed with any charger
(adapters/chargers/composed.py) so that a session's energy is billed on it.

`eastron` reads the Eastron SDM630, SDM120 and SDM72 over Modbus (RTU, or TCP through a gateway).
`METER_TYPES` below registers every type name a configuration may give under `meter: {type: ...}`:
the registry (adapters/registry.py) imports a driver's module only when a configuration names its
type, so this package imports no driver itself.
"""

from __future__ import annotations

# type name in `meter: {type: ...}` -> "module:Class"
METER_TYPES: dict[str, str] = {
    "sdm630": "adapters.meters.eastron:Sdm630",
    "sdm120": "adapters.meters.eastron:Sdm120",
    "sdm72": "adapters.meters.eastron:Sdm72",
    "generic": "adapters.generic.device:GenericMeter",  # described in configuration
}
