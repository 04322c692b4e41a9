"""What the firmware and diagnostics machines share (pure): a job of retried transfer attempts.

Both run one job at a time: a serial number (an outcome naming another job is stale), attempts
counted against a `RetryRule`, a deadline the shell calls `handle(DueNow())` at, the latest error,
and a record to store. Their tables are rows of the same type, walked by `find_row`.

Retry defaults: retries absent -> 1 (one re-try: a single network glitch at 03:00 does not lose the
night, and a dead location is reported within one interval); retryInterval absent -> 60 s.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeAlias, TypeVar

JSON: TypeAlias = "str | int | float | bool | list[JSON] | dict[str, JSON] | None"
DEFAULT_RETRIES = 1
DEFAULT_RETRY_INTERVAL_S = 60.0
# A central system may ask for 2^31 retries; each attempt builds an archive or opens a download, so
# more than this many are not made (the request is not refused: its schema allows the number).
MAX_RETRIES = 10
RECORD_VERSION = 1
_USERINFO = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://[^/@\s:]*):[^/@\s]*@")


def masked(text: str) -> str:
    """`ftp://user:secret@host/` -> `ftp://user:***@host/`, wherever it occurs in `text`."""
    return _USERINFO.sub(r"\1:***@", text)


@dataclass(frozen=True)
class RetryRule:
    """retries + 1 attempts, the next one interval_s after an attempt's failure."""

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
            default_retries if retries is None else min(retries, MAX_RETRIES),
            default_interval_s if interval_s is None else float(interval_s),
        )

    @property
    def attempts(self) -> int:
        return self.retries + 1

    def to_record(self) -> dict[str, JSON]:
        return {"retries": self.retries, "retry_interval_s": self.interval_s}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> RetryRule:
        return cls.of(record["retries"], record["retry_interval_s"])


# -- the tables' rows ---------------------------------------------------------------------------------
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


# -- the events both machines take -------------------------------------------------------------------
@dataclass(frozen=True)
class DueNow:
    """next_deadline() has come."""


@dataclass(frozen=True)
class JobEvent:
    """An outcome the shell reports; one naming another job than the current one is stale."""

    job: int


# -- the job ------------------------------------------------------------------------------------------
StateT = TypeVar("StateT", bound=StrEnum)
StatusT = TypeVar("StatusT", bound=StrEnum)


class Request(Protocol):
    """What a job's request has for the snapshot."""

    @property
    def location(self) -> str: ...

    @property
    def rule(self) -> RetryRule: ...


@dataclass(frozen=True)
class JobSnapshot(Generic[StateT, StatusT]):
    """For the status API: what both machines show of their job (each adds its own)."""

    state: StateT
    status: StatusT  # what a trigger would report
    location: str | None  # masked
    attempt: int
    attempts: int  # allowed: retries + 1
    deadline: float | None  # when DueNow is due: the next attempt, and each machine's own
    since: float  # in this state since
    last_error: str | None  # of the latest failed attempt


RequestT = TypeVar("RequestT", bound=Request)
OutcomeT = TypeVar("OutcomeT")


class TransferJob(Generic[StateT, StatusT, RequestT, OutcomeT]):
    """The state both machines keep, the rows they take, and the common part of their record."""

    def __init__(self, idle: StateT, trigger: Mapping[StateT, StatusT]) -> None:
        self.state = idle
        self._trigger = trigger
        self.job = 0
        self.attempt = 0
        self.deadline: float | None = None
        self.since = 0.0
        self.last_error: str | None = None
        self.current: RequestT | None = None  # the job's request; None when idle
        self.outcome: OutcomeT | None = None  # the last job's

    def trigger_status(self) -> StatusT:
        """What a triggered status notification says (Idle only when nothing runs)."""
        return self._trigger[self.state]

    def next_deadline(self) -> float | None:
        """When to call handle(DueNow()): epoch seconds, None when nothing waits for a time."""
        return self.deadline

    def _row(self, table: tuple[Row, ...], event: object, now: float, attempts: int) -> Row | None:
        """The row `event` takes now (None: stale or ignored), `attempts` allowed in all."""
        if isinstance(event, JobEvent) and event.job != self.job:
            return None
        facts = Facts(self.deadline is not None and now >= self.deadline, self.attempt < attempts)
        return find_row(table, self.state, event, facts)

    def _snapshot_head(self) -> tuple[StateT, StatusT, str | None, int, int, float | None, float, str | None]:
        """JobSnapshot's fields, in order, for a subclass's snapshot to follow with its own."""
        current = self.current
        return (
            self.state,
            self.trigger_status(),
            masked(current.location) if current else None,
            self.attempt,
            current.rule.attempts if current else 0,
            self.deadline,
            self.since,
            self.last_error,
        )

    def _job_record(self) -> dict[str, JSON]:
        return {
            "version": RECORD_VERSION,
            "state": self.state.value,
            "job": self.job,
            "attempt": self.attempt,
            "deadline": self.deadline,
            "since": self.since,
            "last_error": self.last_error,
        }

    def _restore_job(self, record: Mapping[str, Any], state: Callable[[str], StateT]) -> None:
        """The common part of `record`; raises KeyError, TypeError or ValueError (see `_reading`)."""
        if record["version"] != RECORD_VERSION:
            raise ValueError(f"unknown version {record['version']!r}")
        self.state, self.job, self.attempt = (
            state(record["state"]),
            int(record["job"]),
            int(record["attempt"]),
        )
        self.deadline = None if record["deadline"] is None else float(record["deadline"])
        self.since, self.last_error = float(record["since"]), record["last_error"]

    @staticmethod
    def _outcome_record(status: StrEnum, reason: str | None, at: float) -> dict[str, JSON]:
        return {"status": status.value, "reason": reason, "at": at}

    @staticmethod
    @contextmanager
    def _reading(what: str) -> Iterator[None]:
        """Any fault of a stored record as one ValueError naming `what`, its secrets masked."""
        try:
            yield
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(masked(f"{what} record is not valid: {e!r}")) from e
