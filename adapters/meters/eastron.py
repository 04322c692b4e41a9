"""Eastron SDM630, SDM120 and SDM72 energy meters, as meters of record (Modbus RTU, or TCP via a gateway).

Docs: docs/devices/eastron.md (wiring, addresses, what is read); the register facts are Eastron's
Modbus protocol manuals for each model, summarised in devices.md §4.

Every measurement is an input register pair (function code 04) holding an
IEEE-754 float32, high word first. The register map, per model (wire
addresses):

    0x0000 0x0002 0x0004   voltage L1 L2 L3 to neutral, V   (SDM120: 0x0000 only)
    0x0006 0x0008 0x000A   current L1 L2 L3, A              (SDM120: 0x0006 only)
    0x000C                 active power L1, W               (SDM120: its only phase)
    0x0034                 total system power, W            (SDM630, SDM72)
    0x0046                 frequency, Hz                    (SDM630, SDM120)
    0x0048                 total import active energy, kWh  (all three; reported in Wh)

The SDM72 (v1) has only power and energy registers, so that is all it reports.

A read covers several parameters at once where the documented map is
contiguous between them, and never spans a register outside it: what a
meter answers there is documented nowhere (an exception, or a value of no
meaning). That is three requests for an SDM630, four for an SDM120, two for
an SDM72; the plan is computed from the map, not written by hand.

The session energy is the import register (0x0048), not the "total" at
0x0156: the manual ties that one to the meter's import/export setting.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from adapters.base import Meter, MeterReading
from adapters.transports.modbus import ModbusBus, decode_float32, parse_bus_url
from adapters.transports.pool import Transports

DEFAULT_TIMEOUT_S = 1.0
MAX_REGISTERS_PER_READ = 80  # the meters answer more than 40 parameters in one request with an exception

# Input registers (function code 04, wire addresses; each the first of a float32 pair) that the
# driver reads, with their units (devices.md §4).
REG_VOLTAGE = (0x0000, 0x0002, 0x0004)  # V: L1, L2, L3 to neutral
REG_CURRENT = (0x0006, 0x0008, 0x000A)  # A: L1, L2, L3
REG_POWER_L1 = 0x000C  # W: active power L1 (the SDM120's only phase)
REG_POWER_TOTAL = 0x0034  # W: total system active power
REG_FREQUENCY = 0x0046  # Hz
REG_IMPORT_ENERGY = 0x0048  # kWh: total import active energy (reported in Wh)

# Every documented parameter (its first register) per model, as the manuals list them: reads never span
# anything else.
_SDM630_MAP = frozenset(
    [
        *range(0x0000, 0x0024, 2),  # per phase V, A, W, VA, VAr, power factor
        *(0x0034, 0x0038, 0x003C, 0x003E),  # total W, VA, VAr, power factor
        *range(0x0046, 0x0050, 2),  # frequency, import/export kWh, import/export kVArh
        *(0x0156, *range(0x015A, 0x0166, 2)),  # total kWh, per phase import/export kWh
    ]
)
_SDM120_MAP = frozenset([0x0000, 0x0006, 0x000C, 0x0012, 0x0018, 0x001E, 0x0046, 0x0048, 0x004A, 0x0156])
_SDM72_MAP = frozenset([0x0034, 0x0048, 0x004A, 0x0156])


# -- options ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EastronOptions:
    """The `meter: {type: sdm630 | sdm120 | sdm72, ...}` block."""

    type: str
    modbus: str  # the bus: tcp://HOST[:PORT], rtu+tcp://HOST:PORT or rtu:///dev/ttyUSB0?baudrate=9600&...
    device_id: int = 1  # the meter's MODBUS address (its display's "Addr"), 1 from the factory
    timeout_s: float = DEFAULT_TIMEOUT_S  # per request

    def validate(self) -> list[tuple[str, str]]:
        """(field, problem) pairs; empty when the options make sense."""
        problems: list[tuple[str, str]] = []
        try:
            parse_bus_url(self.modbus)
        except ValueError as error:
            problems.append(("modbus", str(error)))
        if not 1 <= self.device_id <= 247:
            problems.append(
                ("device_id", "must be 1 to 247 (the address set on the meter, 1 from the factory)")
            )
        if not 0.05 <= self.timeout_s <= 10:
            problems.append(("timeout_s", "must be from 0.05 to 10 seconds"))
        return problems


# -- planning and decoding (pure) ------------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    """One read request: `count` registers from `address`."""

    address: int
    count: int

    @property
    def parameters(self) -> range:
        """The first register of each float32 parameter in the span."""
        return range(self.address, self.address + self.count, 2)


def plan_reads(
    wanted: Sequence[int], documented: frozenset[int], max_registers: int = MAX_REGISTERS_PER_READ
) -> tuple[Span, ...]:
    """The fewest reads covering the `wanted` parameters without touching an undocumented register."""
    spans: list[Span] = []
    for address in sorted(set(wanted)):
        if spans:
            last = spans[-1]
            end = last.address + last.count
            gap_documented = all(a in documented for a in range(end, address, 2))
            if gap_documented and address + 2 - last.address <= max_registers:
                spans[-1] = Span(last.address, address + 2 - last.address)
                continue
        spans.append(Span(address, 2))
    return tuple(spans)


def meter_decimal(value: float) -> float | None:
    """The decimal a float32 register stands for (230.1, not 230.10000610351562); None if not a number.

    The meter computes in float32; the shortest decimal that converts back to the same float32 is what
    it displays, and what a log or a MeterValues message should show.
    """
    if not math.isfinite(value):
        return None
    for digits in range(6, 10):  # a float32 round-trips with at most 9 significant digits
        shortest = float(f"{value:.{digits}g}")
        if struct.unpack(">f", struct.pack(">f", shortest))[0] == value:
            return shortest
    return value


def parameters_of(spans: Sequence[Span], replies: Sequence[Sequence[int]]) -> dict[int, float | None]:
    """Parameter address → value, from the replies to `spans` (in the same order)."""
    values: dict[int, float | None] = {}
    for span, registers in zip(spans, replies, strict=True):
        for address, value in zip(span.parameters, decode_float32(registers), strict=True):
            values[address] = meter_decimal(value)
    return values


def _kwh_to_wh(kwh: float | None) -> float | None:
    # round(): kWh with three decimals times 1000 is not always a whole number in binary floating point.
    return None if kwh is None else round(kwh * 1000, 3)


def _all(values: Sequence[float | None]) -> tuple[float, ...] | None:
    """A per-phase tuple, or None when a phase is not a number."""
    present = tuple(v for v in values if v is not None)
    return present if len(present) == len(values) else None


def reading_sdm630(p: Mapping[int, float | None]) -> MeterReading:
    return MeterReading(
        energy_wh=_kwh_to_wh(p[REG_IMPORT_ENERGY]),
        power_w=p[REG_POWER_TOTAL],
        current_a=_all([p[a] for a in REG_CURRENT]),
        voltage_v=_all([p[a] for a in REG_VOLTAGE]),
        frequency_hz=p[REG_FREQUENCY],
    )


def reading_sdm120(p: Mapping[int, float | None]) -> MeterReading:
    return MeterReading(
        energy_wh=_kwh_to_wh(p[REG_IMPORT_ENERGY]),
        power_w=p[REG_POWER_L1],
        current_a=_all([p[REG_CURRENT[0]]]),
        voltage_v=_all([p[REG_VOLTAGE[0]]]),
        frequency_hz=p[REG_FREQUENCY],
    )


def reading_sdm72(p: Mapping[int, float | None]) -> MeterReading:
    return MeterReading(energy_wh=_kwh_to_wh(p[REG_IMPORT_ENERGY]), power_w=p[REG_POWER_TOTAL])


@dataclass(frozen=True)
class Model:
    name: str
    documented: frozenset[int]
    wanted: tuple[int, ...]
    reading: Callable[[Mapping[int, float | None]], MeterReading]

    @property
    def plan(self) -> tuple[Span, ...]:
        return plan_reads(self.wanted, self.documented)


SDM630 = Model(
    "SDM630",
    _SDM630_MAP,
    (*REG_VOLTAGE, *REG_CURRENT, REG_POWER_TOTAL, REG_FREQUENCY, REG_IMPORT_ENERGY),
    reading_sdm630,
)
SDM120 = Model(
    "SDM120",
    _SDM120_MAP,
    (REG_VOLTAGE[0], REG_CURRENT[0], REG_POWER_L1, REG_FREQUENCY, REG_IMPORT_ENERGY),
    reading_sdm120,
)
SDM72 = Model("SDM72", _SDM72_MAP, (REG_POWER_TOTAL, REG_IMPORT_ENERGY), reading_sdm72)


# -- the drivers -----------------------------------------------------------------------------------


class EastronMeter(Meter):
    Options = EastronOptions
    MODEL: ClassVar[Model]

    def __init__(self, options: EastronOptions, transports: Transports) -> None:
        self.options = options
        self.bus: ModbusBus = transports.modbus(options.modbus)
        self._plan = self.MODEL.plan

    @property
    def description(self) -> str:
        return f"{self.MODEL.name} #{self.options.device_id} on {self.options.modbus}"

    async def start(self) -> None:
        """A first read: a wrong device id, bus or model shows up at start-up, in the log."""
        await self.read()

    async def read(self) -> MeterReading:
        replies = []
        for span in self._plan:  # one after the other: the bus serves one request at a time anyway
            replies.append(
                await self.bus.read_input_registers(
                    self.options.device_id, span.address, span.count, timeout_s=self.options.timeout_s
                )
            )
        return self.MODEL.reading(parameters_of(self._plan, replies))


class Sdm630(EastronMeter):
    MODEL = SDM630


class Sdm120(EastronMeter):
    MODEL = SDM120


class Sdm72(EastronMeter):
    MODEL = SDM72
