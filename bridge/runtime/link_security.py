"""How one charge point's link connects: the security profile in force and a raise being tried
(A05, `bridge.core.security_profile`), the HTTP Basic password (D3; an AuthorizationKey the central
system set wins over the file's, A01), and the TLS context (`bridge.security.tls`) with the central
system roots and the charge point certificate of the certificate store.

What each profile makes of the configuration:
- 0 (the default): the file as it is: its URL, its password if any, its `tls:` block for wss://;
- 1: HTTP Basic; the URL as the file has it (check refuses wss:// with 1 in the file);
- 2: HTTP Basic over TLS: a ws:// URL is used as wss://, same host, port and path;
- 3: TLS with the charge point's certificate and no HTTP Basic (white paper 2.3.3).

The session asks `options()` before each attempt and reports `opened` / `failed`; a raise tried
becomes the profile in force at the first connection that opens with it (persisted then), and the
first attempt that fails falls back. A TLS failure is described in an installer's words and becomes
the security event the white paper names; an HTTP 401 is FailedToAuthenticateAtCentralSystem.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import ssl
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path

from websockets.exceptions import InvalidStatus

from bridge.config import ChargePointConfig
from bridge.core.config_keys import Configuration
from bridge.core.security_profile import Prerequisites, Switch
from bridge.ocpp.connection import describe_failure
from bridge.ocpp.ports import ConnectOptions
from bridge.ocpp.session import Session
from bridge.runtime.effects import Spawn
from bridge.runtime.security_events import SecurityEvents
from bridge.security import tls

log = logging.getLogger("bridge.security")

Roots = Callable[[], list[bytes]]  # PEM of the installed CentralSystemRootCertificates
Identity = Callable[[datetime], tuple[Path, Path] | None]  # the charge point certificate in force


def _no_roots() -> list[bytes]:
    return []


def _no_identity(now: datetime) -> tuple[Path, Path] | None:
    return None


class LinkSecurity:
    def __init__(
        self,
        cfg: ChargePointConfig,
        configuration: Configuration,
        events: SecurityEvents,
        session: Session,
        spawn: Spawn,
        now: Callable[[], datetime],
    ) -> None:
        self._cfg = cfg
        self._configuration = configuration
        self._events = events
        self._session = session
        self._spawn = spawn
        self._now = now
        self.roots: Roots = _no_roots  # set by the certificates part
        self.identity: Identity = _no_identity
        self.on_opened: list[Callable[[], None]] = []  # told when a connection opens (root fallback)
        # A05's prerequisites, read without parsing or moving a file (the handler answers at once).
        self.has_roots: Callable[[], bool] = lambda: False
        self.has_identity: Callable[[], bool] = lambda: False
        # Runs a blocking read of the store in a thread, one store job at a time (the certificates
        # part's lock: a switch of certificates must not meet a read halfway).
        self.run_job: Callable[[Callable[[], ssl.SSLContext]], Awaitable[ssl.SSLContext]] = asyncio.to_thread
        self._identity_used: tuple[Path, Path] | None = None  # the certificate the last attempt presented
        self._switch: Switch | None = None  # made at first use: the stored profile is restored by then
        self._warned = False
        configuration.carried_out["SecurityProfile"] = self._raise
        session.security = self

    # -- what the session asks ---------------------------------------------------------------
    @property
    def switch(self) -> Switch:
        if self._switch is None:
            self._switch = Switch(self._configuration.get_int("SecurityProfile"))
        return self._switch

    async def options(self) -> ConnectOptions:
        profile = self.switch.current
        url = self._url(profile)
        password = None if profile == 3 else self._password()
        context = None
        self._identity_used = None
        if url.startswith("wss:"):
            self._warn_once()
            now = self._now()

            def build() -> ssl.SSLContext:  # reads files (the store's roots and certificate)
                identity = self.identity(now) if profile in (0, 3) else None
                self._identity_used = identity
                return tls.client_context(self._cfg.tls, self.roots(), identity)

            try:
                context = await self.run_job(build)  # a thread, one store job at a time
            except Exception:
                self._give_up_raise("its TLS context could not be built")
                raise
        return ConnectOptions(url, password, self._cfg.password_format, context, profile)

    def opened(self, options: ConnectOptions) -> None:
        switch = self.switch
        if options.profile == switch.current:
            before = switch.in_force
            now_in_force = switch.opened()
            if now_in_force is not None:
                self._configuration.settle("SecurityProfile", str(now_in_force))
                log.info("%s: security profile %d is in force", self._cfg.id, now_in_force)
                self._events.emit(
                    "ReconfigurationOfSecurityParameters", f"SecurityProfile {before} -> {now_in_force}"
                )
        for listener in self.on_opened:
            listener()

    def failed(self, options: ConnectOptions, exc: BaseException) -> str | None:
        settings = self._cfg.tls or tls.DEFAULTS
        if self._identity_used is not None:  # the store's certificate: name its files, not the tls: block's
            cert, key = self._identity_used
            settings = dataclasses.replace(settings, client_cert=cert, client_key=key)
        explained = tls.explain(exc, settings, options.url)
        message = explained.message if explained is not None else None
        if explained is not None and explained.event is not None:
            self._events.emit(explained.event, explained.message)
        elif isinstance(exc, InvalidStatus) and exc.response.status_code == 401:
            self._events.emit("FailedToAuthenticateAtCentralSystem", f"HTTP 401 from {options.url}")
        switch = self.switch
        if options.profile != switch.current or switch.trying is None:
            return message
        return self._give_up_raise(message or describe_failure(exc, self._cfg, options.url))

    def _give_up_raise(self, why: str) -> str:
        """A raise being tried could not connect: back to the profile in force (A05.FR.06)."""
        switch = self.switch
        if switch.trying is None:
            return why
        tried = switch.failed()
        back = f"security profile {tried} could not connect ({why}); back to profile {switch.in_force}"
        log.warning("%s: %s", self._cfg.id, back)
        self._events.note("SecurityProfile fallback", back)
        return back

    # -- changes -----------------------------------------------------------------------------
    def _raise(self, wire: str) -> str | None:
        """ChangeConfiguration(SecurityProfile): Rejected (the reason) or tried after the answer."""
        profile = int(wire)
        refusal = self.switch.refusal(profile, self.prerequisites())
        if refusal is not None:
            return refusal
        self.switch.try_raise(profile)
        self._events.note("SecurityProfile raise accepted", f"{self.switch.in_force} -> {profile}, trying it")
        self._session.after_reply(lambda: self._session.reconnect(f"trying security profile {profile}"))
        return None

    def configuration_changed(self, key: str) -> None:
        """A01: a new AuthorizationKey: reconnect with it once the answer is on the wire."""
        if key == "AuthorizationKey":
            self._events.note("AuthorizationKey changed")  # never its value
            self._session.after_reply(
                lambda: self._session.reconnect("reconnecting with the new AuthorizationKey")
            )
        elif key == "CpoName":
            self._events.note("CpoName changed")

    def reconnect(self, reason: str) -> None:
        """Reconnect now (a new charge point certificate is in force)."""
        self._spawn(self._session.reconnect(reason), "reconnect")

    # -- what it is made of --------------------------------------------------------------------
    def prerequisites(self) -> Prerequisites:
        cfg = self._cfg
        configured_tls = cfg.tls is not None or self._url(0).startswith("wss:")
        client = cfg.tls is not None and cfg.tls.client_cert is not None
        return Prerequisites(
            password=bool(self._password()),
            central_system_root=configured_tls or self.has_roots(),
            client_certificate=client or self.has_identity(),
        )

    def _password(self) -> str | None:
        """An AuthorizationKey the central system set wins over the file's password (D3: as given)."""
        return self._configuration.changed_values().get("AuthorizationKey") or self._cfg.password

    def _url(self, profile: int) -> str:
        """The URL for `profile`, its scheme in lower case (`WS://` in a file must not pass for TLS)."""
        scheme, colon, rest = self._cfg.csms_url.partition(":")
        scheme = scheme.lower()
        if profile >= 2 and scheme == "ws":
            scheme = "wss"
        return scheme + colon + rest

    def _warn_once(self) -> None:
        if self._warned:
            return
        self._warned = True
        for warning in tls.warnings(self._cfg.tls):
            log.warning("%s: %s", self._cfg.id, warning)

    def uses_tls(self) -> bool:
        """The link in use (or being tried) is wss://."""
        return self._url(self.switch.current).startswith("wss:")

    def warnings(self) -> list[str]:
        """The loud TLS warnings that apply to the link in use (none over ws://)."""
        return tls.warnings(self._cfg.tls) if self.uses_tls() else []
