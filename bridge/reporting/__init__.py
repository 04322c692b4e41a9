"""Reporting-only central systems (`report_to:`, docs/reporting.md): each target is told what the
primary central system is told of the charge point's sessions, and controls nothing.

- `link.py`: one target's link (its own Session, boot, heartbeats, statuses) and how it connects;
- `handlers.py`: what a target may ask (GetConfiguration, TriggerMessage; the rest refused);
- its transaction messages: `bridge.outbox.reports` (the outbox owns what must survive a restart).

`Reporting` composes a charge point's targets. Each target runs in tasks of its own and shares no
lock with the primary: an outage of a target never delays the primary, and what it misses waits in
its own queue, in order, across restarts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

from bridge.clock import Clock
from bridge.config import ChargePointConfig
from bridge.core.config_keys import Configuration
from bridge.core.connector import StatusReport
from bridge.flag import Flag
from bridge.ocpp.session import Session
from bridge.outbox import Outbox, TransactionMessages
from bridge.reporting.handlers import ReportingHandlers, TriggeredValues, Triggers
from bridge.reporting.link import ReportingLink
from bridge.reporting.statuses import FannedStatuses
from bridge.runtime.status_reporter import StatusReporter
from bridge.store import Store

log = logging.getLogger("bridge.reporting")


class Reporting:
    """The reporting targets of one charge point (none: every method does nothing)."""

    def __init__(
        self,
        cfg: ChargePointConfig,
        store: Store,
        clock: Clock,
        connector_ids: tuple[int, ...],
        current: Callable[[int], StatusReport],
        messages: TransactionMessages,
        meter_values: TriggeredValues,
    ) -> None:
        def handlers(link: ReportingLink) -> list[object]:
            return [ReportingHandlers(link, Triggers(link, meter_values))]

        self.links = [
            ReportingLink(cfg, target, store, clock, connector_ids, current, handlers)
            for target in cfg.report_to
        ]
        messages.copies.extend(link.messages for link in self.links)
        self._cp_id = cfg.id
        self._store = store
        self._file_allows_all = cfg.ocpp.get("AllowOfflineTxForUnknownId", "").lower() == "true"
        self._configuration: Configuration | None = None  # the primary's, in force (statuses())

    async def restore(self) -> None:
        """Each target's own configuration values, queue and transaction ids as the last run left them."""
        for link in self.links:
            ignored = await link.restore()
            if ignored:
                log.warning("%s: stored configuration values no longer valid, ignored: %s", link.name,
                            ", ".join(ignored))  # fmt: skip
            queued = await link.messages.restore()
            if queued:
                log.info("%s: %d messages from the last run are queued again", link.name, queued)
        # A target removed from the file (or its URL or id changed) leaves its queue unread: say so.
        kept = await self._store.run(self._store.report_queues, self._cp_id)
        configured = {link.messages.key for link in self.links}
        for key, count in sorted(kept.items()):
            if key not in configured:
                log.warning("%s: %d messages queued for a reporting target no longer configured (%s) stay in"
                            " the store unread; listed again with the same URL and id, it gets them",
                            self._cp_id, count, key)  # fmt: skip

    def statuses(self, cp_id: str, connector_ids: Iterable[int], current: Callable[[int], StatusReport],
                 session: Session, configuration: Configuration, clock: Clock) -> StatusReporter:  # fmt: skip
        """The primary's status reporter: with targets, one that tells them too (statuses.py).
        `configuration` is the charge point's, which reporting only judges authorization by."""
        self._configuration = configuration
        if not self.links:
            return StatusReporter(cp_id, connector_ids, current, session, configuration, clock)
        targets = [link.statuses for link in self.links]
        return FannedStatuses(cp_id, connector_ids, current, session, configuration, clock, targets)

    def runs(self) -> list[tuple[str, Any]]:
        """The (name, coroutine) of each target's session, run as tasks of their own."""
        return [(f" report {link.settings.id}", link.session.run()) for link in self.links]

    async def without_primary(self, outbox: Outbox) -> None:
        """Reporting only (no `csms_url`): nothing is sent to a primary. Its queue still takes each
        message first (the targets' copies are made in the same commit, and the transaction's row
        lives until every queue is done with it): each is settled at once as not delivered."""
        wake = Flag()
        outbox.bind(wake.set)
        # The configuration in force after restore decides (a value stored by an earlier run with a
        # primary wins over the file's), so the warning judges by it too.
        c = self._configuration
        if c is None or not c.get_bool("AllowOfflineTxForUnknownId"):
            why = "no csms_url (reporting only) and AllowOfflineTxForUnknownId is not true"
            if self._file_allows_all:
                why += " (the value stored by an earlier run with a primary overrides the file's true)"
            log.warning("%s: %s: only tags valid in the local list or the cache of an earlier run may charge",
                        self._cp_id, why)  # fmt: skip
        while True:
            head = outbox.head()
            if head is None:
                outbox.idle()  # the grouped removals are written
                wake.clear()
                if outbox.head() is None:
                    await wake.wait()
                continue
            await outbox.settle(head.seq, False)

    async def close(self) -> None:
        await asyncio.gather(*(link.session.close() for link in self.links), return_exceptions=True)

    def snapshot(self) -> list[dict[str, Any]]:
        return [link.snapshot() for link in self.links]
