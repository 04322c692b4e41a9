"""What the firmware machine takes from the shell and asks of it (pure values).

Events: `DueNow` (from transfer_job), and the outcomes the shell reports, each naming its job.
Effects: what the shell carries out, in the order a `Step` lists them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TypeAlias

from bridge.core.transfer_job import DueNow, JobEvent, RetryRule


class FirmwareStatus(StrEnum):
    """FirmwareStatusNotification's values (the first seven, all a plain update reports), and
    SignedFirmwareStatusNotification's (all of them; DownloadPaused is never reported)."""

    IDLE = "Idle"
    DOWNLOADING = "Downloading"
    DOWNLOADED = "Downloaded"
    DOWNLOAD_FAILED = "DownloadFailed"
    INSTALLING = "Installing"
    INSTALLED = "Installed"
    INSTALLATION_FAILED = "InstallationFailed"
    # the signed flavour's own
    DOWNLOAD_SCHEDULED = "DownloadScheduled"
    SIGNATURE_VERIFIED = "SignatureVerified"
    INVALID_SIGNATURE = "InvalidSignature"
    INSTALL_SCHEDULED = "InstallScheduled"
    INSTALL_REBOOTING = "InstallRebooting"
    INSTALL_VERIFICATION_FAILED = "InstallVerificationFailed"


@dataclass(frozen=True)
class Signed:
    """What SignedUpdateFirmware (security white paper L01) adds to a request: its id, when to install,
    and the signing certificate (checked against a manufacturer root before the request was accepted)
    and the signature the downloaded image must match."""

    request_id: int
    certificate: str  # PEM
    signature: str  # base64
    install_date: float | None = None  # epoch seconds; None: as soon as the signature is verified

    def __post_init__(self) -> None:
        if type(self.request_id) is not int:
            raise ValueError(f"requestId must be an integer, not {self.request_id!r}")
        if not self.certificate.strip() or not self.signature.strip():
            raise ValueError("signingCertificate and signature must not be empty")


@dataclass(frozen=True)
class FirmwareRequest:
    location: str
    retrieve_date: float
    rule: RetryRule
    signed: Signed | None = None  # None: a plain UpdateFirmware

    def __post_init__(self) -> None:
        if not isinstance(self.location, str) or not self.location.strip():
            raise ValueError("UpdateFirmware location must be a non-empty URL")
        if isinstance(self.retrieve_date, bool) or not isinstance(self.retrieve_date, int | float):
            raise ValueError(f"retrieveDate must be epoch seconds, not {self.retrieve_date!r}")


# -- events -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NoTransactionRunning:
    """With the connectors held, no transaction runs (any more)."""


@dataclass(frozen=True)
class DownloadSucceeded(JobEvent):
    file: str  # where the image is (kept across a restart)


@dataclass(frozen=True)
class DownloadFailed(JobEvent):
    reason: str


@dataclass(frozen=True)
class InstallSucceeded(JobEvent):
    """The install is done and its outcome known (a command, a device)."""


@dataclass(frozen=True)
class InstallRestarting(JobEvent):
    """The bridge itself was installed and restarts into `target`; it has boot_timeout_s to boot."""

    target: str
    boot_timeout_s: float


@dataclass(frozen=True)
class InstallFailed(JobEvent):
    reason: str


@dataclass(frozen=True)
class SignatureValid(JobEvent):
    """The downloaded image matches the request's signature."""


@dataclass(frozen=True)
class SignatureInvalid(JobEvent):
    reason: str


@dataclass(frozen=True)
class NewVersionBooted(JobEvent):
    """The new version's BootNotification was accepted."""


@dataclass(frozen=True)
class RolledBack(JobEvent):
    reason: str


FirmwareEvent: TypeAlias = (
    DueNow
    | NoTransactionRunning
    | DownloadSucceeded
    | DownloadFailed
    | SignatureValid
    | SignatureInvalid
    | InstallSucceeded
    | InstallRestarting
    | InstallFailed
    | NewVersionBooted
    | RolledBack
)


# -- effects, to be carried out in order -------------------------------------------------------------
@dataclass(frozen=True)
class Report:
    status: FirmwareStatus
    reason: str | None = None  # for the log and the snapshot; not on the wire
    request_id: int | None = None  # a signed update's: SignedFirmwareStatusNotification; None: plain


@dataclass(frozen=True)
class Download:
    job: int
    attempt: int  # 1 .. retries + 1
    location: str


@dataclass(frozen=True)
class Abandon:
    """Stop what runs for `job` and delete its file."""

    job: int


@dataclass(frozen=True)
class HoldConnectors:
    """Make idle connectors Unavailable, and each running one when its transaction ends."""


@dataclass(frozen=True)
class ReleaseConnectors:
    """Back to Operative, except those the central system made Inoperative."""


@dataclass(frozen=True)
class Install:
    job: int
    file: str


@dataclass(frozen=True)
class VerifySignature:
    """Check the downloaded image at `file` against `signature` made with `certificate`'s key:
    SignatureValid or SignatureInvalid."""

    job: int
    file: str
    certificate: str
    signature: str


@dataclass(frozen=True)
class SecurityEvent:
    """A security event of the white paper (FirmwareUpdated, InvalidFirmwareSignature)."""

    kind: str
    detail: str | None = None


@dataclass(frozen=True)
class VerifyImage:
    """After a restart: InstallFailed if the image at `file` is gone."""

    job: int
    file: str


@dataclass(frozen=True)
class ResolveInterruptedInstall:
    """After a restart during an install: the shell knows what its kind of install left behind."""

    job: int
    file: str


@dataclass(frozen=True)
class RollBack:
    job: int


class Fate(StrEnum):
    DROPPED = "dropped"  # it had not started
    CANCELLED = "cancelled"  # its download was stopped or its image discarded
    FINISHES_FIRST = "finishes first"  # installing: the new request starts after it


@dataclass(frozen=True)
class Superseded:
    previous: FirmwareRequest
    fate: Fate


FirmwareEffect: TypeAlias = (
    Report
    | Download
    | Abandon
    | HoldConnectors
    | ReleaseConnectors
    | Install
    | VerifySignature
    | SecurityEvent
    | VerifyImage
    | ResolveInterruptedInstall
    | RollBack
    | Superseded
)


@dataclass(frozen=True)
class Step:
    effects: tuple[FirmwareEffect, ...] = ()
    changed: bool = False  # store to_record()
