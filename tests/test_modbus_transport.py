"""The Modbus bus client (adapters/transports/modbus.py) against a real pymodbus server: over TCP, over
TCP with RTU framing, and over RTU on a socat pseudo-terminal pair.

Its promises, one test or more each: the four function codes carry registers both ways; one request
at a time on a bus, whatever the device, and a request holds the bus until its answer or its
deadline; one deadline per request (the bus's, or the request's own), covering the connect too, and
no retries stacked on it; a failure that leaves the line in doubt (no answer, a garbled reply, a
cancelled request, a connection gone) drops the connection, the next request opens a new one, and a
late answer is never taken for the next request's; exception replies and every failure leave as the
driver contract's typed errors, explained; requests beyond the protocol's bounds never reach the bus.

The server is tests/emulators/registers.py (plain register tables, no meter's logic). The Eastron
drivers over the same client are tested in test_eastron; parsing bus URLs is tested there too.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.base import DeviceRefused, DeviceUnreachable
from adapters.transports.modbus import BusAddress, ModbusBus, TcpAddress, library_client
from tests.emulators.registers import Device, RegisterBus, registers_rtu, registers_tcp
from tests.processes import free_port

INPUTS = [0x1111, 0x2222, 0x3333, 0x4444]


def devices() -> tuple[Device, Device]:
    """Device 1 and device 2, each with its own input registers at 0..3, so that answers tell apart."""
    one, two = Device(1), Device(2)
    one.inputs[0:4] = INPUTS
    two.inputs[0:4] = [v + 1 for v in INPUTS]
    return one, two


@contextlib.asynccontextmanager
async def bus_on(url: str, timeout_s: float = 1.0, **kwargs: Any) -> AsyncIterator[ModbusBus]:
    bus = ModbusBus(url, timeout_s, **kwargs)
    try:
        yield bus
    finally:
        await bus.close()


def never_overlapped(emu: RegisterBus) -> bool:
    heard = sorted(emu.requests, key=lambda r: r.started)
    return all(later.started >= earlier.finished for earlier, later in itertools.pairwise(heard))


@contextlib.contextmanager
def accepting_nothing() -> Iterator[int]:
    """A port whose listen queue is full: a connection to it is neither accepted nor refused (a gateway
    that hangs, a host that drops the SYN). Yields the port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port: int = listener.getsockname()[1]
    queued = []
    for _ in range(3):  # fill the queue: what comes next waits
        s = socket.socket()
        s.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            s.connect(("127.0.0.1", port))
        queued.append(s)
    try:
        yield port
    finally:
        for s in [*queued, listener]:
            s.close()


# -- requests and answers ----------------------------------------------------------------------------


async def test_the_four_function_codes_carry_registers_both_ways() -> None:
    one, two = devices()
    one.holding[10:12] = [7, 8]
    async with registers_tcp(one, two) as emu, bus_on(emu.url) as bus:
        assert await bus.read_input_registers(1, 0, 4) == INPUTS
        assert await bus.read_input_registers(2, 0, 4) == [v + 1 for v in INPUTS]
        assert await bus.read_holding_registers(1, 10, 2) == [7, 8]
        await bus.write_register(1, 20, 0xFFFF)
        await bus.write_registers(2, 30, [1, 2, 3])
        assert one.holding[20] == 0xFFFF and two.holding[30:33] == [1, 2, 3]
        assert one.holding[30:33] == [0, 0, 0]  # the other device's registers, untouched
        assert await bus.read_holding_registers(2, 30, 3) == [1, 2, 3]
        heard = [(r.device_id, r.function_code, r.address, r.count, r.values) for r in emu.requests]
        assert heard == [
            (1, 4, 0, 4, None),
            (2, 4, 0, 4, None),
            (1, 3, 10, 2, None),
            (1, 6, 20, 1, (0xFFFF,)),
            (2, 16, 30, 3, (1, 2, 3)),
            (2, 3, 30, 3, None),
        ]
        assert emu.connections == 1  # one connection kept for the whole bus


