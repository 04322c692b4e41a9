"""GetDiagnostics as a state machine (pure): the file's name, the attempts, what to report.

The theory
----------
An upload is one *job*: a request, the file name chosen for it and a serial number. The shell
builds the archive, uploads it and tells the outcome back naming the job (an outcome of a replaced
job is stale and ignored). Time is epoch seconds passed in; `next_deadline()` says when to call
`handle(DueNow())`.

States: IDLE, UPLOADING (an attempt runs), RETRY_WAIT (an attempt failed; the next one starts
retryInterval after the failure). Reported (DiagnosticsStatusNotification): Uploading when the job
starts (not again between attempts: there is no status for that), then Uploaded, or UploadFailed
after exactly retries + 1 failed attempts. A trigger reports `Idle` when nothing runs, Uploading
otherwise (§4.6, ERRATA 3.35/3.46). Defaults as for firmware (`transfer_job.RetryRule`): one re-try,
60 s apart.

The file name is ours (GetDiagnostics.conf carries it): `diagnostics-<charge point id>-<UTC time>
.tar.gz`, the id reduced to letters, digits, `.`, `_` and `-` so that it is a safe name on any server.

A request while a job runs replaces it: the running upload is cancelled (the shell stops it), the
new one starts at once with its own name. OCPP 1.6 is silent here, and its answer cannot say
"busy" (an absent fileName means "no file"); the security extension's GetLog, which succeeds
GetDiagnostics, has a new request cancel the running one (AcceptedCanceled), and UpdateFirmware
replaces too. The operator asking again wants the new window.

After a restart (`from_record`): RETRY_WAIT keeps its time; UPLOADING counts as that attempt
failing (the archive is built again for the next one, under the same name).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeAlias

from bridge.core.transfer_job import (
    JSON,
    DueNow,
    Guard,
    JobEvent,
    JobSnapshot,
    RetryRule,
    Row,
    TransferJob,
    masked,
)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def file_name(charge_point_id: str, now: float) -> str:
    """`diagnostics-<id>-<YYYYmmddTHHMMSSZ>.tar.gz`, safe on any server."""
    safe = _UNSAFE.sub("_", charge_point_id).lstrip(".")[:64] or "cp"
    return f"diagnostics-{safe}-{datetime.fromtimestamp(now, UTC):%Y%m%dT%H%M%SZ}.tar.gz"


class DiagnosticsState(StrEnum):
    IDLE = "Idle"
    UPLOADING = "Uploading"
    RETRY_WAIT = "RetryWait"


class DiagnosticsStatus(StrEnum):
    """DiagnosticsStatusNotification's values."""

    IDLE = "Idle"
    UPLOADING = "Uploading"
    UPLOADED = "Uploaded"
    UPLOAD_FAILED = "UploadFailed"


@dataclass(frozen=True)
class DiagnosticsRequest:
    location: str
    start_time: float | None  # the window of the logs, epoch seconds
    stop_time: float | None
    rule: RetryRule
    file_name: str

    def __post_init__(self) -> None:
        if not isinstance(self.location, str) or not self.location.strip():
            raise ValueError("GetDiagnostics location must be a non-empty URL")
        if self.start_time is not None and self.stop_time is not None and self.start_time > self.stop_time:
            raise ValueError("GetDiagnostics startTime is after stopTime")


# Events (and transfer_job's DueNow): an outcome names its job.
@dataclass(frozen=True)
class UploadSucceeded(JobEvent):
    pass


@dataclass(frozen=True)
class UploadFailed(JobEvent):
    reason: str


DiagnosticsEvent: TypeAlias = DueNow | UploadSucceeded | UploadFailed


# Effects, in order.
@dataclass(frozen=True)
class DiagnosticsReport:
    status: DiagnosticsStatus
    reason: str | None = None  # for the log and the snapshot; not on the wire


@dataclass(frozen=True)
class Upload:
    job: int
    attempt: int  # 1 .. retries + 1
    request: DiagnosticsRequest


@dataclass(frozen=True)
class CancelUpload:
    job: int


@dataclass(frozen=True)
class UploadSuperseded:
    previous: DiagnosticsRequest  # cancelled by a new request


DiagnosticsEffect: TypeAlias = DiagnosticsReport | Upload | CancelUpload | UploadSuperseded


@dataclass(frozen=True)
class DiagnosticsStep:
    effects: tuple[DiagnosticsEffect, ...] = ()
    changed: bool = False  # store to_record()


_D, _S = DiagnosticsState, DiagnosticsStatus
TABLE: tuple[Row, ...] = (
    Row(_D.UPLOADING, UploadSucceeded, _D.IDLE, None, _S.UPLOADED),
    Row(_D.UPLOADING, UploadFailed, _D.RETRY_WAIT, Guard.RETRY_LEFT),
    Row(_D.UPLOADING, UploadFailed, _D.IDLE, Guard.NO_RETRY_LEFT, _S.UPLOAD_FAILED),
    Row(_D.RETRY_WAIT, DueNow, _D.UPLOADING, Guard.DUE),
)
TRIGGER_STATUS: Mapping[DiagnosticsState, DiagnosticsStatus] = {
    _D.IDLE: _S.IDLE,
    _D.UPLOADING: _S.UPLOADING,
    _D.RETRY_WAIT: _S.UPLOADING,
}


