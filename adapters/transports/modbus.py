"""One Modbus client per bus, shared by every driver that talks to a device on it.

A bus is named by a URL:

    tcp://HOST[:PORT]            Modbus TCP (a meter with Ethernet, or a Modbus TCP gateway); port 502
    rtu+tcp://HOST:PORT          RTU frames tunnelled over TCP (a serial server in "transparent" mode)
    rtu:///dev/ttyUSB0?baudrate=9600&parity=N&stopbits=1&bytesize=8
                                 Modbus RTU on a serial port (RS485 adapter); those are the defaults

RS485 is half-duplex and master-driven: one request at a time on the whole
bus, whatever the device it is for. So every request takes the bus's lock,
and the lock is held until the answer is in or the deadline has passed.
Modbus TCP gateways put their TCP clients onto one RS485 line the same way,
so the rule holds for TCP buses too.

The pymodbus client is created on the first request, connected on demand,
and dropped after any failure that leaves the line in an unknown state (no
answer, a broken connection, a garbled reply, a cancelled request): a late
reply to the old request must not be taken for the answer to the next one.
Reopening a serial port empties its input buffer; a new TCP connection
starts clean.

Timeouts are ours, not pymodbus's: every call has one deadline covering the
connect and the request. pymodbus gets `retries=0` and a longer timeout of
its own, so a silent device costs exactly one deadline (pymodbus's retries
would multiply it) and pymodbus neither retries nor logs in our place.

Errors leave as the driver contract's types: no answer, no connection or a
gateway that reports a silent device → DeviceUnreachable; an exception reply
(illegal address, ...) → DeviceRefused with the code explained. pymodbus is
imported only here.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerType

from adapters.base import DeviceError, DeviceRefused, DeviceUnreachable

# The bus's address, re-exported: drivers and the configuration name it from here.
from adapters.transports.modbus_address import BAUDRATES as BAUDRATES
from adapters.transports.modbus_address import PARITIES as PARITIES
from adapters.transports.modbus_address import STOPBITS as STOPBITS
from adapters.transports.modbus_address import URL_FORMS as URL_FORMS
from adapters.transports.modbus_address import BusAddress as BusAddress
from adapters.transports.modbus_address import SerialAddress as SerialAddress
from adapters.transports.modbus_address import TcpAddress as TcpAddress
from adapters.transports.modbus_address import parse_bus_url as parse_bus_url

log = logging.getLogger("adapters.modbus")  # the name log lines have always shown

# Every failure reaches the bridge as a DeviceError, which it reports once per change of state;
# pymodbus would add a line of its own at every poll (e.g. "Failed to connect" each second while a
# gateway is down). An explicitly configured level is left alone.
if logging.getLogger("pymodbus").level == logging.NOTSET:
    logging.getLogger("pymodbus").setLevel(logging.ERROR)

DEFAULT_TIMEOUT_S = 1.0
# pymodbus's own timeout only backs ours up: ours always expires first (see the module docstring).
_PYMODBUS_TIMEOUT_S = 60.0

# -- decoding (pure) -------------------------------------------------------------------------------


def decode_float32(registers: Sequence[int], *, word_order: Literal["big", "little"] = "big") -> list[float]:
    """IEEE-754 float32 values from register pairs; "big" = high word first (ABCD), "little" = CDAB."""
    if len(registers) % 2:
        raise ValueError(f"float32 values take two registers each; got {len(registers)} registers")
    values = []
    for i in range(0, len(registers), 2):
        high, low = registers[i], registers[i + 1]
        if word_order == "little":
            high, low = low, high
        values.append(struct.unpack(">f", struct.pack(">HH", high, low))[0])
    return values


# -- errors (pure) ---------------------------------------------------------------------------------

# Modbus exception codes (Modbus Application Protocol V1.1b3, section 7), said for a user.
EXCEPTION_MEANINGS = {
    1: "illegal function: the device does not support this kind of request",
    2: "illegal data address: the device has no such register (another model, or another register map?)",
    3: "illegal data value: the device rejected the value or the number of registers",
    4: "device failure: the device could not carry out the request",
    5: "acknowledge: the device is busy with a long operation",
    6: "device busy: try again later",
    8: "memory parity error in the device",
    10: "gateway path unavailable: the gateway has no route to that device id",
    11: "the gateway got no answer from the device (device id, wiring or serial settings?)",
}
# A gateway answering for a device that stayed silent: the device is unreachable, not refusing.
_UNREACHABLE_CODES = frozenset({10, 11})


def exception_error(code: int, context: str) -> DeviceError:
    """The driver-contract error for a Modbus exception reply with `code`."""
    meaning = EXCEPTION_MEANINGS.get(code, "an exception code the Modbus standard does not define")
    text = f"{context}: exception {code}, {meaning}"
    return DeviceUnreachable(text) if code in _UNREACHABLE_CODES else DeviceRefused(text)


@dataclass(frozen=True)
class _Request:
    function: str  # for messages: "read input registers"
    address: int
    count: int

    def __str__(self) -> str:
        last = self.address + self.count - 1
        span = f"0x{self.address:04X}" if self.count == 1 else f"0x{self.address:04X}..0x{last:04X}"
        return f"{self.function} {span}"


# -- the bus ---------------------------------------------------------------------------------------


class ModbusBus:
    """The client of one bus; methods take the device id and return plain values or raise DeviceError."""

    @staticmethod
    def parse(url: str) -> BusAddress:
        return parse_bus_url(url)

    @staticmethod
    def key_of(url: str) -> str:
        """Equal for URLs naming the same bus with the same settings, in whatever order or spelling."""
        return str(parse_bus_url(url))

    def __init__(
        self,
        url: str,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        *,
        make_client: Callable[[BusAddress], Any] | None = None,
    ) -> None:
        """`make_client`: makes the (unconnected) pymodbus client of a bus; a test may give a stand-in."""
        self.address = parse_bus_url(url)
        self.url = str(self.address)
        # A unit id is one byte: Modbus TCP devices answer on any (KEBA's guides fix theirs at 255);
        # on a serial bus, and on one reached through a serial server, 248..255 are reserved.
        tcp = isinstance(self.address, TcpAddress) and not self.address.rtu_framing
        self._highest_id = 255 if tcp else 247
        self.timeout_s = timeout_s
        self._make_client = make_client or library_client
        self._lock = asyncio.Lock()
        self._client: Any = None  # a pymodbus async client while there is a connection worth keeping
        self._gap_s = 0.0  # the least quiet time between two requests (`keep_gap`)
        self._ended_at = -1e9  # loop time the last request ended

    # -- requests --

    async def read_input_registers(
        self, device_id: int, address: int, count: int, *, timeout_s: float | None = None
    ) -> list[int]:
        """Function code 04."""
        return await self._read(
            "read input registers", "read_input_registers", device_id, address, count, timeout_s
        )

    async def read_holding_registers(
        self, device_id: int, address: int, count: int, *, timeout_s: float | None = None
    ) -> list[int]:
        """Function code 03."""
        return await self._read(
            "read holding registers", "read_holding_registers", device_id, address, count, timeout_s
        )

    async def _read(
        self, what: str, method: str, device_id: int, address: int, count: int, timeout_s: float | None
    ) -> list[int]:
        request, response = await self._ask(what, method, device_id, address, count, timeout_s)
        return self._registers(response, device_id, request)

    async def _ask(
        self, what: str, method: str, device_id: int, address: int, count: int, timeout_s: float | None
    ) -> tuple[_Request, Any]:
        """A read of `count` registers or bits with the client's `method`: the request and its answer."""
        _check_read(device_id, address, count, self._highest_id)
        request = _Request(what, address, count)
        response = await self._execute(
            device_id,
            request,
            lambda c: getattr(c, method)(address, count=count, device_id=device_id),
            timeout_s,
        )
        return request, response

    async def read_coils(
        self, device_id: int, address: int, count: int, *, timeout_s: float | None = None
    ) -> list[bool]:
        """Function code 01."""
        return await self._read_bits("read coils", "read_coils", device_id, address, count, timeout_s)

    async def read_discrete_inputs(
        self, device_id: int, address: int, count: int, *, timeout_s: float | None = None
    ) -> list[bool]:
        """Function code 02."""
        return await self._read_bits(
            "read discrete inputs", "read_discrete_inputs", device_id, address, count, timeout_s
        )

    async def _read_bits(
        self, what: str, method: str, device_id: int, address: int, count: int, timeout_s: float | None
    ) -> list[bool]:
        request, response = await self._ask(what, method, device_id, address, count, timeout_s)
        bits = list(getattr(response, "bits", None) or [])
        if len(bits) < count:  # the library pads to whole bytes: fewer than asked is a garbled reply
            raise DeviceUnreachable(f"{self._where(device_id)}: garbled reply to {request}")
        return [bool(bit) for bit in bits[:count]]

    async def write_coil(
        self, device_id: int, address: int, value: bool, *, timeout_s: float | None = None
    ) -> None:
        """Function code 05 (0xFF00 on, 0x0000 off)."""
        _check_device_address(device_id, address, self._highest_id)
        request = _Request("write coil", address, 1)
        await self._execute(
            device_id, request, lambda c: c.write_coil(address, value, device_id=device_id), timeout_s
        )

    async def write_registers(
        self, device_id: int, address: int, values: Sequence[int], *, timeout_s: float | None = None
    ) -> None:
        """Function code 16 (write multiple registers)."""
        _check_write(device_id, address, values, 123, self._highest_id)
        request = _Request("write registers", address, len(values))
        await self._execute(
            device_id,
            request,
            lambda c: c.write_registers(address, list(values), device_id=device_id),
            timeout_s,
        )

    async def write_register(
        self, device_id: int, address: int, value: int, *, timeout_s: float | None = None
    ) -> None:
        """Function code 06 (write single register)."""
        _check_write(device_id, address, [value], 1, self._highest_id)
        request = _Request("write register", address, 1)
        await self._execute(
            device_id,
            request,
            lambda c: c.write_register(address, value, device_id=device_id),
            timeout_s,
        )

    def keep_gap(self, gap_s: float) -> None:
        """Leave at least `gap_s` between the end of one request and the next on this bus, for every
        device on it: some RS485 devices (Heidelberg's) miss a frame that follows another too closely.
        The largest gap any driver asks for holds."""
        self._gap_s = max(self._gap_s, gap_s)

    async def close(self) -> None:
        self._drop()

    # -- the machinery --

    def _where(self, device_id: int) -> str:
        return f"device {device_id} on {self.url}"

    async def _execute(
        self,
        device_id: int,
        request: _Request,
        call: Callable[[Any], Awaitable[Any]],
        timeout_s: float | None,
    ) -> Any:
        """One request under the bus lock with one deadline; the pymodbus response if it is not an error."""
        deadline_s = self.timeout_s if timeout_s is None else timeout_s
        context = f"{self._where(device_id)}, {request}"
        task = asyncio.current_task()
        cancels_before = task.cancelling() if task is not None else 0
        async with self._lock:
            loop = asyncio.get_running_loop()
            if (wait := self._ended_at + self._gap_s - loop.time()) > 0:
                await asyncio.sleep(wait)  # before the deadline starts: the quiet time is the bus's
            stage = "no connection"
            try:
                async with asyncio.timeout(deadline_s):
                    client = await self._connected_client()
                    stage = "no answer"
                    response = await call(client)
                if task is not None and task.cancelling() > cancels_before:
                    # pymodbus waits for its answer (and its connection) with asyncio.wait_for, which
                    # on Python 3.11 hands back an answer that arrives together with a cancellation and
                    # drops the cancellation: the caller was cancelled and must not go on as if not
                    # (a poll loop that is never cancelled again would keep a stopping daemon alive).
                    raise asyncio.CancelledError
            except TimeoutError:
                self._drop()
                raise DeviceUnreachable(f"{context}: {stage} within {deadline_s:g} s") from None
            except _NoConnection as exc:
                raise DeviceUnreachable(f"{context}: {exc}") from None
            except (ModbusException, OSError) as exc:
                self._drop()
                raise DeviceUnreachable(f"{context}: {exc}") from exc
            except asyncio.CancelledError:
                self._drop()  # the answer may still come, and must not be read as the next one's
                raise
            finally:
                self._ended_at = loop.time()
        if response.isError():
            code = getattr(response, "exception_code", None)
            if not isinstance(code, int):
                raise DeviceUnreachable(f"{context}: unexpected reply {response}")
            raise exception_error(code, context)
        return response

    def _registers(self, response: Any, device_id: int, request: _Request) -> list[int]:
        registers = list(response.registers)
        if len(registers) != request.count:
            # A reply to some earlier request, or line noise that passed the CRC: start afresh.
            self._drop()
            raise DeviceUnreachable(
                f"{self._where(device_id)}, {request}: garbled reply "
                f"({len(registers)} registers instead of {request.count})"
            )
        return registers

    async def _connected_client(self) -> Any:
        if self._client is not None and self._client.connected:
            return self._client
        self._drop()
        if isinstance(self.address, SerialAddress):
            _check_serial_device(self.address.device)
        self._client = self._make_client(self.address)
        if not await self._client.connect():
            self._drop()
            raise _NoConnection(f"cannot connect{_connect_hint(self.address)}")
        log.debug("connected to %s", self.url)
        return self._client

    def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()


