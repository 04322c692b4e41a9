"""One charge point at run time: its connectors, their devices, and its session.

This is the shell around the pure connector core: it feeds the core what
the devices report and what the central system answers, and carries out
the effects the core decides (Authorize, StartTransaction, StopTransaction,
energy on/off). StatusNotifications are derived: after every event the
connector's status is compared with the last one delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

from ocpp.v16 import call, call_result

from adapters.base import Charger, ChargerReading, DeviceError, StateChanged, TagPresented
from bridge import __version__
from bridge.clock import Clock, iso
from bridge.config import ChargePointConfig
from bridge.core import connector as core
from bridge.core.config_keys import IMPLEMENTED_FEATURES, Configuration
from bridge.core.meter_values import can_measure, sampled_values
from bridge.ocpp.errors import CallFailed
from bridge.ocpp.session import Session

log = logging.getLogger("bridge.chargepoint")

POLL_INTERVAL_S = 1.0
SUPPORTED_PROFILES = "Core"


@dataclass
class ConnectorRuntime:
    """A connector's core state, its device, and its running tasks."""

    core: core.Connector
    charger: Charger
    reading: ChargerReading | None = None
    sampler: asyncio.Task[None] | None = None
    tx_ids: dict[int, int] = field(default_factory=dict)  # local transaction id -> central system's id
    events: asyncio.Queue[StateChanged | TagPresented] = field(default_factory=asyncio.Queue)
    read_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class ChargePoint:
    def __init__(self, cfg: ChargePointConfig, chargers: dict[int, Charger], clock: Clock) -> None:
        from bridge.ocpp.handlers import CentralSystemHandlers  # the handlers reach back into us

        self.cfg = cfg
        self.clock = clock
        self.connectors = {
            cid: ConnectorRuntime(core.Connector(cid), charger) for cid, charger in sorted(chargers.items())
        }
        self.configuration = Configuration(
            features=IMPLEMENTED_FEATURES,
            fixed={"NumberOfConnectors": str(len(chargers)), "SupportedFeatureProfiles": SUPPORTED_PROFILES},
            initial=cfg.ocpp,
            measurand_supported=self._measurand_supported,
        )
        self.session = Session(
            cfg,
            self.configuration,
            CentralSystemHandlers(self),
            clock,
            boot_payload=self.boot_payload,
            on_online=self._on_online,
        )
        self.configuration.on_change = self._configuration_changed
        self._reported: dict[int, core.StatusReport] = {}  # last status delivered, per connector
        self._queued: dict[int, core.StatusReport] = {}  # last status handed to the session
        self._boot_generation = -1
        self._tasks: set[asyncio.Task[None]] = set()

    def _spawn(self, coro: Coroutine[Any, Any, None], what: str) -> asyncio.Task[None]:
        """A background task that is referenced until done, and whose failure is logged."""
        task = asyncio.get_running_loop().create_task(coro, name=f"{self.cfg.id}/{what}")
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("%s/%s failed", self.cfg.id, what, exc_info=t.exception())

        task.add_done_callback(done)
        return task

    def _configuration_changed(self, key: str, value: str) -> None:
        self.session.configuration_changed()

    # -- lifecycle -----------------------------------------------------------
    async def run(self) -> None:
        for cid, rt in self.connectors.items():
            rt.charger.set_listener(functools.partial(self._on_device_event, cid))
        tasks = [asyncio.create_task(self.session.run(), name=f"{self.cfg.id} session")]
        tasks += [
            asyncio.create_task(self._poll(cid), name=f"{self.cfg.id}/{cid} poll") for cid in self.connectors
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def boot_payload(self) -> call.BootNotification:
        c = self.cfg
        return call.BootNotification(
            charge_point_vendor=c.vendor,
            charge_point_model=c.model,
            charge_point_serial_number=c.serial_number,
            firmware_version=c.firmware_version or f"ocpp-bridge {__version__}",
            meter_type=c.meter_type,
            meter_serial_number=c.meter_serial_number,
        )

    # -- devices -------------------------------------------------------------
    def _on_device_event(self, cid: int, event: StateChanged | TagPresented) -> None:
        self.connectors[cid].events.put_nowait(event)

    async def _poll(self, cid: int) -> None:
        """Read the device on its schedule and handle what it pushes, strictly in order.

        A tag is handled after a fresh read, so "plug, then tap" is seen in that order.
        """
        rt = self.connectors[cid]
        await self.refresh(cid)
        while True:
            event: StateChanged | TagPresented | None = None
            with contextlib.suppress(TimeoutError):
                event = await asyncio.wait_for(rt.events.get(), POLL_INTERVAL_S)
            await self.refresh(cid)
            if isinstance(event, TagPresented):
                log.info("%s/%d: tag %s presented", self.cfg.id, cid, event.id_tag)
                self._apply(cid, rt.core.on_tag(event.id_tag, self.clock.now()))

    async def refresh(self, cid: int) -> ChargerReading | None:
        """Read the device now and feed the reading to the core."""
        rt = self.connectors[cid]
        try:
            async with rt.read_lock:  # the poll loop and the meter sampler never read at once
                reading = await rt.charger.read()
        except DeviceError as exc:
            log.warning("%s/%d: %s did not answer: %s", self.cfg.id, cid, rt.charger.description, exc)
            return None
        rt.reading = reading
        now = self.clock.now()
        stop_on_disconnect = self.configuration.get_bool("StopTransactionOnEVSideDisconnect")
        effects = rt.core.on_reading(reading, now, stop_on_disconnect)
        effects += rt.core.on_tick(now)
        self._apply(cid, effects)
        return reading

    def _measurand_supported(self, item: str) -> bool:
        readings = [rt.reading for rt in self.connectors.values() if rt.reading is not None]
        return not readings or all(can_measure(r, item) for r in readings)

    # -- effects of the core ---------------------------------------------------
    def _apply(self, cid: int, effects: Iterable[core.Effect]) -> None:
        for effect in effects:
            if isinstance(effect, core.Authorize):
                self._authorize(cid, effect.id_tag)
            elif isinstance(effect, core.StartTransaction):
                self._start_transaction(cid, effect.transaction)
            elif isinstance(effect, core.StopTransaction):
                self._stop_transaction(cid, effect)
            elif isinstance(effect, core.SetEnergy):
                self._spawn(self._set_energy(cid, effect.allowed), f"{cid}: energy")
        self._report_status(cid)

    def _authorize(self, cid: int, id_tag: str) -> None:
        rt = self.connectors[cid]
        if not self.session.online:
            # Offline authorization (cache, local list, unknown ids) is not built yet: refuse.
            log.warning("%s/%d: offline, cannot authorize %s", self.cfg.id, cid, id_tag)
            self._apply(cid, rt.core.on_authorized(id_tag, False, self.clock.now(), 0))
            return
        future = self.session.submit(
            lambda: call.Authorize(id_tag=id_tag), drop_when_offline=True, want_result=True
        )
        assert future is not None

        async def outcome() -> None:
            try:
                answer = await future
                accepted = answer.id_tag_info.get("status") == "Accepted"
            except CallFailed as exc:
                log.warning("%s/%d: Authorize %s failed: %s", self.cfg.id, cid, id_tag, exc)
                accepted = False
            log.info("%s/%d: tag %s %s", self.cfg.id, cid, id_tag, "accepted" if accepted else "refused")
            timeout = self.configuration.get_int("ConnectionTimeOut")
            self._apply(cid, rt.core.on_authorized(id_tag, accepted, self.clock.now(), timeout))

        self._spawn(outcome(), f"{cid}: Authorize outcome")

    def remote_start(self, cid: int, id_tag: str) -> None:
        """Carry out an accepted RemoteStartTransaction (after its answer is on the wire)."""
        if self.configuration.get_bool("AuthorizeRemoteTxRequests"):
            self._authorize(cid, id_tag)
            return
        timeout = self.configuration.get_int("ConnectionTimeOut")
        self._apply(cid, self.connectors[cid].core.on_authorized(id_tag, True, self.clock.now(), timeout))

    def remote_stop(self, cid: int) -> None:
        self._apply(cid, self.connectors[cid].core.stop(core.StopReason.REMOTE, self.clock.now(), None))

    def connector_of_transaction(self, transaction_id: int) -> int | None:
        for cid, rt in self.connectors.items():
            tx = rt.core.transaction
            if tx is not None and tx.transaction_id == transaction_id:
                return cid
        return None

    def _start_transaction(self, cid: int, tx: core.Transaction) -> None:
        rt = self.connectors[cid]
        log.info(
            "%s/%d: transaction %d started by %s at %d Wh",
            self.cfg.id,
            cid,
            tx.local_id,
            tx.id_tag,
            tx.meter_start_wh,
        )

        def confirmed(answer: call_result.StartTransaction) -> None:
            # Runs as the answer is read, before any later message of this transaction is built.
            rt.tx_ids[tx.local_id] = answer.transaction_id
            rt.core.on_start_confirmed(tx.local_id, answer.transaction_id)
            status = answer.id_tag_info.get("status")
            log.info(
                "%s/%d: transaction %d is %d at the central system (%s)",
                self.cfg.id,
                cid,
                tx.local_id,
                answer.transaction_id,
                status,
            )
            if status != "Accepted" and self.configuration.get_bool("StopTransactionOnInvalidId"):
                self._apply(cid, rt.core.stop(core.StopReason.DE_AUTHORIZED, self.clock.now(), None))

        # A StartTransaction given up on never gets an id: its later messages carry -1 (ERRATA 3.18).
        self.session.submit(
            lambda: call.StartTransaction(
                connector_id=cid,
                id_tag=tx.id_tag,
                meter_start=tx.meter_start_wh,
                timestamp=iso(tx.started_at),
            ),
            on_result=confirmed,
            transactional=True,
        )
        rt.sampler = self._spawn(self._sample(cid, tx), f"{cid}: meter values")

    def _transaction_id(self, rt: ConnectorRuntime, tx: core.Transaction) -> int:
        """The central system's id at send time; -1 only when StartTransaction was given up on
        (messages leave in order, so a later message is built only after the start was settled)."""
        return rt.tx_ids.get(tx.local_id, -1)

    def _stop_transaction(self, cid: int, stop: core.StopTransaction) -> None:
        rt = self.connectors[cid]
        if rt.sampler is not None:
            rt.sampler.cancel()
            rt.sampler = None
        tx = stop.transaction
        log.info(
            "%s/%d: transaction %d stopped (%s) at %d Wh",
            self.cfg.id,
            cid,
            tx.local_id,
            stop.reason,
            stop.meter_stop_wh,
        )
        self.session.submit(
            lambda: call.StopTransaction(
                meter_stop=stop.meter_stop_wh,
                timestamp=iso(stop.stopped_at),
                transaction_id=self._transaction_id(rt, tx),
                reason=str(stop.reason),
                id_tag=stop.id_tag,
            ),
            transactional=True,
        )

    async def _sample(self, cid: int, tx: core.Transaction) -> None:
        """Sample.Periodic meter values every MeterValueSampleInterval, counted from the start."""
        rt = self.connectors[cid]
        start = self.clock.monotonic()
        n = 0
        while True:
            interval = self.configuration.get_int("MeterValueSampleInterval")
            if interval <= 0:
                await asyncio.sleep(1.0)
                start, n = self.clock.monotonic(), 0
                continue
            n += 1
            await asyncio.sleep(max(0.0, start + n * interval - self.clock.monotonic()))
            reading = await self.refresh(cid)
            if reading is None or rt.core.transaction is None or rt.core.transaction.local_id != tx.local_id:
                continue
            values = sampled_values(
                reading, self.configuration.get_list("MeterValuesSampledData"), "Sample.Periodic"
            )
            if not values:
                continue
            self.session.submit(
                functools.partial(self._meter_values, cid, tx, iso(self.clock.now()), values),
                transactional=True,
            )

    def _meter_values(
        self, cid: int, tx: core.Transaction, stamp: str, values: list[dict[str, Any]]
    ) -> call.MeterValues:
        """Built at send time: the transaction id is the central system's by then, if it was given."""
        return call.MeterValues(
            connector_id=cid,
            transaction_id=self._transaction_id(self.connectors[cid], tx),
            meter_value=[{"timestamp": stamp, "sampledValue": values}],
        )

    async def _set_energy(self, cid: int, allowed: bool) -> None:
        rt = self.connectors[cid]
        try:
            await rt.charger.set_enabled(allowed)
        except DeviceError as exc:
            log.error(
                "%s/%d: %s refused to %s energy: %s",
                self.cfg.id,
                cid,
                rt.charger.description,
                "allow" if allowed else "stop",
                exc,
            )
        rt.events.put_nowait(StateChanged())

    # -- status notifications ----------------------------------------------------
    def current_status(self, cid: int) -> core.StatusReport:
        if cid == 0:
            # Connector 0 stands for the charge point as a whole (Available/Unavailable/Faulted).
            return core.StatusReport(core.Status.AVAILABLE)
        return self.connectors[cid].core.status()

    def _send_status(self, cid: int, report: core.StatusReport) -> None:
        self._queued[cid] = report
        message = call.StatusNotification(
            connector_id=cid,
            error_code=report.error_code,
            status=str(report.status),
            info=report.info,
            vendor_error_code=report.vendor_error_code,
            timestamp=iso(self.clock.now()),
        )

        def build() -> call.StatusNotification:
            # Reported means delivered: a status lost with the connection is not
            # replayed; the then current one is sent when the link returns.
            self._reported[cid] = report
            return message

        log.info(
            "%s/%d: %s%s",
            self.cfg.id,
            cid,
            report.status,
            f" ({report.error_code})" if report.error_code != "NoError" else "",
        )
        self.session.submit(build, drop_when_offline=True)

    def _report_status(self, cid: int) -> None:
        report = self.current_status(cid)
        if self.session.online and report != self._queued.get(cid):
            self._send_status(cid, report)

    def _on_online(self, online: bool) -> None:
        if not online:
            self._queued.clear()
            return
        # After a BootNotification: connector 0 and every connector (ERRATA 3.22).
        # After a reconnect without one: only what changed while offline.
        fresh_boot = self.session.boot_generation != self._boot_generation
        self._boot_generation = self.session.boot_generation
        for cid in [0, *self.connectors]:
            report = self.current_status(cid)
            if fresh_boot or report != self._reported.get(cid):
                self._send_status(cid, report)
            else:
                self._queued[cid] = report
