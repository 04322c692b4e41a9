"""The contract between the bridge and device drivers.

A driver knows its device and nothing of OCPP. It declares what it can do
(`ChargerCapabilities`), answers `read()` with a typed snapshot
(`ChargerReading`), carries out commands (`set_enabled`, `set_current`, ...)
and pushes what it learns on its own (a card tapped on its reader, a state
change it was told about) through the listener the bridge registers.

Errors are values at this boundary: a driver raises only the three
`DeviceError` kinds below, and reports what its device says is wrong as a
`Fault` of a `FaultKind`; the bridge maps both to OCPP in one place
(bridge/core/device_errors.py).
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Protocol

# The longest idTag a driver may report or a configuration may hold: OCPP 1.6's idTag is a CiString20.
ID_TAG_MAX = 20


class DeviceError(Exception):
    """Base of the errors a driver may raise."""


class DeviceUnreachable(DeviceError):
    """The device did not answer: refused connection, timeout, no route, silent bus."""


class DeviceRefused(DeviceError):
    """The device answered, but refused or failed the request (the message says why)."""


class NotSupportedByDevice(DeviceError):
    """The device cannot do this at all (no lock, no phase switching, ...)."""


class FaultKind(StrEnum):
    """What a device says is wrong, in the terms of the hardware (the bridge says what it is in OCPP)."""

    GROUND_FAULT = "ground_fault"  # protective earth missing or invalid
    RESIDUAL_CURRENT = "residual_current"  # the residual current device (RCD) tripped, or is faulty
    OVER_CURRENT = "over_current"  # an over-current or over-power protection tripped
    OVER_VOLTAGE = "over_voltage"
    UNDER_VOLTAGE = "under_voltage"
    OVER_TEMPERATURE = "over_temperature"
    POWER_SWITCH = "power_switch"  # the relay or contactor is stuck closed, or did not close
    CABLE_LOCK = "cable_lock"  # the cable lock is stuck open or locked
    EV_COMMUNICATION = "ev_communication"  # control pilot, proximity pilot, the vehicle's diode
    POWER_METER = "power_meter"  # the built-in meter failed
    CARD_READER = "card_reader"  # the built-in RFID reader failed
    INTERNAL = "internal"  # the device's own electronics or firmware (its self-test, its controller)
    PHASE = "phase"  # a phase of the supply is missing or wrong
    OTHER = "other"  # none of these, or the device does not say


@dataclass(frozen=True)
class Fault:
    """A fault a device reports: its kind, the device's own code for it and a short text, as the device
    says them (the bridge shortens them to what its protocol carries)."""

    kind: FaultKind
    info: str | None = None  # free text, e.g. "cable lock stuck open"
    vendor_code: str | None = None  # the device's own code, e.g. "err=12 StatusLockStuckOpen"


@dataclass(frozen=True)
class DeviceFault:
    """A fault in OCPP's ChargePointErrorCode vocabulary: what bridge/core/device_errors.py makes of a
    `Fault`, and what the simulated box reports as it is told (its operator names the errorCode through
    the local API). A driver of a real device reports a `Fault` instead."""

    error_code: str  # e.g. "GroundFailure", "OverCurrentFailure", "OtherError"
    info: str | None = None  # free text, at most 50 characters on the wire
    vendor_error_code: str | None = None  # the device's own code, at most 50 characters


@dataclass(frozen=True)
class ChargerReading:
    """What a charger reports at one instant.

    `plugged` is None where the device cannot sense the plug; the bridge then
    infers it (documented per device). Electrical values are None where the
    device cannot measure them.
    """

    plugged: bool | None
    ev_requesting: bool  # the vehicle asks for energy (IEC 61851 state C/D)
    energy_allowed: bool  # the device currently lets energy flow
    energy_wh: float | None = None  # the register, monotonic, never rebased
    power_w: float | None = None
    current_a: tuple[float, ...] | None = None  # per phase L1, L2, L3
    voltage_v: tuple[float, ...] | None = None  # per phase L1, L2, L3
    frequency_hz: float | None = None
    soc_percent: float | None = None
    current_offered_a: float | None = None  # the limit the device applies now
    fault: Fault | DeviceFault | None = None  # DeviceFault: the simulated box's, already in OCPP's words


@dataclass(frozen=True)
class ChargerCapabilities:
    """What a charger can do; the core derives its OCPP answers from this."""

    can_sense_plug: bool
    can_unlock: bool
    fixed_cable: bool
    can_switch_phases: bool
    can_reset: bool
    has_meter: bool
    has_rfid: bool
    phases: int  # phases wired to the vehicle: 1 or 3
    min_current_a: float
    max_current_a: float
    current_step_a: float
    can_install_firmware: bool = False  # takes a firmware image (install_firmware), for UpdateFirmware
    # False: report only. The device decides when energy flows (evcc, a wallbox in its own mode); the
    # bridge watches and reports, never calls set_enabled, and refuses remote starts, stops and limits
    # it could not carry out (docs/protocol.md, "Report-only chargers").
    can_switch_energy: bool = True


# What a driver pushes between reads.
@dataclass(frozen=True)
class TagPresented:
    """A card or token was presented at the device's own reader."""

    id_tag: str


