"""Charger drivers: one module per device family, each a `Charger` (adapters/base.py) that knows its
device's API and nothing of OCPP.

`simulated` is a box in the bridge's own process; `goe` drives a go-e Charger over HTTP or MQTT (its
keys and pure mapping in `goe_api`, its transports in `goe_links`); `shelly` (HTTP) and `tasmota` (MQTT)
drive a plain wallbox through a metering relay, on what `relay` holds for both; `composed` puts a
separate meter of record beside any charger, `with_reader` a card reader; `openevse` drives an
OpenEVSE WiFi gateway over HTTP by claims, `openevse_mqtt` the same over MQTT (their claim rules in
`openevse_claims`, their one pure mapping in `openevse_api`); `keba_modbus` a KEBA P30 x-/c-series or
P40 over Modbus TCP (its register map in `keba_modbus_api`), `keba_udp` the same boxes over UDP on one
shared socket (its pure mapping in `keba_udp_api`); `phoenix` a Phoenix Contact EV-CC or EM-CP-PP over
Modbus TCP, `heidelberg` a Heidelberg Energy Control over Modbus RTU (register maps in `phoenix_api`,
`heidelberg_api`). A charger described in the configuration (`generic`) lives in adapters/generic/.
`CHARGER_TYPES` below registers every type name a configuration may give under `charger: {type: ...}`:
the registry (adapters/registry.py) imports a driver's module only when a configuration names its
type, so this package imports no driver itself.
"""

from __future__ import annotations

# type name in `charger: {type: ...}` -> "module:Class"
CHARGER_TYPES: dict[str, str] = {
    "simulated": "adapters.chargers.simulated:SimulatedCharger",
    "generic": "adapters.generic.device:GenericCharger",  # described in configuration
    "goe": "adapters.chargers.goe:GoeCharger",
    "shelly": "adapters.chargers.shelly:ShellyCharger",
    "tasmota": "adapters.chargers.tasmota:TasmotaCharger",
    "keba-modbus": "adapters.chargers.keba_modbus:KebaModbusCharger",
    "openevse": "adapters.chargers.openevse:OpenEvseCharger",
    "openevse-mqtt": "adapters.chargers.openevse_mqtt:OpenEvseMqttCharger",
    "keba-udp": "adapters.chargers.keba_udp:KebaUdpCharger",
    "heidelberg": "adapters.chargers.heidelberg:HeidelbergCharger",
    "phoenix": "adapters.chargers.phoenix:PhoenixCharger",
    "ocpp": "adapters.chargers.ocpp_device:OcppDeviceCharger",  # speaks OCPP 1.6J to the bridge
}
