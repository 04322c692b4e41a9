"""StatusNotifications: what the central system has been told of each connector, and what to tell it.

Statuses are derived, never pushed: after anything that may change a connector's status, `report`
compares the current status with the last one handed to the link and sends the difference.
- Reported means delivered: a status lost with the connection is not replayed; the then current one
  is sent when the link returns (§4.9: transitions that happened offline are not replayed).
- After a BootNotification: connector 0 and every connector (ERRATA 3.22); after a reconnect without
  one: only what changed while offline.
- MinimumStatusDuration holds a status back until it has stood that long (bridge.core.status_hold).
- LocalListConflict (§3.5.2) is a warning, not a status: sent on connector 0 with its status as it
  stands, and what was reported of connector 0 stays as it was (no NoError follows it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from ocpp.v16 import call

from bridge.clock import Clock, iso
from bridge.core.config_keys import Configuration
from bridge.core.connector import StatusReport
from bridge.core.status_hold import StatusHold
from bridge.ocpp.session import Session

log = logging.getLogger("bridge.chargepoint")


class StatusReporter:
    def __init__(
        self,
        cp_id: str,
        connector_ids: Iterable[int],
        current: Callable[[int], StatusReport],
        session: Session,
        configuration: Configuration,
        clock: Clock,
    ) -> None:
        self._cp_id = cp_id
        self._ids = [0, *connector_ids]  # connector 0 stands for the charge point as a whole
        self._current = current
        self._session = session
        self._configuration = configuration
        self._clock = clock
        self._reported: dict[int, StatusReport] = {}  # last status delivered, per connector
        self._queued: dict[int, StatusReport] = {}  # last status handed to the session
        self._holds: dict[int, StatusHold] = {}  # statuses waiting out MinimumStatusDuration
        self._boot_generation = -1

    def report(self, cid: int) -> None:
        """Send connector `cid`'s status if it changed (after its hold, if one applies)."""
        report = self._current(cid)
        if not self._session.online or report == self._queued.get(cid):
            self._holds.pop(cid, None)
            return
        hold = self._holds.setdefault(cid, StatusHold())
        wait = hold.decide(
            report, self._clock.monotonic(), self._configuration.get_int("MinimumStatusDuration")
        )
        if wait is None:
            self._send(cid, report)
        else:
            # Looked at again when the hold is over: sent then if it still stands.
            asyncio.get_running_loop().call_later(wait, self.report, cid)

    def settled(self, cid: int) -> bool:
        """Whether `report(cid)` would do nothing now: no hold runs, and the link has connector `cid`'s
        current status (or is down). Lets a reading that decided nothing skip the report."""
        hold = self._holds.get(cid)
        if hold is not None and hold.candidate is not None:
            return False  # a status is being held: the hold decides
        return not self._session.online or self._queued.get(cid) == self._current(cid)

    def report_all(self) -> None:
        """Send what changed (after an answer that changed statuses)."""
        for cid in self._ids:
            self.report(cid)

    def on_online(self, online: bool) -> None:
        if not online:
            self._queued.clear()
            return
        fresh_boot = self._session.boot_generation != self._boot_generation
        self._boot_generation = self._session.boot_generation
        for cid in self._ids:
            report = self._current(cid)
            if fresh_boot or report != self._reported.get(cid):
                self._send(cid, report)
            else:
                self._queued[cid] = report

    def triggered(self, cid: int) -> call.StatusNotification:
        """A StatusNotification asked for by TriggerMessage: the current status, which counts as
        reported."""
        report = self._current(cid)
        self._reported[cid] = self._queued[cid] = report
        return self._payload(cid, report)

    def local_list_conflict(self, info: str) -> None:
        """The central system contradicted the local list (the authorizer noticed): tell it on
        connector 0 with errorCode LocalListConflict. Not kept to be sent after a reconnect."""
        if not self._session.online:
            return
        status = str(self._current(0).status)  # Available or Unavailable: connector 0 has no fault
        message = call.StatusNotification(
            connector_id=0, error_code="LocalListConflict", status=status, info=info[:50],
            timestamp=iso(self._clock.now()),
        )  # fmt: skip
        log.info("%s/0: %s (LocalListConflict: %s)", self._cp_id, status, info)
        self._session.submit(lambda: message, drop_when_offline=True)

    def _payload(self, cid: int, report: StatusReport) -> call.StatusNotification:
        return call.StatusNotification(
            connector_id=cid,
            error_code=report.error_code,
            status=str(report.status),
            info=report.info,
            vendor_error_code=report.vendor_error_code,
            timestamp=iso(self._clock.now()),
        )

    def _send(self, cid: int, report: StatusReport) -> None:
        self._queued[cid] = report
        message = self._payload(cid, report)

        def build() -> call.StatusNotification:
            self._reported[cid] = report  # reported means delivered
            return message

        error = f" ({report.error_code})" if report.error_code != "NoError" else ""
        log.info("%s/%d: %s%s", self._cp_id, cid, report.status, error)
        self._session.submit(build, drop_when_offline=True)
