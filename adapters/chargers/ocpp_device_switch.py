"""The bridge's energy and current decisions carried out on an OCPP charger (`type: ocpp`): what it
honours asked after each boot, energy on and off, the set-point. The driver (ocpp_device.py) holds one
`EnergySwitch` and hands it set_enabled and set_current; docs/devices/ocpp.md, "How energy is switched".

- What it honours: GetConfiguration after each BootNotification (ocpp_device_support.py keeps and
  reads the answer); a CALLERROR or no answer: Core only, and the notes say why. What it refused on a
  connection (a RemoteStart, a pause) is kept until the next connection, where it is asked again.
- Energy on: the pause's TxProfile cleared when its transaction runs paused (a pause sent on this
  connection, or before a reboot the charger went on from: it may keep the profile); a charger that
  will not clear it gets the TxProfile with the set-point, which overrules the TxDefaultProfile, so
  every later set-point of that transaction goes there too (`override`); nothing when its own
  start is under way (a card's Authorize or its own StartTransaction waiting for the bridge: the answer
  lets it start, ocpp_device_link.py); else RemoteStartTransaction (the last card presented, else
  `id_tag`). Refused (Rejected, or a CALLERROR NotImplemented / NotSupported) with `energy_switch:
  auto`: not asked again on this connection, and its own StartTransaction (its free mode, a card at
  its reader) is the way a session starts from then on, answered Accepted once the bridge lets energy
  flow. With `remote` or `profile` a refusal stays a refused command.
- Energy off (ocpp_device_support.energy_off): within the bridge's session (set_enabled(False): a
  pause by the limit, an invalid card), while its transaction runs and the vehicle stays plugged, a
  pause when it honours SmartCharging (a TxProfile of 0 for its transaction, ocpp_device_profiles.py):
  its transaction goes on (SuspendedEVSE); at the end of the bridge's session (end_session), without
  SmartCharging, or unplugged, RemoteStopTransaction of its transaction (or of a stray one it
  reports), paused or not. The bridge's guard switches energy off again when a device allows energy the
  bridge did not allow: a pause still not honoured PAUSE_HELD_S after it was sent is given up for this
  connection, and its transaction stopped.
- A limit in W counts the phases drawing in its transaction once its readings show them (`observe`,
  from each reading), else the `phases` option; a change sends it again (`follow_phases`, a
  background job of the driver).
- ChangeAvailability is never the switch: an Inoperative connector reports Unavailable, so the bridge
  no longer knows whether a vehicle is plugged; during a transaction the answer is Scheduled, applied
  only after the transaction, so it stops nothing when energy must stop; and the charger keeps it
  across reboots and lost connections, so a bridge that is gone leaves it unusable. Where RemoteStop
  and profiles are refused, a refused command is the honest answer: the connector shows it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from ocpp.exceptions import NotImplementedError as CallNotImplemented
from ocpp.exceptions import NotSupportedError, OCPPError
from ocpp.v16 import call

from adapters.base import DeviceRefused, DeviceUnreachable
from adapters.chargers.ocpp_device_link import STATUS_READING, ChargerState, Decisions
from adapters.chargers.ocpp_device_options import OcppDeviceOptions
from adapters.chargers.ocpp_device_profiles import default_profile, pause_profile, profile_ids
from adapters.chargers.ocpp_device_support import (
    KEYS,
    Off,
    Support,
    assumed_core,
    energy_off,
    from_configuration,
    limit,
    lines,
    phases_drawing,
)

log = logging.getLogger("adapters.ocpp_device")

START_PENDING_S = 30.0  # a RemoteStart it accepted is not asked again this long, until its StartTransaction
PAUSE_HELD_S = 5.0  # a pause still not honoured this long after it was sent (energy flows): RemoteStop


class EnergySwitch:
    """Energy on and off and the set-point, by what the charger honours (see the module's theory)."""

    def __init__(
        self,
        options: OcppDeviceOptions,
        state: ChargerState,
        decisions: Decisions,
        send: Callable[[Any], Awaitable[Any]],
        description: str,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.options = options
        self.state = state
        self.decisions = decisions
        self.send = send  # a call to the charger: its answer, or DeviceRefused / DeviceUnreachable
        self.description = description
        self.support = Support(asked=False)  # what it honours, asked after each boot
        self.current_a: float | None = None  # the bridge's last set-point, sent again after its boot
        self.last_tag: str | None = None  # the card it presented, for a RemoteStart
        self.start_asked: float | None = None  # loop time of a RemoteStart it accepted, until it starts
        self.paused: tuple[int, float] | None = None  # (its transaction, loop time) of a pause sent
        # Its transaction whose pause was sent before its last boot: it went on with it, and may keep
        # the 0 TxProfile; energy on clears it (an Unknown answer is fine), energy off sends it again.
        self.paused_before_boot: int | None = None
        # Its transaction whose TxProfile carries the set-point (a pause it would not clear): that
        # overrules the TxDefaultProfile, so every set-point goes there too until the transaction ends.
        self.override: int | None = None
        self.phases_drawn: tuple[int, int] | None = None  # (its transaction, phases drawing current)
        self.phases_changed = asyncio.Event()  # set when a W limit must be sent again (follow_phases)
        self._setpoint_lock = asyncio.Lock()  # one set-point computed and sent at a time
        self._lock = asyncio.Lock()  # one energy decision carried out at a time
        self._clock = clock  # monotonic seconds; None: the event loop's
        self._connection = 0  # counts connections, so that a late answer of a gone one is dropped

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    def lines(self) -> list[str]:
        return lines(self.options.energy_switch, self.support)

    def connected(self) -> None:
        """A new connection (or none: the driver closed): what it said belonged to the last one; what
        it refused there is asked again. An answer to the last one's GetConfiguration is dropped."""
        self.support = Support(asked=False)
        self._connection += 1

    def booted(self) -> None:
        """It booted again. It should have ended its transaction, and with it a pause; one that goes on
        with it (its transaction open at boot, a deviation) may keep the pause's TxProfile."""
        self.start_asked = None  # a start asked before its boot is forgotten
        open_now = (self.state.open_at_boot, self.state.transaction_id)
        if self.paused is not None and self.paused[0] in open_now:
            self.paused_before_boot = self.paused[0]
        elif self.paused_before_boot not in open_now:
            self.paused_before_boot = None
        self.paused = None  # not sent on this connection: a new energy off sends it again

    async def probe(self) -> None:
        """What it honours, asked after each boot; what it refused on this connection is kept."""
        kept, connection = self.support, self._connection
        try:
            answer = await self.send(call.GetConfiguration(key=list(KEYS)))
        except DeviceUnreachable as exc:
            if not isinstance(exc.__cause__, TimeoutError):
                return  # the connection went: nothing learnt
            found = assumed_core(f"no answer to GetConfiguration within {self.options.call_timeout_s:g} s")
        except DeviceRefused as exc:
            found = assumed_core(f"GetConfiguration answered {refusal(exc)}")
        else:
            found = from_configuration(answer.configuration_key or [])
        if connection != self._connection:
            return
        self.support = replace(
            found, remote_start_refused=kept.remote_start_refused, pause_refused=kept.pause_refused
        )
        log.info("%s: %s", self.description, "; ".join(self.lines()))

    async def set_enabled(self, enabled: bool, *, session_ends: bool = False) -> None:
        """`session_ends`: energy off because the bridge's session ended (Charger.end_session): its
        transaction is stopped, paused or not; otherwise energy off is a pause where it can be."""
        async with self._lock:
            self.decisions.set(enabled)
            if enabled:
                await self._on()
            else:
                await self._off(session_ends)
                self.last_tag = None
                self.start_asked = None

    def _start_pending(self) -> bool:
        asked = self.start_asked
        return asked is not None and self._now() - asked < START_PENDING_S

    async def _on(self) -> None:
        transaction_id = self.state.transaction_id
        if self.paused_before_boot != transaction_id:
            self.paused_before_boot = None  # that transaction ended after its boot
        if transaction_id is not None:
            if self._pause_may_hold(transaction_id):
                await self._resume(transaction_id)
            return
        if self.decisions.cards_waiting:
            # Its own start is under way (a card): the answer now lets it. Until its StartTransaction
            # comes, a second energy on must not ask for another start (it would start twice).
            self.start_asked = self._now()
            return
        if self._start_pending():
            return  # a start it accepted, or its own, is under way
        if self.support.remote_start_refused is not None:
            return  # it starts its own transactions: the next StartTransaction is answered Accepted
        # Not connected: unreachable, so that the bridge says so and tries again.
        tag = self.last_tag or self.options.id_tag
        try:
            answer = await self.send(
                call.RemoteStartTransaction(id_tag=tag, connector_id=self.options.connector_id)
            )
            status = answer.status
        except DeviceRefused as exc:
            if not isinstance(exc.__cause__, CallNotImplemented | NotSupportedError):
                raise
            status = refusal(exc)
        if status != "Accepted":
            self._remote_start_refused(status)
        if self.state.transaction_id is None:  # its StartTransaction may have come first
            self.start_asked = self._now()

    def _pause_may_hold(self, transaction_id: int) -> bool:
        """A pause of its transaction sent on this connection, or before its boot (it went on)."""
        sent = self.paused[0] if self.paused is not None else None
        return transaction_id in (sent, self.paused_before_boot)

    def _remote_start_refused(self, how: str) -> None:
        """`auto`: remembered for this connection, and its own starts are the way from now on."""
        if self.options.energy_switch == "auto":
            self.support = replace(self.support, remote_start_refused=how)
            log.warning(
                "%s refused RemoteStartTransaction (%s): it is not asked again on this connection; "
                "its own StartTransaction (its free mode, a card at its reader) starts a session",
                self.description, how,
            )  # fmt: skip
        raise DeviceRefused(f"{self.description} refused RemoteStartTransaction ({how})")

    async def _off(self, session_ends: bool) -> None:
        s = self.state
        transaction_id = s.transaction_id
        if transaction_id is None:
            transaction_id = s.stray_transaction_id  # one it went on with, unasked
        paused = self.paused
        if paused is not None and paused[0] == transaction_id and not session_ends:
            young = self._now() - paused[1] < PAUSE_HELD_S
            if young or not STATUS_READING.get(s.status or "", (None, False, False))[2]:
                return  # paused already (by the limit, then an invalid card): nothing more to do
            self.support = replace(self.support, pause_refused="energy still flowed at 0")
            log.warning("%s: energy still flows at 0: stopping its transaction", self.description)
        how = energy_off(
            self.options.energy_switch,
            self.support,
            in_transaction=transaction_id is not None,
            plugged=bool(s.plugged) and transaction_id == s.transaction_id,
            session_ends=session_ends,
        )
        if how is Off.PAUSE and transaction_id is not None:
            try:
                pause = pause_profile(
                    transaction_id, self.support.rate_unit, connector_id=self.options.connector_id
                )
                await self._set_profile(pause, "a pause at 0")
            except DeviceRefused as exc:
                self.support = replace(self.support, pause_refused=str(exc))
                log.warning("%s; stopping its transaction instead", exc)
            else:
                self.paused = (transaction_id, self._now())
                return
        if transaction_id is not None:
            answer = await self.send(call.RemoteStopTransaction(transaction_id=transaction_id))
            if answer.status != "Accepted":
                raise DeviceRefused(f"{self.description} refused RemoteStopTransaction")

    async def _resume(self, transaction_id: int) -> None:
        """The pause ends: its TxProfile is cleared, and the set-point (the TxDefaultProfile) holds; a
        charger that will not clear it gets the TxProfile with the set-point instead."""
        try:
            answer = await self.send(call.ClearChargingProfile(id=profile_ids(self.options.connector_id)[1]))
            cleared = answer.status in ("Accepted", "Unknown")  # Unknown: it had dropped it already
        except DeviceRefused:  # a CALLERROR
            cleared = False
        if cleared:
            if self.override == transaction_id:
                self.override = None  # its TxProfile is gone: the TxDefaultProfile holds
        else:
            async with self._setpoint_lock:
                amps = self.current_a if self.current_a is not None else self.options.max_current_a
                value = limit(amps, self.support.rate_unit, self.phases(), self.state.voltage_v)
                unit, connector_id = self.support.rate_unit, self.options.connector_id
                profile = pause_profile(transaction_id, unit, value, connector_id)
                await self._set_profile(profile, f"the end of a pause ({amps:g} A)")
                # This TxProfile overrules the set-point for the rest of its transaction: every new
                # set-point goes there too (send_setpoint), or a lower limit would never reach it.
                self.override = transaction_id
        self.paused = self.paused_before_boot = None

    async def set_current(self, amps: float, connected: bool) -> None:
        self.current_a = amps
        if connected:
            await self.send_setpoint()

    async def send_setpoint(self) -> None:
        """The set-point as the TxDefaultProfile, in the unit it takes; none before the bridge set one.
        While its transaction runs under a TxProfile that carries the set-point (`override`), that
        TxProfile first, since it overrules the TxDefaultProfile; not during a pause (0 holds)."""
        async with self._setpoint_lock:
            if self.current_a is None:
                return
            amps, unit, transaction_id = self.current_a, self.support.rate_unit, self.state.transaction_id
            value = limit(amps, unit, self.phases(), self.state.voltage_v)
            if self.override is not None and self.override != transaction_id:
                self.override = None  # its transaction ended, and the charger dropped the TxProfile
            if transaction_id is not None and self.override == transaction_id:
                if not self._pause_may_hold(transaction_id):
                    profile = pause_profile(transaction_id, unit, value, self.options.connector_id)
                    await self._set_profile(profile, f"a charging profile of {amps:g} A for its transaction")
            profile = default_profile(value, unit, self.options.connector_id)
            await self._set_profile(profile, f"a charging profile of {amps:g} A")

    def phases(self) -> int:
        """The phases a W limit counts: those drawing current in its running transaction once its
        readings showed them (never more than `phases`), else the option."""
        drawn = self.phases_drawn
        if drawn is not None and drawn[0] == self.state.transaction_id:
            return min(drawn[1], self.options.phases)
        return self.options.phases

    def observe(self) -> None:
        """A reading: the phases drawing current in its transaction, kept; when that changes what a W
        limit counts while a set-point stands, `phases_changed` is set (follow_phases sends it again)."""
        transaction_id, drawing = self.state.transaction_id, phases_drawing(self.state.current_a)
        if transaction_id is None or drawing == 0:
            return  # nothing drawn: what was seen holds
        before = self.phases()
        self.phases_drawn = (transaction_id, drawing)
        if self.phases() != before and self.support.rate_unit == "W" and self.current_a is not None:
            self.phases_changed.set()

    async def follow_phases(self) -> None:
        """A background job of the driver: the W limit sent again when the phases drawing change."""
        while True:
            await self.phases_changed.wait()
            self.phases_changed.clear()
            try:
                await self.send_setpoint()
            except (DeviceRefused, DeviceUnreachable) as exc:
                log.warning("%s: the limit for the phases drawing was not sent: %s", self.description, exc)

    async def _set_profile(self, profile: dict[str, Any], what: str) -> None:
        answer = await self.send(
            call.SetChargingProfile(connector_id=self.options.connector_id, cs_charging_profiles=profile)
        )
        if answer.status != "Accepted":
            raise DeviceRefused(f"{self.description} refused {what} ({answer.status})")


def refusal(exc: DeviceRefused) -> str:
    """How a call was refused: the CALLERROR's code, else the error's text."""
    cause = exc.__cause__
    return f"CALLERROR {cause.code}" if isinstance(cause, OCPPError) else str(exc)
