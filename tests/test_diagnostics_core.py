"""The diagnostics upload machine (bridge/core/diagnostics.py): its table row by row, the file name,
retries, replacement, restarts from every stored state, what a trigger reports. Time is passed."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from bridge.core.diagnostics import (
    TABLE,
    CancelUpload,
    DiagnosticsEvent,
    DiagnosticsReport,
    DiagnosticsRequest,
    DiagnosticsState,
    DiagnosticsStatus,
    DiagnosticsStep,
    DiagnosticsUpload,
    Upload,
    UploadFailed,
    UploadSucceeded,
    UploadSuperseded,
    file_name,
)
from bridge.core.transfer_job import MAX_RETRIES, DueNow, Guard, RetryRule, Row

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
LOC = "ftp://user:s3cret@logs.example/in/"
CP = "CP-1"
D, S = DiagnosticsState, DiagnosticsStatus
NAME = "diagnostics-CP-1-20260101T000000Z.tar.gz"


def start(m: DiagnosticsUpload, retries: int | None = 1, interval: float | None = 60, now: float = T0) -> str:
    name, _ = m.request(CP, LOC, retries, interval, T0 - 3600, T0, now)
    return name


def in_state(state: DiagnosticsState, retries: int = 1) -> DiagnosticsUpload:
    m = DiagnosticsUpload()
    if state is not D.IDLE:
        start(m, retries)
    if state is D.RETRY_WAIT:
        m.handle(UploadFailed(m.job, "550"), T0)
    assert m.state is state
    return m


def event_for(kind: type, m: DiagnosticsUpload) -> DiagnosticsEvent:
    events: dict[type, DiagnosticsEvent] = {
        DueNow: DueNow(),
        UploadSucceeded: UploadSucceeded(m.job),
        UploadFailed: UploadFailed(m.job, "530 login to ftp://user:pw@h/ refused"),
    }
    return events[kind]


def row_id(row: Row) -> str:
    return f"{row.source}-{row.event.__name__}" + (f"[{row.guard}]" if row.guard else "")


def request_of(m: DiagnosticsUpload) -> DiagnosticsRequest:
    assert m.current is not None
    return m.current


EXPECTED: dict[str, Callable[[DiagnosticsUpload], tuple[object, ...]]] = {
    "Uploading-UploadSucceeded": lambda m: (DiagnosticsReport(S.UPLOADED),),
    "Uploading-UploadFailed[retry left]": lambda m: (),
    "Uploading-UploadFailed[no retry left]": lambda m: (
        DiagnosticsReport(S.UPLOAD_FAILED, "530 login to ftp://user:***@h/ refused"),
    ),
    "RetryWait-DueNow[due]": lambda m: (Upload(m.job, 2, request_of(m)),),
}


def test_every_row_has_its_expected_effects_and_ends_a_job_exactly_when_it_leads_to_idle() -> None:
    assert {row_id(r) for r in TABLE} == set(EXPECTED)
    for row in TABLE:
        assert (row.target is D.IDLE) == (row.outcome is not None)


@pytest.mark.parametrize("row", TABLE, ids=row_id)
def test_a_row_leads_where_it_says_with_its_effects(row: Row) -> None:
    m = in_state(DiagnosticsState(row.source), retries=0 if row.guard is Guard.NO_RETRY_LEFT else 1)
    now = (m.next_deadline() or T0) if row.guard is Guard.DUE else T0 + 1
    expected = EXPECTED[row_id(row)](m)
    assert m.handle(event_for(row.event, m), now) == DiagnosticsStep(expected, changed=True)  # type: ignore[arg-type]
    assert m.state is row.target


@pytest.mark.parametrize("state", list(DiagnosticsState))
def test_an_event_without_a_row_that_holds_is_ignored(state: DiagnosticsState) -> None:
    for kind in (DueNow, UploadSucceeded, UploadFailed):
        m = in_state(state)
        if any(r.source == state and r.event is kind and r.guard is not Guard.DUE for r in TABLE):
            continue
        before = m.to_record()
        assert m.handle(event_for(kind, m), T0 + 1) == DiagnosticsStep(), kind  # the retry is not due yet
        assert m.to_record() == before


def test_an_outcome_of_another_job_is_ignored() -> None:
    m = in_state(D.UPLOADING)
    assert m.handle(UploadSucceeded(m.job + 1), T0) == DiagnosticsStep()
    assert m.state is D.UPLOADING


# -- the request -------------------------------------------------------------------------------------
def test_a_request_starts_at_once_and_names_a_safe_file() -> None:
    m = DiagnosticsUpload()
    name, step = m.request(CP, LOC, 2, 30, T0 - 3600, T0, T0)
    assert name == NAME
    req = DiagnosticsRequest(LOC, T0 - 3600, T0, RetryRule(2, 30.0), NAME)
    assert step == DiagnosticsStep((DiagnosticsReport(S.UPLOADING), Upload(1, 1, req)), changed=True)


@pytest.mark.parametrize(
    ("cp_id", "expected"),
    [
        ("CP-1", "diagnostics-CP-1-20260101T000000Z.tar.gz"),
        ("../../etc/passwd", "diagnostics-_.._etc_passwd-20260101T000000Z.tar.gz"),
        ("box 7/ü", "diagnostics-box_7_-20260101T000000Z.tar.gz"),
        ("...", "diagnostics-cp-20260101T000000Z.tar.gz"),
        ("x" * 300, f"diagnostics-{'x' * 64}-20260101T000000Z.tar.gz"),
    ],
)
def test_the_file_name_is_safe_on_any_server(cp_id: str, expected: str) -> None:
    name = file_name(cp_id, T0)
    assert name == expected
    assert "/" not in name and not name.startswith(".")


def test_upload_failed_after_exactly_retries_plus_one_attempts_spaced_by_the_interval() -> None:
    m = DiagnosticsUpload()
    start(m, retries=2, interval=45)
    now, uploads = T0, []
    for _ in range(2):
        now += 3
        assert m.handle(UploadFailed(m.job, "timeout"), now) == DiagnosticsStep((), changed=True)
        assert m.next_deadline() == now + 45 and m.trigger_status() is S.UPLOADING
        assert m.handle(DueNow(), now + 44.5) == DiagnosticsStep()
        now += 45
        uploads += m.handle(DueNow(), now).effects
    assert [u.attempt for u in uploads if isinstance(u, Upload)] == [2, 3]
    step = m.handle(UploadFailed(m.job, "timeout"), now + 3)
    assert step.effects == (DiagnosticsReport(S.UPLOAD_FAILED, "timeout"),)
    assert m.state is D.IDLE and m.next_deadline() is None


def test_defaults_are_one_retry_sixty_seconds_apart() -> None:
    m = DiagnosticsUpload()
    start(m, retries=None, interval=None)
    m.handle(UploadFailed(m.job, "x"), T0 + 1)
    assert m.next_deadline() == T0 + 61
    m.handle(DueNow(), T0 + 61)
    assert m.handle(UploadFailed(m.job, "x"), T0 + 62).effects == (DiagnosticsReport(S.UPLOAD_FAILED, "x"),)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ((CP, LOC, -1, 60, None, None), "retries"),
        ((CP, LOC, 1, -1, None, None), "retryInterval"),
        ((CP, "", 1, 60, None, None), "location"),
        ((CP, LOC, 1, 60, T0, T0 - 1), "startTime is after stopTime"),
    ],
)
def test_bad_input_is_refused_naming_the_field(args: tuple[object, ...], named: str) -> None:
    m = DiagnosticsUpload()
    with pytest.raises(ValueError, match=named):
        m.request(*args, now=T0)  # type: ignore[arg-type]
    assert m.state is D.IDLE and m.job == 0


@pytest.mark.parametrize("state", [D.UPLOADING, D.RETRY_WAIT])
def test_a_request_while_one_runs_replaces_it(state: DiagnosticsState) -> None:
    m = in_state(state)
    old, job = request_of(m), m.job
    name, step = m.request(CP, "https://logs.example/up", 0, 10, None, None, T0 + 61)
    assert name == "diagnostics-CP-1-20260101T000101Z.tar.gz"
    new = DiagnosticsRequest("https://logs.example/up", None, None, RetryRule(0, 10.0), name)
    assert step.effects == (
        UploadSuperseded(old),
        CancelUpload(job),
        DiagnosticsReport(S.UPLOADING),
        Upload(job + 1, 1, new),
    )
    assert m.state is D.UPLOADING and m.next_deadline() is None
    assert m.handle(UploadSucceeded(job), T0 + 62) == DiagnosticsStep()  # the old job's late outcome


# -- restarts ---------------------------------------------------------------------------------------
def restored(m: DiagnosticsUpload, now: float) -> tuple[DiagnosticsUpload, DiagnosticsStep]:
    return DiagnosticsUpload.from_record(json.loads(json.dumps(m.to_record())), now)


@pytest.mark.parametrize("state", list(DiagnosticsState))
def test_a_restart_in_each_state(state: DiagnosticsState) -> None:
    m = in_state(state)
    back, step = restored(m, T0 + 5)
    assert step == (DiagnosticsStep((), changed=True) if state is D.UPLOADING else DiagnosticsStep())
    if state is D.UPLOADING:  # the attempt counts as failed
        assert back.state is D.RETRY_WAIT and back.next_deadline() == T0 + 65
        assert back.snapshot().last_error == "interrupted by a restart"
        assert back.handle(DueNow(), T0 + 65).effects == (Upload(m.job, 2, request_of(m)),)
    else:
        assert back.to_record() == m.to_record()


def test_a_restart_during_the_last_attempt_reports_upload_failed() -> None:
    _, step = restored(in_state(D.UPLOADING, retries=0), T0 + 5)
    assert step.effects == (DiagnosticsReport(S.UPLOAD_FAILED, "interrupted by a restart"),)


def test_an_ended_job_survives_a_restart_in_the_snapshot() -> None:
    m = in_state(D.UPLOADING)
    m.handle(UploadSucceeded(m.job), T0 + 7)
    back, _ = restored(m, T0 + 8)
    out = back.snapshot().outcome
    assert out is not None and (out.status, out.at, out.file_name) == (S.UPLOADED, T0 + 7, NAME)


@pytest.mark.parametrize(
    "change",
    [
        {"version": 2},
        {"state": "Nope"},
        {"current": None},
        {"since": "later"},
        {"deadline": "soon"},
        {"outcome": {"at": 1}},
    ],
)
def test_a_bad_record_is_refused_without_its_secrets(change: dict[str, object]) -> None:
    record = {**in_state(D.RETRY_WAIT).to_record(), **change}
    with pytest.raises(ValueError, match="diagnostics record is not valid") as info:
        DiagnosticsUpload.from_record(record, T0)
    assert "s3cret" not in str(info.value)


# -- what the outside sees ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("state", "status"), [(D.IDLE, S.IDLE), (D.UPLOADING, S.UPLOADING), (D.RETRY_WAIT, S.UPLOADING)]
)
def test_trigger_status_is_idle_only_when_nothing_is_in_progress(
    state: DiagnosticsState, status: DiagnosticsStatus
) -> None:
    assert in_state(state).trigger_status() is status


def test_after_an_upload_the_trigger_says_idle() -> None:
    m = in_state(D.UPLOADING)
    m.handle(UploadSucceeded(m.job), T0 + 1)
    assert m.trigger_status() is S.IDLE


def test_the_snapshot_masks_the_password() -> None:
    snap = in_state(D.RETRY_WAIT).snapshot()
    assert snap.location == "ftp://user:***@logs.example/in/"
    assert (snap.state, snap.file_name, snap.attempt, snap.attempts, snap.deadline, snap.last_error) == (
        D.RETRY_WAIT,
        NAME,
        1,
        2,
        T0 + 60,
        "550",
    )
    assert "s3cret" not in repr(snap)


def test_a_huge_number_of_retries_is_capped() -> None:
    machine = DiagnosticsUpload()
    machine.request("CP-1", "ftp://host/", 2**31 - 1, 0, None, None, 1000.0)
    for attempt in range(1, MAX_RETRIES + 1):
        machine.handle(UploadFailed(machine.job, "refused"), 1000.0 + attempt)
        machine.handle(DueNow(), 1000.0 + attempt)
    step = machine.handle(UploadFailed(machine.job, "refused"), 2000.0)
    assert machine.attempt == MAX_RETRIES + 1
    assert step.effects[-1] == DiagnosticsReport(DiagnosticsStatus.UPLOAD_FAILED, "refused")