async def test_rtu_frames_over_tcp() -> None:
    async with registers_tcp(*devices(), rtu_framing=True) as emu, bus_on(emu.url) as bus:
        assert emu.url.startswith("rtu+tcp://")
        assert await bus.read_input_registers(2, 0, 4) == [v + 1 for v in INPUTS]
        await bus.write_registers(1, 5, [9, 10])
        assert await bus.read_holding_registers(1, 5, 2) == [9, 10]


async def test_modbus_rtu_on_a_serial_line(tmp_path: Path) -> None:
    one, two = devices()
    async with registers_rtu(tmp_path, one, two) as emu, bus_on(emu.url, 0.3) as bus:
        assert emu.url.startswith("rtu:///")
        assert await bus.read_input_registers(1, 0, 4) == INPUTS
        await bus.write_register(2, 1, 42)
        await bus.write_registers(2, 2, [43, 44])
        assert await bus.read_holding_registers(2, 1, 3) == [42, 43, 44]
        one.silent = True
        with pytest.raises(DeviceUnreachable, match=r"no answer within 0\.3 s"):
            await bus.read_input_registers(1, 0, 4)
        one.silent = False  # the port was opened again: its input buffer holds nothing stale
        assert await bus.read_input_registers(1, 0, 4) == INPUTS


# -- one request at a time ---------------------------------------------------------------------------


@pytest.mark.parametrize("line", ["tcp", "rtu"])
async def test_one_request_at_a_time_on_a_bus_whatever_the_device(line: str, tmp_path: Path) -> None:
    server = registers_tcp(*devices()) if line == "tcp" else registers_rtu(tmp_path, *devices())
    async with server as emu, bus_on(emu.url) as bus:
        emu.latency_s = 0.02  # an answer takes time: requests that overlapped would be seen at once
        asked = [1, 2, 1, 2, 2, 1]
        answers = await asyncio.gather(*(bus.read_input_registers(d, 0, 4) for d in asked))
        assert answers == [[v + d - 1 for v in INPUTS] for d in asked]  # each caller its own answer
        assert emu.max_in_flight == 1 and never_overlapped(emu)
        assert len(emu.requests) == len(asked)


async def test_the_overlap_check_can_fail() -> None:
    """Control for the test above: two clients of one server do overlap, and the server sees it."""
    async with registers_tcp(*devices()) as emu, bus_on(emu.url) as first, bus_on(emu.url) as second:
        emu.latency_s = 0.05
        await asyncio.gather(first.read_input_registers(1, 0, 2), second.read_input_registers(2, 0, 2))
        assert emu.max_in_flight == 2


@pytest.mark.parametrize("line", ["tcp", "rtu"])
async def test_a_silent_device_holds_the_bus_until_its_deadline_then_the_next_goes(
    line: str, tmp_path: Path
) -> None:
    """RS485 is half-duplex: another request sent while the silent one's answer may still come would
    collide with it."""
    one, two = devices()
    server = registers_tcp(one, two) if line == "tcp" else registers_rtu(tmp_path, one, two)
    async with server as emu, bus_on(emu.url, 0.3) as bus:
        one.silent = True
        began = time.monotonic()
        silent, neighbour = await asyncio.gather(
            bus.read_input_registers(1, 0, 4), bus.read_input_registers(2, 0, 4), return_exceptions=True
        )
        assert isinstance(silent, DeviceUnreachable) and neighbour == [v + 1 for v in INPUTS]
        [to_one, to_two] = emu.requests
        assert (to_one.device_id, to_two.device_id) == (1, 2)
        assert to_two.started - began >= 0.29  # sent once the first request's deadline had passed


# -- deadlines -----------------------------------------------------------------------------------------


