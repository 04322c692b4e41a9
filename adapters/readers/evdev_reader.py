"""A USB keyboard-wedge card reader, read through Linux's input devices with `evdev` (devices.md §11.3).

The reader is a USB keyboard that types each card's number and Enter; what it types is decoded by
`wedge_keys`. The device is named by its stable link, /dev/input/by-id/usb-<vendor>_<product>-event-kbd
(eventN changes on re-plug, the link does not). The job grabs the device (EVIOCGRAB) while it reads,
so the keystrokes go to no console, getty or desktop.

`evdev` (python-evdev) is an optional dependency, `pip install 'ocpp-bridge[readers]'`: it is built
from source (a compiler and kernel headers) and is Linux only. This module imports it only in the job
that reads; a configuration that names this reader without it installed fails `check` with that
advice. The service needs the `input` group (systemd/ocpp-bridge.service) to open the device.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import logging
from dataclasses import dataclass
from typing import Any

from adapters.base import BackgroundJob, CardReader, DeviceUnreachable
from adapters.readers.device_path import appeared
from adapters.readers.wedge_keys import ID_TAG_MAX, Chars, EndsWith, WedgeTaps

log = logging.getLogger("adapters.evdev_reader")

EV_KEY = 1  # linux/input-event-codes.h
DEVICE_WAIT_S = 5.0  # a device that is not there (not plugged in) is looked for this often
INSTALL_HINT = "install ocpp-bridge[readers] (pip install 'ocpp-bridge[readers]', which builds python-evdev)"


def evdev_missing() -> str | None:
    """What to do when the evdev package is not installed, else None."""
    if importlib.util.find_spec("evdev") is None:
        return f"the evdev card reader needs the evdev package: {INSTALL_HINT}"
    return None


@dataclass(frozen=True)
class EvdevOptions:
    """The `card_reader: {type: evdev, ...}` block."""

    type: str = "evdev"
    device: str | None = None  # /dev/input/by-id/usb-...-event-kbd
    chars: Chars = "digits"  # what a number is typed with: "digits", or "hex" (0-9 and A-F)
    ends_with: EndsWith = "enter"  # "enter", or "any" key that is not part of a number
    grab: bool = True  # take the device for this reader alone (EVIOCGRAB): no console sees the keys
    hold_s: float = 2.0  # the same card read again within this long of its last read is one tap

    def validate(self) -> list[tuple[str, str]]:
        """(field, problem) pairs; empty when the options make sense."""
        problems: list[tuple[str, str]] = []
        if (missing := evdev_missing()) is not None:
            problems.append(("type", missing))
        if not self.device:
            problems.append(("device", "needs device: the reader's /dev/input/by-id/usb-...-event-kbd link"))
        elif not self.device.startswith("/"):
            problems.append(("device", f"{self.device!r} is not a path; give its /dev/input/by-id/... link"))
        if not 0 <= self.hold_s <= 60:
            problems.append(("hold_s", "must be from 0 to 60 seconds"))
        return problems


class EvdevReader(CardReader):
    Options = EvdevOptions

    def __init__(self, options: EvdevOptions) -> None:
        super().__init__()
        if options.device is None:
            raise ValueError("an evdev reader needs its device")
        self.device = options.device
        self.options = options
        self.device_wait_s = DEVICE_WAIT_S

    @property
    def description(self) -> str:
        return f"card reader {self.device}"

    async def start(self) -> None:
        if (missing := evdev_missing()) is not None:
            raise DeviceUnreachable(missing)

    def background(self) -> tuple[BackgroundJob, ...]:
        return (self._listen,)

    async def _listen(self) -> None:
        """Read the device's key events until it goes away; each number typed is handed to `_typed`."""
        evdev: Any = importlib.import_module("evdev")
        loop = asyncio.get_running_loop()
        await appeared(self.device, self.description, "is the reader plugged in?", self.device_wait_s, log)
        try:
            device = evdev.InputDevice(self.device)
        except OSError as exc:
            hint = " (is the service in the input group?)" if isinstance(exc, PermissionError) else ""
            raise DeviceUnreachable(f"cannot open {self.device}: {exc.strerror or exc}{hint}") from exc
        try:
            if self.options.grab:
                try:
                    device.grab()
                except OSError as exc:  # EBUSY: another program holds it
                    why = exc.strerror or exc
                    raise DeviceUnreachable(f"cannot take {self.device} for itself: {why}") from exc
            options = self.options
            taps = WedgeTaps(options.chars, options.ends_with, options.hold_s)
            log.info("%s: listening (%s)", self.description, device.name)
            async for event in device.async_read_loop():
                if event.type != EV_KEY:
                    continue
                overlong = taps.overlong
                tag = taps.key(event.code, event.value, loop.time())
                if taps.overlong > overlong:
                    log.warning("%s: a number longer than an idTag (%d characters) was typed: ignored",
                                self.description, ID_TAG_MAX)  # fmt: skip
                if tag is not None:
                    log.info("%s: card %s", self.description, tag)
                    self._tapped(tag)
        except OSError as exc:  # ENODEV: unplugged
            raise DeviceUnreachable(f"{self.device}: {exc.strerror or exc}") from exc
        finally:
            device.close()  # also lets go of the grab
