"""The security extension's parts of one charge point (OCPP 1.6 security white paper, edition 3),
composed here so that `bridge/chargepoint.py` wires them with one line:

- `events`: security events and the security log (`runtime/security_events.py`);
- `link`: how the link connects: the security profile in force, its raise and fallback (A05), the
  AuthorizationKey (A01), the TLS context (`runtime/link_security.py`);
- `certificates`: the certificate store, InstallCertificate, DeleteCertificate,
  GetInstalledCertificateIds, SignCertificate / CertificateSigned and renewal (A02, A03, M03-M05);
- `logs`: GetLog and LogStatusNotification (N01), and ExtendedTriggerMessage's handler;
- SignedUpdateFirmware (L01) is the charge point's FirmwareRunner's signed flavour: given the
  manufacturer roots and the events here.

No part keeps a task while it has nothing to do: 5,000 charge points run in one daemon.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from pathlib import Path

from bridge import __version__
from bridge.clock import Clock
from bridge.config import ChargePointConfig
from bridge.core.config_keys import Configuration
from bridge.ocpp.handlers.certificates import CertificateHandlers
from bridge.ocpp.handlers.extended_trigger import ExtendedTriggerHandlers
from bridge.ocpp.handlers.logs import LogHandlers
from bridge.ocpp.handlers.signed_firmware import SignedFirmwareHandlers
from bridge.ocpp.ports import Triggers
from bridge.ocpp.session import Session
from bridge.outbox import Outbox
from bridge.runtime.certificates import Certificates
from bridge.runtime.diagnostics import DiagnosticsRunner
from bridge.runtime.effects import Spawn
from bridge.runtime.firmware import FirmwareRunner
from bridge.runtime.link_security import LinkSecurity
from bridge.runtime.logs import JOB as LOG_JOB
from bridge.runtime.logs import LogRunner
from bridge.runtime.security_events import SecurityEvents
from bridge.runtime.snapshot import SecuritySnapshot
from bridge.security.cert_store import certificates_directory, folder_name
from bridge.security.security_log import SecurityLog
from bridge.store import Store

SETTING_TIME_MIN_S = 60.0  # smaller corrections are a Pi's drift, not a setting of the time
SETTING_TIME_EVERY_S = 3600.0  # at most one SettingSystemTime an hour per charge point


class ChargePointSecurity:
    def __init__(
        self,
        cfg: ChargePointConfig,
        clock: Clock,
        store: Store,
        outbox: Outbox,
        session: Session,
        configuration: Configuration,
        spawn: Spawn,
        *,
        diagnostics: DiagnosticsRunner,  # GetLog's DiagnosticsLog is its archive; its uploads' settings
        firmware: FirmwareRunner,  # SignedUpdateFirmware; ExtendedTriggerMessage(FirmwareStatusNotification)
        triggers: Triggers,  # what ExtendedTriggerMessage shares with TriggerMessage
    ) -> None:
        self._cfg = cfg
        self._clock = clock
        self.events = SecurityEvents(cfg.id, clock, outbox, session, spawn, self._events_pushed)
        self._offset_seen = clock.offset_s
        self._unwatch: Callable[[], None] | None = None
        self._time_set_at: float | None = None  # monotonic, the last SettingSystemTime
        # Events from the parts that know nothing of security: a malformed CALL, the outbox full.
        session.on_invalid_message = functools.partial(self.events.emit, "InvalidMessages")
        outbox.on_bound = lambda dropped: self.events.emit(
            "MemoryExhaustion", f"the outbox is full ({outbox.bound} messages): {dropped} MeterValues dropped"
        )
        self.link = LinkSecurity(cfg, configuration, self.events, session, spawn, clock.now)
        self.handlers: list[object] = []  # the security extension's OCPP handlers
        self.certificates = Certificates(
            cfg.id, cfg.serial_number or cfg.id, clock, configuration, session, self.events, spawn,
            self.link.reconnect,
        )  # fmt: skip
        self.link.roots = lambda: self.certificates.roots("CentralSystemRootCertificate")
        self.link.identity = self.certificates.identity
        self.link.on_opened.append(self.certificates.link_opened)
        self.link.has_roots = lambda: self.certificates.has_roots("CentralSystemRootCertificate")
        self.link.has_identity = self.certificates.has_identity
        self.link.run_job = self.certificates.job
        self.handlers.append(CertificateHandlers(session, self.certificates))
        self.logs = LogRunner(
            cfg.id, clock, store, outbox, spawn, diagnostics=diagnostics, uploads=cfg.diagnostics,
            security_log=lambda: self.events.log,
        )  # fmt: skip
        self.handlers.append(LogHandlers(self.logs))
        extended = ExtendedTriggerHandlers(session, triggers, self.logs, firmware, self.certificates)
        self.handlers.append(extended)
        firmware.sign_with(self, self.events)  # signed firmware chains to our manufacturer roots (L01)
        self.handlers.append(SignedFirmwareHandlers(firmware))

    def attach(self, state_dir: Path, with_certificates: frozenset[str] | None = None) -> None:
        """Where the security log and the certificate store live (the daemon knows, once built);
        `with_certificates`: `cert_store.with_certificates(state_dir)`, listed once for all."""
        cp_id = self._cfg.id
        self.events.log = SecurityLog.at(state_dir).for_charge_point(cp_id)
        exists = with_certificates is None or folder_name(cp_id) in with_certificates
        self.certificates.attach(lambda: certificates_directory(state_dir, cp_id), exists)

    def restore(self, job_records: Mapping[str, str]) -> None:
        """At start, before the charge point runs (ChargePoint.restore): the GetLog upload the last run
        left, waiting for its next attempt."""
        self.logs.restore(job_records.get(LOG_JOB))

    def manufacturer_roots(self) -> list[bytes]:
        """The installed ManufacturerRootCertificates, PEM (signed firmware; blocking: in a thread)."""
        return self.certificates.roots("ManufacturerRootCertificate")

    def _events_pushed(self) -> bool:
        """`security_events`: auto sends them to a central system of the security extension, known by
        the SecurityProfile in force (1 or more: configured or raised by it)."""
        setting = self._cfg.security_events
        return setting == "on" or (setting == "auto" and self.link.switch.in_force >= 1)

    def snapshot(self) -> SecuritySnapshot:
        link = self.link
        switch = link.switch
        return SecuritySnapshot(
            profile=switch.in_force,
            trying_profile=switch.trying,
            tls=link.uses_tls(),
            warnings=tuple(link.warnings()),
            events_sent=self._events_pushed(),
            last_event=self.events.last,
        )

    def started(self) -> None:
        """The charge point starts: the daemon's start (also into an updated release). A Reset restarts
        the link in the same process: ResetOrReboot says so."""
        self.events.emit("StartupOfTheDevice", f"ocpp-bridge {__version__}")
        self._offset_seen = self._clock.offset_s
        self._unwatch = self._clock.watch(self._clock_moved)

    def _clock_moved(self) -> None:
        """SettingSystemTime: the bridge's time was set from the central system's by a minute or more
        (smaller corrections are the usual drift of a Pi without a real-time clock)."""
        moved = self._clock.offset_s - self._offset_seen
        if abs(moved) < SETTING_TIME_MIN_S:
            return
        self._offset_seen = self._clock.offset_s
        # The daemon's charge points share one clock: two central systems that disagree would move
        # it at every Heartbeat, and each move is a critical event of every charge point. One an hour.
        now = self._clock.monotonic()
        if self._time_set_at is not None and now - self._time_set_at < SETTING_TIME_EVERY_S:
            return
        self._time_set_at = now
        self.events.emit("SettingSystemTime", f"the time was set {moved:+.0f} s from the central system's")

    def reset(self, hard: bool) -> None:
        self.events.emit("ResetOrReboot", f"{'hard' if hard else 'soft'} Reset from the central system")

    def configuration_changed(self, key: str) -> None:
        self.link.configuration_changed(key)

    def close(self) -> None:
        if self._unwatch is not None:
            self._unwatch()
        self.events.close()
