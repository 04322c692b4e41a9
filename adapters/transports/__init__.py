"""Connections to devices, shared by every driver that reaches a device the same way.

`pool.Transports` hands out one HTTP client session (aiohttp) for every HTTP device, one
`mqtt.MqttBroker` per broker and one `modbus.ModbusBus` per bus (RS485 is half-duplex: one request
at a time on a bus, many devices on it); `urls` checks the device addresses a configuration gives.
A transport knows no device: it moves bytes and raises the typed errors of `adapters.base`. Each
module is imported only when a driver asks for it, so a simulated-only setup loads neither aiohttp's
client, aiomqtt nor pymodbus; this package imports nothing by itself.
"""