async def test_a_silent_device_costs_one_deadline_and_no_retry() -> None:
    one, two = devices()
    async with registers_tcp(one, two) as emu, bus_on(emu.url, 0.3) as bus:
        one.silent = True
        began = time.monotonic()
        with pytest.raises(DeviceUnreachable) as caught:
            await bus.read_input_registers(1, 0x0002, 2)
        assert 0.25 < time.monotonic() - began < 0.8
        assert str(caught.value) == (
            f"device 1 on {emu.url}, read input registers 0x0002..0x0003: no answer within 0.3 s"
        )
        assert len(emu.requests) == 1  # heard once: pymodbus retried nothing
        assert await bus.read_input_registers(2, 0, 4) == [v + 1 for v in INPUTS]


async def test_a_request_may_bring_its_own_deadline() -> None:
    one, _ = devices()
    async with registers_tcp(one) as emu, bus_on(emu.url, 30.0) as bus:
        one.silent = True
        began = time.monotonic()
        with pytest.raises(DeviceUnreachable, match=r"write register 0x0005: no answer within 0.2 s"):
            await bus.write_register(1, 5, 1, timeout_s=0.2)
        assert time.monotonic() - began < 0.7
        one.silent = False
        emu.latency_s = 0.4  # slower than the request's deadline, well within the bus's
        assert await bus.read_input_registers(1, 0, 4, timeout_s=2.0) == INPUTS


async def test_the_deadline_covers_the_connect() -> None:
    with accepting_nothing() as port:
        url = f"tcp://127.0.0.1:{port}"
        async with bus_on(url, 0.3) as bus:
            began = time.monotonic()
            with pytest.raises(DeviceUnreachable) as caught:
                await bus.read_holding_registers(1, 0, 1)
            assert time.monotonic() - began < 0.8
            assert str(caught.value) == (
                f"device 1 on {url}, read holding registers 0x0000: no connection within 0.3 s"
            )


# -- connections -------------------------------------------------------------------------------------


async def test_nothing_listening_or_no_serial_device_is_unreachable_at_once() -> None:
    url = f"tcp://127.0.0.1:{free_port()}"
    async with bus_on(url, 5.0) as bus:
        began = time.monotonic()
        with pytest.raises(DeviceUnreachable, match=r"cannot connect \(connection refused or no route"):
            await bus.read_input_registers(1, 0, 2)
        assert time.monotonic() - began < 1.0
    async with bus_on("rtu:///dev/ttyNOTHERE", 5.0) as bus:
        with pytest.raises(
            DeviceUnreachable, match=r"no serial device /dev/ttyNOTHERE .*ls /dev/serial/by-id"
        ):
            await bus.read_input_registers(1, 0, 2)


async def test_a_server_gone_and_back_is_connected_to_again() -> None:
    one, _ = devices()
    async with registers_tcp(one) as emu:
        bus = ModbusBus(emu.url, 0.5)
        assert await bus.read_input_registers(1, 0, 4) == INPUTS
        port = emu.port
    try:
        await asyncio.sleep(0.05)  # the moment it takes the client to see the connection closed
        began = time.monotonic()
        with pytest.raises(DeviceUnreachable, match="cannot connect"):
            await bus.read_input_registers(1, 0, 4)
        assert time.monotonic() - began < 0.5  # refused at once: no deadline waited for
        async with registers_tcp(one, port=port) as back:
            assert await bus.read_input_registers(1, 0, 4) == INPUTS
            assert back.connections == 1
    finally:
        await bus.close()


async def test_a_connection_lost_during_a_request_costs_at_most_its_deadline() -> None:
    one, _ = devices()
    async with registers_tcp(one) as emu:
        bus = ModbusBus(emu.url, 0.5)
        emu.latency_s = 5.0
        asking = asyncio.create_task(bus.read_input_registers(1, 0, 4))
        await asyncio.sleep(0.1)
        port = emu.port
    try:
        with pytest.raises(DeviceUnreachable, match=r"no answer within 0\.5 s"):
            await asyncio.wait_for(asking, 2.0)
        async with registers_tcp(one, port=port):
            assert await bus.read_input_registers(1, 0, 4) == INPUTS
    finally:
        await bus.close()


