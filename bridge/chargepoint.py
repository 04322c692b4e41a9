"""One charge point at run time, composed of parts that own one concern each (docs/development.md):

- per connector: the pure core (`bridge.core.connector`), the coordinator of its device
  (`runtime/coordinator.py`) and the runner of the core's effects (`runtime/effects.py`);
- the charge point as a whole (`bridge.core.charge_point`), the link (`bridge.ocpp.session`) with the
  handlers of each feature profile, the authorizer, metering, status reporting, recovery after a
  restart, the commands of the central system, smart charging and the transaction messages.

What stays here is the wiring, the lifecycle, and the few lines that feed a connector's core what its
device reports and the central system answers, and carry out what the core decides (Authorize,
StartTransaction, StopTransaction, energy on/off).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Iterable
from datetime import datetime

from ocpp.v16 import call, call_result

from adapters.base import Charger, ChargerReading, DeviceFault
from bridge.charge_point_security import ChargePointSecurity
from bridge.clock import Clock
from bridge.config import ChargePointConfig, ConnectorConfig
from bridge.core import authorization
from bridge.core import connector as core
from bridge.core.charge_point import ChargePointCore
from bridge.core.config_keys import Configuration, implemented_features, supported_profiles
from bridge.core.meter_values import can_measure
from bridge.metrics import Metrics
from bridge.ocpp.data_transfer import BRIDGE_VENDOR_ID, DataTransferHandlers
from bridge.ocpp.handlers import CoreHandlers, FirmwareHandlers, RemoteTriggerHandlers, SmartChargingHandlers
from bridge.ocpp.handlers.local_list import LocalListHandlers
from bridge.ocpp.handlers.reservation import ReservationHandlers
from bridge.ocpp.session import Session
from bridge.outbox import TransactionMessages
from bridge.reporting import Reporting
from bridge.runtime import identity, snapshot
from bridge.runtime.authorizer import Authorizer
from bridge.runtime.background import Background
from bridge.runtime.commands import Commands
from bridge.runtime.connector import ConnectorRuntime
from bridge.runtime.coordinator import RETRY_READ_S, DeviceCoordinator, poll_interval_for
from bridge.runtime.diagnostics import JOB as DIAGNOSTICS_JOB
from bridge.runtime.diagnostics import DiagnosticsRunner
from bridge.runtime.effects import EffectRunner
from bridge.runtime.firmware import JOB as FIRMWARE_JOB
from bridge.runtime.firmware import FirmwareRunner
from bridge.runtime.frame_ring import FrameRing
from bridge.runtime.metering import Metering
from bridge.runtime.readings_ring import ReadingsRing
from bridge.runtime.recovery import Recovery
from bridge.runtime.reservations import Reservations
from bridge.runtime.snapshot import ChargePointSnapshot
from bridge.smart_charging import SmartCharging
from bridge.store import Store, Stored

log = logging.getLogger("bridge.chargepoint")

EFFECTS_DRAIN_S = 3.0  # a graceful stop waits this long at most for decided effects to be carried out


class ChargePoint:
    def __init__(
        self,
        cfg: ChargePointConfig,
        chargers: dict[int, Charger],
        clock: Clock,
        store: Store,
        new_transaction_id: Callable[[], int],
    ) -> None:
        self.cfg = cfg
        self.clock = clock
        self.store = store
        self.metrics = Metrics()  # counters and histograms of this charge point (GET /metrics)
        self.background = Background(cfg.id)  # tasks spawned by the parts, cancelled at the stop
        self._spawn = self.background.spawn
        settings = {c.id: c for c in cfg.connectors}
        self.connectors = {
            cid: self._connector(cid, charger, settings.get(cid), new_transaction_id)
            for cid, charger in sorted(chargers.items())
        }
        self.whole = ChargePointCore(tuple(self.connectors))  # connector 0: the charge point as a whole
        profiles = supported_profiles(any(c.capabilities.can_switch_energy for c in chargers.values()))
        self.configuration = Configuration(
            features=implemented_features(profiles),
            fixed={
                "NumberOfConnectors": str(len(chargers)),
                "SupportedFeatureProfiles": ",".join(profiles),
                "ConnectorSwitch3to1PhaseSupported": identity.phase_switching(chargers.values()),
            },
            initial=cfg.ocpp,
            measurand_supported=self._measurand_supported,
        )
        self.session = Session(
            cfg,
            self.configuration,
            [],  # the handlers, below: they need the session
            clock,
            boot_payload=self.boot_payload,
            on_online=self._on_online,
        )
        self.frames = FrameRing(now=lambda: clock.now().timestamp())  # the page's live log (bridge/api)
        self.session.frame_sink = self.frames.add
        self.readings = {cid: ReadingsRing() for cid in self.connectors}  # the page's chart
        self.configuration.on_change = self._configuration_changed
        self.authorizer = Authorizer(cfg.id, self.configuration, clock, store, self.session)
        self.messages = TransactionMessages(
            cfg.id, store, self.session, cfg.max_queued_messages, self._start_answered,
            self.authorizer.remember,
        )  # fmt: skip
        self.messages.max_stop_values = self.configuration.get_int("StopTransactionMaxMeterValues")
        self.metering = Metering(
            cfg.id, self.connectors, self.configuration, clock, self.session, self.messages, self.refresh,
            self._spawn,
        )  # fmt: skip
        self.recovery = Recovery(cfg.id, self.connectors, store, clock, self.messages, self.metering)
        # Reporting-only central systems (`report_to:`): told what the primary is, controlling nothing.
        self.reporting = Reporting(cfg, store, clock, tuple(self.connectors), self.current_status,
                                   self.messages, self.metering.triggered)  # fmt: skip
        self.statuses = self.reporting.statuses(
            cfg.id, self.connectors, self.current_status, self.session, self.configuration, clock
        )
        self.authorizer.on_conflict = self.statuses.local_list_conflict  # §3.5.2, on connector 0
        self.data_transfer = DataTransferHandlers()  # vendor hooks for DataTransfer from the central system
        device_status = functools.partial(snapshot.device_status_answer, self.snapshot)  # "DeviceStatus"
        self.data_transfer.register(BRIDGE_VENDOR_ID, lambda message_id, _: device_status(message_id))
        # Charging profiles and the limits carried to the devices.
        self.smart = SmartCharging(
            cfg.id, self.connectors, self.configuration, clock, store, self.limit_applied, self.messages.cs_id
        )
        self.commands = Commands(
            cfg.id, self.connectors, self.whole, clock=clock, configuration=self.configuration,
            session=self.session, store=store, apply=self._apply, authorize=self._authorize,
            cs_id=self.messages.cs_id,
            authorizer=self.authorizer, statuses=self.statuses, metering=self.metering,
        )  # fmt: skip
        outbox = self.messages.outbox
        self.diagnostics = DiagnosticsRunner(
            cfg.id, clock, store, outbox, self._spawn, self.snapshot, cfg.diagnostics
        )
        self.firmware = FirmwareRunner(
            cfg.id, clock, store, outbox, self._spawn, hold=self.commands.hold_for_update,
            idle=lambda: self.transactions_running == 0,
        )  # fmt: skip
        self.security = ChargePointSecurity(
            cfg, clock, store, outbox, self.session, self.configuration, self._spawn,
            diagnostics=self.diagnostics, firmware=self.firmware, triggers=self.commands,
        )  # the security extension (bridge/charge_point_security.py)  # fmt: skip
        self.commands.on_reset = self.security.reset
        self.reservations = Reservations(cfg.id, self.connectors, self.whole, clock=clock, store=store,
            configuration=self.configuration, apply=self._apply, spawn=self._spawn)  # fmt: skip
        self.session.handlers = [
            CoreHandlers(
                cfg.id, self.session, self.configuration, self.commands, self.smart, self.data_transfer
            ),
            # Not advertised (no connector can switch): its actions are CALLERROR NotSupported, as any
            # action without a handler (docs/protocol.md, "Report-only chargers").
            *([SmartChargingHandlers(self.smart)] if "SmartCharging" in profiles else []),
            RemoteTriggerHandlers(self.session, self.commands, self.diagnostics, self.firmware),
            FirmwareHandlers(self.diagnostics, self.firmware),
            LocalListHandlers(self.authorizer),
            ReservationHandlers(cfg.id, self.session, self.reservations),
            *self.security.handlers,
        ]
        self.started_at: datetime | None = None  # when run() began (the status API's "started")
        self.session.rpc_metrics = self.metrics.for_charge_point(cfg.id)

    def _connector(
        self, cid: int, charger: Charger, settings: ConnectorConfig | None, new_id: Callable[[], int]
    ) -> ConnectorRuntime:
        name = f"{self.cfg.id}/{cid}"
        device = DeviceCoordinator(
            charger,
            name=name,
            clock=self.clock,
            poll_interval_s=poll_interval_for(charger, settings.poll_interval_s if settings else None),
            faulted_after=settings.faulted_after_failed_polls if settings else 3,
            metrics=self.metrics,
            labels={"charge_point": self.cfg.id, "connector": cid},
        )
        device.on_reading = functools.partial(self._reading_taken, cid)
        device.on_tag = functools.partial(self._tag_presented, cid)
        device.on_fault = functools.partial(self._device_silent, cid)
        device.on_back = functools.partial(self._device_back, cid)
        device.on_started = functools.partial(self._device_started, cid)
        device.offered_fallback = functools.partial(self._offered, cid)
        device.reading_due_in = functools.partial(self._reading_due_in, cid)
        execute, report = functools.partial(self._execute, cid), functools.partial(self._report_status, cid)
        effects = EffectRunner(name, execute, report, self._spawn)
        # Whether the plug can be sensed is known from the capabilities before the first reading: a
        # remote start that arrives before it must not wait for a plug a relay never reports.
        caps, free_tag = charger.capabilities, self.cfg.free_vend_tag(cid)  # free: no card
        connector = core.Connector(cid, new_id=new_id, plug_sensed=caps.can_sense_plug, free_tag=free_tag,
                                   switches_energy=caps.can_switch_energy)  # fmt: skip
        return ConnectorRuntime(connector, device, effects, settings)

    def _reading_due_in(self, cid: int) -> float | None:
        """For a device read on its reports: when the core needs a reading (ConnectionTimeOut falls due,
        or a rejected start's energy is watched), in seconds from now."""
        connector = self.connectors[cid].core
        if connector.watches_energy:
            return RETRY_READ_S
        due = connector.next_tick(self.configuration.get_int("ConnectionTimeOut"))
        return None if due is None else (due - self.clock.now()).total_seconds()

    def _configuration_changed(self, key: str, value: str) -> None:
        self.session.configuration_changed()
        self.security.configuration_changed(key)  # a new AuthorizationKey: reconnect (A01)
        self.metering.configuration_changed(key)
        # What the central system set wins over the file after a restart.
        stored = self.configuration.changed_values().get(key)
        if stored is not None:
            self.store.submit(self.store.save_config_value, self.cfg.id, key, stored)  # no task to wait on it

    async def restore(self, stored: Stored | None = None) -> None:
        """Before the first connection: configuration, cache, queued messages and open transactions.
        `stored`: this charge point's rows, read with the others' in one job (else read now)."""
        if stored is None:
            page = self.messages.outbox.page
            stored = (await self.store.run(self.store.stored_states, [self.cfg.id], page))[self.cfg.id]
        ignored = self.configuration.restore(stored.config_values)
        await self.authorizer.restore(stored.cache_entries, stored.local_list)
        self.commands.restore_availability(stored.availability)
        if ignored:
            why = "stored configuration values no longer valid, ignored"
            log.warning("%s: %s: %s", self.cfg.id, why, ", ".join(ignored))
        await self.reporting.restore()  # the targets' queues, before recovery may add to them
        await self.recovery.restore(stored)
        await self.reservations.restore(stored.reservations)  # after availability and transactions
        # After the transactions: a resumed one keeps its TxProfile.
        await self.smart.restore(stored.charging_profiles)
        self.diagnostics.restore(stored.job_records.get(DIAGNOSTICS_JOB))
        self.security.restore(stored.job_records)  # a GetLog waiting for its next attempt
        await self.firmware.restore(stored.job_records.get(FIRMWARE_JOB))  # after the transactions

    # -- lifecycle -----------------------------------------------------------
    async def run(self) -> None:
        self.started_at = self.clock.now()
        self.security.started()
        await self.recovery.running()
        for rt in self.connectors.values():
            rt.device.listen()
        if self.cfg.has_primary:
            primary = self.session.run()
        else:  # reporting only: nothing is sent to a primary
            primary = self.reporting.without_primary(self.messages.outbox)
        runs = [(" session", primary)]
        runs += [(f"/{cid} poll", rt.device.run()) for cid, rt in self.connectors.items()]
        runs += [(" clock-aligned", self.metering.run_clock_aligned()), (" smart charging", self.smart.run())]
        runs += self.reporting.runs()  # each target's link: its own tasks, no lock shared with the primary
        tasks = [asyncio.create_task(coro, name=self.cfg.id + what) for what, coro in runs]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            # What the connectors decided is carried out first (a stop's fresh reading takes 2 s
            # at most): only then is the rest cancelled.
            await asyncio.gather(*(rt.effects.drain(EFFECTS_DRAIN_S) for rt in self.connectors.values()))
            await self.background.cancel_all()
            # Ours to finish even though we were cancelled: the store is still open (the daemon
            # closes it after every charge point has stopped).
            await self.recovery.suspend()
            self.security.close()

    def boot_payload(self) -> call.BootNotification:
        return identity.boot_notification(self.cfg)

    # -- devices -------------------------------------------------------------
    async def _tag_presented(self, cid: int, id_tag: str) -> None:
        now = self.clock.now()
        rt = self.connectors[cid]
        await self._apply(cid, rt.core.on_tag(id_tag, now, self.authorizer.known_parent(id_tag, now)))

    def _device_started(self, cid: int) -> None:
        # Its probe may have found it can switch phases (go-e's psm).
        self.configuration.refix(
            "ConnectorSwitch3to1PhaseSupported",
            identity.phase_switching(r.charger for r in self.connectors.values()),
        )
        self.smart.device_started(cid)

    def _device_silent(self, cid: int, fault: DeviceFault) -> None:
        """The device counts as silent: the connector is Faulted (its transaction kept)."""
        self._apply(cid, self.connectors[cid].core.on_device_silent(fault))  # and report the status

    def _device_back(self, cid: int) -> None:
        self.smart.device_started(cid)  # it may have restarted: tell it its limit again

    def _offered(self, cid: int) -> float | None:
        return self.smart.current_limit_a(cid)

    async def refresh(self, cid: int) -> ChargerReading | None:
        """Read the device now; the reading is fed to the core (`_reading_taken`)."""
        return await self.connectors[cid].device.refresh()

    async def _reading_taken(self, cid: int, reading: ChargerReading) -> None:
        """A reading of the device: the core decides on it; energy nobody allowed is switched off."""
        rt = self.connectors[cid]
        if self.metering.aligned_on:  # the interval's means are taken only while there are intervals
            rt.aligned.add(reading, self.clock.monotonic())
        now = self.clock.now()
        self.readings[cid].add(now.timestamp(), reading.power_w, reading.energy_wh)
        c = self.configuration
        effects = rt.core.on_reading(
            reading,
            now,
            c.get_bool("StopTransactionOnEVSideDisconnect"),
            c.get_bool("StopTransactionOnInvalidId"),
        )
        effects += rt.core.on_tick(now, c.get_int("ConnectionTimeOut"))
        resumed, rt.resume_pending = rt.resume_pending, False
        if resumed and rt.core.transaction is not None:  # still plugged: energy as the transaction had it
            effects += rt.core.energy()
        elif rt.device.energy_unwanted(reading, rt.core.energy_allowed):
            # Without a transaction of the bridge's, whatever session the device keeps must end.
            effects.append(core.SetEnergy(False, session_ends=rt.core.transaction is None))
        if effects or not self.statuses.settled(cid):  # most readings, while charging, change nothing
            await self._apply(cid, effects)

    def _measurand_supported(self, item: str) -> bool:
        readings = [rt.reading for rt in self.connectors.values() if rt.reading is not None]
        return not readings or all(can_measure(r, item) for r in readings)

    # -- effects of the core ---------------------------------------------------
    def _apply(self, cid: int, effects: Iterable[core.Effect]) -> asyncio.Future[None]:
        """Carry out the core's decisions in the order they were taken (bridge.runtime.effects); await
        the result to wait. A transaction event is persisted before anything acts on it: the
        StartTransaction is in the store before energy is allowed."""
        return self.connectors[cid].effects.apply(effects)

    async def _execute(self, cid: int, effect: core.Effect) -> None:
        if isinstance(effect, core.Authorize):
            self._authorize(cid, effect.id_tag)
        elif isinstance(effect, core.StartTransaction):
            await self._start_transaction(cid, effect.transaction)
        elif isinstance(effect, core.StopTransaction):
            await self._stop_transaction(cid, effect)
        elif isinstance(effect, core.ReservationEnded):
            await self.reservations.ended(cid, effect)
        elif isinstance(effect, core.SetEnergy):
            if effect.allowed:
                # The device gets its limit before energy flows; the limit may pause it instead.
                await self.smart.apply(cid)
                if not self.connectors[cid].core.energy_allowed:
                    return
            await self.connectors[cid].device.set_energy(effect.allowed, session_ends=effect.session_ends)

    def _authorize(self, cid: int, id_tag: str) -> None:
        rt = self.connectors[cid]
        timeout = self.configuration.get_int("ConnectionTimeOut")

        def conclude(accepted: bool, how: str, parent: str | None) -> None:
            log.info(
                "%s/%d: tag %s %s (%s)", self.cfg.id, cid, id_tag, "accepted" if accepted else "refused", how
            )
            self._apply(cid, rt.core.on_authorized(id_tag, accepted, self.clock.now(), timeout, parent))
            rt.device.read_soon()  # a device read on its reports learns when ConnectionTimeOut is due now

        self.authorizer.authorize(f"{self.cfg.id}/{cid}", id_tag, conclude, self._spawn)

    async def _start_transaction(self, cid: int, tx: core.Transaction) -> None:
        await self.metering.start(cid, tx)
        self.smart.transaction_started(cid, tx.id_tag)

    def _start_answered(self, local_id: int, id_tag: str, answer: call_result.StartTransaction) -> None:
        """StartTransaction.conf, as it is read (before any later message is built)."""
        self.authorizer.remember(id_tag, answer.id_tag_info)
        status = answer.id_tag_info.get("status")
        log.info("%s: transaction %d is %d at the central system (%s)", self.cfg.id, local_id,
                 answer.transaction_id, status)  # fmt: skip
        for cid, rt in self.connectors.items():
            tx = rt.core.transaction
            if tx is None or tx.local_id != local_id:
                continue
            parent = authorization.IdTagInfo.from_wire(answer.id_tag_info).parent_id_tag
            rt.core.on_start_confirmed(local_id, parent)
            if status != "Accepted":
                c = self.configuration
                effects = rt.core.on_start_rejected(
                    local_id,
                    self.clock.now(),
                    c.get_bool("StopTransactionOnInvalidId"),
                    c.get_int("MaxEnergyOnInvalidId"),
                )
                self._apply(cid, effects)

    async def _stop_transaction(self, cid: int, stop: core.StopTransaction) -> None:
        await self.metering.stop(cid, stop)
        self.smart.transaction_ended(cid)
        self.firmware.transaction_ended()  # an update waiting for the last transaction

    def limit_applied(self, cid: int, paused: bool) -> None:
        """The device took its charging limit; below its minimum the transaction pauses (SuspendedEVSE)."""
        effects = self.connectors[cid].core.on_limit(paused)
        if effects:
            self._apply(cid, effects)  # not awaited: this may run inside the effects worker

    # -- what the outside sees ---------------------------------------------------
    @property
    def transactions_running(self) -> int:
        return sum(rt.core.transaction is not None for rt in self.connectors.values())

    def snapshot(self) -> ChargePointSnapshot:
        return snapshot.take(
            self.cfg, self.started_at, self.clock.now(), self.session, self.configuration, self.connectors,
            self.smart.current_limit_a, self.messages.cs_id, self.diagnostics.snapshot(),
            self.firmware.snapshot(), self.authorizer.local_list, self.security.snapshot(),
            self.reporting.snapshot(),
        )  # fmt: skip

    # -- status notifications ----------------------------------------------------
    def current_status(self, cid: int) -> core.StatusReport:
        if cid == 0:
            return self.whole.status()  # connector 0 stands for the charge point as a whole
        return self.connectors[cid].core.status()

    def _report_status(self, cid: int) -> None:
        self.statuses.report(cid)

    def _on_online(self, online: bool) -> None:
        self.statuses.on_online(online)
        if online:
            self.firmware.booted()  # a new release on trial has booted to the central system
