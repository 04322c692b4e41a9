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

Defaults: retries absent -> 1 (one re-try: a single network glitch at 03:00 does not lose the night,
and a dead location is reported within one interval); retryInterval absent -> 60 s.

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

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeAlias

JSON: TypeAlias = "str | int | float | bool | list[JSON] | dict[str, JSON] | None"
DEFAULT_RETRIES = 1
DEFAULT_RETRY_INTERVAL_S = 60.0
RECORD_VERSION = 1
_USERINFO = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://[^/@\s:]*):[^/@\s]*@")


def masked(text: str) -> str:
    """`ftp://user:secret@host/` -> `ftp://user:***@host/`, wherever it occurs in `text`."""
    return _USERINFO.sub(r"\1:***@", text)


# -- shared with diagnostics: the retry rule and the table's rows ----------------------------------
@dataclass(frozen=True)
class RetryRule:
    retries: int  # re-tries after the first attempt
    interval_s: float  # from an attempt's failure to the next attempt

    @classmethod
    def of(
        cls,
        retries: int | None,
        interval_s: float | None,
        default_retries: int = DEFAULT_RETRIES,
        default_interval_s: float = DEFAULT_RETRY_INTERVAL_S,
    ) -> RetryRule:
        if retries is not None and (type(retries) is not int or retries < 0):
            raise ValueError(f"retries must be a whole number >= 0, not {retries!r}")
        if interval_s is not None and (
            isinstance(interval_s, bool)
            or not isinstance(interval_s, int | float)
            or not math.isfinite(interval_s)
            or interval_s < 0
        ):
            raise ValueError(f"retryInterval must be a number of seconds >= 0, not {interval_s!r}")
        return cls(
            default_retries if retries is None else retries,
            default_interval_s if interval_s is None else float(interval_s),
        )

    @property
    def attempts(self) -> int:
        return self.retries + 1


@dataclass(frozen=True)
class Facts:
    due: bool  # now >= the deadline
    retry_left: bool  # fewer than retries + 1 attempts made


class Guard(StrEnum):
    DUE = "due"
    RETRY_LEFT = "retry left"
    NO_RETRY_LEFT = "no retry left"


GUARDS: Mapping[Guard, Callable[[Facts], bool]] = {
    Guard.DUE: lambda f: f.due,
    Guard.RETRY_LEFT: lambda f: f.retry_left,
    Guard.NO_RETRY_LEFT: lambda f: not f.retry_left,
}


@dataclass(frozen=True)
class Row:
    source: StrEnum
    event: type
    target: StrEnum
    guard: Guard | None = None
    outcome: StrEnum | None = None  # the final status reported when this row ends the job


def find_row(table: tuple[Row, ...], state: StrEnum, event: object, facts: Facts) -> Row | None:
    """The row `event` takes from `state`, or None: the event is ignored."""
    for row in table:
        if (
            row.source == state
            and type(event) is row.event
            and (row.guard is None or GUARDS[row.guard](facts))
        ):
            return row
    return None


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


class FirmwareStatus(StrEnum):
    """FirmwareStatusNotification's values."""

    IDLE = "Idle"
    DOWNLOADING = "Downloading"
    DOWNLOADED = "Downloaded"
    DOWNLOAD_FAILED = "DownloadFailed"
    INSTALLING = "Installing"
    INSTALLED = "Installed"
    INSTALLATION_FAILED = "InstallationFailed"


@dataclass(frozen=True)
class FirmwareRequest:
    location: str
    retrieve_date: float
    rule: RetryRule

    def __post_init__(self) -> None:
        if not isinstance(self.location, str) or not self.location.strip():
            raise ValueError("UpdateFirmware location must be a non-empty URL")
        if isinstance(self.retrieve_date, bool) or not isinstance(self.retrieve_date, int | float):
            raise ValueError(f"retrieveDate must be epoch seconds, not {self.retrieve_date!r}")


# Events. An outcome names its job; one of another job is stale and ignored.
@dataclass(frozen=True)
class DueNow:
    """next_deadline() has come."""


@dataclass(frozen=True)
class NoTransactionRunning:
    """With the connectors held, no transaction runs (any more)."""


@dataclass(frozen=True)
class JobEvent:
    job: int


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
    | InstallSucceeded
    | InstallRestarting
    | InstallFailed
    | NewVersionBooted
    | RolledBack
)


# Effects, to be carried out in order.
@dataclass(frozen=True)
class Report:
    status: FirmwareStatus
    reason: str | None = None  # for the log and the snapshot; not on the wire


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
    | VerifyImage
    | ResolveInterruptedInstall
    | RollBack
    | Superseded
)


