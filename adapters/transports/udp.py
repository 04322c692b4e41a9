"""One UDP socket for many devices: bound once to a local port, datagrams handed to whoever subscribed
to their sender.

Why one socket: a KEBA box answers (and sends its own reports) to port 7090 of the sender's IP,
whatever port the command came from, so every box of a bridge talks to the same local port, and only
one socket can hold it. The socket is opened on first use and shared through
`Transports.udp(local_port)`; each driver subscribes to its device's address. Datagrams are told
apart by the sender's (IP, port): on real hardware every box sends from port 7090 of its own IP; in
the tests several emulated boxes on 127.0.0.1 differ by their ports. A datagram from an address
nobody subscribed to is dropped (logged at debug).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

log = logging.getLogger("adapters.udp")

Peer = tuple[str, int]  # (IP, port)
OnDatagram = Callable[[bytes], None]


class UdpSocket:
    """The bridge's socket on `local_port` (all interfaces), shared by the drivers that use it."""

    def __init__(self, local_port: int, local_host: str = "0.0.0.0") -> None:
        self.local_port = local_port
        self.local_host = local_host
        self._transport: asyncio.DatagramTransport | None = None
        self._opening: asyncio.Lock | None = None
        self._subscribers: dict[Peer, OnDatagram] = {}

    def subscribe(self, peer: Peer, on_datagram: OnDatagram) -> None:
        """Datagrams from `peer` go to `on_datagram` (one subscriber per peer: the latest)."""
        self._subscribers[peer] = on_datagram

    def unsubscribe(self, peer: Peer, on_datagram: OnDatagram) -> None:
        if self._subscribers.get(peer) == on_datagram:
            del self._subscribers[peer]

    async def open(self) -> None:
        """Binds the socket once; OSError (the port is taken, no permission) to the caller."""
        if self._transport is not None:
            return
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._transport is not None:
                return
            loop = asyncio.get_running_loop()
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Protocol(self._deliver), local_addr=(self.local_host, self.local_port)
            )
            self._transport = transport
            log.info("UDP socket bound to %s:%d", self.local_host, self.local_port)

    async def send(self, peer: Peer, data: bytes) -> None:
        await self.open()
        assert self._transport is not None
        self._transport.sendto(data, peer)

    def _deliver(self, data: bytes, sender: Peer) -> None:
        receiver = self._subscribers.get((sender[0], sender[1]))
        if receiver is None:
            log.debug("UDP datagram from %s:%d, which no device is configured at: dropped", *sender[:2])
            return
        try:
            receiver(data)
        except Exception:  # one device's bad datagram must not end the socket
            log.exception("UDP datagram from %s:%d could not be handled", *sender[:2])

    async def close(self) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()
        self._subscribers.clear()


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, deliver: Callable[[bytes, Peer], None]) -> None:
        self._deliver = deliver

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self._deliver(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a box that is off: the read's timeout reports it.
        log.debug("UDP socket: %s", exc)