@dataclass(frozen=True)
class StateChanged:
    """The device knows its state changed; the bridge reads it at once."""


DeviceEvent = TagPresented | StateChanged
Listener = Callable[[DeviceEvent], None]
# Work a driver does for as long as it is in use, beside the bridge's reads and commands (see
# `Charger.background`): a coroutine function the device's coordinator runs as a task.
BackgroundJob = Callable[[], Awaitable[None]]


class Simulator(Protocol):
    """What a person does at a simulated box (adapters/chargers/simulated.py); the local API drives it."""

    def plug(self) -> None: ...
    def unplug(self) -> None: ...
    def tap(self, id_tag: str) -> None: ...
    def ev_suspend(self) -> None: ...
    def ev_resume(self) -> None: ...
    def fault(self, error_code: str, info: str | None = None) -> None: ...
    def clear_fault(self) -> None: ...
    def silence(self) -> None: ...
    def answer(self) -> None: ...


class Charger(abc.ABC):
    """Base class of charger drivers.

    `Options` is the dataclass of the driver's configuration block; the
    configuration loader validates the `charger:` mapping against it.
    """

    Options: ClassVar[type[Any]]
    # True: the constructor takes `state_file=`, a file of its own under the daemon's state_dir in which
    # it keeps its state across restarts (None: keep nothing). See adapters/registry.py.
    keeps_state: ClassVar[bool] = False
    # True: the driver pushes a StateChanged whenever what a reading shows changes, other than the
    # values that flow with the energy (register, power, currents), and when it stops answering. The
    # bridge then reads it on those pushes, at the meter-value instants and while it fails, rather than
    # every poll_interval_s: an idle connector costs nothing (see bridge/runtime/coordinator.py).
    reports_changes: ClassVar[bool] = False

    def __init__(self) -> None:
        self._listener: Listener | None = None

    def set_listener(self, listener: Listener | None) -> None:
        self._listener = listener

    def _emit(self, event: DeviceEvent) -> None:
        if self._listener is not None:
            self._listener(event)

    @property
    @abc.abstractmethod
    def capabilities(self) -> ChargerCapabilities: ...

    @property
    def description(self) -> str:
        """Names the device in logs and fault texts, e.g. 'go-e at 192.0.2.7'."""
        return type(self).__name__

    def probe_lines(self) -> list[str]:
        """What `probe` (the command and the page) shows of the device beyond a reading, e.g. an OCPP
        charger's link and what it did that OCPP does not allow; none by default."""
        return []

    @property
    def simulator(self) -> Simulator | None:
        """The simulated box behind this driver, driven by hand (plug, tap, ...) through the local API;
        None for hardware. A composed driver answers for the charger inside it."""
        return None

    async def start(self) -> None:  # noqa: B027 - optional hook, most drivers need no probe
        """Connect and probe the device; raise DeviceError when it cannot be used."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the driver is not used afterwards."""

    def background(self) -> tuple[BackgroundJob, ...]:
        """The driver's lifecycle hook for work that goes on while it is in use: a keep-alive and the
        checks nothing else would make (KEBA UDP's: its reports arrive through the shared socket's
        callback, not a job), a watchdog it must feed (Heidelberg's), a card reader's port. The
        device's coordinator (bridge/runtime/coordinator.py) owns the tasks: it starts each job once
        `start` succeeded, starts it again BACKGROUND_RETRY_S after it ended or raised (logged), and
        cancels them all before the driver is closed. None by default."""
        return ()

    @abc.abstractmethod
    async def read(self) -> ChargerReading: ...

    @abc.abstractmethod
    async def set_enabled(self, enabled: bool) -> None:
        """Allow or stop the flow of energy. Stopping may be a pause within the bridge's session
        (a charging limit of 0, an invalid card): the end of the session is `end_session`."""

    async def end_session(self) -> None:
        """Stop the flow of energy because the bridge's session ended (or there is none). A device
        that keeps a session of its own (an OCPP charger's transaction) ends it here and only pauses
        in set_enabled(False); the others do what set_enabled(False) does."""
        await self.set_enabled(False)

    @abc.abstractmethod
    async def set_current(self, amps: float) -> None:
        """Set the current offered per phase; the caller respects min/step/max."""

    async def set_phases(self, phases: int) -> None:
        raise NotSupportedByDevice("this charger cannot switch phases")

    async def unlock(self) -> None:
        raise NotSupportedByDevice("this charger has no cable lock")

    async def reset(self, hard: bool) -> None:
        raise NotSupportedByDevice("this charger cannot be reset remotely")

    async def install_firmware(self, image: Path) -> None:
        """Install the firmware image at `image` (a file the bridge downloaded) and return once the
        device runs it; a driver that can sets `can_install_firmware`."""
        raise NotSupportedByDevice("this charger cannot install a firmware image")


