"""GetDiagnostics and GetLog as a state machine (pure): the file's name, the attempts, what to report.

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

GetLog (security white paper N01) is the same machine with another vocabulary (`LogUpload`): its
statuses are LogStatusNotification's, every report carries the GetLog's requestId, and a failure the
shell names final (PermissionDenied, BadMessage, NotSupportedOperation: the location or its rights,
which no retry mends) ends the job at once with that status. UploadFailure comes after retries + 1
failed attempts, as UploadFailed does for GetDiagnostics.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Generic, TypeAlias, TypeVar

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
# GetLog's logType -> the file's prefix and suffix (None: GetDiagnostics). A DiagnosticsLog is the
# GetDiagnostics archive; a SecurityLog the security log's lines, as text.
FILE_KINDS: Mapping[str | None, tuple[str, str]] = {
    None: ("diagnostics", ".tar.gz"),
    "DiagnosticsLog": ("diagnosticslog", ".tar.gz"),
    "SecurityLog": ("securitylog", ".log"),
}


def file_name(charge_point_id: str, now: float, log_type: str | None = None) -> str:
    """`diagnostics-<id>-<YYYYmmddTHHMMSSZ>.tar.gz` (GetLog: `diagnosticslog-…` or `securitylog-…
    .log`), safe on any server."""
    if log_type not in FILE_KINDS:
        raise ValueError(f"GetLog logType must be DiagnosticsLog or SecurityLog, not {log_type!r}")
    prefix, suffix = FILE_KINDS[log_type]
    safe = _UNSAFE.sub("_", charge_point_id).lstrip(".")[:64] or "cp"
    return f"{prefix}-{safe}-{datetime.fromtimestamp(now, UTC):%Y%m%dT%H%M%SZ}{suffix}"


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


class LogStatus(StrEnum):
    """LogStatusNotification's values (UploadLogStatusEnumType)."""

    IDLE = "Idle"
    UPLOADING = "Uploading"
    UPLOADED = "Uploaded"
    UPLOAD_FAILURE = "UploadFailure"
    BAD_MESSAGE = "BadMessage"
    PERMISSION_DENIED = "PermissionDenied"
    NOT_SUPPORTED_OPERATION = "NotSupportedOperation"


StatusT = TypeVar("StatusT", bound=StrEnum)


@dataclass(frozen=True)
class DiagnosticsRequest:
    location: str
    start_time: float | None  # the window of the logs, epoch seconds
    stop_time: float | None
    rule: RetryRule
    file_name: str
    request_id: int | None = None  # GetLog's requestId; None for GetDiagnostics
    log_type: str | None = None  # GetLog's logType; None for GetDiagnostics

    def __post_init__(self) -> None:
        what = "GetDiagnostics" if self.log_type is None else "GetLog"
        start, stop = (
            ("startTime", "stopTime") if self.log_type is None else ("oldestTimestamp", "latestTimestamp")
        )
        if not isinstance(self.location, str) or not self.location.strip():
            raise ValueError(f"{what} location must be a non-empty URL")
        if self.start_time is not None and self.stop_time is not None and self.start_time > self.stop_time:
            raise ValueError(f"{what} {start} is after {stop}")


# Events (and transfer_job's DueNow): an outcome names its job.
@dataclass(frozen=True)
class UploadSucceeded(JobEvent):
    pass


@dataclass(frozen=True)
class UploadFailed(JobEvent):
    reason: str
    final: StrEnum | None = None  # a status that ends the job at once, retries left or not (GetLog)


DiagnosticsEvent: TypeAlias = DueNow | UploadSucceeded | UploadFailed


# Effects, in order.
@dataclass(frozen=True)
class DiagnosticsReport:
    status: StrEnum  # DiagnosticsStatus, or LogStatus for GetLog
    reason: str | None = None  # for the log and the snapshot; not on the wire
    request_id: int | None = None  # GetLog's: on the wire with every status


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
class UploadOutcome(Generic[StatusT]):
    status: StatusT
    reason: str | None
    at: float
    file_name: str
    request_id: int | None = None


@dataclass(frozen=True)
class UploadSnapshot(JobSnapshot[DiagnosticsState, StatusT]):
    file_name: str | None
    outcome: UploadOutcome[StatusT] | None
    request_id: int | None = None  # of the upload running (GetLog)


DiagnosticsOutcome: TypeAlias = UploadOutcome[DiagnosticsStatus]
DiagnosticsSnapshot: TypeAlias = UploadSnapshot[DiagnosticsStatus]
LOG_WORDS: Mapping[DiagnosticsStatus, LogStatus] = {
    _S.IDLE: LogStatus.IDLE,
    _S.UPLOADING: LogStatus.UPLOADING,
    _S.UPLOADED: LogStatus.UPLOADED,
    _S.UPLOAD_FAILED: LogStatus.UPLOAD_FAILURE,
}


