"""An RDM6300 125 kHz card reader on a serial port (devices.md §11.1; python-rdm6300, arduino12/rdm6300).

The module only sends: 9600 baud 8N1, one 14-byte frame per read of a tag, repeated about every
65 ms while the tag stays in the field (the frames and the idTag forms: `rdm6300_frames`). On a
Raspberry Pi its TX goes to the UART's RX through a divider to 3.3 V (docs/devices/card-readers.md).

Reading never blocks the event loop: pyserial (a dependency already, through pymodbus[serial]) opens
and configures the port with O_NONBLOCK and an exclusive lock, and the loop's `add_reader` reads what
arrives. The port is opened by the background job, not by `start`, so the charger beside the reader stays
usable without it: a port that is not there is waited for (one log line), a port that goes away (a
USB adapter pulled) ends the job, which the coordinator starts again, and a port that cannot be
opened (permissions, held by another program) is logged and tried again every few seconds.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from typing import Any

from adapters.base import BackgroundJob, CardReader, DeviceUnreachable
from adapters.readers.device_path import appeared
from adapters.readers.rdm6300_frames import Dropped, FrameParser, IdFormat, id_tag
from adapters.readers.taps import Debouncer

log = logging.getLogger("adapters.rdm6300")

BAUDRATE = 9600  # fixed by the module
READ_CHUNK = 256  # bytes per read; a frame is 14
DROPPED_LOG_EVERY_S = 60.0  # a bad frame is logged, then at most one line a minute with a count
PORT_WAIT_S = 5.0  # a port that is not there is looked for this often


@dataclass(frozen=True)
class Rdm6300Options:
    """The `card_reader: {type: rdm6300, ...}` block."""

    type: str = "rdm6300"
    port: str | None = None  # the serial device, e.g. /dev/ttyAMA0, /dev/serial0, /dev/ttyUSB0
    id_format: IdFormat = "hex"  # "hex": the 10 hex chars; "decimal": the 4 id bytes as 10 digits
    hold_s: float = 2.0  # the same card seen again within this long of its last frame is one tap

    def validate(self) -> list[tuple[str, str]]:
        """(field, problem) pairs; empty when the options make sense."""
        problems: list[tuple[str, str]] = []
        if not self.port:
            problems.append(("port", "needs port: the serial device of the reader, e.g. /dev/ttyAMA0"))
        elif not self.port.startswith("/"):
            problems.append(("port", f"{self.port!r} is not a device path; give one like /dev/ttyAMA0"))
        if not 0.1 <= self.hold_s <= 60:
            problems.append(("hold_s", "must be from 0.1 to 60 seconds (frames repeat every ~65 ms)"))
        return problems


class Rdm6300Reader(CardReader):
    Options = Rdm6300Options

    def __init__(self, options: Rdm6300Options) -> None:
        super().__init__()
        if options.port is None:
            raise ValueError("an RDM6300 reader needs its port")
        self.port = options.port
        self.options = options
        self._debouncer = Debouncer(options.hold_s)
        self.dropped = 0  # frames not taken since the reader was made (bad checksum, torn, not hex)
        self._dropped_logged_at: float | None = None
        self._dropped_unlogged = 0
        self.port_wait_s = PORT_WAIT_S

    @property
    def description(self) -> str:
        return f"RDM6300 on {self.port}"

    def background(self) -> tuple[BackgroundJob, ...]:
        return (self._listen,)

    async def _listen(self) -> None:
        """Read the port until it fails; every completed frame is handed to `_frame_parsed`."""
        loop = asyncio.get_running_loop()
        hint = "is the reader wired and the UART enabled? ls -l /dev/serial*"
        await appeared(self.port, self.description, hint, self.port_wait_s, log)
        port = _open(self.port)
        parser = FrameParser()  # a new port, a new stream: no half frame carried over
        failed: asyncio.Future[None] = loop.create_future()
        fd = port.fileno()

        def readable() -> None:
            try:
                chunk = os.read(fd, READ_CHUNK)
            except BlockingIOError:
                return
            except OSError as exc:  # EIO: the adapter was pulled, or the other end of a pty closed
                if not failed.done():
                    failed.set_exception(DeviceUnreachable(f"{self.description}: {exc.strerror or exc}"))
                loop.remove_reader(fd)
                return
            if not chunk:
                if not failed.done():
                    failed.set_exception(DeviceUnreachable(f"{self.description}: the port was closed"))
                loop.remove_reader(fd)
                return
            now = loop.time()
            for parsed in parser.feed(chunk):
                if isinstance(parsed, Dropped):
                    self._frame_dropped(parsed, now)
                else:
                    self._data_read(parsed.data, now)

        loop.add_reader(fd, readable)
        log.info("%s: listening", self.description)
        try:
            await failed
        finally:
            loop.remove_reader(fd)
            port.close()

    def _data_read(self, data: str, now: float) -> None:
        tag = id_tag(data, self.options.id_format)
        if self._debouncer.seen(tag, now):
            log.info("%s: card %s", self.description, tag)
            self._tapped(tag)

    def _frame_dropped(self, dropped: Dropped, now: float) -> None:
        self.dropped += 1
        self._dropped_unlogged += 1
        last = self._dropped_logged_at
        if last is None or now - last >= DROPPED_LOG_EVERY_S:
            log.warning(
                "%s: frame dropped (%s): %s; %d dropped since the last such line",
                self.description, dropped.reason, dropped.raw.hex(" "), self._dropped_unlogged,
            )  # fmt: skip
            self._dropped_logged_at, self._dropped_unlogged = now, 0


def _open(path: str) -> Any:
    """The port opened non-blocking at 9600 8N1, locked against a second user; DeviceUnreachable if not."""
    import serial  # pyserial, through pymodbus[serial]; imported by the one job that needs it

    try:
        # timeout=0: pyserial's own reads would not block either; ours are os.read on readable.
        return serial.Serial(path, BAUDRATE, bytesize=8, parity="N", stopbits=1, timeout=0, exclusive=True)
    except (serial.SerialException, OSError) as exc:
        hint = " (is the service in the dialout group?)" if "Permission denied" in str(exc) else ""
        raise DeviceUnreachable(f"cannot open {path}: {exc}{hint}") from exc