@dataclass(frozen=True)
class Step:
    effects: tuple[FirmwareEffect, ...] = ()
    changed: bool = False  # store to_record()


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
class FirmwareSnapshot:
    """For the status API: pending (SCHEDULED), running, and the last job's outcome."""

    state: FirmwareState
    status: FirmwareStatus  # what a trigger would report
    location: str | None  # masked
    retrieve_date: float | None
    attempt: int
    attempts: int  # allowed: retries + 1
    deadline: float | None  # retrieveDate, the next attempt, the boot timeout
    since: float  # in this state since
    last_error: str | None  # of the latest failed attempt
    target: str | None  # what a restarting install installs
    queued_location: str | None  # a request waiting for the install to end (masked)
    outcome: Outcome | None


class FirmwareUpdate:
    def __init__(self) -> None:
        self.state = FirmwareState.IDLE
        self.job = 0
        self.current: FirmwareRequest | None = None
        self.queued: FirmwareRequest | None = None
        self.attempt = 0
        self.deadline: float | None = None
        self.file: str | None = None
        self.target: str | None = None
        self.since = 0.0
        self.last_error: str | None = None
        self.outcome: Outcome | None = None

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
        if isinstance(event, JobEvent) and event.job != self.job:
            return Step()
        rule = self.current.rule if self.current else RetryRule(0, 0.0)
        facts = Facts(self.deadline is not None and now >= self.deadline, self.attempt < rule.attempts)
        row = find_row(TABLE, self.state, event, facts)
        if row is None:
            return Step()
        source, self.state, self.since = self.state, FirmwareState(row.target), now
        return Step(self._enter(source, row, event, now), changed=True)

    def _enter(
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

    def trigger_status(self) -> FirmwareStatus:
        """What a triggered FirmwareStatusNotification says (Idle only when nothing runs)."""
        return TRIGGER_STATUS[self.state]

    def next_deadline(self) -> float | None:
        """When to call handle(DueNow()): epoch seconds, None when nothing waits for a time."""
        return self.deadline

    def snapshot(self) -> FirmwareSnapshot:
        cur = self.current
        return FirmwareSnapshot(
            self.state,
            self.trigger_status(),
            masked(cur.location) if cur else None,
            cur.retrieve_date if cur else None,
            self.attempt,
            cur.rule.attempts if cur else 0,
            self.deadline,
            self.since,
            self.last_error,
            self.target,
            masked(self.queued.location) if self.queued else None,
            self.outcome,
        )

    # -- persistence -----------------------------------------------------------------------------
    def to_record(self) -> dict[str, JSON]:
        out = self.outcome
        return {
            "version": RECORD_VERSION,
            "state": self.state.value,
            "job": self.job,
            "current": _request_record(self.current),
            "queued": _request_record(self.queued),
            "attempt": self.attempt,
            "deadline": self.deadline,
            "file": self.file,
            "target": self.target,
            "since": self.since,
            "last_error": self.last_error,
            "outcome": {"status": out.status.value, "reason": out.reason, "at": out.at} if out else None,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any], now: float) -> tuple[FirmwareUpdate, Step]:
        """The machine as stored, and what the restart asks of the shell (see the theory)."""
        try:
            if record["version"] != RECORD_VERSION:
                raise ValueError(f"unknown version {record['version']!r}")
            m = cls()
            m.state, m.job, m.attempt = (
                FirmwareState(record["state"]),
                int(record["job"]),
                int(record["attempt"]),
            )
            m.current, m.queued = _request_of(record["current"]), _request_of(record["queued"])
            m.deadline = None if record["deadline"] is None else float(record["deadline"])
            m.file, m.target = record["file"], record["target"]
            m.since, m.last_error = float(record["since"]), record["last_error"]
            out = record["outcome"]
            m.outcome = (
                Outcome(FirmwareStatus(out["status"]), out["reason"], float(out["at"])) if out else None
            )
            if m.state is not _F.IDLE and m.current is None:
                raise ValueError(f"state {m.state} without a request")
            if m.state in (_F.DOWNLOADED, _F.INSTALLING) and not m.file:
                raise ValueError(f"state {m.state} without a file")
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(masked(f"firmware record is not valid: {e!r}")) from e
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
    return {
        "location": r.location,
        "retrieve_date": r.retrieve_date,
        "retries": r.rule.retries,
        "retry_interval_s": r.rule.interval_s,
    }


def _request_of(r: Mapping[str, Any] | None) -> FirmwareRequest | None:
    if r is None:
        return None
    return FirmwareRequest(
        r["location"], float(r["retrieve_date"]), RetryRule.of(r["retries"], r["retry_interval_s"])
    )
