"""Phoenix Contact EV-CC-…-ETH (also sold inside Wallbe, ESL Walli, E3/DC Easy Connect and Compleo
boxes) and EM-CP-PP-ETH charge controllers over Modbus TCP.

Docs: docs/devices/phoenix.md (setting the box up, what works, what does not); the register map, its
units and the pure mapping are in phoenix_api.py.

Theory
------
A poll reads the IEC 61851 state letter (input 100) and the enable coil (400), and where a meter is
configured its voltages, currents and power (inputs 108..121, both models) and its energy counter: the
EM-CP-PP's input 128, the EV-CC's holding 904 (Wh), or on Wallbe's firmware its 64-bit holding 2980
(904 holds 16 bits there). Energy is switched with coil 400, the current written to the model's current
register in whole amperes, or in 0.1 A on an EV-CC running Wallbe's extended firmware: the probe reads
the current register, and a value of 60 or more there can only be tenths.

The controllers document no pacing rule and no watchdog or failsafe register: the driver sends one
request at a time (the bus's lock) and nothing more. A bridge that dies leaves the box as it was last
told (docs/devices/phoenix.md says so).

The bridge owns the decision to charge: once it operates the box (it has set a listener; `ocpp-bridge
probe` does not, and writes nothing), its first read switches the coil off unless the bridge has
switched energy already, so that a box that charges on its own does not charge a plugged car before a
transaction allows it. After the box was away it may have rebooted with its own settings, so the
first reading once it answers again writes the bridge's last current and coil state once more.

Plug sensing comes from the state letter (A: no vehicle). No register for the cable lock, phase
switching, a reset or a card reader is documented, and the capabilities say so. The meter is claimed
only when the configuration says one is wired (`meter: true`): the controller cannot tell.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from adapters.base import (
    Charger,
    ChargerCapabilities,
    ChargerReading,
    DeviceRefused,
    DeviceUnreachable,
)
from adapters.chargers import phoenix_api as api
from adapters.chargers.phoenix_api import Model, Registers
from adapters.transports.modbus import ModbusBus, TcpAddress, parse_bus_url
from adapters.transports.pool import Transports

log = logging.getLogger("adapters.phoenix")


@dataclass(frozen=True)
class PhoenixOptions:
    """The `charger: {type: phoenix, ...}` block."""

    type: str = "phoenix"
    modbus: str = ""  # tcp://HOST[:PORT] of the controller (port 502)
    model: Literal["ev-cc", "em-cp-pp"] = "ev-cc"
    device_id: int | None = None  # the model's unit id: 255 (EV-CC) or 180 (EM-CP-PP)
    timeout_s: float = 2.0  # per request
    meter: bool = False  # a meter is wired to the controller: read energy (and more on an EM-CP-PP)
    phases: int = 3  # phases wired to the vehicle
    fixed_cable: bool = False  # a tethered cable (the controller cannot tell)
    min_current_a: float = 6.0
    max_current_a: float = 16.0

    @property
    def unit_id(self) -> int:
        return self.device_id if self.device_id is not None else api.MODELS[self.model].unit_id

    def validate(self) -> list[tuple[str, str]]:
        """(field, problem) pairs; empty when the options make sense."""
        problems: list[tuple[str, str]] = []
        try:
            address = parse_bus_url(self.modbus)
        except ValueError as error:
            problems.append(("modbus", f"the controller's address, tcp://HOST[:502]: {error}"))
        else:
            if not isinstance(address, TcpAddress) or address.rtu_framing:
                problems.append(
                    ("modbus", "the Phoenix controllers speak Modbus TCP: give tcp://HOST[:PORT]")
                )
        if self.device_id is not None and not 1 <= self.device_id <= 255:
            problems.append(("device_id", "must be 1 to 255 (EV-CC: 255, EM-CP-PP: 180)"))
        if not 0.05 <= self.timeout_s <= 10:
            problems.append(("timeout_s", "must be from 0.05 to 10 seconds"))
        if self.phases not in (1, 3):
            problems.append(("phases", "must be 1 or 3"))
        if not api.CURRENT_MIN_A <= self.min_current_a <= self.max_current_a <= 80:
            problems.append(("min_current_a", "need 6 <= min_current_a <= max_current_a <= 80 A"))
        return problems


class PhoenixCharger(Charger):
    Options = PhoenixOptions

    def __init__(self, options: PhoenixOptions, transports: Transports) -> None:
        super().__init__()
        self.options = options
        self.model: Model = api.MODELS[options.model]
        self._bus: ModbusBus = transports.modbus(options.modbus)
        self._deci: bool | None = None  # the current register counts 0.1 A; None before the probe
        self._commanded = False  # energy was switched by the bridge (or taken over at the first read)
        self._enabled = False  # the coil as the bridge last switched it
        self._current: int | None = None  # the current register as the bridge last wrote it
        self._away = False  # the box did not answer: it may come back rebooted, with its own defaults

    # -- capabilities -----------------------------------------------------------------------------
    @property
    def capabilities(self) -> ChargerCapabilities:
        o = self.options
        return ChargerCapabilities(
            can_sense_plug=True,  # state A: no vehicle
            can_unlock=False,  # no documented lock register
            fixed_cable=o.fixed_cable,
            can_switch_phases=False,  # no documented register
            can_reset=False,
            has_meter=o.meter,
            has_rfid=False,  # no documented card register
            phases=o.phases,
            min_current_a=o.min_current_a,
            max_current_a=o.max_current_a,
            current_step_a=0.1 if self._deci else 1.0,
        )

    @property
    def description(self) -> str:
        address = self._bus.address
        where = f" at {address.host}" if isinstance(address, TcpAddress) else ""
        return f"{self.model.label}{where}"

    # -- the wire ---------------------------------------------------------------------------------
    async def _inputs(self, register: int, count: int) -> list[int]:
        o = self.options
        return await self._bus.read_input_registers(o.unit_id, register, count, timeout_s=o.timeout_s)

    async def _holding(self, register: int, count: int) -> list[int]:
        o = self.options
        return await self._bus.read_holding_registers(o.unit_id, register, count, timeout_s=o.timeout_s)

    async def _write(self, register: int, value: int) -> None:
        o = self.options
        await self._bus.write_register(o.unit_id, register, value, timeout_s=o.timeout_s)
        log.debug("%s: wrote %d = %d", self.description, register, value)

    async def _read_coil(self, coil: int) -> bool:
        o = self.options
        return (await self._bus.read_coils(o.unit_id, coil, 1, timeout_s=o.timeout_s))[0]

    async def _write_coil(self, coil: int, on: bool) -> None:
        o = self.options
        await self._bus.write_coil(o.unit_id, coil, on, timeout_s=o.timeout_s)
        log.debug("%s: coil %d = %s", self.description, coil, "on" if on else "off")

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._deci is not None:
            return
        letter = api.status_letter((await self._inputs(api.REG_STATUS, 1))[0])
        if letter not in "ABCDEF":
            raise DeviceRefused(
                f"{self.description}: register 100 holds no IEC 61851 state letter ({letter!r}): "
                f"not a {self.model.label} (model: {self.options.model})?"
            )
        current = (await self._holding(self.model.current_register, 1))[0]
        self._deci = self.options.model == "ev-cc" and current >= api.WALLBE_DECI_FROM
        log.info(
            "%s: state %s, current register %d (%s), meter %s",
            self.description, letter, current,
            "0.1 A steps: Wallbe firmware" if self._deci else "whole amperes",
            "configured" if self.options.meter else "not configured",
        )  # fmt: skip

    async def close(self) -> None:
        pass  # the bus is the pool's; it closes it

    # -- reading ----------------------------------------------------------------------------------
    async def read(self) -> ChargerReading:
        try:
            return await self._read_all()
        except DeviceUnreachable:
            self._away = True
            raise

    async def _read_all(self) -> ChargerReading:
        await self.start()
        if self._listener is not None:
            if not self._commanded:
                await self._switch(False)  # the box would charge a plugged car by itself
            elif self._away:
                await self._reassert()
        self._away = False
        status = (await self._inputs(api.REG_STATUS, 1))[0]
        enabled = await self._read_coil(api.COIL_ENABLE)
        registers = Registers(status, enabled)
        if self.options.meter:
            registers = await self._meter(registers)
        return api.reading_from(registers)

    async def _meter(self, r: Registers) -> Registers:
        units, phases = self.model.units, self.options.phases
        block = await self._inputs(api.REG_VOLTAGES, api.REG_POWER + 2 - api.REG_VOLTAGES)  # one request
        voltages = api.per_phase(block[0:6], units.volt, phases)
        currents = api.per_phase(block[6:12], units.amp, phases)
        power = round(api.int32_lsw(block[12:14]) * units.watt, 3)
        return Registers(r.status, r.enabled, await self._energy_wh(), power, currents, voltages)

    async def _energy_wh(self) -> float:
        """The model's energy counter in Wh. Wallbe's firmware keeps 904 to 16 bits (it would wrap at
        65535 Wh, and the bridge's register never wraps): its 64-bit 2980 is read there instead."""
        if self.model.energy_in_inputs:
            return float(api.uint32_lsw(await self._inputs(api.EM_REG_ENERGY, 2)) * 10)  # 0.01 kWh
        if self._deci:
            return float(api.uint64_lsw(await self._holding(api.WALLBE_REG_ENERGY, 4)))
        return float(api.uint32_lsw(await self._holding(api.EV_CC_REG_ENERGY, 2)))

    # -- commands ---------------------------------------------------------------------------------
    async def set_enabled(self, enabled: bool) -> None:
        await self.start()
        await self._switch(enabled)

    async def _switch(self, enabled: bool) -> None:
        self._commanded, self._enabled = True, enabled  # the bridge's word from now on
        await self._write_coil(api.COIL_ENABLE, enabled)

    async def _reassert(self) -> None:
        """The bridge's last word again after an absence: a rebooted box starts from its own settings
        (coil 400 on: it would charge with no transaction), and nothing says whether it rebooted."""
        if self._current is not None:
            await self._write(self.model.current_register, self._current)
        await self._write_coil(api.COIL_ENABLE, self._enabled)
        log.info("%s: answers again; energy %s", self.description, "on" if self._enabled else "off")

    async def set_current(self, amps: float) -> None:
        # The caller keeps to the capabilities' 6..max_current_a; a box set to allow less answers
        # exception 3, which the transport raises as DeviceRefused.
        await self.start()
        value = api.current_value(amps, bool(self._deci))
        try:
            await self._write(self.model.current_register, value)
        except DeviceUnreachable:
            self._current = value  # the bridge's word, written again once the box answers
            raise
        self._current = value
