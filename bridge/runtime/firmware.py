"""UpdateFirmware, carried out: the pure machine of `bridge.core.firmware` in a thin asyncio shell.

The machine decides (when to download, how often, when to install, what to report); this shell does
what it asks, in order: the download (`bridge.transfer.download`, streamed to a file under
`<state_dir>/firmware/images/<job>/`), holding the connectors (no new session starts; a running one
goes on to its end), the install (`bridge.firmware`'s installer of the configured kind) and the
restart into a new release of the bridge. It tells the machine the outcomes, and when no transaction
runs any more (`transaction_ended`) or the new release booted (`booted`). The record, the deadline
(retrieveDate, the next attempt, the boot timeout) and the statuses are `TransferRunner`'s.

Before a restart the record is stored and committed: the new process reads AWAITING_BOOT and knows
what it is waiting for.

SignedUpdateFirmware (security white paper L01) is the same job with a signed request: its signing
certificate is checked against the installed ManufacturerRootCertificates before it is accepted
(`bridge.security.firmware_signature`), the image's signature is verified in a thread after the
download, its statuses go as SignedFirmwareStatusNotification with the requestId, and its security
events (InvalidFirmwareSigningCertificate, InvalidFirmwareSignature, FirmwareUpdated) go through the
charge point's SecurityEvents. While a manufacturer root is installed, unsigned firmware cannot be
trusted: plain UpdateFirmware is refused (`unsigned_refusal`, L01.FR.20).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
import tempfile
import urllib.parse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from adapters.base import Charger
from bridge.clock import Clock
from bridge.config import FirmwareConfig
from bridge.core.firmware import FirmwareSnapshot, FirmwareState, FirmwareUpdate, answer
from bridge.core.firmware_effects import (
    Abandon,
    Download,
    DownloadFailed,
    DownloadSucceeded,
    FirmwareEvent,
    HoldConnectors,
    Install,
    InstallFailed,
    InstallRestarting,
    NewVersionBooted,
    NoTransactionRunning,
    ReleaseConnectors,
    Report,
    ResolveInterruptedInstall,
    RollBack,
    SecurityEvent,
    SignatureInvalid,
    SignatureValid,
    Signed,
    Step,
    Superseded,
    VerifyImage,
    VerifySignature,
)
from bridge.core.transfer_job import masked
from bridge.firmware.install import Installer, NoInstaller
from bridge.outbox import Outbox
from bridge.runtime.effects import Spawn
from bridge.runtime.transfer_runner import TransferRunner
from bridge.store import Store

if TYPE_CHECKING:  # the module imports cryptography: only when a signed update comes
    from bridge.security.firmware_signature import ManufacturerRoots

log = logging.getLogger("bridge.firmware")

JOB = "firmware"  # its name in the store's job_records
ACTIONS = {False: "FirmwareStatusNotification", True: "SignedFirmwareStatusNotification"}  # by signed
UNSIGNED_REFUSED = (
    "a ManufacturerRootCertificate is installed, so firmware must come signed: use SignedUpdateFirmware "
    "(security white paper L01.FR.20)"
)
IMAGES_DIR = "firmware/images"  # under state_dir
TRANSFER_TIMEOUT_S = 60.0  # no data for this long in a download: the attempt failed
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._+-]")


class SecurityEventSink(Protocol):
    """Where security events go (`runtime.security_events.SecurityEvents`)."""

    def emit(self, kind: str, detail: str | None = None) -> None: ...


class FirmwareRunner(TransferRunner[FirmwareUpdate]):
    def __init__(
        self,
        cp_id: str,
        clock: Clock,
        store: Store,
        outbox: Outbox,
        spawn: Spawn,
        *,
        hold: Callable[[bool], None],
        idle: Callable[[], bool],
    ) -> None:
        """`hold(True)`: no new session starts and idle connectors show Unavailable (False: back);
        `idle()`: no transaction runs."""
        super().__init__(
            cp_id, clock, store, outbox, spawn, machine=FirmwareUpdate(), job_name=JOB,
            action=ACTIONS[False], log=log,
        )  # fmt: skip
        self._hold = hold
        self._idle = idle
        self._download: asyncio.Task[None] | None = None
        # Set by the daemon (`install_with`); a charge point alone downloads to a temporary directory
        # and installs nothing (D5).
        self._installer: Installer = NoInstaller()
        self._images = Path(tempfile.gettempdir()) / f"ocpp-bridge-{_SAFE_NAME.sub('_', cp_id)}-firmware"
        self._restart: Callable[[], None] | None = None
        # Set by the security extension (`sign_with`); without roots nothing signed is accepted.
        self._roots: ManufacturerRoots | None = None
        self._events: SecurityEventSink | None = None

    def install_with(self, installer: Installer, state_dir: Path, restart: Callable[[], None]) -> None:
        """The configured kind of install; images go to state_dir/firmware/images; `restart` stops
        the daemon so that the service starts again (into a new release)."""
        self._installer, self._images, self._restart = installer, state_dir / IMAGES_DIR, restart

    def sign_with(self, roots: ManufacturerRoots, events: SecurityEventSink) -> None:
        """The security extension: the manufacturer roots signed firmware must chain to, and where the
        security events of an update go."""
        self._roots, self._events = roots, events

    # -- what the handlers, the trigger and the charge point ask --------------------------------
    def request(
        self, location: str, retrieve_date: float, retries: int | None, retry_interval_s: float | None
    ) -> None:
        """UpdateFirmware (answered with an empty conf): the job starts at retrieveDate. ValueError for
        a request the machine refuses (an empty location)."""
        step = self._machine.request(location, retrieve_date, retries, retry_interval_s, self._now())
        self._carry_out(step)

    async def signed_request(
        self, request_id: int, location: str, retrieve_date: float, install_date: float | None,
        certificate: str, signature: str, retries: int | None, retry_interval_s: float | None,
    ) -> str:  # fmt: skip
        """SignedUpdateFirmware's answer: InvalidCertificate (and its security event) unless the signing
        certificate chains to an installed manufacturer root; Accepted or AcceptedCanceled (it replaced
        an update) otherwise. ValueError for a request the machine refuses."""
        from bridge.security.firmware_signature import SigningCertificateError, check_signing_certificate

        signed = Signed(request_id, certificate, signature, install_date)  # a bad field before the check
        try:
            check_signing_certificate(certificate, await self._manufacturer_roots(), self._clock.now())
        except SigningCertificateError as exc:
            self._emit(SecurityEvent("InvalidFirmwareSigningCertificate", str(exc)))
            return "InvalidCertificate"
        step = self._machine.request(location, retrieve_date, retries, retry_interval_s, self._now(), signed)
        self._carry_out(step)
        return answer(step)

    async def unsigned_refusal(self) -> str | None:
        """Why plain UpdateFirmware is refused now (a manufacturer root is installed), or None."""
        return UNSIGNED_REFUSED if await self._manufacturer_roots() else None

    def trigger_status(self) -> str:
        """FirmwareStatusNotification's status for a TriggerMessage: Idle only when nothing runs."""
        return str(self._machine.trigger_status())

    def trigger_signed_status(self) -> tuple[str, int | None]:
        """SignedFirmwareStatusNotification's status and requestId for an ExtendedTriggerMessage: the
        running signed update's (a plain one's status, and no requestId, when none runs)."""
        status, request_id = self._machine.signed_trigger_status()
        return str(status), request_id

    def snapshot(self) -> FirmwareSnapshot:
        return self._machine.snapshot()

    def transaction_ended(self) -> None:
        """A transaction ended: with the connectors held, the install may start once none runs."""
        if self._machine.state is FirmwareState.DOWNLOADED and self._idle():
            self._handle(NoTransactionRunning())

    def booted(self) -> None:
        """The central system accepted our BootNotification: a new release on trial is confirmed."""
        m = self._machine
        if m.state is FirmwareState.AWAITING_BOOT and m.target and self._installer.is_running(m.target):
            target = m.target
            self._handle(NewVersionBooted(m.job))
            # It deletes the releases older than the previous one: off the event loop.
            self._spawn(asyncio.to_thread(self._installer.confirm, target), "firmware confirm")

    async def restore(self, record: str | None) -> None:
        """At start, after the transactions were restored, before the charge point runs."""
        step = self._restored(record, FirmwareUpdate.from_record)
        if step is not None:
            self._carry_out(step)
        m = self._machine
        if m.state is FirmwareState.AWAITING_BOOT and m.target and not self._installer.is_running(m.target):
            # The launcher switched back before this (the old) release started: the new one failed.
            event, _ = await self._installer.roll_back(m.job)
            self._handle(event)

    # -- the effects ----------------------------------------------------------------------------
    def _handle(self, event: FirmwareEvent) -> None:
        self._carry_out(self._machine.handle(event, self._now()))

    def _carry_out(self, step: Step) -> None:
        if step.changed:
            self._save()
        for effect in step.effects:
            if isinstance(effect, Report):
                action = ACTIONS[effect.request_id is not None]  # the flavour's notification
                self._report(str(effect.status), effect.reason, effect.request_id, action)
            elif isinstance(effect, Download):
                self._download = self._spawn(self._download_image(effect), f"firmware download {effect.job}")
            elif isinstance(effect, Abandon):
                if self._download is not None:
                    self._download.cancel()
                self._discard(effect.job)
            elif isinstance(effect, HoldConnectors | ReleaseConnectors):
                self._hold(isinstance(effect, HoldConnectors))
            elif isinstance(effect, Install | ResolveInterruptedInstall):
                interrupted = isinstance(effect, ResolveInterruptedInstall)
                self._spawn(self._install(effect.job, Path(effect.file), interrupted), "firmware install")
            elif isinstance(effect, VerifySignature):
                self._spawn(self._verify(effect), "firmware signature")
            elif isinstance(effect, SecurityEvent):
                self._emit(effect)
            elif isinstance(effect, VerifyImage):
                if not Path(effect.file).is_file():
                    self._handle(InstallFailed(effect.job, "the downloaded image is gone"))
            elif isinstance(effect, RollBack):
                self._spawn(self._roll_back(effect.job), "firmware roll back")
            elif isinstance(effect, Superseded):
                log.info("%s: a new UpdateFirmware replaces the one from %s (%s)", self._cp_id,
                         masked(effect.previous.location), effect.fate)  # fmt: skip
        if self._machine.state is FirmwareState.IDLE and self._machine.job:
            self._discard(self._machine.job)
        self.transaction_ended()  # connectors just held with no transaction running: install now
        self._arm()

    def _discard(self, job: int) -> None:
        """The image of `job`, once it is no longer needed."""
        shutil.rmtree(self._images / str(job), ignore_errors=True)

    async def _download_image(self, effect: Download) -> None:
        # Imported when first used: aiohttp's import takes ~0.1 s of the start otherwise.
        from bridge.transfer import TransferError, download

        folder = self._images / str(effect.job)
        dest = folder / image_file_name(effect.location)
        try:
            await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
            await download(effect.location, dest, timeout_s=TRANSFER_TIMEOUT_S)
        except TransferError as exc:
            event: DownloadSucceeded | DownloadFailed = DownloadFailed(effect.job, str(exc))
        except OSError as exc:
            event = DownloadFailed(effect.job, f"the image could not be stored: {exc.strerror or exc}")
        else:
            event = DownloadSucceeded(effect.job, str(dest))
        if isinstance(event, DownloadFailed):
            log.warning(
                "%s: firmware download attempt %d failed: %s", self._cp_id, effect.attempt, event.reason
            )
        self._handle(event)

    async def _verify(self, effect: VerifySignature) -> None:
        from cryptography.exceptions import InvalidSignature

        from bridge.security.firmware_signature import verify_image

        try:
            await asyncio.to_thread(verify_image, Path(effect.file), effect.certificate, effect.signature)
        except InvalidSignature as exc:
            event: SignatureValid | SignatureInvalid | DownloadFailed = SignatureInvalid(effect.job, str(exc))
        except OSError as exc:  # the image gone or unreadable (a restart, a disk): no forgery to report
            event = DownloadFailed(
                effect.job, f"the image could not be read to check it: {exc.strerror or exc}"
            )
        except Exception as exc:  # a signature or key we cannot use: it does not verify
            log.warning("%s: the firmware signature could not be checked: %r", self._cp_id, exc)
            event = SignatureInvalid(effect.job, f"the signature could not be checked: {exc}")
        else:
            event = SignatureValid(effect.job)
        self._handle(event)

    async def _manufacturer_roots(self) -> list[bytes]:
        return [] if self._roots is None else await asyncio.to_thread(self._roots.manufacturer_roots)

    def _emit(self, event: SecurityEvent) -> None:
        if self._events is not None:
            self._events.emit(event.kind, event.detail)
        else:
            log.info("%s: security event %s: %s", self._cp_id, event.kind, event.detail)

    async def _install(self, job: int, image: Path, interrupted: bool) -> None:
        installer = self._installer
        log.info("%s: installing %s (%s)", self._cp_id, image.name, installer.kind)
        try:
            outcome = await (installer.resolve_interrupted if interrupted else installer.install)(image, job)
        except Exception as exc:  # an installer's bug: the install failed, the machine goes on
            log.exception("%s: the firmware install failed", self._cp_id)
            outcome = InstallFailed(job, f"the install failed: {exc!r}")
        self._handle(outcome)
        if isinstance(outcome, InstallRestarting) and not installer.is_running(outcome.target):
            await self._restart_now(f"into {outcome.target}")

    async def _roll_back(self, job: int) -> None:
        event, restart = await self._installer.roll_back(job)
        self._handle(event)
        if restart:
            await self._restart_now("into the previous release")

    async def _restart_now(self, why: str) -> None:
        await self._saved()  # the next process must read where this one was
        if self._restart is None:
            log.error("%s: a restart %s is needed, but nothing can restart this process", self._cp_id, why)
            return
        log.warning("%s: restarting %s", self._cp_id, why)
        self._restart()


