"""The central system's commands that act on connectors and devices.

It gives the protocol layer what `bridge.ocpp.ports` declares (RemoteControl, Triggers): the handlers
decide and answer, and what their answers promise is carried out here, after the answer is on the
wire. Choices that span connectors are the pure charge-point core's (bridge.core.charge_point).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ocpp.v16 import call

from bridge.clock import Clock
from bridge.core import connector as core
from bridge.core.charge_point import ChargePointCore, ConnectorView, remote_start_target, remote_stop_target
from bridge.core.config_keys import Configuration
from bridge.ocpp.session import Session
from bridge.runtime.authorizer import Authorizer
from bridge.runtime.connector import ConnectorRuntime
from bridge.runtime.metering import Metering
from bridge.runtime.status_reporter import StatusReporter
from bridge.store import Store

log = logging.getLogger("bridge.chargepoint")

UNLOCK_TIMEOUT_S = 10.0  # a lock that has not answered by then counts as UnlockFailed

Apply = Callable[[int, Iterable[core.Effect]], asyncio.Future[None]]
Authorize = Callable[[int, str], None]


class Commands:
    def __init__(
        self,
        cp_id: str,
        connectors: Mapping[int, ConnectorRuntime],
        whole: ChargePointCore,
        *,
        clock: Clock,
        configuration: Configuration,
        session: Session,
        store: Store,
        apply: Apply,
        authorize: Authorize,
        cs_id: Callable[[int], int | None],
        authorizer: Authorizer,
        statuses: StatusReporter,
        metering: Metering,
    ) -> None:
        self._cp_id = cp_id
        self._connectors = connectors
        self._whole = whole
        self._clock = clock
        self._configuration = configuration
        self._session = session
        self._store = store
        self._apply = apply
        self._authorize = authorize
        self._cs_id = cs_id  # the central system's id of a local transaction (the outbox's map)
        self._authorizer = authorizer
        self._statuses = statuses
        self._metering = metering
        self.on_reset: Callable[[bool], None] | None = None  # told of an accepted Reset (hard or not)

    # -- RemoteControl ----------------------------------------------------------------------------
    def remote_start_target(self, connector_id: int | None, id_tag: str | None = None) -> int | None:
        """Where a RemoteStartTransaction for `id_tag` goes (a reserved connector only for a tag its
        reservation admits: the tag, or one whose group, known locally, is the reservation's)."""
        views = self._views()
        parent = self._authorizer.known_parent(id_tag, self._clock.now()) if id_tag is not None else None
        return remote_start_target(connector_id, views, id_tag, parent)

    def _views(self) -> dict[int, ConnectorView]:
        return {
            cid: ConnectorView(
                rt.core.status().status, rt.core.transaction is not None, rt.core.reservation,
                rt.device.capabilities.can_switch_energy,
            )
            for cid, rt in self._connectors.items()
        }  # fmt: skip

    async def remote_start(self, cid: int, id_tag: str) -> None:
        """Carry out an accepted RemoteStartTransaction (after its answer is on the wire)."""
        if self._configuration.get_bool("AuthorizeRemoteTxRequests"):
            self._authorize(cid, id_tag)
            return
        timeout = self._configuration.get_int("ConnectionTimeOut")
        await self._apply(
            cid, self._connectors[cid].core.on_authorized(id_tag, True, self._clock.now(), timeout)
        )

    def connector_of_transaction(self, transaction_id: int) -> int | None:
        """The connector a RemoteStopTransaction for `transaction_id` stops; None: Rejected (no such
        transaction, or it runs on a report-only connector, which cannot stop it)."""
        running = None
        for cid, rt in self._connectors.items():
            tx = rt.core.transaction
            if tx is not None and self._cs_id(tx.local_id) == transaction_id:
                running = cid
        target = remote_stop_target(running, self._views())
        if running is not None and target is None:
            log.warning("%s/%d: RemoteStopTransaction %d rejected: the connector is report only",
                        self._cp_id, running, transaction_id)  # fmt: skip
        return target

    async def remote_stop(self, cid: int) -> None:
        await self._apply(
            cid, self._connectors[cid].core.stop(core.StopReason.REMOTE, self._clock.now(), None)
        )

    async def change_availability(self, connector_id: int, operative: bool) -> str:
        """ChangeAvailability: Accepted, Scheduled (a transaction runs: applied when it ends) or Rejected.

        The wanted state is stored before the answer: it survives a reboot (OCTT TC_013).
        """
        targets = self._whole.availability_targets(connector_id)
        if targets is None:
            return "Rejected"
        answers = [self._connectors[cid].core.change_availability(operative) for cid in targets]
        answer, wanted = self._whole.change_availability(connector_id, operative, answers)
        await self._store.run(self._store.save_availability, self._cp_id, wanted)
        self._reservations_lost(targets)  # Unavailable ends a reservation (§5.13)
        return answer

    def _reservations_lost(self, cids: Iterable[int]) -> None:
        for cid in cids:
            if lost := self._connectors[cid].core.reservation_lost():
                self._apply(cid, lost)

    def restore_availability(self, stored: Mapping[int, bool]) -> None:
        """At start: what ChangeAvailability set before the restart (connector 0: the charge point)."""
        for cid, operative in stored.items():
            if cid == 0:
                self._whole.operative = operative
            elif cid in self._connectors:
                self._connectors[cid].core.operative = operative

    def hold_for_update(self, held: bool) -> None:
        """A firmware update holds every connector (no new session; Unavailable outside a transaction)
        until it ends; the availability the central system set is kept beside it."""
        for rt in self._connectors.values():
            rt.core.held = held
        self._reservations_lost(self._connectors)
        self._statuses.report_all()

    def report_statuses(self) -> None:
        """Send what changed (after an answer that changed statuses)."""
        self._statuses.report_all()

    async def unlock(self, connector_id: int) -> str:
        """UnlockConnector: stop the transaction first (UnlockCommand), then unlock the cable."""
        rt = self._connectors.get(connector_id)
        if rt is None or not rt.device.capabilities.can_unlock:
            return "NotSupported"  # unknown connector, no lock or a fixed cable (ERRATA 3.87)
        if rt.core.transaction is not None:
            stop = rt.core.stop(core.StopReason.UNLOCK_COMMAND, self._clock.now(), None)
            await self._apply(connector_id, stop)
        status, error = await rt.device.unlock(UNLOCK_TIMEOUT_S)
        if error is not None:
            log.warning("%s/%d: unlocking failed: %s", self._cp_id, connector_id, error or "no answer")
        else:
            log.info("%s/%d: unlocked", self._cp_id, connector_id)
        return status

    async def reset(self, hard: bool) -> None:
        """Carry out an accepted Reset: stop every transaction, let the stops go out, reset the
        device (hard), and start the session again with a BootNotification."""
        reason = core.StopReason.HARD_RESET if hard else core.StopReason.SOFT_RESET
        log.warning("%s: %s reset", self._cp_id, "hard" if hard else "soft")
        if self.on_reset is not None:
            self.on_reset(hard)  # the security event ResetOrReboot
        # A report-only device may charge on after its transaction's stop: the new transaction that
        # reports that energy waits until the link has been dropped, so it goes out after the boot.
        for rt in self._connectors.values():
            rt.core.restarting = True
        try:
            for cid, rt in self._connectors.items():
                if rt.core.transaction is not None:
                    await self._apply(cid, rt.core.stop(reason, self._clock.now(), None))
            # The stops are in the store already; give them a chance to be answered before the link goes.
            await self._session.transactional_sent(float(self._configuration.get_int("MessageTimeout")))
            if hard:  # the device where it can be reset; a failure is tried again ResetRetries times
                for rt in self._connectors.values():
                    await rt.device.reset(1 + self._configuration.get_int("ResetRetries"))
            await self._session.restart()
        finally:
            for rt in self._connectors.values():
                rt.core.restarting = False

    async def clear_cache(self) -> None:
        await self._authorizer.clear()

    # -- Triggers ---------------------------------------------------------------------------------
    def has_connector(self, connector_id: int) -> bool:
        return connector_id in self._connectors

    @property
    def connector_ids(self) -> tuple[int, ...]:
        return tuple(self._connectors)

    def status_message(self, cid: int) -> call.StatusNotification:
        """A triggered StatusNotification: the current status, which counts as reported."""
        return self._statuses.triggered(cid)

    def meter_values_message(self, cid: int) -> call.MeterValues | None:
        return self._metering.triggered(cid)

    async def send_now(self, payload: Any) -> Any:
        """A triggered message: sent directly (also while Pending), after the TriggerMessage answer."""
        endpoint = self._session.endpoint
        if endpoint is None:
            return None
        return await endpoint.call(payload)
