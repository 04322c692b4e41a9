"""The generic device's drivers: `GenericCharger` and `GenericMeter`, built from the sources of their
configuration (docs/devices/generic.md).

Theory: what the device can do follows from what is configured. A reading reads every source (those on
different connections at the same time, one request per distinct HTTP request), runs each value's
pipeline and puts the reading together; what the sources do not give is derived where it can be (the
plug and the vehicle's request from the IEC 61851 status) and left unknown where it cannot. A charger
without `write.current` is a switch, declared as the relay drivers declare it (adapters/chargers/
relay.py): min = max = its own current, any other current refused. A charger without a plug source
(only `enabled`) cannot sense the plug, and the bridge infers it as for a relay. A charger without
`write.enable` is report only (`can_switch_energy` False): the device decides when energy flows, and
the bridge never asks it to switch (docs/protocol.md, "Report-only chargers").

The card reader: a new non-empty `id_tag` value is a card presented. The value at the first reading is
learnt, not taken for a tap (after a restart it would be the card of the session going on).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

from adapters.base import (
    ID_TAG_MAX,
    Charger,
    ChargerCapabilities,
    ChargerReading,
    DeviceRefused,
    Fault,
    FaultKind,
    Meter,
    MeterReading,
    NotSupportedByDevice,
    StateChanged,
    TagPresented,
)
from adapters.generic.expression import Value
from adapters.generic.options import (
    NO_SOURCE,
    READ_KINDS,
    WRITE_KINDS,
    ChargerRead,
    GenericChargerOptions,
    GenericMeterOptions,
    MeterRead,
    Source,
    read_sources,
)
from adapters.generic.pipeline import Pipeline, PipelineError, as_text
from adapters.generic.sources import (
    Clock,
    MqttReader,
    OnChange,
    Reader,
    Writer,
    fetch_all,
    reader_of,
    writer_of,
)
from adapters.transports.pool import Transports
from adapters.transports.urls import without_password

NO_ERROR = frozenset({"", "0", "false", "null", "none", "ok"})
CONFIRM_S = 2.0  # how long a switch waits for an MQTT state topic to show it
FIRST_MESSAGE_S = 2.0  # how long start() waits for MQTT topics' first (retained) messages


@dataclass(frozen=True)
class _Value:
    capability: str
    kind: str  # number | bool | text | status
    reader: Reader
    pipeline: Pipeline

    def convert(self, raw: Any) -> Any:
        if self.kind == "number":
            return self.pipeline.number(raw)
        if self.kind == "bool":
            return self.pipeline.boolean(raw)
        if self.kind == "status":
            return self.pipeline.status(raw)
        return self.pipeline.text(raw)


def _where(source: Source) -> str:
    if source.kind == "http":
        return f"{urllib.parse.urlsplit(source.http.url).hostname}"
    if source.kind == "modbus":
        return f"unit {source.modbus.unit} on {source.modbus.url}"
    if source.kind == "mqtt":
        return source.mqtt.topic
    return "constants"


class _Values:
    """The values of one device's reads: their readers and pipelines, read together."""

    def __init__(
        self, read: ChargerRead | MeterRead, transports: Transports, clock: Clock, join: bool
    ) -> None:
        self.join = join  # registers that follow each other in one request
        self.values: list[_Value] = []
        readers: dict[Any, Reader] = {}
        self.first_source: Source | None = None
        for _path, capability, source in read_sources(read):
            kind, family = READ_KINDS[capability]
            reader = reader_of(source, transports, clock)
            reader = readers.setdefault(reader.key, reader)  # one subscription per topic
            pipeline = source.pipeline(family if kind == "number" else None)
            self.values.append(_Value(capability, kind, reader, pipeline))
            if self.first_source is None and source.kind != "const":
                self.first_source = source
        self.readers = list(readers.values())

    async def start(self, on_change: OnChange) -> None:
        for reader in self.readers:
            await reader.start(on_change)
        mqtt = [r.heard.wait() for r in self.readers if isinstance(r, MqttReader)]
        if mqtt:  # retained messages arrive right after the subscription: give them a moment
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FIRST_MESSAGE_S):
                    await asyncio.gather(*mqtt)

    async def close(self) -> None:
        for reader in self.readers:
            await reader.close()

    async def read(self) -> dict[str, Any]:
        """capability -> value (a list for currents and voltages); DeviceRefused naming the value the
        pipeline could not make sense of."""
        raws = await fetch_all([v.reader for v in self.values], self.join)
        found: dict[str, Any] = {}
        for value, raw in zip(self.values, raws, strict=True):
            try:
                converted = value.convert(raw)
            except PipelineError as error:
                raise DeviceRefused(f"{value.capability}: {error}") from None
            except (ValueError, ArithmeticError, RecursionError) as error:
                # A backstop: data the pipeline's own checks missed ends this reading, never the charge
                # point (the pipeline names the value; this says only what broke).
                raise DeviceRefused(
                    f"{value.capability}: the device's value cannot be read ({type(error).__name__})"
                ) from None
            if value.capability in ("currents", "voltages"):
                found.setdefault(value.capability, []).append(converted)
            else:
                found[value.capability] = converted
        return found


