"""Connections shared between drivers: one HTTP client session, one MQTT connection
per broker, one Modbus client per bus (RS485 is half-duplex: one request at a time,
many devices on one bus), one UDP socket per local port (KEBA answers to port 7090,
whatever port asked: every box shares it).

Drivers get the pool in their constructor and ask it for what they need; the
daemon closes it at the end. Each transport module is imported only when a
driver asks for it, so a simulated-only setup loads neither aiohttp's client,
aiomqtt nor pymodbus.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import aiohttp

    from adapters.transports.modbus import ModbusBus
    from adapters.transports.mqtt import MqttBroker
    from adapters.transports.ocpp_server import OcppServer
    from adapters.transports.tls_server import ServerTls
    from adapters.transports.udp import UdpSocket


class Transports:
    def __init__(self) -> None:
        self._http: aiohttp.ClientSession | None = None
        self._mqtt: dict[str, MqttBroker] = {}
        self._modbus: dict[str, ModbusBus] = {}
        self._udp: dict[int, UdpSocket] = {}
        self._ocpp: dict[str, OcppServer] = {}

    def http(self) -> aiohttp.ClientSession:
        """The shared HTTP client session (call from the running event loop)."""
        if self._http is None or self._http.closed:
            import aiohttp

            # Timeouts are per request (drivers pass their own); no cookie jar: devices need none.
            self._http = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        return self._http

    def mqtt(self, url: str) -> MqttBroker:
        """The connection to the broker at `url`, shared by every driver naming the same broker."""
        from adapters.transports.mqtt import BrokerAddress, MqttBroker

        key = str(BrokerAddress.parse(url)) + f"#{BrokerAddress.parse(url).username or ''}"
        if key not in self._mqtt:
            self._mqtt[key] = MqttBroker(url)
        return self._mqtt[key]

    def modbus(self, url: str) -> ModbusBus:
        """The client of the bus at `url` (tcp://host:port or rtu:///dev/tty...?baudrate=...)."""
        from adapters.transports.modbus import ModbusBus

        key = ModbusBus.key_of(url)
        if key not in self._modbus:
            self._modbus[key] = ModbusBus(url)
        return self._modbus[key]

    def udp(self, local_port: int) -> UdpSocket:
        """The one UDP socket on `local_port`, shared by every driver naming it (bound on first use)."""
        from adapters.transports.udp import UdpSocket

        if local_port not in self._udp:
            self._udp[local_port] = UdpSocket(local_port)
        return self._udp[local_port]

    def ocpp_server(self, listen: str, path: str = "ocpp", tls: ServerTls | None = None) -> OcppServer:
        """The local OCPP endpoint on `listen` (host:port), shared by every OCPP charger naming it; a
        charger whose `path` or `tls` (None: plain ws://) is not the endpoint's gets one that refuses it."""
        from adapters.transports.ocpp_server import OcppServer

        if listen not in self._ocpp:
            self._ocpp[listen] = OcppServer(listen, path, tls)
        shared = self._ocpp[listen]
        if shared.path != path.strip("/"):
            why = (
                f"the OCPP endpoint {listen} serves path {shared.path!r}; this charger asks for "
                f"{path.strip('/')!r}: give every charger on it the same path"
            )
            return OcppServer(listen, path, tls, refusal=why)
        if shared.tls != tls:
            why = (
                f"the OCPP endpoint {listen} is {_tls_words(shared.tls)}; this charger asks for "
                f"{_tls_words(tls)}: give every charger on it the same tls block"
            )
            return OcppServer(listen, path, tls, refusal=why)
        return shared

    async def close(self) -> None:
        for server in self._ocpp.values():
            await server.close()
        self._ocpp.clear()
        for broker in self._mqtt.values():
            await broker.close()
        for bus in self._modbus.values():
            await bus.close()
        for sock in self._udp.values():
            await sock.close()
        if self._http is not None:
            await self._http.close()
        self._mqtt.clear()
        self._modbus.clear()
        self._udp.clear()
        self._http = None


def _tls_words(tls: ServerTls | None) -> str:
    return "plain ws://" if tls is None else f"wss:// with {tls.describe()}"