@dataclass(frozen=True)
class DiagnosticsOutcome:
    status: DiagnosticsStatus
    reason: str | None
    at: float
    file_name: str


@dataclass(frozen=True)
class DiagnosticsSnapshot(JobSnapshot[DiagnosticsState, DiagnosticsStatus]):
    file_name: str | None
    outcome: DiagnosticsOutcome | None


class DiagnosticsUpload(
    TransferJob[DiagnosticsState, DiagnosticsStatus, DiagnosticsRequest, DiagnosticsOutcome]
):
    """One GetDiagnostics upload at a time; a new request cancels the running one."""

    def __init__(self) -> None:
        super().__init__(DiagnosticsState.IDLE, TRIGGER_STATUS)

    def request(
        self,
        charge_point_id: str,
        location: str,
        retries: int | None,
        retry_interval_s: float | None,
        start_time: float | None,
        stop_time: float | None,
        now: float,
    ) -> tuple[str, DiagnosticsStep]:
        """GetDiagnostics: the fileName to answer, and the step (replaces a running job)."""
        rule = RetryRule.of(retries, retry_interval_s)
        new = DiagnosticsRequest(location, start_time, stop_time, rule, file_name(charge_point_id, now))
        effects: tuple[DiagnosticsEffect, ...] = ()
        if self.current is not None:
            effects = (UploadSuperseded(self.current), CancelUpload(self.job))
        self.job += 1
        self.current, self.state, self.since, self.deadline = new, _D.UPLOADING, now, None
        self.attempt, self.last_error = 1, None
        start = (DiagnosticsReport(_S.UPLOADING), Upload(self.job, 1, new))
        return new.file_name, DiagnosticsStep((*effects, *start), changed=True)

    def handle(self, event: DiagnosticsEvent, now: float) -> DiagnosticsStep:
        if self.current is None:
            return DiagnosticsStep()
        row = self._row(TABLE, event, now, self.current.rule.attempts)
        if row is None:
            return DiagnosticsStep()
        self.state, self.since, self.deadline = DiagnosticsState(row.target), now, None
        reason = masked(event.reason) if isinstance(event, UploadFailed) else None
        if reason is not None:
            self.last_error = reason
        effects: tuple[DiagnosticsEffect, ...] = ()
        if self.state is _D.UPLOADING:
            self.attempt += 1
            effects = (Upload(self.job, self.attempt, self.current),)
        elif self.state is _D.RETRY_WAIT:
            self.deadline = now + self.current.rule.interval_s
        else:
            assert row.outcome is not None
            status = DiagnosticsStatus(row.outcome)
            self.outcome = DiagnosticsOutcome(status, reason, now, self.current.file_name)
            self.current, effects = None, (DiagnosticsReport(status, reason),)
        return DiagnosticsStep(effects, changed=True)

    def snapshot(self) -> DiagnosticsSnapshot:
        cur = self.current
        return DiagnosticsSnapshot(*self._snapshot_head(), cur.file_name if cur else None, self.outcome)

    def to_record(self) -> dict[str, JSON]:
        cur, out = self.current, self.outcome
        return {
            **self._job_record(),
            "current": None
            if cur is None
            else {
                "location": cur.location,
                "start_time": cur.start_time,
                "stop_time": cur.stop_time,
                **cur.rule.to_record(),
                "file_name": cur.file_name,
            },
            "outcome": None
            if out is None
            else {**self._outcome_record(out.status, out.reason, out.at), "file_name": out.file_name},
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any], now: float) -> tuple[DiagnosticsUpload, DiagnosticsStep]:
        """The machine as stored, and what the restart asks of the shell (see the theory)."""
        with cls._reading("diagnostics"):
            m = cls()
            m._restore_job(record, DiagnosticsState)
            c = record["current"]
            if c is not None:
                rule = RetryRule.from_record(c)
                m.current = DiagnosticsRequest(
                    c["location"], c["start_time"], c["stop_time"], rule, c["file_name"]
                )
            o = record["outcome"]
            if o is not None:
                m.outcome = DiagnosticsOutcome(
                    DiagnosticsStatus(o["status"]), o["reason"], float(o["at"]), o["file_name"]
                )
            if (m.state is _D.IDLE) != (m.current is None):
                raise ValueError(f"state {m.state} with {'no' if c is None else 'a'} request")
        if m.state is _D.UPLOADING:
            return m, m.handle(UploadFailed(m.job, "interrupted by a restart"), now)
        return m, DiagnosticsStep()