class UploadJob(TransferJob[DiagnosticsState, StatusT, DiagnosticsRequest, UploadOutcome[StatusT]]):
    """One upload at a time; a new request cancels the running one. `words` says each status of the
    table in the machine's vocabulary (`status_type`)."""

    WHAT = "diagnostics"  # in the message of a record not valid

    def __init__(self, status_type: type[StatusT], words: Mapping[DiagnosticsStatus, StatusT]) -> None:
        super().__init__(DiagnosticsState.IDLE, {d: words[s] for d, s in TRIGGER_STATUS.items()})
        self._status_type, self._words = status_type, words

    @property
    def busy(self) -> bool:
        """A job runs or waits for its next attempt (a new request cancels it)."""
        return self.current is not None

    def request(
        self,
        charge_point_id: str,
        location: str,
        retries: int | None,
        retry_interval_s: float | None,
        start_time: float | None,
        stop_time: float | None,
        now: float,
        *,
        request_id: int | None = None,
        log_type: str | None = None,
    ) -> tuple[str, DiagnosticsStep]:
        """GetDiagnostics (GetLog with `log_type`): the file name to answer, and the step (replaces a
        running job). ValueError for a request refused (see DiagnosticsRequest)."""
        rule = RetryRule.of(retries, retry_interval_s)
        name = file_name(charge_point_id, now, log_type)
        new = DiagnosticsRequest(location, start_time, stop_time, rule, name, request_id, log_type)
        effects: tuple[DiagnosticsEffect, ...] = ()
        if self.current is not None:
            effects = (UploadSuperseded(self.current), CancelUpload(self.job))
        self.job += 1
        self.current, self.state, self.since, self.deadline = new, _D.UPLOADING, now, None
        self.attempt, self.last_error = 1, None
        start = (DiagnosticsReport(self._words[_S.UPLOADING], None, request_id), Upload(self.job, 1, new))
        return new.file_name, DiagnosticsStep((*effects, *start), changed=True)

    def handle(self, event: DiagnosticsEvent, now: float) -> DiagnosticsStep:
        current = self.current
        if current is None:
            return DiagnosticsStep()
        final = event.final if isinstance(event, UploadFailed) else None
        # A final failure leaves no retry: the table's last attempt row takes it.
        row = self._row(TABLE, event, now, self.attempt if final is not None else current.rule.attempts)
        if row is None:
            return DiagnosticsStep()
        self.state, self.since, self.deadline = DiagnosticsState(row.target), now, None
        reason = masked(event.reason) if isinstance(event, UploadFailed) else None
        if reason is not None:
            self.last_error = reason
        effects: tuple[DiagnosticsEffect, ...] = ()
        if self.state is _D.UPLOADING:
            self.attempt += 1
            effects = (Upload(self.job, self.attempt, current),)
        elif self.state is _D.RETRY_WAIT:
            self.deadline = now + current.rule.interval_s
        else:
            assert row.outcome is not None
            status = (
                self._words[DiagnosticsStatus(row.outcome)] if final is None else self._status_type(final)
            )
            self.outcome = UploadOutcome(status, reason, now, current.file_name, current.request_id)
            self.current, effects = None, (DiagnosticsReport(status, reason, current.request_id),)
        return DiagnosticsStep(effects, changed=True)

    def snapshot(self) -> UploadSnapshot[StatusT]:
        cur = self.current
        return UploadSnapshot(
            *self._snapshot_head(),
            cur.file_name if cur else None,
            self.outcome,
            cur.request_id if cur else None,
        )

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
                "request_id": cur.request_id,
                "log_type": cur.log_type,
            },
            "outcome": None
            if out is None
            else {
                **self._outcome_record(out.status, out.reason, out.at),
                "file_name": out.file_name,
                "request_id": out.request_id,
            },
        }

    def _restore_upload(self, record: Mapping[str, Any], now: float) -> DiagnosticsStep:
        """The stored machine (a fresh one), and what the restart asks of the shell (see the theory)."""
        with self._reading(self.WHAT):
            self._restore_job(record, DiagnosticsState)
            c = record["current"]
            if c is not None:
                rule = RetryRule.from_record(c)
                self.current = DiagnosticsRequest(
                    c["location"], c["start_time"], c["stop_time"], rule, c["file_name"],
                    c.get("request_id"), c.get("log_type"),
                )  # fmt: skip
            o = record["outcome"]
            if o is not None:
                self.outcome = UploadOutcome(
                    self._status_type(o["status"]), o["reason"], float(o["at"]), o["file_name"],
                    o.get("request_id"),
                )  # fmt: skip
            if (self.state is _D.IDLE) != (self.current is None):
                raise ValueError(f"state {self.state} with {'no' if c is None else 'a'} request")
        if self.state is _D.UPLOADING:
            return self.handle(UploadFailed(self.job, "interrupted by a restart"), now)
        return DiagnosticsStep()


class DiagnosticsUpload(UploadJob[DiagnosticsStatus]):
    """GetDiagnostics: DiagnosticsStatusNotification's vocabulary."""

    def __init__(self) -> None:
        super().__init__(DiagnosticsStatus, {s: s for s in DiagnosticsStatus})

    @classmethod
    def from_record(cls, record: Mapping[str, Any], now: float) -> tuple[DiagnosticsUpload, DiagnosticsStep]:
        m = cls()
        return m, m._restore_upload(record, now)


class LogUpload(UploadJob[LogStatus]):
    """GetLog: LogStatusNotification's vocabulary, the requestId on every status."""

    WHAT = "log upload"

    def __init__(self) -> None:
        super().__init__(LogStatus, LOG_WORDS)

    @classmethod
    def from_record(cls, record: Mapping[str, Any], now: float) -> tuple[LogUpload, DiagnosticsStep]:
        m = cls()
        return m, m._restore_upload(record, now)

    def trigger(self) -> tuple[LogStatus, int | None]:
        """LogStatusNotification for a trigger: the status and requestId of the upload running, or
        Idle without a requestId (the white paper: it may be left out only then)."""
        return self.trigger_status(), self.current.request_id if self.current else None
