"""Modbus register values of a generic device (pure): how many registers a `type` takes, decoding a
read and encoding a write. Registers are big-endian within each word; `word_order` says which word
comes first (big: the high word, "ABCD"; little: the low word, "CDAB"). float32 uses the transport's
own decoder (adapters/transports/modbus.py)."""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import Literal

from adapters.meters.eastron import meter_decimal
from adapters.transports.modbus import decode_float32

WordOrder = Literal["big", "little"]
# type -> (registers, struct format of the whole value, big-endian)
TYPES: dict[str, tuple[int, str]] = {
    "int16": (1, ">h"),
    "uint16": (1, ">H"),
    "bool": (1, ">H"),
    "int32": (2, ">i"),
    "uint32": (2, ">I"),
    "float32": (2, ">f"),
    "int64": (4, ">q"),
    "uint64": (4, ">Q"),
    "float64": (4, ">d"),
}
BITMASK_TYPES = frozenset({"int16", "uint16", "bool"})


def count(type_name: str) -> int:
    return TYPES[type_name][0]


def _in_order(registers: Sequence[int], word_order: WordOrder) -> list[int]:
    return list(reversed(registers)) if word_order == "little" else list(registers)


def decode(
    registers: Sequence[int], type_name: str, word_order: WordOrder = "big", bitmask: int | None = None
) -> int | float | bool:
    """The value of `registers` (as many as `count(type_name)`)."""
    size, fmt = TYPES[type_name]
    if len(registers) != size:
        raise ValueError(f"{type_name} takes {size} registers, got {len(registers)}")
    if type_name == "float32":
        # The decimal the device computed in float32 (230.1, not 230.10000610351562), as the Eastron
        # driver reports it. NaN and the infinities come back as they are (float64 too): the pipeline's
        # to_number refuses them as "not a finite number", so they never become a reading.
        single = decode_float32(registers, word_order=word_order)[0]
        decimal = meter_decimal(single)
        return single if decimal is None else decimal
    raw = registers[0] if size == 1 else 0
    if size == 1 and bitmask is not None:
        raw &= bitmask
    if type_name == "bool":
        return raw != 0
    if size == 1:
        value: int | float = struct.unpack(fmt, struct.pack(">H", raw))[0]
        return value
    words = _in_order(registers, word_order)
    value = struct.unpack(fmt, struct.pack(f">{size}H", *words))[0]
    return value


def encode(value: float | bool, type_name: str, word_order: WordOrder = "big") -> list[int]:
    """The registers that hold `value` as `type_name`; ValueError when it does not fit."""
    size, fmt = TYPES[type_name]
    if type_name == "bool":
        return [1 if value else 0]
    try:
        number = float(value)
    except OverflowError:  # an int beyond a float's range
        raise ValueError(f"{value} does not fit a {type_name} register") from None
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number")
    if type_name.startswith("float"):
        try:
            packed = struct.pack(fmt, number)
        except OverflowError:  # 1e300 as a float32
            raise ValueError(f"{value!r} does not fit a {type_name} register") from None
    else:
        whole = round(number)
        try:
            packed = struct.pack(fmt, whole)
        except struct.error:
            raise ValueError(f"{whole} does not fit a {type_name} register") from None
    words = list(struct.unpack(f">{size}H", packed))
    return _in_order(words, word_order) if size > 1 else words
