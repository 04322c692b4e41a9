"""Heidelberg (Amperfied) Energy Control over Modbus RTU.

Docs: docs/devices/heidelberg.md (wiring, DIP switches, what works, what does not); the register map,
its units and the pure mapping are in heidelberg_api.py.

Theory
------
The box is a Modbus RTU slave on an RS485 bus (19200 baud, 8E1), often with other boxes on the same
line, each at its own DIP-switch address. The bus takes one request at a time (the shared transport's
lock), and the boxes miss frames that follow each other too closely: evcc keeps 100 ms between
requests, and so does this driver, for the whole bus (the shared transport keeps the gap between any
two requests on it: `request_gap_s`, `ModbusBus.keep_gap`).

A poll is one request: input registers 5 up to the energy counter (14 registers on layout 1.0.7 and
later): the charging state (IEC 61851 A1..C2, suffix 1 = the box does not allow charging, 2 = it
does), currents in 0.1 A, voltages, the power in VA and the energy in VAh. The probe (`start`) reads
the layout version (4) and the hardware's current range (100, 101); it writes nothing, so
`ocpp-bridge probe` leaves the box as it found it.

Energy on and off: the box has no switch of its own but its current command (261, in 0.1 A): 0 stops
charging, 60..160 allows it at 6..16 A. So `set_enabled(False)` writes 0 and `set_enabled(True)` the
limit; a limit set while energy is off is kept and written when energy is allowed again.

Once the bridge operates the box (it has set a listener) the driver writes its settings, and again
whenever the box lost them (after an absence, a reboot, a watchdog fallback): the watchdog timeout
(257, ms), standby disabled (258 = 4: with standby the box sleeps ~13 minutes after an unplug and then
no longer answers a vehicle), the remote lock open (259 = 1), the current command (261: 0 until a
transaction allows energy, so that a box without authorisation does not charge a plugged car on its
own) and the failsafe current (262). Its background job (`background()`, run by the device's
coordinator) feeds the watchdog every quarter of its timeout by reading 257..262, and writes them again
when they differ from what it wrote. A bridge that dies stops that traffic, and after the timeout the
box falls back to the failsafe current (0: stopped).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TypeVar

from adapters.base import (
    BackgroundJob,
    Charger,
    ChargerCapabilities,
    ChargerReading,
    DeviceError,
    DeviceRefused,
    DeviceUnreachable,
)
from adapters.chargers import heidelberg_api as api
from adapters.transports.modbus import ModbusBus, parse_bus_url
from adapters.transports.pool import Transports

log = logging.getLogger("adapters.heidelberg")
T = TypeVar("T")


@dataclass(frozen=True)
class HeidelbergOptions:
    """The `charger: {type: heidelberg, ...}` block."""

    type: str = "heidelberg"
    modbus: str = ""  # rtu:///dev/ttyUSB0?baudrate=19200&parity=E (or a gateway: tcp://, rtu+tcp://)
    device_id: int = api.UNIT_ID  # the box's DIP-switch address
    timeout_s: float = 1.0  # per request
    request_gap_s: float = api.REQUEST_GAP_S  # the least gap between two requests on the bus
    phases: int = 3  # phases wired to the vehicle
    min_current_a: float = 6.0
    max_current_a: float = 16.0  # capped by the hardware's maximum (register 100)
    failsafe_current_a: float = 0.0  # when the bridge falls silent: 0 stops charging, else 6..16 A
    watchdog_timeout_s: float = 15.0  # without the bridge's traffic this long, the failsafe applies

    def validate(self) -> list[tuple[str, str]]:
        """(field, problem) pairs; empty when the options make sense."""
        problems: list[tuple[str, str]] = []
        try:
            parse_bus_url(self.modbus)
        except ValueError as error:
            problems.append(("modbus", f"the RS485 bus of the box: {error}"))
        if not 1 <= self.device_id <= 247:
            problems.append(("device_id", "must be 1 to 247: the box's DIP-switch bus address"))
        if not 0.05 <= self.timeout_s <= 10:
            problems.append(("timeout_s", "must be from 0.05 to 10 seconds"))
        if not 0 <= self.request_gap_s <= 2:
            problems.append(("request_gap_s", "must be from 0 to 2 seconds (the boxes need 0.1)"))
        if self.phases not in (1, 3):
            problems.append(("phases", "must be 1 or 3"))
        if not 6 <= self.min_current_a <= self.max_current_a <= 16:
            problems.append(("min_current_a", "need 6 <= min_current_a <= max_current_a <= 16 A"))
        if self.failsafe_current_a != 0 and not 6 <= self.failsafe_current_a <= 16:
            problems.append(("failsafe_current_a", "must be 0 (stop charging) or 6 to 16 A"))
        if not 1 <= self.watchdog_timeout_s <= 65:
            problems.append(("watchdog_timeout_s", "must be 1 to 65 seconds (register 257 holds ms)"))
        elif self.watchdog_timeout_s < 4 * (self.timeout_s + self.request_gap_s) - 1e-9:
            problems.append((
                "watchdog_timeout_s",
                "must be at least 4 x (timeout_s + request_gap_s): the watchdog is fed every quarter",
            ))  # fmt: skip
        return problems


class HeidelbergCharger(Charger):
    Options = HeidelbergOptions

    def __init__(self, options: HeidelbergOptions, transports: Transports) -> None:
        super().__init__()
        self.options = options
        self._bus: ModbusBus = transports.modbus(options.modbus)
        self._bus.keep_gap(options.request_gap_s)
        self._settings_lock = asyncio.Lock()  # the feed's compare-and-rewrite against the commands
        self._layout: int | None = None  # register 4, read by the probe
        self._hw_min_a = 6
        self._hw_max_a = 16
        self._current_da = api.deciamps(options.max_current_a)  # the limit; written while enabled
        self._enabled: bool | None = None  # as the bridge last switched it; None: not yet
        self._configured = False  # the settings are written since the box last answered
        self._plugged = False  # as last read: kept through states that do not say

    # -- capabilities -----------------------------------------------------------------------------
    @property
    def capabilities(self) -> ChargerCapabilities:
        o = self.options
        low = max(o.min_current_a, float(self._hw_min_a))
        top = max(min(o.max_current_a, float(self._hw_max_a)), low)
        return ChargerCapabilities(
            can_sense_plug=True,  # states A vs B/C
            can_unlock=False,  # 259 is a lock of the box, not of the cable; the cable is tethered
            fixed_cable=True,
            can_switch_phases=False,
            can_reset=False,
            has_meter=True,  # energy in VAh, power in VA
            has_rfid=False,  # a card reader of the box, if any, is not on the Modbus map
            phases=o.phases,
            min_current_a=low,
            max_current_a=top,
            current_step_a=0.1,
        )

    @property
    def description(self) -> str:
        return f"Heidelberg #{self.options.device_id} on {self._bus.url}"

    def background(self) -> tuple[BackgroundJob, ...]:
        return (self.watchdog,)

    # -- the wire, paced --------------------------------------------------------------------------
    async def _inputs(self, first: int, count: int) -> list[int]:
        o = self.options
        return await self._bus.read_input_registers(o.device_id, first, count, timeout_s=o.timeout_s)

    async def _holding(self, first: int, count: int) -> list[int]:
        o = self.options
        return await self._bus.read_holding_registers(o.device_id, first, count, timeout_s=o.timeout_s)

    async def _write(self, first: int, values: list[int]) -> None:
        """Function code 16, as evcc writes (the box takes 06 as well)."""
        o = self.options
        await self._bus.write_registers(o.device_id, first, values, timeout_s=o.timeout_s)
        log.debug("%s: wrote %d = %s", self.description, first, values)

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._layout is None:
            (layout,) = await self._inputs(api.REG_LAYOUT, 1)
            if not 0x0100 <= layout <= 0x01FF:
                raise DeviceRefused(f"{self.description}: register layout {layout:#06x} is not a 1.x box's")
            hw_max, hw_min = await self._inputs(api.REG_HW_MAX_CURRENT, 2)
            self._layout, self._hw_max_a, self._hw_min_a = layout, hw_max, hw_min
            log.info("%s: register layout %s, hardware current %d..%d A", self.description,
                     api.layout_text(layout), hw_min, hw_max)  # fmt: skip
        if self._listener is not None and not self._configured:
            await self._configure()

    async def close(self) -> None:
        pass  # the bus is the pool's; it closes it

    # -- the settings and the watchdog ------------------------------------------------------------
    def _wanted(self) -> list[int]:
        o = self.options
        # The default limit (max_current_a) may be above what this box's hardware takes (register 100).
        current = min(self._current_da, self._hw_max_a * 10) if self._enabled else 0
        return api.settings(round(o.watchdog_timeout_s * 1000), current, api.deciamps(o.failsafe_current_a))

    async def _configure(self) -> None:
        async with self._settings_lock:
            await self._write_settings()

    async def _write_settings(self) -> None:
        wanted = self._wanted()
        # Two writes: 260 between them is reserved.
        try:
            await self._write(api.REG_WATCHDOG_MS, wanted[:3])
            await self._write(api.REG_MAX_CURRENT, wanted[4:])
        except DeviceRefused as exc:
            raise DeviceRefused(
                f"{exc} (the box refused the bridge's settings: a failsafe_current_a above its "
                f"hardware maximum of {self._hw_max_a} A?)"
            ) from None
        if not self._configured:
            log.info("%s: watchdog %g s, standby off, failsafe %g A, current %g A", self.description,
                     self.options.watchdog_timeout_s, self.options.failsafe_current_a,
                     wanted[4] / 10)  # fmt: skip
        self._configured = True

    async def watchdog(self) -> None:
        """The background job: traffic every quarter of the watchdog timeout (a read of the settings),
        and the settings written again when the box lost them. Device errors are waited out here."""
        while True:
            try:
                await self.feed()
            except DeviceUnreachable as exc:  # the polls report the outage; the feed just waits
                self._configured = False
                log.debug("%s: watchdog feed failed: %s", self.description, exc)
            except DeviceError as exc:
                self._configured = False
                log.warning("%s: watchdog feed failed: %s", self.description, exc)
            await asyncio.sleep(self.options.watchdog_timeout_s / 4)

    async def feed(self) -> None:
        """One round of the watchdog job."""
        await self.start()
        async with self._settings_lock:
            if not self._configured:
                await self._write_settings()
                return
            read = await self._holding(api.SETTINGS_FIRST, api.SETTINGS_COUNT)
            lost = api.settings_differ(self._wanted(), read)
            if lost:
                log.warning("%s: registers %s no longer hold what the bridge wrote (a reboot, the "
                            "watchdog's fallback?): written again", self.description, lost)  # fmt: skip
                await self._write_settings()

    # -- reading ----------------------------------------------------------------------------------
    async def read(self) -> ChargerReading:
        try:
            await self.start()
            layout = self._layout
            assert layout is not None
            values: dict[int, int] = {}
            for first, count in api.poll_blocks(layout):
                block = await self._inputs(first, count)
                values.update(zip(range(first, first + count), block, strict=True))
        except DeviceUnreachable:
            self._configured = False  # the box may come back rebooted: the settings are written again
            raise
        registers = api.Registers(values, layout)
        reading = api.reading_from(registers, phases=self.options.phases, plugged_before=self._plugged)
        if registers.at(api.REG_STATE) == api.STATE_F:
            self._configured = False  # evcc's remedy: standby off and the remote lock opened again
        self._plugged = bool(reading.plugged)
        return reading

    # -- commands ---------------------------------------------------------------------------------
    async def set_enabled(self, enabled: bool) -> None:
        await self.start()
        async with self._settings_lock:
            self._enabled = enabled
            await self._write(api.REG_MAX_CURRENT, [self._wanted()[4]])

    async def set_current(self, amps: float) -> None:
        caps = self.capabilities
        if not caps.min_current_a <= amps <= caps.max_current_a:
            span = f"{caps.min_current_a:g}..{caps.max_current_a:g} A"
            raise DeviceRefused(f"current {amps:g} A outside {span}")
        await self.start()
        async with self._settings_lock:
            self._current_da = api.deciamps(amps)
            if self._enabled:  # while energy is off, 261 stays 0: the limit is written at enabling
                await self._write(api.REG_MAX_CURRENT, [self._wanted()[4]])