@dataclass(frozen=True)
class MeterReading:
    """What a meter reports at one instant; None where it cannot measure a value."""

    energy_wh: float | None = None  # import register, monotonic, never rebased
    power_w: float | None = None
    current_a: tuple[float, ...] | None = None  # per phase L1, L2, L3
    voltage_v: tuple[float, ...] | None = None  # per phase, phase to neutral
    frequency_hz: float | None = None


class Meter(abc.ABC):
    """Base class of meter drivers: a meter of record composed with any charger."""

    Options: ClassVar[type[Any]]

    @property
    def description(self) -> str:
        return type(self).__name__

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Connect and probe the meter; raise DeviceError when it cannot be used."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def background(self) -> tuple[BackgroundJob, ...]:
        """Work while in use, as `Charger.background`; run by the coordinator of the charger it meters."""
        return ()

    @abc.abstractmethod
    async def read(self) -> MeterReading: ...


class CardReader(abc.ABC):
    """Base class of card readers: a tap source that sits beside any charger (adapters/readers/).

    A reader hands each tap on as an idTag through the callback the bridge sets (`set_on_tag`),
    always from the event loop. It does its reading in `background()` jobs, which the charger's
    coordinator runs (see `Charger.background`): a job opens the port, reads it until it fails and
    closes it; `start` checks only what needs no device, so an unplugged reader never stops the
    charger beside it from being used (remote starts still work; the job is started again).
    """

    Options: ClassVar[type[Any]]

    def __init__(self) -> None:
        self._on_tag: Callable[[str], None] | None = None

    def set_on_tag(self, on_tag: Callable[[str], None] | None) -> None:
        self._on_tag = on_tag

    def _tapped(self, id_tag: str) -> None:
        if self._on_tag is not None:
            self._on_tag(id_tag)

    @property
    def description(self) -> str:
        """Names the reader in logs, e.g. 'RDM6300 on /dev/ttyAMA0'."""
        return type(self).__name__

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Check what can be checked without the device; raise DeviceError when it cannot be used."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release what `start` took; the background jobs have ended before this is called."""

    @abc.abstractmethod
    def background(self) -> tuple[BackgroundJob, ...]:
        """The jobs that read the device and hand on its taps (run as `Charger.background`'s)."""
