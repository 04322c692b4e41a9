"""The security extension's parts of one charge point (OCPP 1.6 security white paper, edition 3),
composed here so that `bridge/chargepoint.py` wires them with one line:

- `events`: security events and the security log (`runtime/security_events.py`);
- `link`: how the link connects: the security profile in force, its raise and fallback (A05), the
  AuthorizationKey (A01), the TLS context (`runtime/link_security.py`);
- `certificates`: the certificate store, InstallCertificate, DeleteCertificate,
  GetInstalledCertificateIds, SignCertificate / CertificateSigned and renewal (A02, A03, M03-M05);
- `logs`: GetLog and LogStatusNotification (N01); `signed_firmware`: SignedUpdateFirmware (L01).

No part keeps a task while it has nothing to do: 5,000 charge points run in one daemon.
"""

from __future__ import annotations

from pathlib import Path

from bridge import __version__
from bridge.clock import Clock
from bridge.config import ChargePointConfig
from bridge.core.config_keys import Configuration
from bridge.ocpp.session import Session
from bridge.outbox import Outbox
from bridge.runtime.effects import Spawn
from bridge.runtime.link_security import LinkSecurity
from bridge.runtime.security_events import SecurityEvents
from bridge.security.security_log import SecurityLog, security_log_path
from bridge.store import Store


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
    ) -> None:
        self._cfg = cfg
        self.events = SecurityEvents(cfg.id, clock, outbox, session, spawn, self._events_pushed)
        self.link = LinkSecurity(cfg, configuration, self.events, session, spawn, clock.now)
        self.handlers: list[object] = []  # the security extension's OCPP handlers

    def attach(self, state_dir: Path) -> None:
        """Where the security log and the certificate store live (the daemon knows, once built)."""
        self.events.log = SecurityLog(security_log_path(state_dir, self._cfg.id))

    def _events_pushed(self) -> bool:
        """`security_events`: auto sends them to a central system of the security extension, known by
        the SecurityProfile in force (1 or more: configured or raised by it)."""
        setting = self._cfg.security_events
        return setting == "on" or (setting == "auto" and self.link.switch.in_force >= 1)

    def started(self) -> None:
        """The charge point starts (the daemon's start, a restart after Reset or an update)."""
        self.events.emit("StartupOfTheDevice", f"ocpp-bridge {__version__}")

    def reset(self, hard: bool) -> None:
        self.events.emit("ResetOrReboot", f"{'hard' if hard else 'soft'} Reset from the central system")

    def configuration_changed(self, key: str) -> None:
        self.link.configuration_changed(key)

    def close(self) -> None:
        self.events.close()