def image_file_name(location: str) -> str:
    """The image's file name from its URL (a wheel's name matters to pip), made safe."""
    with contextlib.suppress(ValueError):
        name = Path(urllib.parse.unquote(urllib.parse.urlsplit(location).path)).name
        name = _SAFE_NAME.sub("_", name).lstrip(".")
        if name:
            return name[:200]
    return "firmware.bin"


def installer_for(
    cfg: FirmwareConfig, chargers: Sequence[Charger], state_dir: Path, config_file: str, csms_url: str
) -> Installer:
    """The installer of the charge point's `firmware.install` (docs/firmware-and-diagnostics.md);
    `config_file`: the file `run` was given (a new release of the bridge must accept it)."""
    if cfg.install == "command":
        from bridge.firmware.command import CommandInstaller

        return CommandInstaller(list(cfg.command), cfg.timeout_s, log)
    if cfg.install == "device":
        from bridge.firmware.device import DeviceInstaller

        return DeviceInstaller(chargers)
    if cfg.install == "bridge":
        from bridge.firmware.self_update import BridgeInstaller

        if not csms_url.lower().startswith("wss://"):
            log.warning(
                "firmware.install is bridge over %s with accept_remote_code_risk: anyone on the network "
                "path can install code that runs here; use wss://", csms_url.split(":", 1)[0] + "://",
            )  # fmt: skip
        return BridgeInstaller(state_dir, Path(config_file), cfg.boot_timeout_s, log)
    return NoInstaller()