async def test_a_connection_is_kept_while_all_goes_well_and_made_anew_after_a_failure() -> None:
    """The library's client is made on the first request, from the bus's address, and again only
    after a failure that leaves the line in doubt, or a close."""
    made: list[BusAddress] = []

    def make(address: BusAddress) -> Any:
        made.append(address)
        return library_client(address)

    one, _ = devices()
    async with registers_tcp(one) as emu, bus_on(emu.url, 0.3, make_client=make) as bus:
        assert made == []  # nothing opened before the first request
        for _ in range(3):
            assert await bus.read_input_registers(1, 0, 4) == INPUTS
        assert made == [TcpAddress("127.0.0.1", emu.port)] and emu.connections == 1
        one.silent = True
        with pytest.raises(DeviceUnreachable):
            await bus.read_input_registers(1, 0, 4)
        one.silent = False
        assert await bus.read_input_registers(1, 0, 4) == INPUTS
        assert len(made) == 2 and emu.connections == 2
        await bus.close()
        assert await bus.read_input_registers(1, 0, 4) == INPUTS
        assert len(made) == 3 and emu.connections == 3


# -- answers not to be trusted -------------------------------------------------------------------------


async def test_a_late_answer_is_not_taken_for_the_next_request() -> None:
    one, two = devices()
    async with registers_tcp(one, two) as emu, bus_on(emu.url, 0.2) as bus:
        emu.latency_s = 0.4  # device 1's answer comes after the deadline
        with pytest.raises(DeviceUnreachable, match=r"no answer within 0\.2 s"):
            await bus.read_input_registers(1, 0, 4)
        emu.latency_s = 0.0
        assert await bus.read_input_registers(2, 0, 4) == [v + 1 for v in INPUTS]
        await asyncio.sleep(0.3)  # the late answer has been sent by now
        assert await bus.read_input_registers(2, 0, 4) == [v + 1 for v in INPUTS]


async def test_a_cancelled_request_frees_the_bus_and_leaves_no_answer_behind() -> None:
    one, two = devices()
    async with registers_tcp(one, two) as emu, bus_on(emu.url, 2.0) as bus:
        emu.latency_s = 0.3
        asking = asyncio.create_task(bus.read_input_registers(1, 0, 4))
        await asyncio.sleep(0.1)
        asking.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asking
        emu.latency_s = 0.0
        assert await bus.read_input_registers(2, 0, 4) == [v + 1 for v in INPUTS]
        await asyncio.sleep(0.3)  # the cancelled request's answer has been sent by now
        assert await bus.read_input_registers(2, 0, 4) == [v + 1 for v in INPUTS]


@pytest.mark.parametrize("rtu_framing", [False, True], ids=["tcp", "rtu+tcp"])
async def test_a_garbled_reply_is_unreachable_and_the_next_request_starts_afresh(rtu_framing: bool) -> None:
    async with registers_tcp(*devices(), rtu_framing=rtu_framing) as emu, bus_on(emu.url) as bus:
        emu.garble_next = True
        with pytest.raises(DeviceUnreachable) as caught:
            await bus.read_input_registers(1, 0, 4)
        assert str(caught.value) == (
            f"device 1 on {emu.url}, read input registers 0x0000..0x0003: "
            "garbled reply (3 registers instead of 4)"
        )
        assert await bus.read_input_registers(1, 0, 4) == INPUTS
        if not rtu_framing:
            assert emu.connections == 2


