"""GetLog's machine (bridge/core/diagnostics.py `LogUpload`): the upload machine of GetDiagnostics in
LogStatusNotification's words, with the requestId on every report and final failures. Time is passed."""

from __future__ import annotations

import json

import pytest

from bridge.core.diagnostics import (
    DiagnosticsReport,
    DiagnosticsState,
    DiagnosticsUpload,
    LogStatus,
    LogUpload,
    UploadFailed,
    UploadSucceeded,
    file_name,
)
from bridge.core.transfer_job import DueNow

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
LOC = "ftp://user:s3cret@logs.example/in/"


def started(request_id: int = 7, retries: int = 1, log_type: str = "SecurityLog") -> LogUpload:
    m = LogUpload()
    m.request("CP-1", LOC, retries, 60, T0 - 3600, T0, T0, request_id=request_id, log_type=log_type)
    return m


def test_every_report_carries_the_request_id_in_log_status_words() -> None:
    m = LogUpload()
    name, step = m.request("CP-1", LOC, 1, 60, None, None, T0, request_id=7, log_type="SecurityLog")
    assert name == "securitylog-CP-1-20260101T000000Z.log"
    assert step.effects[0] == DiagnosticsReport(LogStatus.UPLOADING, None, 7)
    assert m.handle(UploadSucceeded(m.job), T0 + 1).effects == (
        DiagnosticsReport(LogStatus.UPLOADED, None, 7),
    )
    assert m.outcome is not None and (m.outcome.status, m.outcome.request_id) == (LogStatus.UPLOADED, 7)


def test_upload_failure_comes_after_retries_plus_one_attempts() -> None:
    m = started(retries=1)
    assert m.handle(UploadFailed(m.job, "refused"), T0 + 1).effects == ()
    assert m.state is DiagnosticsState.RETRY_WAIT and m.next_deadline() == T0 + 61
    m.handle(DueNow(), T0 + 61)
    step = m.handle(UploadFailed(m.job, "refused"), T0 + 62)
    assert step.effects == (DiagnosticsReport(LogStatus.UPLOAD_FAILURE, "refused", 7),)


@pytest.mark.parametrize(
    "final", [LogStatus.PERMISSION_DENIED, LogStatus.BAD_MESSAGE, LogStatus.NOT_SUPPORTED_OPERATION]
)
def test_a_final_failure_ends_the_job_at_once_with_its_status(final: LogStatus) -> None:
    m = started(retries=5)
    step = m.handle(UploadFailed(m.job, "530 login to ftp://user:pw@h/ refused", final), T0 + 1)
    assert step.effects == (DiagnosticsReport(final, "530 login to ftp://user:***@h/ refused", 7),)
    assert m.state is DiagnosticsState.IDLE and m.next_deadline() is None and m.attempt == 1


def test_the_trigger_says_idle_without_a_request_id_only_when_nothing_runs() -> None:
    m = LogUpload()
    assert m.trigger() == (LogStatus.IDLE, None)
    m = started(request_id=3)
    assert m.trigger() == (LogStatus.UPLOADING, 3)
    m.handle(UploadFailed(m.job, "x"), T0 + 1)
    assert m.trigger() == (LogStatus.UPLOADING, 3)  # waiting for its retry: still in progress
    m.handle(DueNow(), T0 + 61)
    m.handle(UploadSucceeded(m.job), T0 + 62)
    assert m.trigger() == (LogStatus.IDLE, None)


def test_a_new_request_cancels_the_running_one() -> None:
    m = started(request_id=1)
    assert m.busy
    _, step = m.request("CP-1", LOC, 0, 0, None, None, T0 + 5, request_id=2, log_type="DiagnosticsLog")
    kinds = [type(e).__name__ for e in step.effects]
    assert kinds == ["UploadSuperseded", "CancelUpload", "DiagnosticsReport", "Upload"]
    assert step.effects[2] == DiagnosticsReport(LogStatus.UPLOADING, None, 2)
    assert m.handle(UploadSucceeded(m.job - 1), T0 + 6).effects == ()  # the cancelled job's outcome: stale


def test_a_stored_retry_wait_comes_back_with_its_request_and_time() -> None:
    m = started(request_id=9, log_type="DiagnosticsLog")
    m.handle(UploadFailed(m.job, "refused"), T0 + 1)
    back, step = LogUpload.from_record(json.loads(json.dumps(m.to_record())), T0 + 30)
    assert step.effects == () and back.next_deadline() == T0 + 61
    assert back.current == m.current and back.current is not None
    assert (back.current.request_id, back.current.log_type) == (9, "DiagnosticsLog")


def test_an_upload_cut_by_a_restart_counts_as_a_failed_attempt() -> None:
    m = started(request_id=9, retries=0)
    back, step = LogUpload.from_record(m.to_record(), T0 + 30)
    assert step.effects == (DiagnosticsReport(LogStatus.UPLOAD_FAILURE, "interrupted by a restart", 9),)
    assert back.trigger() == (LogStatus.IDLE, None)


def test_a_bad_record_names_the_log_upload_without_its_secrets() -> None:
    record = {**started().to_record(), "state": "Nope"}
    with pytest.raises(ValueError, match="log upload record is not valid") as info:
        LogUpload.from_record(record, T0)
    assert "s3cret" not in str(info.value)


def test_a_diagnostics_record_stored_before_get_log_still_reads() -> None:
    m = DiagnosticsUpload()
    m.request("CP-1", LOC, 1, 60, None, None, T0)
    m.handle(UploadFailed(m.job, "refused"), T0 + 1)
    record = m.to_record()
    assert isinstance(record["current"], dict)
    del record["current"]["request_id"], record["current"]["log_type"]
    back, _ = DiagnosticsUpload.from_record(record, T0 + 2)
    assert back.current is not None and back.current.request_id is None and back.next_deadline() == T0 + 61


def test_file_names_per_log_type_and_requests_refused_in_get_logs_words() -> None:
    assert file_name("CP 1", T0, "DiagnosticsLog") == "diagnosticslog-CP_1-20260101T000000Z.tar.gz"
    with pytest.raises(ValueError, match="logType must be DiagnosticsLog or SecurityLog"):
        file_name("CP-1", T0, "AuditLog")
    with pytest.raises(ValueError, match="GetLog oldestTimestamp is after latestTimestamp"):
        LogUpload().request("CP-1", LOC, 1, 60, T0, T0 - 1, T0, request_id=1, log_type="SecurityLog")
