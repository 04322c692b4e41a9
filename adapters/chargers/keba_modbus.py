"""KEBA KeContact P30 c-series / x-series and P40 over Modbus TCP.

Docs: docs/devices/keba-modbus.md (enabling Modbus on the box, what works, what does not); the register
map, its units and the pure mapping are in keba_modbus_api.py.

Theory
------
The box answers function code 03 for one UINT32 at a time (two registers, high word first) and 06 for
one UINT16; it asks for pacing: reads at least 0.5 s apart, writes at least 5 s apart. So this driver
keeps its own two clocks and waits, and a poll reads only what it needs: the charging state, the cable
state, power and energy where there is a meter, the error code only in the error state, per-phase
currents and voltages only while charging, the card register only where there is a reader. A poll
costs 4 to 11 reads, 1.5 s to 5 s at the guide's pacing.

The product code (1016), read at the probe, says P30 or P40, a tethered cable or a socket, whether
there is a meter and a card reader; register 1550 says whether phase switching is given to Modbus.

Energy: a P30 is enabled and suspended with 5014 (1/0). The P40 guide marks 5014 as "a future
software update", so a P40 is suspended by 5004 = 0 and enabled by writing the current again.

The bridge owns the decision to charge: once it operates the box (it has set a listener; `ocpp-bridge
probe` does not, and writes nothing), the first read suspends the box unless the bridge has switched
energy already, so that a box without authorisation does not charge a plugged car on its own before a
transaction allows it.

Failsafe: at that first read the driver also writes the failsafe current (5016) and timeout (5018),
and 5020 = 1 so that they survive a reboot; then 5018 is written again every half timeout while the
bridge polls. After the box was away they are all written again (it may have rebooted). A
bridge that dies stops those writes, and after the timeout the box falls back to the failsafe current
(0: suspended).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from adapters.base import (
    Charger,
    ChargerCapabilities,
    ChargerReading,
    DeviceRefused,
    DeviceUnreachable,
    NotSupportedByDevice,
    TagPresented,
)
from adapters.chargers import keba_modbus_api as api
from adapters.chargers.keba_modbus_api import ProductCode, Registers
from adapters.transports.modbus import ModbusBus, TcpAddress, parse_bus_url
from adapters.transports.pool import Transports

log = logging.getLogger("adapters.keba_modbus")


@dataclass(frozen=True)
class KebaModbusOptions:
    """The `charger: {type: keba-modbus, ...}` block."""

    type: str = "keba-modbus"
    modbus: str = ""  # tcp://HOST[:PORT] of the wallbox (port 502)
    device_id: int = api.UNIT_ID  # the guides' unit id, 255
    timeout_s: float = 2.0  # per request
    read_interval_s: float = 0.5  # the guide's least gap between two reads
    write_interval_s: float = 5.0  # the guide's least gap between two writes
    phases: int = 3  # phases wired to the vehicle
    min_current_a: float = 6.0
    max_current_a: float = 16.0  # capped by what the box reports it supports (1110)
    failsafe_current_a: float = 0.0  # when the bridge falls silent: 0 suspends, else 6..32 A
    failsafe_timeout_s: int = 30  # 5..600 s without the bridge's refresh
    failsafe_persist: bool = True  # keep the failsafe settings across a reboot of the box (5020)

    def validate(self) -> list[tuple[str, str]]:
        """(field, problem) pairs; empty when the options make sense."""
        problems: list[tuple[str, str]] = []
        try:
            address = parse_bus_url(self.modbus)
        except ValueError as error:
            problems.append(("modbus", f"the wallbox's address, tcp://HOST[:502]: {error}"))
        else:
            if not isinstance(address, TcpAddress) or address.rtu_framing:
                problems.append(("modbus", "KEBA speaks Modbus TCP: give tcp://HOST[:PORT]"))
        if not 1 <= self.device_id <= 255:
            problems.append(("device_id", "must be 1 to 255 (KEBA's guides fix it at 255)"))
        if not 0.05 <= self.timeout_s <= 10:
            problems.append(("timeout_s", "must be from 0.05 to 10 seconds"))
        if not 0 <= self.read_interval_s <= 10 or not 0 <= self.write_interval_s <= 60:
            problems.append((
                "read_interval_s",
                "read_interval_s must be 0..10 s and write_interval_s 0..60 s (the guide: 0.5 and 5)",
            ))  # fmt: skip
        if self.phases not in (1, 3):
            problems.append(("phases", "must be 1 or 3"))
        if not 6 <= self.min_current_a <= self.max_current_a <= 63:
            problems.append(("min_current_a", "need 6 <= min_current_a <= max_current_a <= 63 A"))
        if self.failsafe_current_a != 0 and not 6 <= self.failsafe_current_a <= 32:
            problems.append(("failsafe_current_a", "must be 0 (suspend) or 6 to 32 A"))
        low, high = api.FAILSAFE_TIMEOUT_RANGE_S
        if not low <= self.failsafe_timeout_s <= high:
            problems.append(("failsafe_timeout_s", f"must be {low} to {high} seconds"))
        elif self.failsafe_timeout_s < 2 * self.write_interval_s:
            problems.append((
                "failsafe_timeout_s",
                "must be at least twice write_interval_s: the bridge refreshes it every half timeout",
            ))  # fmt: skip
        return problems


class KebaModbusCharger(Charger):
    Options = KebaModbusOptions

    def __init__(self, options: KebaModbusOptions, transports: Transports) -> None:
        super().__init__()
        self.options = options
        self._bus: ModbusBus = transports.modbus(options.modbus)
        self._lock = asyncio.Lock()  # one request of this box at a time, paced
        self._last_read = -1e9
        self._last_write = -1e9
        self._product: ProductCode | None = None
        self._energy_unit = 0.1
        self._supported_ma: int | None = None
        self._phase_switching = False
        self._failsafe_at: float | None = None  # loop time of the last failsafe timeout write
        self._current_ma = api.milliamps(options.max_current_a)  # what enabling a P40 writes
        self._rfid: int | None = None  # the card register as last read; None before the first read
        self._enabled: bool | None = None  # as the bridge last switched it
        self._commanded = False  # energy was switched by the bridge (or taken over at the first read)

    # -- capabilities -----------------------------------------------------------------------------
    @property
    def capabilities(self) -> ChargerCapabilities:
        o, p = self.options, self._product
        top = o.max_current_a
        if p is not None:
            top = min(top, p.max_current_ma / 1000)
        if self._supported_ma:
            top = min(top, self._supported_ma / 1000)
        return ChargerCapabilities(
            can_sense_plug=True,
            can_unlock=p is not None and not p.fixed_cable,
            fixed_cable=p is not None and p.fixed_cable,
            can_switch_phases=self._phase_switching,
            can_reset=False,  # no documented reboot register
            has_meter=p is None or p.has_meter,
            has_rfid=p is not None and p.has_rfid,
            phases=o.phases,
            min_current_a=o.min_current_a,
            max_current_a=max(top, o.min_current_a),
            current_step_a=0.001,  # the box takes mA
        )

    @property
    def description(self) -> str:
        address = self._bus.address
        return f"KEBA at {address.host}" if isinstance(address, TcpAddress) else "KEBA"

    # -- the wire, paced --------------------------------------------------------------------------
    async def _read(self, register: int) -> int:
        async with self._lock:
            await self._pace(self._last_read, self.options.read_interval_s)
            try:
                registers = await self._bus.read_holding_registers(
                    self.options.device_id, register, api.READ_COUNT, timeout_s=self.options.timeout_s
                )
            finally:
                self._last_read = asyncio.get_running_loop().time()
        return api.uint32(registers)

    async def _write(self, register: int, value: int) -> None:
        async with self._lock:
            await self._pace(self._last_write, self.options.write_interval_s)
            try:
                await self._bus.write_register(
                    self.options.device_id, register, value, timeout_s=self.options.timeout_s
                )
            finally:
                self._last_write = asyncio.get_running_loop().time()
        log.debug("%s: wrote %d = %d", self.description, register, value)

    @staticmethod
    async def _pace(last: float, gap_s: float) -> None:
        wait = last + gap_s - asyncio.get_running_loop().time()
        if wait > 0:
            await asyncio.sleep(wait)

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._product is not None:
            return
        code = await self._read(api.REG_PRODUCT)
        try:
            product = ProductCode.parse(code)
        except ValueError as exc:
            raise DeviceRefused(f"not a KEBA P30/P40: {exc}") from None
        firmware = await self._read(api.REG_FIRMWARE)
        self._energy_unit = api.energy_unit_wh(product.family, firmware)
        self._supported_ma = await self._read(api.REG_MAX_SUPPORTED) or None
        self._phase_switching = await self._read(api.REG_PHASE_SOURCE) == api.PHASE_SOURCE_MODBUS
        self._product = product
        log.info(
            "%s: product %d, firmware %s, %s, meter %s, card reader %s, phase switching %s",
            self.description, code, api.firmware_text(product.family, firmware),
            "tethered cable" if product.fixed_cable else "socket",
            "yes" if product.has_meter else "no", "yes" if product.has_rfid else "no",
            "by Modbus" if self._phase_switching else "not given to Modbus (1550)",
        )  # fmt: skip

    async def close(self) -> None:
        pass  # the bus is the pool's; it closes it

    # -- reading ----------------------------------------------------------------------------------
    async def read(self) -> ChargerReading:
        try:
            return await self._read_all()
        except DeviceUnreachable:
            self._failsafe_at = None  # the box may come back rebooted: its failsafe is written again
            raise

    async def _read_all(self) -> ChargerReading:
        await self.start()
        product = self._product
        assert product is not None
        if self._listener is not None:
            if not self._commanded:
                await self._switch(False)  # the box's own logic would charge a plugged car by itself
            await self._keep_failsafe()
        state = await self._read(api.REG_STATE)
        cable = await self._read(api.REG_CABLE)
        error = await self._read(api.REG_ERROR) if state == api.STATE_ERROR else None
        power = energy = currents = voltages = None
        if product.has_meter:
            power = await self._read(api.REG_POWER)
            energy = await self._read(api.REG_ENERGY)
            if state == api.STATE_CHARGING:
                currents = tuple([await self._read(r) for r in api.REG_CURRENTS])
                voltages = tuple([await self._read(r) for r in api.REG_VOLTAGES])
        if product.has_rfid:
            await self._check_card(await self._read(api.REG_RFID))
        registers = Registers(state, cable, error, power, energy, currents, voltages)
        return api.reading_from(registers, energy_unit=self._energy_unit, phases=self.options.phases)

    async def _check_card(self, uid: int) -> None:
        # The first read only learns the register: a card of a session older than the bridge's start
        # (a restart mid-transaction) is no tap, and taken as one it would stop that transaction.
        seen, self._rfid = self._rfid, uid
        if seen is not None and uid and uid != seen:
            self._emit(TagPresented(f"{uid:08X}"))

    async def _keep_failsafe(self) -> None:
        """The failsafe settings at the first read of an operated box, then the timeout every half."""
        o = self.options
        now = asyncio.get_running_loop().time()
        if self._failsafe_at is None:
            await self._write(api.REG_SET_FAILSAFE_CURRENT, api.milliamps(o.failsafe_current_a))
            await self._write(api.REG_SET_FAILSAFE_TIMEOUT, o.failsafe_timeout_s)
            if o.failsafe_persist:
                await self._write(api.REG_FAILSAFE_PERSIST, 1)
            log.info("%s: failsafe %g A after %d s without the bridge", self.description,
                     o.failsafe_current_a, o.failsafe_timeout_s)  # fmt: skip
        elif now - self._failsafe_at < o.failsafe_timeout_s / 2:
            return
        else:
            await self._write(api.REG_SET_FAILSAFE_TIMEOUT, o.failsafe_timeout_s)
        self._failsafe_at = now

    # -- commands ---------------------------------------------------------------------------------
    async def set_enabled(self, enabled: bool) -> None:
        await self.start()
        await self._switch(enabled)

    async def _switch(self, enabled: bool) -> None:
        self._commanded, self._enabled = True, enabled  # the bridge's word from now on
        assert self._product is not None
        if self._product.family == "P40":  # 5014 is "a future software update" there
            await self._write(api.REG_SET_CURRENT, self._current_ma if enabled else 0)
        else:
            await self._write(api.REG_ENABLE, 1 if enabled else 0)

    async def set_current(self, amps: float) -> None:
        caps = self.capabilities
        if not caps.min_current_a <= amps <= caps.max_current_a:
            span = f"{caps.min_current_a:g}..{caps.max_current_a:g} A"
            raise DeviceRefused(f"current {amps:g} A outside {span}")
        await self.start()
        assert self._product is not None
        self._current_ma = api.milliamps(amps)
        if self._product.family == "P40" and self._enabled is False:
            return  # 5004 is a P40's on/off too: the current is written when energy is allowed again
        await self._write(api.REG_SET_CURRENT, self._current_ma)

    async def set_phases(self, phases: int) -> None:
        await self.start()
        if not self._phase_switching:
            raise NotSupportedByDevice(
                "phase switching is not given to Modbus on this box (1550 is not 3): set the source to "
                "Modbus in its web interface, or on a c-series write 5050 = 3 (a P30 needs a KeContact S10)"
            )
        if phases not in (1, 3):
            raise DeviceRefused(f"KEBA switches between 1 and 3 phases, not {phases}")
        await self._write(api.REG_SWITCH_PHASES, 0 if phases == 1 else 1)

    async def unlock(self) -> None:
        await self.start()
        assert self._product is not None
        if self._product.fixed_cable:
            raise NotSupportedByDevice("this KEBA has a tethered cable: nothing to unlock")
        await self._write(api.REG_UNLOCK, 0)  # only while suspended: the device refuses otherwise
