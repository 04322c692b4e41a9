"""UpdateFirmware as a state machine (pure): when to download, retry, install, and what to report.

The theory
----------
An update is one *job* (a request and a serial number). The machine keeps the job's state and
returns what the shell must do (`Step.effects`, in order); the shell runs the downloads and installs
and tells the outcome back, naming the job: an outcome of a job that was since replaced is stale
and ignored. Time is epoch seconds passed in; `next_deadline()` says when to call `handle(DueNow())`.

States: IDLE, SCHEDULED (retrieveDate not reached: "allowed to retrieve after" it), DOWNLOADING (an
attempt runs), RETRY_WAIT (an attempt failed, the next one starts retryInterval after the failure),
DOWNLOADED (connectors held: no new session starts; waiting until no transaction runs, because an
update never cuts charging), INSTALLING, AWAITING_BOOT (the bridge itself was installed and restarts:
Installed once the new version booted to the central system) and ROLLING_BACK (it did not in time).

Reported (FirmwareStatusNotification, each as it happens): Downloading on the first attempt only
(there is no status between attempts), DownloadFailed after exactly retries + 1 failed attempts,
Downloaded, Installing, Installed or InstallationFailed. Every end releases the connectors (a no-op
where none were held); the shell keeps those the central system made Inoperative. A trigger reports
`Idle` when nothing runs, and a SCHEDULED job has not started; between attempts it is Downloading.

Retries and their defaults (one re-try, 60 s apart) are `transfer_job.RetryRule`'s; the events
and effects are in `firmware_effects`.

The signed flavour (SignedUpdateFirmware, L01): a `Signed` request, its table `SIGNED_TABLE` (its
rows, then TABLE's others), its reports with the requestId. After the download it is VERIFYING (the
shell checks the signature): SignatureVerified, or InvalidSignature and the end; INSTALL_SCHEDULED
until installDateTime (reported only when still to come), then DOWNLOADED as above. Also its own:
DownloadScheduled, InstallRebooting, InstallVerificationFailed (a release rolled back). Installed
emits FirmwareUpdated (either flavour); a restart while VERIFYING verifies again.

A new request replaces the job (`Superseded` says how): not started (SCHEDULED, RETRY_WAIT) ->
dropped; DOWNLOADING or DOWNLOADED -> cancelled (the shell stops it and deletes the file; held
connectors are released); installing (INSTALLING, AWAITING_BOOT, ROLLING_BACK) cannot be stopped
halfway -> the new request waits and starts when the install ends (a later one replaces it).

After a restart (`from_record`): SCHEDULED and RETRY_WAIT keep their times; DOWNLOADING counts as
that attempt failing (a download that crashes the daemon cannot loop forever); DOWNLOADED holds the
connectors again and asks the shell to check the image (gone -> InstallFailed); INSTALLING asks the
shell to decide from its kind of install; AWAITING_BOOT keeps its deadline (the shell sends
NewVersionBooted, or RolledBack when it finds itself the old version); ROLLING_BACK asks RollBack
again (idempotent). The shell stores `to_record()` whenever a step says `changed`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bridge.core.firmware_effects import (
    Abandon,
    Download,
    DownloadFailed,
    DownloadSucceeded,
    Fate,
    FirmwareEffect,
    FirmwareEvent,
    FirmwareRequest,
    FirmwareStatus,
    HoldConnectors,
    Install,
    InstallFailed,
    InstallRestarting,
    InstallSucceeded,
    NewVersionBooted,
    NoTransactionRunning,
    ReleaseConnectors,
    Report,
    ResolveInterruptedInstall,
    RollBack,
    RolledBack,
    SecurityEvent,
    SignatureInvalid,
    SignatureValid,
    Signed,
    Step,
    Superseded,
    VerifyImage,
    VerifySignature,
)
from bridge.core.transfer_job import JSON, DueNow, Guard, JobSnapshot, RetryRule, Row, TransferJob, masked


# -- the firmware machine ---------------------------------------------------------------------------
class FirmwareState(StrEnum):
    IDLE = "Idle"
    SCHEDULED = "Scheduled"
    DOWNLOADING = "Downloading"
    RETRY_WAIT = "RetryWait"
    VERIFYING = "Verifying"  # signed: the image's signature is being checked
    INSTALL_SCHEDULED = "InstallScheduled"  # signed: verified, waiting for installDateTime
    DOWNLOADED = "Downloaded"  # connectors held, waiting until no transaction runs
    INSTALLING = "Installing"
    AWAITING_BOOT = "AwaitingBoot"
    ROLLING_BACK = "RollingBack"


_F, _S = FirmwareState, FirmwareStatus
TABLE: tuple[Row, ...] = (
    Row(_F.SCHEDULED, DueNow, _F.DOWNLOADING, Guard.DUE),
    Row(_F.RETRY_WAIT, DueNow, _F.DOWNLOADING, Guard.DUE),
    Row(_F.DOWNLOADING, DownloadFailed, _F.RETRY_WAIT, Guard.RETRY_LEFT),
    Row(_F.DOWNLOADING, DownloadFailed, _F.IDLE, Guard.NO_RETRY_LEFT, _S.DOWNLOAD_FAILED),
    Row(_F.DOWNLOADING, DownloadSucceeded, _F.DOWNLOADED),
    Row(_F.DOWNLOADED, NoTransactionRunning, _F.INSTALLING),
    Row(_F.DOWNLOADED, InstallFailed, _F.IDLE, None, _S.INSTALLATION_FAILED),  # the image is gone
    Row(_F.INSTALLING, InstallSucceeded, _F.IDLE, None, _S.INSTALLED),
    Row(_F.INSTALLING, InstallFailed, _F.IDLE, None, _S.INSTALLATION_FAILED),
    Row(_F.INSTALLING, InstallRestarting, _F.AWAITING_BOOT),
    Row(_F.AWAITING_BOOT, NewVersionBooted, _F.IDLE, None, _S.INSTALLED),
    Row(_F.AWAITING_BOOT, DueNow, _F.ROLLING_BACK, Guard.DUE),
    Row(_F.AWAITING_BOOT, RolledBack, _F.IDLE, None, _S.INSTALLATION_FAILED),
    Row(_F.ROLLING_BACK, RolledBack, _F.IDLE, None, _S.INSTALLATION_FAILED),
)
# The signed flavour's rows, taken before TABLE's rows of the same state and event.
SIGNED_ROWS: tuple[Row, ...] = (
    Row(_F.DOWNLOADING, DownloadSucceeded, _F.VERIFYING),
    Row(_F.VERIFYING, SignatureValid, _F.INSTALL_SCHEDULED),
    Row(_F.VERIFYING, SignatureInvalid, _F.IDLE, None, _S.INVALID_SIGNATURE),
    Row(_F.VERIFYING, DownloadFailed, _F.IDLE, None, _S.DOWNLOAD_FAILED),  # the image unreadable, not forged
    Row(_F.INSTALL_SCHEDULED, DueNow, _F.DOWNLOADED, Guard.DUE),
    Row(_F.AWAITING_BOOT, RolledBack, _F.IDLE, None, _S.INSTALL_VERIFICATION_FAILED),
    Row(_F.ROLLING_BACK, RolledBack, _F.IDLE, None, _S.INSTALL_VERIFICATION_FAILED),
)
_OWN = {(r.source, r.event) for r in SIGNED_ROWS}
SIGNED_TABLE: tuple[Row, ...] = SIGNED_ROWS + tuple(r for r in TABLE if (r.source, r.event) not in _OWN)
# The security event an outcome is (either flavour).
OUTCOME_EVENT: Mapping[FirmwareStatus, str] = {
    _S.INSTALLED: "FirmwareUpdated",
    _S.INVALID_SIGNATURE: "InvalidFirmwareSignature",
}
TRIGGER_STATUS: Mapping[FirmwareState, FirmwareStatus] = {
    _F.IDLE: _S.IDLE,
    _F.SCHEDULED: _S.IDLE,
    _F.DOWNLOADING: _S.DOWNLOADING,
    _F.RETRY_WAIT: _S.DOWNLOADING,
    _F.VERIFYING: _S.DOWNLOADED,
    _F.INSTALL_SCHEDULED: _S.DOWNLOADED,
    _F.DOWNLOADED: _S.DOWNLOADED,
    _F.INSTALLING: _S.INSTALLING,
    _F.AWAITING_BOOT: _S.INSTALLING,
    _F.ROLLING_BACK: _S.INSTALLING,
}
# A signed job's status for ExtendedTriggerMessage(FirmwareStatusNotification) (a plain job's: above).
SIGNED_TRIGGER_STATUS: Mapping[FirmwareState, FirmwareStatus] = {
    **TRIGGER_STATUS,
    _F.SCHEDULED: _S.DOWNLOAD_SCHEDULED,
    _F.INSTALL_SCHEDULED: _S.INSTALL_SCHEDULED,
    _F.DOWNLOADED: _S.SIGNATURE_VERIFIED,
    _F.AWAITING_BOOT: _S.INSTALL_REBOOTING,
}
FATE: Mapping[FirmwareState, Fate] = {
    _F.SCHEDULED: Fate.DROPPED,
    _F.RETRY_WAIT: Fate.DROPPED,
    _F.DOWNLOADING: Fate.CANCELLED,
    _F.VERIFYING: Fate.CANCELLED,
    _F.INSTALL_SCHEDULED: Fate.CANCELLED,
    _F.DOWNLOADED: Fate.CANCELLED,
    _F.INSTALLING: Fate.FINISHES_FIRST,
    _F.AWAITING_BOOT: Fate.FINISHES_FIRST,
    _F.ROLLING_BACK: Fate.FINISHES_FIRST,
}


@dataclass(frozen=True)
class Outcome:
    status: FirmwareStatus
    reason: str | None
    at: float
    request_id: int | None = None  # a signed update's


@dataclass(frozen=True)
class FirmwareSnapshot(JobSnapshot[FirmwareState, FirmwareStatus]):
    """Pending (SCHEDULED), running, and the last job's outcome; deadline: also retrieveDate and
    the boot timeout."""

    retrieve_date: float | None
    target: str | None  # what a restarting install installs
    queued_location: str | None  # a request waiting for the install to end (masked)
    outcome: Outcome | None
    request_id: int | None = None  # the running signed update's (SignedUpdateFirmware)


class FirmwareUpdate(TransferJob[FirmwareState, FirmwareStatus, FirmwareRequest, Outcome]):
    """One UpdateFirmware job at a time (see the theory); a request that comes during an install
    waits in `queued` and starts when the install ends."""

    def __init__(self) -> None:
        super().__init__(FirmwareState.IDLE, TRIGGER_STATUS)
        self.queued: FirmwareRequest | None = None
        self.file: str | None = None
        self.target: str | None = None

    def request(
        self,
        location: str,
        retrieve_date: float,
        retries: int | None,
        retry_interval_s: float | None,
        now: float,
        signed: Signed | None = None,
    ) -> Step:
        """UpdateFirmware (SignedUpdateFirmware with `signed`): replaces the job (see Fate); raises
        ValueError naming a bad field."""
        new = FirmwareRequest(location, retrieve_date, RetryRule.of(retries, retry_interval_s), signed)
        if self.state is _F.IDLE:
            return self._adopt(new, now)
        fate = FATE[self.state]
        assert self.current is not None
        if fate is Fate.FINISHES_FIRST:
            dropped = (Superseded(self.queued, Fate.DROPPED),) if self.queued else ()
            self.queued = new
            return Step((*dropped, Superseded(self.current, fate)), changed=True)
        effects: list[FirmwareEffect] = [Superseded(self.current, fate)]
        if fate is Fate.CANCELLED:
            effects.append(Abandon(self.job))
        if self.state is _F.DOWNLOADED:
            effects.append(ReleaseConnectors())
        return Step((*effects, *self._adopt(new, now).effects), changed=True)

    def signed_trigger_status(self) -> tuple[FirmwareStatus, int | None]:
        """ExtendedTriggerMessage(FirmwareStatusNotification): the status in the signed vocabulary and
        the running signed update's requestId (None when none runs: the white paper's exception)."""
        signed = self.current.signed if self.current else None
        if signed is None:
            return self.trigger_status(), None
        return SIGNED_TRIGGER_STATUS[self.state], signed.request_id

    def handle(self, event: FirmwareEvent, now: float) -> Step:
        rule = self.current.rule if self.current else RetryRule(0, 0.0)
        table = SIGNED_TABLE if self.current and self.current.signed else TABLE
        row = self._row(table, event, now, rule.attempts)
        if row is None:
            return Step()
        source, self.state, self.since = self.state, FirmwareState(row.target), now
        return Step(self._transition(source, row, event, now), changed=True)

    def _transition(
        self, source: StrEnum, row: Row, event: FirmwareEvent, now: float
    ) -> tuple[FirmwareEffect, ...]:
        assert self.current is not None
        failed = DownloadFailed | InstallFailed | RolledBack | SignatureInvalid
        reason = masked(event.reason) if isinstance(event, failed) else None
        signed, report = self.current.signed, self._report
        self.deadline = None
        if isinstance(event, DownloadFailed):
            self.last_error = reason
        if isinstance(event, DownloadSucceeded):
            self.file = event.file
        if self.state is _F.DOWNLOADING:
            self.attempt += 1
            first = (report(_S.DOWNLOADING),) if source is _F.SCHEDULED else ()
            return (*first, Download(self.job, self.attempt, self.current.location))
        if self.state is _F.RETRY_WAIT:
            self.deadline = now + self.current.rule.interval_s
        elif self.state is _F.VERIFYING:
            assert signed is not None and self.file is not None
            return report(_S.DOWNLOADED), VerifySignature(
                self.job, self.file, signed.certificate, signed.signature
            )
        elif self.state is _F.INSTALL_SCHEDULED:
            assert signed is not None
            self.deadline = now if signed.install_date is None else max(now, signed.install_date)
            later = (report(_S.INSTALL_SCHEDULED),) if self.deadline > now else ()
            return report(_S.SIGNATURE_VERIFIED), *later, *self.handle(DueNow(), now).effects
        elif self.state is _F.DOWNLOADED:
            return (
                (report(_S.DOWNLOADED), HoldConnectors()) if source is _F.DOWNLOADING else (HoldConnectors(),)
            )
        elif self.state is _F.INSTALLING:
            assert self.file is not None
            return report(_S.INSTALLING), Install(self.job, self.file)
        elif self.state is _F.AWAITING_BOOT and isinstance(event, InstallRestarting):
            self.target, self.deadline = event.target, now + event.boot_timeout_s
            return (report(_S.INSTALL_REBOOTING),) if signed else ()
        elif self.state is _F.ROLLING_BACK:
            return (RollBack(self.job),)
        elif self.state is _F.IDLE:
            assert row.outcome is not None
            status = FirmwareStatus(row.outcome)
            self.outcome = Outcome(status, reason, now, signed.request_id if signed else None)
            events = (SecurityEvent(OUTCOME_EVENT[status], reason),) if status in OUTCOME_EVENT else ()
            ended = (report(status, reason), *events, ReleaseConnectors())
            self.current, self.file, self.target = None, None, None
            if self.queued is not None:
                queued, self.queued = self.queued, None
                return (*ended, *self._adopt(queued, now).effects)
            return ended
        return ()

    def _report(self, status: FirmwareStatus, reason: str | None = None) -> Report:
        """A status of the current job, with its requestId when it is a signed one."""
        signed = self.current.signed if self.current else None
        return Report(status, reason, signed.request_id if signed else None)

    def _adopt(self, new: FirmwareRequest, now: float) -> Step:
        self.job += 1
        self.current, self.queued, self.attempt, self.file, self.target = new, None, 0, None, None
        self.state, self.since, self.deadline, self.last_error = _F.SCHEDULED, now, new.retrieve_date, None
        effects = self.handle(DueNow(), now).effects
        if new.signed and self.state is _F.SCHEDULED:
            effects = (self._report(_S.DOWNLOAD_SCHEDULED),)
        return Step(effects, changed=True)

    def snapshot(self) -> FirmwareSnapshot:
        cur = self.current
        return FirmwareSnapshot(
            *self._snapshot_head(),
            cur.retrieve_date if cur else None,
            self.target,
            masked(self.queued.location) if self.queued else None,
            self.outcome,
            cur.signed.request_id if cur and cur.signed else None,
        )

    # -- persistence -----------------------------------------------------------------------------
    def to_record(self) -> dict[str, JSON]:
        out = self.outcome
        return {
            **self._job_record(),
            "current": _request_record(self.current),
            "queued": _request_record(self.queued),
            "file": self.file,
            "target": self.target,
            "outcome": {**self._outcome_record(out.status, out.reason, out.at), "request_id": out.request_id}
            if out
            else None,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any], now: float) -> tuple[FirmwareUpdate, Step]:
        """The machine as stored, and what the restart asks of the shell (see the theory)."""
        with cls._reading("firmware"):
            m = cls()
            m._restore_job(record, FirmwareState)
            m.current, m.queued = _request_of(record["current"]), _request_of(record["queued"])
            m.file, m.target = record["file"], record["target"]
            out = record["outcome"]
            m.outcome = (
                Outcome(FirmwareStatus(out["status"]), out["reason"], float(out["at"]), out.get("request_id"))
                if out
                else None
            )
            if m.state is not _F.IDLE and m.current is None:
                raise ValueError(f"state {m.state} without a request")
            if m.state in _WITH_FILE and not m.file:
                raise ValueError(f"state {m.state} without a file")
            if m.state in (_F.VERIFYING, _F.INSTALL_SCHEDULED) and not (m.current and m.current.signed):
                raise ValueError(f"state {m.state} of an update that is not signed")
        if m.state is _F.DOWNLOADING:
            return m, m.handle(DownloadFailed(m.job, "interrupted by a restart"), now)
        if m.state is _F.VERIFYING:  # the check did not finish: check again
            assert m.current is not None and m.current.signed is not None and m.file is not None
            sig = m.current.signed
            return m, Step((VerifySignature(m.job, m.file, sig.certificate, sig.signature),))
        assert m.file is not None or m.state not in _WITH_FILE
        resumed: dict[FirmwareState, tuple[FirmwareEffect, ...]] = {
            _F.DOWNLOADED: (HoldConnectors(), VerifyImage(m.job, m.file or "")),
            _F.INSTALLING: (HoldConnectors(), ResolveInterruptedInstall(m.job, m.file or "")),
            _F.AWAITING_BOOT: (HoldConnectors(),),
            _F.ROLLING_BACK: (HoldConnectors(), RollBack(m.job)),
        }
        return m, Step(resumed.get(m.state, ()))


_WITH_FILE = (_F.VERIFYING, _F.INSTALL_SCHEDULED, _F.DOWNLOADED, _F.INSTALLING)


def answer(step: Step) -> str:
    """SignedUpdateFirmware's answer for the step its request made: AcceptedCanceled when it cancelled
    or dropped an update, Accepted otherwise (also when it waits for an install to end)."""
    cancels = any(isinstance(e, Superseded) and e.fate is not Fate.FINISHES_FIRST for e in step.effects)
    return "AcceptedCanceled" if cancels else "Accepted"


def _request_record(r: FirmwareRequest | None) -> JSON:
    if r is None:
        return None
    record: dict[str, JSON] = {"location": r.location, "retrieve_date": r.retrieve_date, **r.rule.to_record()}
    if r.signed is not None:  # absent in a plain update's record (and in records made before)
        s = r.signed
        record["signed"] = {
            "request_id": s.request_id, "certificate": s.certificate, "signature": s.signature,
            "install_date": s.install_date,
        }  # fmt: skip
    return record


def _request_of(r: Mapping[str, Any] | None) -> FirmwareRequest | None:
    if r is None:
        return None
    s = r.get("signed")
    signed = None
    if s is not None:
        when = s["install_date"]
        signed = Signed(
            s["request_id"], s["certificate"], s["signature"], None if when is None else float(when)
        )
    return FirmwareRequest(r["location"], float(r["retrieve_date"]), RetryRule.from_record(r), signed)
