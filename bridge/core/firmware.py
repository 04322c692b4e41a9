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
    Step,
    Superseded,
    VerifyImage,
)
from bridge.core.transfer_job import JSON, DueNow, Guard, JobSnapshot, RetryRule, Row, TransferJob, masked


# -- the firmware machine ---------------------------------------------------------------------------
class FirmwareState(StrEnum):
    IDLE = "Idle"
    SCHEDULED = "Scheduled"
    DOWNLOADING = "Downloading"
    RETRY_WAIT = "RetryWait"
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
TRIGGER_STATUS: Mapping[FirmwareState, FirmwareStatus] = {
    _F.IDLE: _S.IDLE,
    _F.SCHEDULED: _S.IDLE,
    _F.DOWNLOADING: _S.DOWNLOADING,
    _F.RETRY_WAIT: _S.DOWNLOADING,
    _F.DOWNLOADED: _S.DOWNLOADED,
    _F.INSTALLING: _S.INSTALLING,
    _F.AWAITING_BOOT: _S.INSTALLING,
    _F.ROLLING_BACK: _S.INSTALLING,
}
FATE: Mapping[FirmwareState, Fate] = {
    _F.SCHEDULED: Fate.DROPPED,
    _F.RETRY_WAIT: Fate.DROPPED,
    _F.DOWNLOADING: Fate.CANCELLED,
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


@dataclass(frozen=True)
class FirmwareSnapshot(JobSnapshot[FirmwareState, FirmwareStatus]):
    """Pending (SCHEDULED), running, and the last job's outcome; deadline: also retrieveDate and
    the boot timeout."""

    retrieve_date: float | None
    target: str | None  # what a restarting install installs
    queued_location: str | None  # a request waiting for the install to end (masked)
    outcome: Outcome | None


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
    ) -> Step:
        """UpdateFirmware: replaces the job (see Fate); raises ValueError naming a bad field."""
        new = FirmwareRequest(location, retrieve_date, RetryRule.of(retries, retry_interval_s))
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

    def handle(self, event: FirmwareEvent, now: float) -> Step:
        rule = self.current.rule if self.current else RetryRule(0, 0.0)
        row = self._row(TABLE, event, now, rule.attempts)
        if row is None:
            return Step()
        source, self.state, self.since = self.state, FirmwareState(row.target), now
        return Step(self._transition(source, row, event, now), changed=True)

    def _transition(
        self, source: StrEnum, row: Row, event: FirmwareEvent, now: float
    ) -> tuple[FirmwareEffect, ...]:
        assert self.current is not None
        reason = (
            masked(event.reason) if isinstance(event, DownloadFailed | InstallFailed | RolledBack) else None
        )
        self.deadline = None
        if isinstance(event, DownloadFailed):
            self.last_error = reason
        if self.state is _F.DOWNLOADING:
            self.attempt += 1
            first = (Report(_S.DOWNLOADING),) if source is _F.SCHEDULED else ()
            return (*first, Download(self.job, self.attempt, self.current.location))
        if self.state is _F.RETRY_WAIT:
            self.deadline = now + self.current.rule.interval_s
        elif self.state is _F.DOWNLOADED and isinstance(event, DownloadSucceeded):
            self.file = event.file
            return Report(_S.DOWNLOADED), HoldConnectors()
        elif self.state is _F.INSTALLING:
            assert self.file is not None
            return Report(_S.INSTALLING), Install(self.job, self.file)
        elif self.state is _F.AWAITING_BOOT and isinstance(event, InstallRestarting):
            self.target, self.deadline = event.target, now + event.boot_timeout_s
        elif self.state is _F.ROLLING_BACK:
            return (RollBack(self.job),)
        elif self.state is _F.IDLE:
            assert row.outcome is not None
            self.outcome = Outcome(FirmwareStatus(row.outcome), reason, now)
            self.current, self.file, self.target = None, None, None
            ended = (Report(self.outcome.status, reason), ReleaseConnectors())
            if self.queued is not None:
                queued, self.queued = self.queued, None
                return (*ended, *self._adopt(queued, now).effects)
            return ended
        return ()

    def _adopt(self, new: FirmwareRequest, now: float) -> Step:
        self.job += 1
        self.current, self.queued, self.attempt, self.file, self.target = new, None, 0, None, None
        self.state, self.since, self.deadline, self.last_error = _F.SCHEDULED, now, new.retrieve_date, None
        return Step(self.handle(DueNow(), now).effects, changed=True)

    def snapshot(self) -> FirmwareSnapshot:
        cur = self.current
        return FirmwareSnapshot(
            *self._snapshot_head(),
            cur.retrieve_date if cur else None,
            self.target,
            masked(self.queued.location) if self.queued else None,
            self.outcome,
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
            "outcome": self._outcome_record(out.status, out.reason, out.at) if out else None,
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
                Outcome(FirmwareStatus(out["status"]), out["reason"], float(out["at"])) if out else None
            )
            if m.state is not _F.IDLE and m.current is None:
                raise ValueError(f"state {m.state} without a request")
            if m.state in (_F.DOWNLOADED, _F.INSTALLING) and not m.file:
                raise ValueError(f"state {m.state} without a file")
        if m.state is _F.DOWNLOADING:
            return m, m.handle(DownloadFailed(m.job, "interrupted by a restart"), now)
        assert m.file is not None or m.state not in (_F.DOWNLOADED, _F.INSTALLING)
        resumed: dict[FirmwareState, tuple[FirmwareEffect, ...]] = {
            _F.DOWNLOADED: (HoldConnectors(), VerifyImage(m.job, m.file or "")),
            _F.INSTALLING: (HoldConnectors(), ResolveInterruptedInstall(m.job, m.file or "")),
            _F.AWAITING_BOOT: (HoldConnectors(),),
            _F.ROLLING_BACK: (HoldConnectors(), RollBack(m.job)),
        }
        return m, Step(resumed.get(m.state, ()))


def _request_record(r: FirmwareRequest | None) -> JSON:
    if r is None:
        return None
    return {"location": r.location, "retrieve_date": r.retrieve_date, **r.rule.to_record()}


def _request_of(r: Mapping[str, Any] | None) -> FirmwareRequest | None:
    if r is None:
        return None
    return FirmwareRequest(r["location"], float(r["retrieve_date"]), RetryRule.from_record(r))
