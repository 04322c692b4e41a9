"""The RDM6300's serial frames, parsed from a byte stream (pure: no I/O, no clock).

The module (125 kHz, EM4100 read-only tags) only sends, at 9600 baud 8N1, one 14-byte frame per read:

    0x02 (STX) | 10 ASCII hex chars: 1 version byte + 4 id bytes | 2 ASCII hex chars: checksum | 0x03 (ETX)

The checksum is the XOR of the 5 data bytes: `02 "67003B51C6" "CB" 03` carries 0x67^0x00^0x3B^0x51^0xC6
= 0xCB, tag id 0x003B51C6 (devices.md §11.1). The stream has no other structure, so the parser hunts
for STX: bytes outside a frame (line noise at power-up, a frame cut at its start) are skipped; a
frame with a bad checksum, a non-hex char or no ETX at its end is dropped and named; an STX inside a
frame (one cut short) drops what came before and starts the next frame there.

The idTag: `id_tag(data, "hex")` is the 10 hex chars as sent (upper case, version byte first);
`"decimal"` is the decimal of the 4 id bytes zero-padded to 10 digits, the number printed on most
fobs and cards (`0003887558` above). Both fit OCPP's 20-character idTag.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

STX = 0x02
ETX = 0x03
DATA_CHARS = 10  # 5 bytes as hex: version/customer byte + 4-byte tag id
CHECKSUM_CHARS = 2
FRAME_BYTES = 1 + DATA_CHARS + CHECKSUM_CHARS + 1  # 14
_HEX = frozenset(b"0123456789ABCDEFabcdef")

IdFormat = Literal["hex", "decimal"]


@dataclass(frozen=True)
class Frame:
    """A frame whose checksum matched: its 10 hex data chars, upper case."""

    data: str


@dataclass(frozen=True)
class Dropped:
    """A frame that was not taken: what was wrong, and its bytes (for the log)."""

    reason: str
    raw: bytes


Parsed = Frame | Dropped


def checksum(data: str) -> int:
    """XOR of the 5 bytes written as 10 hex chars."""
    value = 0
    for i in range(0, DATA_CHARS, 2):
        value ^= int(data[i : i + 2], 16)
    return value


def encode(data: str, check: int | None = None) -> bytes:
    """A frame as a module sends it (for tests and emulators); `check` overrides the checksum."""
    check = checksum(data) if check is None else check
    return bytes([STX]) + f"{data.upper()}{check:02X}".encode("ascii") + bytes([ETX])


def id_tag(data: str, id_format: IdFormat) -> str:
    """The idTag of a frame's data: its 10 hex chars, or the decimal of the 4 id bytes (10 digits)."""
    if id_format == "hex":
        return data.upper()
    return f"{int(data[2:], 16):010d}"


class FrameParser:
    """Feed it the bytes as they arrive, in pieces of any size; it returns what each piece completed."""

    def __init__(self) -> None:
        self._frame: bytearray | None = None  # bytes since the last STX, None while hunting for one

    def feed(self, chunk: bytes) -> list[Parsed]:
        out: list[Parsed] = []
        for byte in chunk:
            frame = self._frame
            if frame is None:
                if byte == STX:
                    self._frame = bytearray([byte])
                continue  # noise between frames
            if byte == STX:  # a frame cut short: resynchronise at this one
                out.append(Dropped(f"cut short after {len(frame) - 1} of 13 bytes", bytes(frame)))
                self._frame = bytearray([byte])
                continue
            frame.append(byte)
            if len(frame) == FRAME_BYTES:
                out.append(_decode(bytes(frame)))
                self._frame = None
        return out


def _decode(raw: bytes) -> Parsed:
    body = raw[1:-1]
    if raw[-1] != ETX:
        return Dropped(f"no ETX at byte 14 (0x{raw[-1]:02x})", raw)
    if not all(b in _HEX for b in body):
        return Dropped("a char that is not hex", raw)
    text = body.decode("ascii").upper()
    data, sent = text[:DATA_CHARS], int(text[DATA_CHARS:], 16)
    computed = checksum(data)
    if computed != sent:
        return Dropped(f"checksum {sent:02X} sent, {computed:02X} computed", raw)
    return Frame(data)