def library_client(address: BusAddress) -> Any:
    """The pymodbus client of the bus at `address`, not yet connected."""
    # reconnect_delay=0: no reconnecting behind our back; the next request reconnects.
    common: dict[str, Any] = {"timeout": _PYMODBUS_TIMEOUT_S, "retries": 0, "reconnect_delay": 0}
    if isinstance(address, TcpAddress):
        framer = FramerType.RTU if address.rtu_framing else FramerType.SOCKET
        return AsyncModbusTcpClient(address.host, port=address.port, framer=framer, **common)
    return AsyncModbusSerialClient(
        address.device,
        framer=FramerType.RTU,
        baudrate=address.baudrate,
        parity=address.parity,
        stopbits=address.stopbits,
        bytesize=address.bytesize,
        **common,
    )


# A request beyond the protocol's bounds never reaches the bus: the device would refuse it (and a serial
# line's framing could not even carry some), so it is a DeviceRefused the drivers need not map.
def _check_read(device_id: int, address: int, count: int, highest_id: int = 247) -> None:
    _check_device_address(device_id, address, highest_id)
    if not 1 <= count <= 125:  # the Modbus limit for function codes 03 and 04
        raise DeviceRefused(f"a read covers 1 to 125 registers, not {count}")


def _check_write(
    device_id: int, address: int, values: Sequence[int], limit: int, highest_id: int = 247
) -> None:
    _check_device_address(device_id, address, highest_id)
    if not 1 <= len(values) <= limit or not all(0 <= v <= 0xFFFF for v in values):
        raise DeviceRefused(f"a write takes 1 to {limit} register values of 0..65535, not {list(values)}")


def _check_device_address(device_id: int, address: int, highest_id: int = 247) -> None:
    if not 1 <= device_id <= highest_id:
        raise DeviceRefused(f"a Modbus device id is 1..{highest_id}, not {device_id}")
    if not 0 <= address <= 0xFFFF:
        raise DeviceRefused(f"a register address is 0..65535, not {address}")


class _NoConnection(Exception):
    """The bus could not be opened; the text says why, the caller adds which request it was for."""


def _check_serial_device(device: str) -> None:
    """Says why a serial port cannot be opened (pymodbus only reports that it failed)."""
    if not os.path.exists(device):
        raise _NoConnection(
            f"no serial device {device} (is the USB adapter plugged in? ls /dev/serial/by-id)"
        )
    if not os.access(device, os.R_OK | os.W_OK):
        raise _NoConnection(f"no permission to use {device} (add the service user to the dialout group)")


def _connect_hint(address: BusAddress) -> str:
    if isinstance(address, TcpAddress):
        return " (connection refused or no route: host, port, is the gateway on?)"
    return " (the port is in use: by another program, or by a bus in this configuration with other settings)"
