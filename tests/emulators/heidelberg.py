"""Heidelberg (Amperfied) Energy Control wallboxes on one RS485 bus, emulated with a pymodbus RTU server on
one end of a socat pseudo-terminal pair (tests/emulators/modbus_serving.py), or behind a gateway on a
free loopback port (`heidelberg_tcp`: a serial server forwarding RTU frames, or a Modbus TCP gateway).

The register map is written out here from devices.md §5.1, on purpose not taken from
adapters/chargers/heidelberg_api.py: a wrong address or unit in the driver must show up as a failing
test, not be copied into its own emulator.

What is emulated, as the published table and evcc's experience say:
- input registers (function code 04): 4 layout version, 5 charging state (2 A1, 3 A2, 4 B1, 5 B2,
  6 C1, 7 C2, 8 derating, 9 E, 10 F, 11 error; suffix 1 = charging not allowed, 2 = allowed), 6..8
  currents in 0.1 A, 9 temperature in 0.1 degC, 10..12 voltages in V, 13 external lock (0 locked),
  14 power in VA (layout 1.0.4 and later), 15-16 energy since power-on and 17-18 since installation
  (layout 1.0.7 and later) as UINT32 in VAh, high word first; 100/101 the hardware's max/min current
  in A, 102..133 the logistic string, 200 hardware variant, 203 software revision;
- holding registers (03 read, 06 and 16 write): 257 watchdog timeout in ms, 258 standby (0 enabled,
  4 disabled), 259 remote lock (0 locked, 1 unlocked), 260 reserved (reads 0, refuses writes), 261
  current command and 262 failsafe current in 0.1 A (0 or 60..160);
- error replies: an address the layout does not have, or a write to 260, gets exception 2; a value
  out of its range (261/262 not 0 or 60..160, above the hardware's maximum, 258 not 0 or 4, 259 not
  0 or 1) exception 3; another function code exception 1;
- pacing: a request that comes less than `request_gap_s` (0.1 s) after the last reply on the bus is
  missed: no answer (evcc-io/evcc#15437, wbec#5: the boxes time out when frames follow too fast),
  recorded in `pacing_violations`;
- the watchdog: from the first request a box answers, when it hears nothing for 257's timeout it
  falls back to the failsafe current (261 takes 262's value) until the master writes 261 again;
- standby: with 258 = 0 a box unplugged for `standby_after_s` falls asleep: state F (10), no
  charging, until 259 = 1 is written;
- `power_cycle()` restores the power-on settings (watchdog 15000 ms, standby on, current 16 A);
  `silent`: the box hears and answers nothing (a broken wire); a unit id nobody has stays silent.
The test side drives the vehicle (`plug`, `unplug`, `ev_wants`) and faults (`fault_state`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.simulator import DataType, SimData, SimDevice

from tests.emulators.modbus_serving import serving_rtu, serving_tcp

BAUDRATE = 19200
VOLTS = (230, 231, 229)
LOGISTIC = "HEC-11-000123 Energy Control"  # 102..133, two characters per register
WATCHDOG, STANDBY, REMOTE_LOCK, RESERVED, CURRENT, FAILSAFE = 257, 258, 259, 260, 261, 262
POWER_ON = {WATCHDOG: 15000, STANDBY: 0, REMOTE_LOCK: 1, CURRENT: 160, FAILSAFE: 0}


@dataclass(frozen=True)
class Access:
    function_code: int
    address: int
    values: tuple[int, ...] | None  # written or read; None: refused
    at: float  # time.monotonic()


@dataclass
class HeidelbergBox:
    device_id: int = 1
    layout: int = 0x0108
    hw_max_a: int = 16
    hw_min_a: int = 6
    time_scale: float = 1.0  # energy flows this many times faster than real time
    ev_max_a: float = 16.0  # the vehicle draws at most this much per phase
    ev_phases: int = 3
    standby_after_s: float = 13 * 60
    # what happens at the box
    plugged: bool = False
    ev_wants: bool = True
    fault_state: int | None = None  # 9 (E) or 11 (error): shown instead of the vehicle's state
    derating: bool = False
    external_unlocked: bool = True
    silent: bool = False
    asleep: bool = False
    # the holding registers
    holding: dict[int, int] = field(default_factory=lambda: dict(POWER_ON))
    energy_vah: float = 2_000_000.0  # since installation
    energy_since_power_on_vah: float = 12_345.0
    # records
    accesses: list[Access] = field(default_factory=list)
    reported_energy_wh: list[float] = field(default_factory=list)
    reported_power_w: list[float] = field(default_factory=list)
    fallbacks: list[float] = field(default_factory=list)  # when the watchdog fell back
    _heard_at: float | None = None  # the last request answered; None: the watchdog is not armed
    _fallen: bool = False
    _flow_at: float = field(default_factory=time.monotonic)
    _unplugged_at: float = field(default_factory=time.monotonic)

    # -- the test's side --
    def plug(self) -> None:
        self.settle()
        self.plugged = True

    def unplug(self) -> None:
        self.settle()
        self.plugged, self._unplugged_at = False, time.monotonic()

    def power_cycle(self) -> None:
        self.settle()
        self.holding = dict(POWER_ON)
        self.energy_since_power_on_vah = 0.0
        self._heard_at, self._fallen, self.asleep = None, False, False

    @property
    def current_da(self) -> int:
        """Register 261 as it is now (after any watchdog fallback)."""
        self.settle()
        return self.holding[CURRENT]

    def offered_da(self) -> int:
        allowed = self.holding[REMOTE_LOCK] == 1 and self.external_unlocked and not self.asleep
        return min(self.holding[CURRENT], self.hw_max_a * 10) if allowed else 0

    def state(self) -> int:
        self.settle()
        return self._state()

    def _state(self) -> int:
        """Register 5 as of the last `settle`."""
        if self.asleep:
            return 10
        if self.fault_state is not None:
            return self.fault_state
        allowed = self.offered_da() > 0
        if not self.plugged:
            return 3 if allowed else 2
        if not self.ev_wants:
            return 5 if allowed else 4
        if allowed and self.derating:
            return 8
        return 7 if allowed else 6

    def charging(self) -> bool:
        return self.state() in (7, 8)

    def currents_da(self) -> list[int]:
        if self._state() not in (7, 8):
            return [0, 0, 0]
        da = min(self.offered_da(), round(self.ev_max_a * 10))
        return [da if phase < self.ev_phases else 0 for phase in range(3)]

    def power_va(self) -> int:
        return round(sum(da / 10 * v for da, v in zip(self.currents_da(), VOLTS, strict=True)))

    # -- time: the watchdog, standby, the energy that flowed --
    def _flow(self, until: float) -> None:
        vah = self.power_va() * max(0.0, until - self._flow_at) * self.time_scale / 3600
        self.energy_vah += vah
        self.energy_since_power_on_vah += vah
        self._flow_at = until

    def settle(self) -> None:
        now = time.monotonic()
        timeout_s = self.holding[WATCHDOG] / 1000
        if self._heard_at is not None and timeout_s and not self._fallen:
            expired_at = self._heard_at + timeout_s
            if now > expired_at:
                self._flow(expired_at)
                self.holding[CURRENT] = self.holding[FAILSAFE]
                self._fallen = True
                self.fallbacks.append(expired_at)
        if (
            self.holding[STANDBY] == 0
            and not self.plugged
            and now - self._unplugged_at > self.standby_after_s
        ):
            self._flow(now)
            self.asleep = True
        self._flow(now)

    # -- the register map --
    def input_values(self) -> dict[int, int]:
        """Every input register at one instant (a reply's registers must agree with each other)."""
        self.settle()
        energy = int(self.energy_vah)
        since_power_on = int(self.energy_since_power_on_vah)
        logistic = LOGISTIC.encode().ljust(64, b"\0")
        values = {
            4: self.layout, 5: self._state(), 9: 250, 13: int(self.external_unlocked),
            14: self.power_va(), 15: since_power_on >> 16, 16: since_power_on & 0xFFFF,
            17: energy >> 16, 18: energy & 0xFFFF, 100: self.hw_max_a, 101: self.hw_min_a,
            200: 1, 203: 1234,
        }  # fmt: skip
        for i, da in enumerate(self.currents_da()):
            values[6 + i] = da
        for i, volts in enumerate(VOLTS):
            values[10 + i] = volts
        for address in range(102, 134):
            at = (address - 102) * 2
            values[address] = (logistic[at] << 8) | logistic[at + 1]
        return values

    def input_addresses(self) -> list[int]:
        """The input registers this layout documents."""
        first = [*range(4, 14), *([14] if self.layout >= 0x0104 else []), 15, 16]
        return [*first, *([17, 18] if self.layout >= 0x0107 else []), *range(100, 134), 200, 203]

    def _write(self, address: int, values: list[int]) -> ExcCodes | None:
        """Carries out a write of `values` from `address` on; the exception code of a refusal."""
        changes = dict(zip(range(address, address + len(values)), values, strict=True))
        for register, value in changes.items():
            if register == RESERVED:
                return ExcCodes.ILLEGAL_ADDRESS
            if register in (CURRENT, FAILSAFE):
                if value != 0 and not (60 <= value <= 160 and value <= self.hw_max_a * 10):
                    return ExcCodes.ILLEGAL_VALUE
            elif (register == STANDBY and value not in (0, 4)) or (register == REMOTE_LOCK and value > 1):
                return ExcCodes.ILLEGAL_VALUE
        self.settle()
        self.holding.update(changes)
        if changes.get(REMOTE_LOCK) == 1:
            self.asleep = False  # evcc's remedy for state F after standby
        if CURRENT in changes:
            self._fallen = False
        return None

    def writes(self, register: int) -> list[int]:
        """Every value written to `register` and taken, in order."""
        return [
            a.values[register - a.address]
            for a in self.accesses
            if a.function_code in (6, 16) and a.values is not None
            and a.address <= register < a.address + len(a.values)
        ]  # fmt: skip

    # -- pymodbus's side --
    def sim_device(self, action: Any) -> SimDevice:
        inputs = [SimData(a, values=0, datatype=DataType.REGISTERS) for a in self.input_addresses()]
        holding = [SimData(WATCHDOG, count=6, values=0, datatype=DataType.REGISTERS)]
        bits = [SimData(0, values=False, datatype=DataType.BITS)]
        return SimDevice(self.device_id, (bits, list(bits), holding, inputs), action=action)


@dataclass
class HeidelbergBus:
    """Boxes on one RS485 bus; `url` is what a driver's `modbus:` option names."""

    boxes: dict[int, HeidelbergBox]
    request_gap_s: float = 0.1
    url: str = ""
    unit_at: int = 0  # where the unit id sits in a reply: 0 (RTU frames), 6 (after a Modbus TCP header)
    pacing_violations: list[tuple[int, float]] = field(default_factory=list)  # (unit, seconds after)
    _last_reply: float = -1e9
    _drop_reply: bool = False

    def box(self, device_id: int = 1) -> HeidelbergBox:
        return self.boxes[device_id]

    def sim_devices(self) -> list[SimDevice]:
        devices = [b.sim_device(partial(self._action, b)) for b in self.boxes.values()]

        async def nobody(*_: Any) -> ExcCodes | None:
            return None  # its reply is dropped by _on_packet

        return [*devices, SimDevice(0, [SimData(0, count=300, values=0, datatype=DataType.REGISTERS)],
                                    action=nobody)]  # fmt: skip

    async def _action(
        self,
        box: HeidelbergBox,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """Called by pymodbus for every request that got past its address check, before it answers."""
        if function_code in (6, 16) and set_values is None:
            return None  # pymodbus reading back what a write set, for its answer
        now = time.monotonic()
        after = now - self._last_reply
        if after < self.request_gap_s * 0.95 or box.silent:
            if not box.silent:
                self.pacing_violations.append((box.device_id, after))
            self._drop_reply = True  # missed: the box never answers it, and it feeds no watchdog
            return None
        box.settle()
        box._heard_at, box._fallen = now, False  # traffic: the watchdog starts again
        if function_code in (3, 4):
            if function_code == 3:
                values = [box.holding.get(a, 0) for a in range(address, address + count)]
            else:
                now_values = box.input_values()
                values = [now_values[a] for a in range(address, address + count)]
                if address <= 17 < address + count:
                    box.reported_energy_wh.append(float((now_values[17] << 16) | now_values[18]))
                if address <= 14 < address + count:
                    box.reported_power_w.append(float(now_values[14]))
            offset = address - start_address
            registers[offset : offset + count] = values
            box.accesses.append(Access(function_code, address, tuple(values), now))
            return None
        if function_code in (6, 16) and set_values is not None:
            written = [int(v) for v in set_values]
            refused = box._write(address, written)
            box.accesses.append(Access(function_code, address, None if refused else tuple(written), now))
            return refused
        box.accesses.append(Access(function_code, address, None, now))
        return ExcCodes.ILLEGAL_FUNCTION

    def _on_packet(self, sending: bool, packet: bytes) -> bytes:
        """pymodbus's hook on every packet: the replies of silent boxes, of unit ids nobody has and to
        requests that came too soon never leave."""
        if not sending or not packet:
            return packet
        drop, self._drop_reply = self._drop_reply, False
        box = self.boxes.get(packet[self.unit_at]) if len(packet) > self.unit_at else None
        if drop or box is None or box.silent:
            return b""
        self._last_reply = time.monotonic()
        return packet


@contextlib.asynccontextmanager
async def heidelberg_rtu(
    tmp_path: Path, *boxes: HeidelbergBox, request_gap_s: float = 0.1
) -> AsyncIterator[HeidelbergBus]:
    """Boxes on one end of a socat pseudo-terminal pair; `url` names the other end (19200 baud; parity N
    on the PTY, where the box's even parity cannot be set: devices.md §8.4)."""
    bus = HeidelbergBus({b.device_id: b for b in boxes}, request_gap_s=request_gap_s)
    serving = serving_rtu(tmp_path, bus.sim_devices(), baudrate=BAUDRATE, trace_packet=bus._on_packet)
    async with serving as bus.url:
        yield bus


@contextlib.asynccontextmanager
async def heidelberg_tcp(
    *boxes: HeidelbergBox, rtu_framing: bool = True, request_gap_s: float = 0.1
) -> AsyncIterator[HeidelbergBus]:
    """Boxes behind a gateway on a free loopback port: a serial server forwarding raw RTU frames
    (`rtu+tcp://`), or with `rtu_framing=False` a Modbus TCP gateway (`tcp://`). The gateway itself
    answers nothing for a silent box: its requests time out."""
    bus = HeidelbergBus(
        {b.device_id: b for b in boxes}, request_gap_s=request_gap_s, unit_at=0 if rtu_framing else 6
    )
    serving = serving_tcp(bus.sim_devices(), rtu_framing=rtu_framing, port=0, trace_packet=bus._on_packet)
    async with serving as (bus.url, _):
        yield bus
