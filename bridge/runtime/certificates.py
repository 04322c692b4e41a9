"""A charge point's certificates at run time (white paper A02, A03, M03-M05): what the certificate
handlers ask (`ports.CertificateControl`), the signing request (`start_signing`, also
ExtendedTriggerMessage's), the switch to a signed certificate at its notBefore with a reconnect, and
the renewal one month before it expires.

The store's files are read and written in a thread, one job at a time per charge point (a lock made
at the first job). One timer task at most, and only while there is something to wait for: a signed
certificate whose notBefore is ahead, or a certificate in force (its renewal date). Nothing is read
before the first connection opens (`link_opened`), and then only when the charge point's
certificate directory exists (one stat): 5,000 charge points without certificates cost nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ocpp.v16 import call

from bridge.clock import Clock
from bridge.core.config_keys import Configuration
from bridge.flag import Flag
from bridge.runtime.effects import Spawn
from bridge.runtime.wall_clock import wait_wall
from bridge.security import lazy_module
from bridge.security.cert_store import USES, CertificateStore

if TYPE_CHECKING:
    from cryptography import x509

    from bridge.security import certificates as certs
else:
    certs = lazy_module("bridge.security.certificates")  # cryptography, at the first certificate

log = logging.getLogger("bridge.security")

CS_ROOT = "CentralSystemRootCertificate"
T = TypeVar("T")


class Link(Protocol):
    def submit(self, build: Any, *, want_result: bool = False) -> Any: ...


class Events(Protocol):
    def emit(self, kind: str, detail: str | None = None) -> None: ...
    def note(self, what: str, detail: str | None = None) -> None: ...


class Certificates:
    def __init__(
        self,
        cp_id: str,
        serial_number: str,
        clock: Clock,
        configuration: Configuration,
        link: Link,
        events: Events,
        spawn: Spawn,
        reconnect: Callable[[str], None],
    ) -> None:
        self._cp_id = cp_id
        self.serial_number = serial_number  # the CN of our certificate
        self._clock = clock
        self._configuration = configuration
        self._link = link
        self._events = events
        self._spawn = spawn
        self._reconnect = reconnect
        self._store: CertificateStore | None = None
        self._locate: Callable[[], Path] | None = None  # given by attach (the daemon knows the state dir)
        self._lock: asyncio.Lock | None = None
        self._loaded = False  # the store's facts below were read (at the first connection)
        self._switch_at: datetime | None = None  # a signed certificate's notBefore, still ahead
        self._expires: datetime | None = None  # notAfter of the certificate in force
        self._last_attempt: datetime | None = None  # of a renewal's signing request
        self._retiring = False  # old central-system roots wait for a reconnect to go
        self._signing = False
        self._timing = False
        self._wake = Flag()

    def attach(self, directory: Path | Callable[[], Path], exists: bool = True) -> None:
        """The store's folder (or what says it, at the first use: 5,000 charge points start without
        making a path each); `exists`: whether it was there at the start (one listing for every charge
        point), False spares the stat at the first connection."""
        self._locate = directory if callable(directory) else (lambda: directory)
        self._loaded = not exists  # nothing to read until this run makes certificates

    @property
    def store(self) -> CertificateStore | None:
        """The certificate store, once attached (made at its first use)."""
        if self._store is None and self._locate is not None:
            self._store = CertificateStore(self._locate())
        return self._store

    async def job(self, fn: Callable[[], T]) -> T:
        """Run a blocking read of the store in a thread, one store job at a time (the link's TLS
        context reads the roots and the certificate in force, which a switch may be moving)."""
        return await self._job(fn)

    def has_roots(self, use: str) -> bool:
        """Roots of this use are installed (a listing, nothing parsed)."""
        store = self.store
        return store is not None and bool(store.root_files(use))

    def has_identity(self) -> bool:
        store = self.store
        return store is not None and store.has_identity()

    async def _job(self, fn: Callable[..., T], *args: Any) -> T:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            return await asyncio.to_thread(fn, *args)

    def _attached(self) -> CertificateStore:
        if self.store is None:
            raise OSError("the certificate store has no directory yet")
        return self.store

    # -- InstallCertificate (M05) -------------------------------------------------------------------
    async def install(self, use: str, pem: str) -> str:
        """Accepted, Rejected (invalid; not signed by the installed root under
        AdditionalRootCertificateCheck; the store full) or Failed (not written)."""
        now = self._clock.now()

        def parsed() -> x509.Certificate:  # cryptography's first import and a signature check: a thread
            certificate = certs.parse_certificate(pem)
            certs.check_root(certificate, now)
            return certificate

        try:
            certificate = await asyncio.to_thread(parsed)
        except ValueError as exc:
            return self._refused(use, str(exc), invalid=True)
        check = use == CS_ROOT and self._configuration.get_bool("AdditionalRootCertificateCheck")
        most = self._configuration.get_int("CertificateStoreMaxLength")
        try:
            why = await self._job(self._install, use, certs.pem_of(certificate), certificate, check, most)
        except OSError as exc:
            log.error("%s: %s not stored: %s", self._cp_id, use, exc)
            return "Failed"
        if why is not None:
            return self._refused(use, why, invalid=not why.startswith("the certificate store is full"))
        log.info("%s: %s installed (serial %s)", self._cp_id, use, certs.serial_hex(certificate))
        self._events.note(f"{use} installed", f"subject {certificate.subject.rfc4514_string()}")
        return "Accepted"

    def _install(
        self, use: str, pem: bytes, certificate: x509.Certificate, check: bool, most: int
    ) -> str | None:
        store = self._attached()
        if store.has_root(use, certificate):
            return None  # installed already: nothing changes
        if store.root_count() >= most:
            return f"the certificate store is full (CertificateStoreMaxLength {most})"
        olds = store.root_certificates(use) if check else []
        if olds and not any(certs.issued_by(certificate, old) for old in olds):
            return "not signed by the installed central system root (AdditionalRootCertificateCheck)"
        store.add_root(use, pem, certificate)
        if olds:  # the old root stays as a fallback until a connection succeeds with the new one
            store.retire({certs.fingerprint(old) for old in olds})
            self._retiring = True
        return None

    def _refused(self, use: str, why: str, invalid: bool) -> str:
        log.warning("%s: InstallCertificate(%s) rejected: %s", self._cp_id, use, why)
        if use == CS_ROOT and invalid:
            self._events.emit("InvalidCentralSystemCertificate", why)
        return "Rejected"

    # -- DeleteCertificate (M04) ------------------------------------------------------------------
    async def delete(self, wanted: Mapping[str, str]) -> str:
        """Accepted, Failed (the last central-system root while profile 2 or 3 needs it, or the charge
        point certificate) or NotFound."""
        profile = self._configuration.get_int("SecurityProfile")
        try:
            status, what = await self._job(self._delete, dict(wanted), profile)
        except OSError as exc:
            log.error("%s: DeleteCertificate failed: %s", self._cp_id, exc)
            return "Failed"
        log.info("%s: DeleteCertificate: %s%s", self._cp_id, status, f" ({what})" if what else "")
        if status == "Accepted":
            self._events.note("Certificate deleted", what)
        return status

    def _delete(self, wanted: dict[str, str], profile: int) -> tuple[str, str | None]:
        store = self._attached()
        algorithm = wanted.get("hashAlgorithm", "")
        if algorithm not in certs.HASHES:
            return "NotFound", f"hash algorithm {algorithm!r}"
        for use in USES:
            installed = store.root_certificates(use)
            for certificate in installed:
                ours = certs.hash_data(certificate, _issuer_of(certificate, installed), algorithm)
                if not certs.same_hash_data(ours, wanted):
                    continue
                if use == CS_ROOT and profile >= 2 and len(installed) == 1:
                    return "Failed", f"the only {use}, needed by security profile {profile}"
                store.remove_root(use, certificate)
                return "Accepted", f"{use} {certificate.subject.rfc4514_string()}"
        current = store.current()
        if current is not None:
            roots = store.root_certificates(CS_ROOT)
            if certs.same_hash_data(certs.hash_data(current, _issuer_of(current, roots), algorithm), wanted):
                return "Failed", "the charge point certificate is never deleted"
        return "NotFound", None

    # -- GetInstalledCertificateIds (M03) ------------------------------------------------------
    async def installed_ids(self, use: str) -> list[dict[str, str]]:
        """The hash data (SHA256) of each installed root of this use."""
        return await self._job(self._installed_ids, use)

    def _installed_ids(self, use: str) -> list[dict[str, str]]:
        installed = self._attached().root_certificates(use) if self.store is not None else []
        return [certs.hash_data(c, _issuer_of(c, installed)) for c in installed]

    # -- SignCertificate / CertificateSigned (A02, A03) --------------------------------------
    def start_signing(self) -> bool:
        """Make a key and send SignCertificate with its CSR (after this returns); False when it cannot
        start: CpoName empty, no store, or a request already being made."""
        cpo_name = self._configuration.get("CpoName")
        if not cpo_name:
            log.error("%s: certificate signing request refused: CpoName is empty (it is the O= of the CSR)",
                      self._cp_id)  # fmt: skip
            return False
        if self.store is None or self._signing:
            return False
        self._signing = True
        self._spawn(self._sign(cpo_name), "SignCertificate")
        return True

    async def _sign(self, cpo_name: str) -> None:
        try:
            csr = await self._job(self._new_request, cpo_name)
            self._events.note("SignCertificate requested", f"CN={self.serial_number}, O={cpo_name}")
            answer = await self._link.submit(lambda: call.SignCertificate(csr=csr), want_result=True)
            status = str(getattr(answer, "status", answer))
            log.info("%s: SignCertificate answered %s", self._cp_id, status)
        except (OSError, ValueError) as exc:
            log.error("%s: no signing request made: %s", self._cp_id, exc)
        except Exception as exc:  # not sent or not answered: the next trigger or renewal tries again
            log.warning(
                "%s: SignCertificate not answered (%s); a later attempt will ask again", self._cp_id, exc
            )
        finally:
            self._signing = False

    def _new_request(self, cpo_name: str) -> str:
        key = certs.generate_key()
        self._attached().save_pending_key(certs.key_pem(key))  # survives a restart before the answer
        return certs.make_csr(key, self.serial_number, cpo_name)

    async def certificate_signed(self, chain: str) -> str:
        """Accepted (stored; it takes over at its notBefore: `switch_when_due`) or Rejected with an
        InvalidChargePointCertificate event."""
        cpo_name = self._configuration.get("CpoName")
        most = self._configuration.get_int("CertificateSignedMaxChainSize")
        try:
            leaf = await self._job(self._accept_signed, chain, cpo_name, most, self._clock.now())
        except (ValueError, OSError) as exc:
            log.warning("%s: CertificateSigned rejected: %s", self._cp_id, exc)
            self._events.emit("InvalidChargePointCertificate", str(exc))
            return "Rejected"
        self._switch_at = leaf.not_valid_before_utc
        log.info("%s: signed certificate accepted (serial %s, valid %s to %s)", self._cp_id,
                 certs.serial_hex(leaf), leaf.not_valid_before_utc.isoformat(),
                 leaf.not_valid_after_utc.isoformat())  # fmt: skip
        self._events.note("ChargePointCertificate accepted", f"serial {certs.serial_hex(leaf)}")
        return "Accepted"

    def _accept_signed(self, chain: str, cpo_name: str, most: int, now: datetime) -> x509.Certificate:
        store = self._attached()
        key_pem = store.pending_key()
        if key_pem is None:
            raise ValueError("no signing request of ours is pending")
        key = certs.load_key(key_pem)
        anchors = store.root_certificates(CS_ROOT)
        leaf = certs.check_signed_certificate(
            chain,
            key.public_key(),
            self.serial_number,
            cpo_name,
            anchors,
            now,
            most,
        )[0]
        store.accept_signed(chain.encode(), key_pem)
        return leaf

    def switch_when_due(self) -> None:
        """After CertificateSigned's Accepted is on the wire: switch now or at notBefore."""
        self._arm()

    # -- the link ----------------------------------------------------------------------------
    def link_opened(self) -> None:
        """A connection opened: the first time, read what the store holds (renewal, a switch ahead);
        roots replaced under AdditionalRootCertificateCheck go now that a connection succeeded."""
        store = self.store
        if store is None:
            return
        if not self._loaded:
            self._loaded = True
            if store.directory.exists():  # one stat; most charge points have no certificates at all
                self._spawn(self._load(), "certificates")
        elif self._retiring:
            self._spawn(self._drop_retiring(), "certificates")

    async def _load(self) -> None:
        store = self._attached()
        current, waiting, retiring = await self._job(
            lambda: (store.current(), store.waiting(), store.retiring())
        )
        self._expires = current.not_valid_after_utc if current is not None else None
        self._switch_at = waiting.not_valid_before_utc if waiting is not None else None
        self._retiring = bool(retiring)
        if self._retiring:
            await self._drop_retiring()
        self._arm()

    async def _drop_retiring(self) -> None:
        self._retiring = False
        gone = await self._job(self._attached().drop_retiring)
        for name in gone:
            log.info(
                "%s: old CentralSystemRootCertificate %s removed after a connection", self._cp_id, name[:16]
            )
            self._events.note("Old CentralSystemRootCertificate removed", name)

    def roots(self, use: str) -> list[bytes]:
        """Installed roots of this use, PEM (blocking: call in a thread)."""
        return self.store.roots(use) if self.store is not None else []

    def identity(self, now: datetime) -> tuple[Path, Path] | None:
        """The charge point certificate in force: chain and key files (blocking: call in a thread)."""
        return self.store.identity(now) if self.store is not None else None

    # -- the timer: the switch at notBefore and the renewal ------------------------------------
    def _arm(self) -> None:
        if self._timing:
            self._wake.set()
        elif self._switch_at is not None or self._expires is not None:
            self._timing = True
            self._spawn(self._timer(), "certificates timer")

    async def _timer(self) -> None:
        try:
            while True:
                self._wake.clear()
                now = self._clock.now()
                if self._switch_at is not None and self._switch_at <= now:
                    await self._switch(now)
                    continue
                due = [self._switch_at] if self._switch_at is not None else []
                if self._expires is not None:
                    renewal = certs.next_renewal(self._expires, now, self._last_attempt)
                    if renewal <= now:
                        self._last_attempt = now
                        log.info("%s: the charge point certificate expires %s: renewing", self._cp_id,
                                 self._expires.isoformat())  # fmt: skip
                        self.start_signing()
                        continue
                    due.append(renewal)
                if not due:
                    return
                await wait_wall(self._clock, self._wake, (min(due) - now).total_seconds())
        finally:
            self._timing = False

    async def _switch(self, now: datetime) -> None:
        store = self._attached()
        self._switch_at = None
        current = await self._job(lambda: store.current() if store.identity(now) is not None else None)
        if current is None:
            return
        self._expires, self._last_attempt = current.not_valid_after_utc, None
        log.info("%s: charge point certificate %s in force: reconnecting", self._cp_id,
                 certs.serial_hex(current))  # fmt: skip
        self._events.note("ChargePointCertificate in force", f"serial {certs.serial_hex(current)}")
        self._reconnect("a new charge point certificate is in force")


def _issuer_of(certificate: x509.Certificate, candidates: list[x509.Certificate]) -> x509.Certificate:
    """Who issued an installed certificate: itself for a root; the installed one that signed a
    cross-signed root; itself when none did (its hash data then names its own key)."""
    if certificate.issuer == certificate.subject:
        return certificate
    return next(
        (c for c in candidates if c is not certificate and certs.issued_by(certificate, c)), certificate
    )
