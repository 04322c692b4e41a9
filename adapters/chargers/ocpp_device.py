"""A charger that speaks OCPP 1.6J itself, driven as a device (`charger: {type: ocpp}`).

Docs: docs/devices/ocpp.md (pointing the charger at the bridge, options, what works, what does not).

Theory
------
The charger is pointed at the bridge's local central-system endpoint, ws://<bridge>:9100/ocpp/<identity>
(adapters/transports/ocpp_server.py, one server per `listen` shared by every OCPP charger on it). Its
calls are answered in ocpp_device_link.py; its one connection is shared by every driver of one of its
connectors (ocpp_device_hub.py: a charger with several connectors is several connectors of the
bridge with its identity, each its own `connector_id`). This driver turns what it says of its
connector into the bridge's device contract and the bridge's commands into calls to it:

- readings: its StatusNotifications (plugged, the vehicle asking, energy allowed, faults) and its
  MeterValues (register, power, currents, voltages, in the units it names); a charger that has not
  connected, or lost its connection, is unreachable. It pushes a StateChanged on each change
  (`reports_changes`): the bridge reads it then, not by polling.
- cards: its Authorize is a TagPresented; the answer waits (at most `card_wait_s`) for the bridge to
  switch energy on, which it does once its own upstream transaction stands, so the charger's answer is
  the bridge's decision: Accepted, or Invalid when none came. Why wait rather than answer Accepted at
  once: the charger would start energy before the bridge's transaction is stored and authorised (no
  energy without a transaction), and show a card the central system refuses as accepted. The charger
  then starts its own transaction, answered with an id local to this link (the bridge's upstream
  transaction is the bridge's own, with the central system's id). Its register is asked for after its
  boot (TriggerMessage MeterValues), since the bridge's StartTransaction, and so its meterStart, comes
  before the charger's.
- a start of its own (its StartTransaction, the bridge not having switched energy on: its free mode, a
  card at a charger that starts on its own) presents its tag and waits for the bridge's decision as an
  Authorize does: Accepted once the bridge lets energy flow, Invalid when it has not within
  `card_wait_s`, so the charger ends it.
- energy and current (ocpp_device_switch.py, docs/devices/ocpp.md "How energy is switched"): what it
  honours is asked after each boot (GetConfiguration); energy on is RemoteStartTransaction, unless its
  own start is under way or it refused RemoteStart on this connection; energy off within the bridge's
  session with its transaction running and the vehicle plugged is a pause (a TxProfile of 0) when it
  honours SmartCharging, else RemoteStopTransaction, as is the end of the bridge's session
  (`end_session`) always; the current is a TxDefaultProfile in A, or in W for a charger that takes
  only W (sent again after its boot).
- unlock: UnlockConnector.

What the charger does that OCPP does not allow is recorded (`deviations`, the newest DEVIATIONS_KEPT)
and never passed on: the bridge's own upstream messages are made from readings, as for any device.
`probe_lines()` lists them, with what it honours and how energy is switched: `probe`, the installer
page and the status API's `device.notes` show them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from ocpp.v16 import call
from websockets.exceptions import ConnectionClosed

from adapters.base import (
    BackgroundJob,
    Charger,
    ChargerCapabilities,
    ChargerReading,
    DeviceRefused,
    DeviceUnreachable,
    Fault,
    FaultKind,
    StateChanged,
    TagPresented,
)
from adapters.chargers import ocpp_device_switch as switch_module
from adapters.chargers.ocpp_device_hub import Attached, ChargerHub
from adapters.chargers.ocpp_device_link import ChargerLink
from adapters.chargers.ocpp_device_options import OcppDeviceOptions
from adapters.chargers.ocpp_device_state import (
    CALL_TIMEOUTS_CLOSE,
    STATUS_READING,
    ChargerState,
    Decisions,
    Seat,
)
from adapters.chargers.ocpp_device_support import Support
from adapters.chargers.ocpp_device_switch import EnergySwitch
from adapters.transports.ocpp_server import OcppServer
from adapters.transports.pool import Transports

log = logging.getLogger("adapters.ocpp_device")

PROBE_WAIT_S = 15.0  # `probe` (no listener) waits this long for the charger to connect and boot

FAULT_KINDS = {
    "ConnectorLockFailure": FaultKind.CABLE_LOCK,
    "EVCommunicationError": FaultKind.EV_COMMUNICATION,
    "GroundFailure": FaultKind.GROUND_FAULT,
    "HighTemperature": FaultKind.OVER_TEMPERATURE,
    "InternalError": FaultKind.INTERNAL,
    "OverCurrentFailure": FaultKind.OVER_CURRENT,
    "OverVoltage": FaultKind.OVER_VOLTAGE,
    "PowerMeterFailure": FaultKind.POWER_METER,
    "PowerSwitchFailure": FaultKind.POWER_SWITCH,
    "ReaderFailure": FaultKind.CARD_READER,
    "UnderVoltage": FaultKind.UNDER_VOLTAGE,
}


class OcppDeviceCharger(Charger):
    Options = OcppDeviceOptions
    reports_changes = True

    def __init__(self, options: OcppDeviceOptions, transports: Transports) -> None:
        super().__init__()
        self.options = options
        self._server: OcppServer = transports.ocpp_server(options.listen, options.path, options.tls.setup)
        self.state = ChargerState(connector_id=options.connector_id)
        self._decisions = Decisions()
        self._seat = Seat(self.state, self._decisions, self._changed, self._tag)
        self._attached = Attached(options, self._seat, self._on_link, self._after_boot)
        self._hub: ChargerHub | None = None  # the charger's connection, shared by its connectors
        self._link: ChargerLink | None = None
        self._up = asyncio.Event()  # connected and booted
        self._heard = asyncio.Event()  # a StatusNotification of its connector came
        self._switch = EnergySwitch(options, self.state, self._decisions, self._call, self.description)

    @property
    def deviations(self) -> list[str]:
        """What the charger did that OCPP does not allow, oldest first (the newest kept)."""
        return list(self.state.deviations)

    def probe_lines(self) -> list[str]:
        """The lines `probe` adds for this charger: its connection, what it said it honours on it and
        how its energy is switched (once it answered; none after `close`), its connectors that no
        connector of the bridge drives, and its deviations."""
        said = [f"connected: {'yes' if self._link is not None else 'no'}; booted: {self.state.booted}"]
        link = self._link
        if link is not None and link.booted and not link.booted_here:
            said[0] += " (reconnected without a BootNotification)"
        if link is not None and link.silent(time.monotonic()):
            said[0] += f"; silent for {time.monotonic() - link.last_heard:.0f} s"
        said += self._switch.lines()
        said += self.state.charger.notes()
        said += [f"deviation from OCPP: {text}" for text in self.state.deviations]
        return said

    @property
    def support(self) -> Support:
        """What the charger said it honours on this connection (ocpp_device_support.py)."""
        return self._switch.support

    @property
    def capabilities(self) -> ChargerCapabilities:
        o = self.options
        return ChargerCapabilities(
            can_sense_plug=True,
            can_unlock=not o.fixed_cable,
            fixed_cable=o.fixed_cable,
            can_switch_phases=False,
            can_reset=False,
            has_meter=self.state.energy_wh is not None,
            has_rfid=o.rfid,
            phases=o.phases,
            min_current_a=o.min_current_a,
            max_current_a=o.max_current_a,
            current_step_a=o.current_step_a,
        )

    @property
    def description(self) -> str:
        n = self.options.connector_id
        return f"OCPP charger {self.options.identity}" + (f" connector {n}" if n != 1 else "")

    async def start(self) -> None:
        hub = ChargerHub.of(self._server, self.options)
        hub.attach(self._attached)  # DeviceRefused: its connector or its connection's options clash
        self._hub = hub
        try:
            await self._server.open()
        except OSError as exc:
            raise DeviceRefused(f"cannot listen on {self.options.listen}: {exc.strerror or exc}") from exc

    def background(self) -> tuple[BackgroundJob, ...]:
        return (self._switch.follow_phases,)  # a W limit sent again when the phases drawing change

    async def close(self) -> None:
        self._switch.connected()  # none from now on: what it said of itself goes with it
        hub, self._hub = self._hub, None
        self._link = None
        self._up.clear()
        if hub is not None:
            await hub.detach(self._attached)

    def _on_link(self, link: ChargerLink | None) -> None:
        """The charger's connection began (`link`) or ended (None); the hub tells each connector."""
        self._link = link
        if link is not None:
            self._switch.connected()
            log.info("%s connected", self.description)
        else:
            self._up.clear()
            log.info("%s disconnected", self.description)
        self._changed()

    async def _after_boot(self, link: ChargerLink) -> None:
        """Once it booted: its register is asked for (a transaction's meterStart needs it before the
        charger's own StartTransaction tells it), and the set-point the bridge gave is sent again (it
        may have restarted). A charger that refuses the TriggerMessage is known by its first
        MeterValues or StartTransaction."""
        await link.boot_seen.wait()
        self._up.set()
        if link.booted_here:  # not a reconnect without a boot: nothing it had was ended by one
            self._switch.booted()
        if self.state.energy_wh is None:
            with contextlib.suppress(DeviceRefused, DeviceUnreachable):
                await self._call(
                    call.TriggerMessage(
                        requested_message="MeterValues", connector_id=self.options.connector_id
                    )
                )
        await self._switch.probe()  # before the set-point: its unit
        with contextlib.suppress(DeviceRefused, DeviceUnreachable):
            await self._switch.send_setpoint()
        # The bridge's last word on energy: a charger that rebooted (or was away when energy was switched
        # on) and ended its transaction, as OCPP asks, is started again; the bridge's transaction went on.
        # Looked at again each START_PENDING_S too: a start it accepted (a RemoteStart, a card's
        # Authorize) whose StartTransaction never came is asked for again, not waited for forever.
        ended = self._seat.ended_after_boot
        while True:
            ended.clear()  # what it ended so far, the next look covers
            await self._reassert_energy()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(switch_module.START_PENDING_S):
                    await ended.wait()

    async def _reassert_energy(self) -> None:
        d = self._decisions
        if d.enabled and self.state.transaction_id is None and not d.cards_waiting:
            if self._switch.start_asked is not None:
                self.state.deviation(
                    f"no StartTransaction within {switch_module.START_PENDING_S:.0f} s of a start it "
                    f"accepted: asked again"
                )
            try:
                await self.set_enabled(True)
            except (DeviceRefused, DeviceUnreachable) as exc:
                log.warning("%s: energy could not be switched on again: %s", self.description, exc)

    def _changed(self) -> None:
        if self.state.transaction_id is not None:
            self._switch.start_asked = None
        if self.state.status is not None:
            self._heard.set()
        self._emit(StateChanged())

    def _tag(self, id_tag: str) -> None:
        self._switch.last_tag = id_tag
        self._emit(TagPresented(id_tag))

    async def read(self) -> ChargerReading:
        s = self.state
        if self._listener is None and not self._up.is_set():
            # `probe`: the bridge does not operate the charger (no listener); it may connect in a moment.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(PROBE_WAIT_S):
                    await self._up.wait()
                    await self._heard.wait()
        link = self._link
        if link is None or not link.booted:
            raise DeviceUnreachable(f"{self.description} is not connected to the bridge's endpoint")
        if link.silent(time.monotonic()):
            raise DeviceUnreachable(
                f"{self.description} has sent nothing for {time.monotonic() - link.last_heard:.0f} s "
                f"(twice its heartbeat interval and more): its last status is no longer known"
            )
        _, ev_requesting, energy_allowed = STATUS_READING.get(s.status or "", (None, False, False))
        fault = None
        whole = s.charger  # connector 0: the charger as a whole; its fault is each connector's
        if whole.status == "Faulted" or whole.error_code != "NoError":
            fault = Fault(
                FAULT_KINDS.get(whole.error_code, FaultKind.OTHER), whole.info, whole.vendor_error_code
            )
        elif s.status == "Faulted" or s.error_code != "NoError":
            fault = Fault(FAULT_KINDS.get(s.error_code, FaultKind.OTHER), s.info, s.vendor_error_code)
        if whole.down:
            ev_requesting = energy_allowed = False
        self._switch.observe()  # the phases drawing: a W limit counts them (sent again by follow_phases)
        return ChargerReading(
            plugged=s.plugged,
            ev_requesting=ev_requesting,
            energy_allowed=energy_allowed,
            energy_wh=s.energy_wh,
            power_w=s.power_w,
            current_a=s.current_a,
            voltage_v=s.voltage_v,
            current_offered_a=self._switch.current_a,
            fault=fault,
        )

    async def _call(self, payload: Any) -> Any:
        link = self._link
        if link is None:
            raise DeviceUnreachable(f"{self.description} is not connected")
        try:
            answer = await link.call(payload, suppress=False)
        except TimeoutError as exc:
            link.timeouts += 1
            if link.timeouts >= CALL_TIMEOUTS_CLOSE:
                # A socket that still answers pings but not calls: dropped, so that the charger reconnects.
                log.warning(
                    "%s: %d calls unanswered in a row, its connection closed", self.description, link.timeouts
                )
                link.connection.transport.abort()
            raise DeviceUnreachable(f"{self.description} did not answer {type(payload).__name__}") from exc
        except ConnectionClosed as exc:
            raise DeviceUnreachable(f"{self.description} closed its connection") from exc
        except Exception as exc:  # a CALLERROR, or an answer that breaks its schema
            link.timeouts = 0
            raise DeviceRefused(f"{self.description}: {type(payload).__name__} failed: {exc}") from exc
        link.timeouts = 0
        return answer

    async def set_enabled(self, enabled: bool) -> None:
        await self._switch.set_enabled(enabled)

    async def end_session(self) -> None:
        await self._switch.set_enabled(False, session_ends=True)

    async def set_current(self, amps: float) -> None:
        await self._switch.set_current(amps, connected=self._link is not None)

    async def unlock(self) -> None:
        answer = await self._call(call.UnlockConnector(connector_id=self.options.connector_id))
        if answer.status != "Unlocked":
            raise DeviceRefused(f"{self.description}: UnlockConnector answered {answer.status}")
