"""The primary's status reporter, telling each reporting target of the same changes.

Statuses are derived (bridge.runtime.status_reporter): whatever asks the primary's reporter to look
again (a connector's effects, an answer that changed availability, a firmware hold) asks each
target's too, so a target hears of every change the primary does, through a reporter of its own
(its own link, its own record of what it was told). A reading that decides nothing skips the report
only when the primary and every target already have the status.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from bridge.clock import Clock
from bridge.core.config_keys import Configuration
from bridge.core.connector import StatusReport
from bridge.ocpp.session import Session
from bridge.runtime.status_reporter import StatusReporter


class FannedStatuses(StatusReporter):
    def __init__(
        self,
        cp_id: str,
        connector_ids: Iterable[int],
        current: Callable[[int], StatusReport],
        session: Session,
        configuration: Configuration,
        clock: Clock,
        targets: Iterable[StatusReporter],
    ) -> None:
        super().__init__(cp_id, connector_ids, current, session, configuration, clock)
        self._targets = tuple(targets)

    def report(self, cid: int) -> None:
        super().report(cid)
        for target in self._targets:
            target.report(cid)

    def settled(self, cid: int) -> bool:
        return super().settled(cid) and all(target.settled(cid) for target in self._targets)
