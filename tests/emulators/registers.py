"""Modbus devices that are plain tables of registers, on a real pymodbus server: the peer of the bus
client's own tests (tests/test_modbus_transport.py), which care about requests, not about any meter.

Each device has 100 holding registers (function codes 03 read, 06 and 16 write) and 100 input
registers (04), at addresses 0..99; an address beyond is answered with exception 2 by pymodbus. The
test sets and reads the tables directly (`holding`, `inputs`), and can make a device:
- `silent`: it hears requests and answers none (a broken wire, a wrong baud rate); a device id that
  nobody has is silent too;
- `refuse_with` an exception code: every request is answered with that exception.
On the whole bus, `latency_s` is how long every device takes to answer, and `garble_next` cuts the
next read reply short by one register (its byte count and frame length made to match, so that it
parses: line noise that passed the CRC, or the answer to some earlier request). In `gateway` mode
(TCP only), a silent device is answered with exception 11, as Modbus TCP gateways do.

The server records each request it handles (`requests`), the most it ever had in hand at once
(`max_in_flight`) and how many connections were opened to it (`connections`). Over TCP, with RTU
framing over TCP (a serial server in transparent mode), or over RTU on one end of a socat
pseudo-terminal pair (tests/emulators/modbus_serving.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from pymodbus.constants import ExcCodes
from pymodbus.simulator import DataType, SimData, SimDevice

from tests.emulators.modbus_serving import serving_rtu, serving_tcp

SIZE = 100  # registers in each table


@dataclass(frozen=True)
class Request:
    device_id: int
    function_code: int
    address: int
    count: int
    values: tuple[int, ...] | None  # what a write asked for
    started: float  # time.monotonic()
    finished: float


@dataclass
class Device:
    device_id: int
    holding: list[int] = field(default_factory=lambda: [0] * SIZE)
    inputs: list[int] = field(default_factory=lambda: [0] * SIZE)
    silent: bool = False
    refuse_with: int | None = None  # an exception code every request is answered with


@dataclass
class RegisterBus:
    """Devices on one bus; `url` is what ModbusBus is given."""

    devices: dict[int, Device]
    gateway: bool = False
    latency_s: float = 0.0
    garble_next: bool = False
    url: str = ""
    port: int = 0
    requests: list[Request] = field(default_factory=list)
    connections: int = 0
    max_in_flight: int = 0
    _in_flight: int = 0
    unit_id_offset: int = 6  # where the device id sits in a frame: 6 (after the MBAP header) or 0 (RTU)
    mbap: bool = True  # frames carry the MBAP header (TCP framing) rather than a CRC (RTU)

    def device(self, device_id: int = 1) -> Device:
        return self.devices[device_id]

    def _sim_devices(self) -> list[SimDevice]:
        def tables() -> tuple[list[SimData], list[SimData], list[SimData], list[SimData]]:
            registers = [SimData(0, count=SIZE, values=0, datatype=DataType.REGISTERS)]
            bits = [SimData(0, values=False, datatype=DataType.BITS)]
            return (bits, list(bits), registers, list(registers))

        sims = [SimDevice(d, tables(), action=partial(self._action, d)) for d in self.devices]
        # Device id 0 stands for every id nobody has: its replies never leave (see _on_packet).
        return [*sims, SimDevice(0, tables(), action=partial(self._action, 0))]

    async def _action(
        self,
        device_id: int,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """Called by pymodbus for every request that got past its address check, before it answers."""
        if function_code in (6, 16) and set_values is None:
            return None  # pymodbus reading back what a write just set, for its answer: no request
        started = time.monotonic()
        self._in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self._in_flight)
        written = tuple(int(v) for v in set_values) if set_values is not None else None
        try:
            if self.latency_s:
                await asyncio.sleep(self.latency_s)
            device = self.devices.get(device_id)
            if device is None:
                return None  # answered by nobody (its reply is dropped)
            if device.refuse_with is not None:
                return ExcCodes(device.refuse_with)
            table = device.inputs if function_code == 4 else device.holding
            if written is not None:
                table[address : address + len(written)] = written
            offset = address - start_address
            registers[offset : offset + count] = table[address : address + count]
            return None
        finally:
            self._in_flight -= 1
            self.requests.append(
                Request(device_id, function_code, address, count, written, started, time.monotonic())
            )

    def _on_packet(self, sending: bool, packet: bytes) -> bytes:
        """pymodbus's hook on every packet: replies of silent or absent devices never leave (from a
        gateway they become exception 11), and a read reply is cut short when asked."""
        unit_at = self.unit_id_offset
        if not sending or len(packet) <= unit_at + 1:
            return packet
        unit, function_code = packet[unit_at], packet[unit_at + 1]
        device = self.devices.get(unit)
        if device is None or device.silent:
            if not self.gateway:
                return b""
            # MBAP header: transaction id, protocol id, length of what follows (unit, function, code).
            return packet[:4] + (3).to_bytes(2, "big") + bytes([unit, (function_code & 0x7F) | 0x80, 11])
        if self.garble_next and function_code in (3, 4):
            self.garble_next = False
            return self._one_register_short(packet)
        return packet

    def _one_register_short(self, packet: bytes) -> bytes:
        at = self.unit_id_offset
        byte_count = packet[at + 2]
        data = packet[at + 3 : at + 3 + byte_count - 2]
        pdu = bytes([packet[at], packet[at + 1], byte_count - 2]) + data
        if self.mbap:
            return packet[:4] + len(pdu).to_bytes(2, "big") + pdu
        return pdu + _crc16(pdu)

    def _on_connect(self, connected: bool) -> None:
        if connected:
            self.connections += 1


def _crc16(frame: bytes) -> bytes:
    """Modbus RTU's CRC (polynomial 0xA001, low byte first)."""
    crc = 0xFFFF
    for byte in frame:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc.to_bytes(2, "little")


@contextlib.asynccontextmanager
async def registers_tcp(
    *devices: Device, gateway: bool = False, rtu_framing: bool = False, port: int = 0
) -> AsyncIterator[RegisterBus]:
    """Devices behind a Modbus TCP server on loopback, on a free port unless `port` is given (a
    restart where the client looks for it); rtu_framing: a transparent serial server."""
    if gateway and rtu_framing:
        raise ValueError("a transparent serial server forwards frames; it does not answer for devices")
    bus = RegisterBus(
        {d.device_id: d for d in devices}, gateway=gateway,
        unit_id_offset=0 if rtu_framing else 6, mbap=not rtu_framing,
    )  # fmt: skip
    serving = serving_tcp(
        bus._sim_devices(), rtu_framing=rtu_framing, port=port, trace_packet=bus._on_packet,
        trace_connect=bus._on_connect,
    )  # fmt: skip
    async with serving as (bus.url, bus.port):
        yield bus


@contextlib.asynccontextmanager
async def registers_rtu(tmp_path: Path, *devices: Device, baudrate: int = 9600) -> AsyncIterator[RegisterBus]:
    """Devices on one end of a socat pseudo-terminal pair; `url` names the other end."""
    bus = RegisterBus({d.device_id: d for d in devices}, unit_id_offset=0, mbap=False)
    serving = serving_rtu(
        tmp_path, bus._sim_devices(), baudrate=baudrate, trace_packet=bus._on_packet,
        trace_connect=bus._on_connect,
    )  # fmt: skip
    async with serving as bus.url:
        yield bus