def _name(options_name: str | None, kind: str, first: Source | None) -> str:
    """The device's description: it reaches log lines, the status API, `probe` and the central system
    (a Faulted StatusNotification's info), so a URL's password in it is masked, whoever wrote it."""
    if options_name:
        return without_password(options_name)
    return f"generic {kind} at {_where(first)}" if first is not None else f"generic {kind}"


def _phases(values: list[float] | None) -> tuple[float, ...] | None:
    return None if values is None else tuple(values)


class GenericCharger(Charger):
    Options = GenericChargerOptions

    def __init__(
        self, options: GenericChargerOptions, transports: Transports, clock: Clock = time.monotonic
    ) -> None:
        super().__init__()
        self.options = options
        self._values = _Values(options.read, transports, clock, options.join_registers)
        self._writers: dict[str, tuple[Writer, Pipeline]] = {}
        for name, (kind, family) in WRITE_KINDS.items():
            source: Source = getattr(options.write, name)
            if source is not NO_SOURCE:
                pipeline = source.pipeline(family if kind == "number" else None)
                self._writers[name] = (writer_of(source, transports), pipeline)
        r = options.read
        self._senses_plug = r.status is not NO_SOURCE or r.plugged is not NO_SOURCE
        self._enabled_written: bool | None = None
        self._current_written: float | None = None
        self._id_tag: str | None = None
        self._tag_learnt = False
        self._plugged = False

    @property
    def description(self) -> str:
        return _name(self.options.name, "charger", self._values.first_source)

    @property
    def capabilities(self) -> ChargerCapabilities:
        o = self.options
        settable = "current" in self._writers
        return ChargerCapabilities(
            can_sense_plug=self._senses_plug,
            can_unlock=False,
            fixed_cable=False,
            can_switch_phases="phases" in self._writers,
            can_reset=False,
            has_meter=o.read.energy_wh is not NO_SOURCE,
            has_rfid=o.read.id_tag is not NO_SOURCE,
            phases=o.phases,
            # a switch offers its own current, nothing in between (as relay.py declares it)
            min_current_a=o.min_current_a if settable else o.max_current_a,
            max_current_a=o.max_current_a,
            current_step_a=o.current_step_a if settable else o.max_current_a,
            can_switch_energy=not o.report_only,
        )

    async def start(self) -> None:
        await self._values.start(lambda: self._emit(StateChanged()))
        for writer, _ in self._writers.values():
            await writer.start()
        await self.read()  # a wrong address, register or path shows at start-up, in the log

    async def close(self) -> None:
        await self._values.close()

    async def read(self) -> ChargerReading:
        v = await self._values.read()
        status: str | None = v.get("status")
        plugged: bool | None = v.get("plugged")
        if plugged is None and status is not None:
            # E and F say nothing of the plug: what was last known stands (a fault is no unplug)
            plugged = status in "BCD" if status in "ABCD" else self._plugged
        self._plugged = bool(plugged)
        charging: bool | None = v.get("charging")
        energy_flows = status in ("C", "D") if status is not None else charging
        enabled: bool | None = v.get("enabled")
        if enabled is None:
            # Energy seen flowing is allowed; else what the bridge last wrote. Before its first write
            # nothing is known: taken as allowed, so that the bridge switches it off at once (its guard
            # of energy without a transaction), and knows from then on.
            written = self._enabled_written
            enabled = bool(energy_flows) or (written if written is not None else True)
        requesting = charging
        if requesting is None:
            requesting = energy_flows if energy_flows is not None else enabled
        offered: float | None = v.get("current_offered_a")
        if offered is None and self._current_written is not None:
            offered = self._current_written if enabled else 0.0
        self._card(v.get("id_tag"))
        return ChargerReading(
            plugged=plugged if self._senses_plug else None,
            ev_requesting=requesting,
            energy_allowed=enabled,
            energy_wh=v.get("energy_wh"),
            power_w=v.get("power_w"),
            current_a=_phases(v.get("currents")),
            voltage_v=_phases(v.get("voltages")),
            frequency_hz=v.get("frequency_hz"),
            current_offered_a=offered,
            fault=self._fault(status, v.get("error")),
        )

    def _fault(self, status: str | None, error: str | None) -> Fault | None:
        if error is not None and error.lower() not in NO_ERROR:
            return Fault(FaultKind.OTHER, info=f"{self.description} reports error {error}"[:50],
                         vendor_code=f"error {error}"[:50])  # fmt: skip
        if status == "E":
            return Fault(FaultKind.EV_COMMUNICATION, info="status E: no power or a short circuit",
                         vendor_code="status E")  # fmt: skip
        if status == "F":
            return Fault(
                FaultKind.OTHER, info="status F: the charger is not available", vendor_code="status F"
            )
        return None

    def _card(self, id_tag: str | None) -> None:
        if id_tag is None:
            return
        id_tag = id_tag[:ID_TAG_MAX]
        new = id_tag != self._id_tag
        self._id_tag = id_tag
        if not self._tag_learnt:
            self._tag_learnt = True  # the value when we came: a session's card, not a tap
            return
        if new and id_tag:
            self._emit(TagPresented(id_tag))

    def _out(self, name: str, value: bool | float) -> Value:
        """What a write sends: the value through write.<name>.map, or numbers back in the device's units."""
        pipeline = self._writers[name][1]
        if pipeline.mapping is not None:
            key = as_text(value)
            if key not in pipeline.mapping:
                raise NotSupportedByDevice(f"write.{name}.map has no value for {key}")
            mapped: Value = pipeline.mapping[key]
            return mapped
        return value if isinstance(value, bool) else pipeline.reverse(value)

    async def set_enabled(self, enabled: bool) -> None:
        if "enable" not in self._writers:
            raise NotSupportedByDevice(f"{self.description} is report only: it decides when energy flows")
        writer, _ = self._writers["enable"]
        await writer.write(self._out("enable", enabled))
        self._enabled_written = enabled
        state = next((v for v in self._values.values if v.capability == "enabled"), None)
        if state is not None and isinstance(state.reader, MqttReader):
            # A state topic shows the switch a moment later: a reading taken before would report the
            # old state as the device's. Wait for it (a device that does not confirm costs CONFIRM_S).
            def shows(raw: str) -> bool:
                with contextlib.suppress(PipelineError):
                    return bool(state.convert(raw) == enabled)
                return False

            await state.reader.wait_for(shows, CONFIRM_S)

    async def set_current(self, amps: float) -> None:
        if "current" not in self._writers:
            if math.isclose(amps, self.options.max_current_a):
                return
            raise NotSupportedByDevice(
                f"{self.description} cannot set a current: it switches its own "
                f"{self.options.max_current_a:g} A on or off"
            )
        writer, _ = self._writers["current"]
        await writer.write(self._out("current", amps))
        self._current_written = amps

    async def set_phases(self, phases: int) -> None:
        if "phases" not in self._writers:
            raise NotSupportedByDevice(f"{self.description} cannot switch phases")
        writer, _ = self._writers["phases"]
        await writer.write(self._out("phases", phases))


class GenericMeter(Meter):
    Options = GenericMeterOptions

    def __init__(
        self, options: GenericMeterOptions, transports: Transports, clock: Clock = time.monotonic
    ) -> None:
        self.options = options
        self._values = _Values(options.read, transports, clock, options.join_registers)

    @property
    def description(self) -> str:
        return _name(self.options.name, "meter", self._values.first_source)

    async def start(self) -> None:
        await self._values.start(lambda: None)  # a meter is read with its charger
        await self.read()

    async def close(self) -> None:
        await self._values.close()

    async def read(self) -> MeterReading:
        v = await self._values.read()
        return MeterReading(
            energy_wh=v.get("energy_wh"),
            power_w=v.get("power_w"),
            current_a=_phases(v.get("currents")),
            voltage_v=_phases(v.get("voltages")),
            frequency_hz=v.get("frequency_hz"),
        )
