"""A charge point's security events (white paper A04): each one written to the security log and sent
as a SecurityEventNotification (when the charge point's `security_events` setting says so: a central
system that does not know the security extension answers them NotImplemented).

Critical events go through the outbox: delivered across outages and restarts once stored, which a
task started by `emit` does at once (an event raised in the very moment the daemon is stopped may be
cut off with that task). The others wait in memory until the link is up, at most one per type: the
newest replaces one still waiting (a TLS failure at every reconnect during a day's outage is one
notification, with the latest details), and they are not kept across a restart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from ocpp.v16 import call

from bridge.clock import Clock, iso
from bridge.core import security_events
from bridge.outbox import Outbox
from bridge.runtime.effects import Spawn
from bridge.security.security_log import ChargePointLog

log = logging.getLogger("bridge.security")

ACTION = "SecurityEventNotification"
# What needs attention is a warning; a start (5,000 at once in a big daemon) and a Reset (logged
# already) are DEBUG: the security log has every event anyway.
_WARNING_PREFIXES = ("Invalid", "Failed", "Tamper", "Attempted", "Memory", "CentralSystemFailed")
_LEVELS = {kind: logging.WARNING for kind in security_events.EVENTS if kind.startswith(_WARNING_PREFIXES)}
_LEVELS.update(StartupOfTheDevice=logging.DEBUG, ResetOrReboot=logging.DEBUG)


class Link(Protocol):
    def submit(self, build: Any, *, want_result: bool = False) -> Any: ...


class SecurityEvents:
    def __init__(
        self, cp_id: str, clock: Clock, outbox: Outbox, link: Link, spawn: Spawn, pushed: Callable[[], bool]
    ) -> None:
        self._cp_id = cp_id
        self._pushed = pushed  # whether events go to the central system (else the security log only)
        self._clock = clock
        self._outbox = outbox
        self._link = link
        self._spawn = spawn
        self.log: ChargePointLog | None = None  # set by the daemon once it knows the state directory
        self._waiting: dict[str, tuple[datetime, str | None]] = {}  # non-critical, not sent yet
        self.last: tuple[datetime, str, str | None] | None = None  # the newest event

    def emit(self, kind: str, detail: str | None = None) -> None:
        """Record and send one event. `detail` becomes techInfo (cut to 255 characters): never a
        secret. ValueError for a type the white paper does not name (a programming error)."""
        critical = security_events.is_critical(kind)
        when = self._clock.now()
        info = security_events.tech_info(detail)
        self.last = (when, kind, info)
        level = _LEVELS.get(kind, logging.INFO)
        log.log(level, "%s: security event %s%s", self._cp_id, kind, f": {info}" if info else "")
        self.note(kind + (" (critical)" if critical else ""), info, when)
        if not self._pushed():
            return
        payload: dict[str, Any] = {"type": kind, "timestamp": iso(when)}
        if info is not None:
            payload["techInfo"] = info
        if critical:
            self._spawn(self._outbox.put(ACTION, payload, iso(when)), ACTION)
            return
        queued = kind in self._waiting
        self._waiting[kind] = (when, info)
        if not queued:
            self._submit(kind)

    def note(self, what: str, detail: str | None = None, when: datetime | None = None) -> None:
        """A line in the security log only (a setting changed: what changed, never a value)."""
        if self.log is not None:
            self.log.write(when or self._clock.now(), what, detail)

    def _submit(self, kind: str) -> None:
        """Queue the type's notification in memory. Its entry stays until the sender is done with it
        (a build that meets a dropped link is made again on the next one); newer details that came
        while it was on its way go in a notification of their own."""
        sent: list[tuple[datetime, str | None]] = []
        future = self._link.submit(lambda: self._build(kind, sent), want_result=True)

        def done(_: Any) -> None:
            if future.cancelled() is False:
                future.exception()  # an error answer ends it too (logged by the sender): retrieved
            if sent and self._waiting.get(kind) is not sent[-1]:
                self._submit(kind)  # newer details came meanwhile
            else:
                self._waiting.pop(kind, None)

        future.add_done_callback(done)

    def _build(self, kind: str, sent: list[tuple[datetime, str | None]]) -> call.SecurityEventNotification:
        """At send time: the newest details of this type (kept until the sender is done)."""
        waiting = self._waiting[kind]
        sent.append(waiting)
        when, info = waiting
        return call.SecurityEventNotification(type=kind, timestamp=iso(when), tech_info=info)

    def close(self) -> None:
        if self.log is not None:
            self.log.close()
