"""One reporting target's link: its own websocket session, boot, heartbeats and statuses.

The connection layer is the primary's (`bridge.ocpp.session.Session`: connect loop, back-off,
BootNotification, Heartbeat at the interval the target gives, one CALL at a time), over a
Configuration of the target's own (its HeartbeatInterval and MeterValueSampleInterval are its
alone: stored under its key in the store's configuration table and restored at start, where they win
over the file's), with the target's queue of transaction messages attached as its durable queue. Statuses go
through a `StatusReporter` of its own over the same connector statuses the primary is told of.

How it connects (`TargetLinkSecurity`): the target's URL, identity, HTTP Basic password and `tls:`
block, as the file has them. No security profile is raised and no security event is sent: a target
controls nothing, ChangeConfiguration(SecurityProfile) and certificate messages among it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import ssl
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ocpp.v16 import call

from bridge.clock import Clock
from bridge.config import ChargePointConfig, ReconnectConfig, ReportTarget, TlsConfig
from bridge.core.config_keys import Configuration, implemented_features
from bridge.core.connector import StatusReport
from bridge.ocpp.ports import ConnectOptions
from bridge.ocpp.session import Session
from bridge.outbox.reports import ReportMessages
from bridge.runtime import identity
from bridge.runtime.status_reporter import StatusReporter
from bridge.security import tls
from bridge.store import Store
from bridge.store.reporting import target_key

log = logging.getLogger("bridge.reporting")

PROFILES = ("Core", "RemoteTrigger")  # what a target is told of (its GetConfiguration)
# The keys a target sees and may change, for itself alone.
OWN_KEYS = ("HeartbeatInterval", "MeterValueSampleInterval")
SHOWN_KEYS = (*OWN_KEYS, "NumberOfConnectors", "SupportedFeatureProfiles")
# What the session reads, taken from the charge point's `ocpp:` block (never changed by a target).
LINK_KEYS = ("MessageTimeout", "WebSocketPingInterval", "TransactionMessageAttempts",
             "TransactionMessageRetryInterval", "MinimumStatusDuration", *OWN_KEYS)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class TargetSettings:
    """The link settings of one target (bridge.ocpp.ports.LinkSettings)."""

    id: str
    csms_url: str
    password: str | None = dataclasses.field(repr=False)
    password_format: str
    tls: TlsConfig | None
    reconnect: ReconnectConfig
    max_frame_bytes: int
    boot_on_reconnect: bool = False


class FollowingClock(Clock):
    """The daemon's clock as a target's link reads it: its time passes through, and the target's
    BootNotification and Heartbeat answers set nothing (a target controls nothing, the charge
    point's clock among it: only the primary's currentTime is adopted)."""

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self._clock = clock

    def watch(self, moved: Callable[[], None]) -> Callable[[], None]:
        return self._clock.watch(moved)

    def move(self, offset_s: float) -> None:
        pass

    def monotonic(self) -> float:
        return self._clock.monotonic()

    def now(self) -> datetime:
        return self._clock.now()

    def wall(self) -> float:
        return self._clock.wall()

    def sync(self, central_time: str, asked_at: float) -> None:
        pass


class TargetLinkSecurity:
    """How a target's link connects: the file's URL, password and TLS settings (LinkSecurity)."""

    def __init__(self, settings: TargetSettings) -> None:
        self._settings = settings

    async def options(self) -> ConnectOptions:
        s = self._settings
        context: ssl.SSLContext | None = None
        if s.csms_url.lower().startswith("wss:"):
            context = await asyncio.to_thread(tls.client_context, s.tls)  # reads files
        return ConnectOptions(s.csms_url, s.password, s.password_format, context)

    def opened(self, options: ConnectOptions) -> None:
        pass

    def failed(self, options: ConnectOptions, exc: BaseException) -> str | None:
        explained = tls.explain(exc, self._settings.tls, options.url)
        return explained.message if explained is not None else None


class ReportingLink:
    """One target of one charge point."""

    def __init__(
        self,
        cfg: ChargePointConfig,
        target: ReportTarget,
        store: Store,
        clock: Clock,
        connector_ids: tuple[int, ...],
        current: Callable[[int], StatusReport],
        handlers: Callable[[ReportingLink], list[object]],
    ) -> None:
        self.target = target
        self.settings = TargetSettings(
            id=target.identity(cfg.id), csms_url=target.csms_url, password=target.password,
            password_format=target.password_format, tls=target.tls, reconnect=cfg.reconnect,
            max_frame_bytes=cfg.max_frame_bytes,
        )  # fmt: skip
        self.name = f"{cfg.id} > {self.settings.id}@{target.csms_url}"  # no password in it
        self.connector_ids = connector_ids
        self.configuration = Configuration(
            features=implemented_features(PROFILES),
            fixed={"NumberOfConnectors": str(len(connector_ids)),
                   "SupportedFeatureProfiles": ",".join(PROFILES)},
            initial={k: v for k, v in cfg.ocpp.items() if k in LINK_KEYS},
        )  # fmt: skip
        self.session = Session(
            self.settings,
            self.configuration,
            [],
            FollowingClock(clock),
            boot_payload=lambda: boot(cfg),
            on_online=self._online,
            log_name=self.name,
        )
        self.session.security = TargetLinkSecurity(self.settings)
        self.configuration.on_change = self._configuration_changed
        self.key = target_key(cfg.id, self.settings.id, target.csms_url)
        self._store = store
        self.messages = ReportMessages(
            self.key, store, cfg.max_queued_messages,
            lambda: self.configuration.get_int("MeterValueSampleInterval"),
        )  # fmt: skip
        self.session.attach(self.messages.outbox)
        self.statuses = StatusReporter(
            self.name, connector_ids, current, self.session, self.configuration, clock
        )
        self.current = current
        self.session.handlers = handlers(self)

    def _configuration_changed(self, key: str, value: str) -> None:
        self.session.configuration_changed()
        # Its own values outlive a restart, as the primary's do, under its key (never the primary's).
        stored = self.configuration.changed_values().get(key)
        if key in OWN_KEYS and stored is not None:
            self._store.submit(self._store.save_config_value, self.key, key, stored)  # no task to wait on

    async def restore(self) -> list[str]:
        """Its own values as it last set them (a stored value wins over the file's); returns the
        stored keys ignored (no longer valid, or not its own)."""
        stored = await self._store.run(self._store.config_values, self.key)
        ignored = [k for k in stored if k not in OWN_KEYS]
        ignored += self.configuration.restore({k: v for k, v in stored.items() if k in OWN_KEYS})
        return ignored

    def _online(self, online: bool) -> None:
        self.statuses.on_online(online)

    def snapshot(self) -> dict[str, Any]:
        """What the status API shows of it (never its password)."""
        link = self.session.link
        return {
            "csms_url": self.target.csms_url,
            "id": self.settings.id,
            "connected": link.connected,
            "accepted": self.session.accepted,
            "queued": self.messages.outbox.pending(),
            "last_error": link.last_error,
        }


def boot(cfg: ChargePointConfig) -> call.BootNotification:
    """The same identity fields as the primary's BootNotification (bridge.runtime.identity)."""
    return identity.boot_notification(cfg)