# -- errors --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "error", "says"),
    [
        (1, DeviceRefused, "illegal function: the device does not support this kind of request"),
        (2, DeviceRefused, "illegal data address: the device has no such register"),
        (3, DeviceRefused, "illegal data value"),
        (4, DeviceRefused, "device failure"),
        (6, DeviceRefused, "device busy: try again later"),
        (10, DeviceUnreachable, "gateway path unavailable"),
        (11, DeviceUnreachable, "the gateway got no answer from the device"),
    ],
)
async def test_exception_replies_are_typed_and_explained(
    code: int, error: type[Exception], says: str
) -> None:
    one, _ = devices()
    async with registers_tcp(one) as emu, bus_on(emu.url) as bus:
        one.refuse_with = code
        with pytest.raises(error) as caught:
            await bus.write_registers(1, 0x0010, [1, 2])
        assert str(caught.value).startswith(
            f"device 1 on {emu.url}, write registers 0x0010..0x0011: exception {code}, {says}"
        )
        one.refuse_with = None
        await bus.write_registers(1, 0x0010, [1, 2])  # a refusal leaves the bus as it was
        assert emu.connections == 1


async def test_registers_a_device_does_not_have_are_refused() -> None:
    async with registers_tcp(*devices()) as emu, bus_on(emu.url) as bus:
        with pytest.raises(DeviceRefused, match=r"read holding registers 0x0062..0x0065: exception 2"):
            await bus.read_holding_registers(1, 98, 4)  # 100 and 101 are none


async def test_a_gateway_answering_for_a_silent_device_is_unreachable_at_once() -> None:
    one, _ = devices()
    async with registers_tcp(one, gateway=True) as emu, bus_on(emu.url, 5.0) as bus:
        one.silent = True
        began = time.monotonic()
        with pytest.raises(DeviceUnreachable, match=r"device 1 .*: exception 11"):
            await bus.read_input_registers(1, 0, 4)
        with pytest.raises(DeviceUnreachable, match=r"device 9 .*: exception 11"):  # nobody has id 9
            await bus.read_input_registers(9, 0, 4)
        assert time.monotonic() - began < 1.0


@pytest.mark.parametrize("url", ["rtu+tcp://127.0.0.1:8899", "rtu:///dev/ttyUSB0"])
async def test_unit_ids_above_247_are_for_modbus_tcp_only(url: str) -> None:
    """On a serial line (also one reached through a serial server) 248..255 are reserved; Modbus
    TCP devices answer on any byte (KEBA's guides fix theirs at 255)."""
    async with bus_on(url) as bus:
        with pytest.raises(DeviceRefused, match=r"device id is 1\.\.247, not 248"):
            await bus.read_holding_registers(248, 0, 1)


@pytest.mark.parametrize(
    ("request_", "says"),
    [
        (lambda bus: bus.read_input_registers(0, 0, 1), r"device id is 1\.\.255, not 0"),
        (lambda bus: bus.read_holding_registers(256, 0, 1), r"device id is 1\.\.255, not 256"),  # TCP: a byte
        (lambda bus: bus.read_input_registers(1, 0x10000, 1), r"register address is 0\.\.65535, not 65536"),
        (lambda bus: bus.read_input_registers(1, -1, 1), r"register address is 0\.\.65535, not -1"),
        (lambda bus: bus.read_input_registers(1, 0, 0), "a read covers 1 to 125 registers, not 0"),
        (lambda bus: bus.read_holding_registers(1, 0, 126), "a read covers 1 to 125 registers, not 126"),
        (lambda bus: bus.write_register(1, 0, 0x10000), r"1 to 1 register values of 0\.\.65535"),
        (lambda bus: bus.write_registers(1, 0, []), r"1 to 123 register values"),
        (lambda bus: bus.write_registers(1, 0, [0] * 124), r"1 to 123 register values"),
        (lambda bus: bus.write_registers(1, 0, [1, -1]), r"not \[1, -1\]"),
    ],
)
async def test_requests_beyond_the_protocols_bounds_never_reach_the_bus(request_: Any, says: str) -> None:
    async with registers_tcp(*devices()) as emu, bus_on(emu.url) as bus:
        with pytest.raises(DeviceRefused, match=says):
            await request_(bus)
        assert emu.requests == [] and emu.connections == 0
