"""The signed flavour of the firmware machine (bridge/core/firmware.py, SignedUpdateFirmware, L01): its
statuses with the requestId, the verification step, the install date, its answers, its restarts and
its triggered status. Time is passed, never slept."""

from __future__ import annotations

import json

import pytest

from bridge.core.firmware import SIGNED_ROWS, SIGNED_TABLE, TABLE, FirmwareState, FirmwareUpdate, answer
from bridge.core.firmware_effects import (
    Download,
    DownloadFailed,
    DownloadSucceeded,
    FirmwareStatus,
    HoldConnectors,
    Install,
    InstallRestarting,
    InstallSucceeded,
    NoTransactionRunning,
    ReleaseConnectors,
    Report,
    RollBack,
    RolledBack,
    SecurityEvent,
    SignatureInvalid,
    SignatureValid,
    Signed,
    Step,
)
from bridge.core.transfer_job import DueNow

T0 = 1_767_225_600.0
LOC = "https://files.example/fw.bin"
FILE = "/state/firmware/images/1/fw.bin"
RID = 42
F, S = FirmwareState, FirmwareStatus


def signed(install_date: float | None = None, request_id: int = RID) -> Signed:
    return Signed(request_id, "-----BEGIN CERTIFICATE-----...", "c2lnbmF0dXJl", install_date)


def r(status: FirmwareStatus, reason: str | None = None) -> Report:
    return Report(status, reason, RID)


def verifying(install_date: float | None = None) -> FirmwareUpdate:
    m = FirmwareUpdate()
    m.request(LOC, T0, 0, 10, T0, signed(install_date))
    m.handle(DownloadSucceeded(m.job, FILE), T0 + 5)
    assert m.state is F.VERIFYING
    return m


def test_the_signed_rows_replace_the_plain_ones_of_the_same_state_and_event() -> None:
    own = {(row.source, row.event) for row in SIGNED_ROWS}
    assert SIGNED_TABLE[: len(SIGNED_ROWS)] == SIGNED_ROWS
    assert [row for row in SIGNED_TABLE if (row.source, row.event) not in own] == [
        row for row in TABLE if (row.source, row.event) not in own
    ]
    for row in SIGNED_TABLE:
        assert (row.target is F.IDLE) == (row.outcome is not None)


def test_tc_080_every_status_carries_the_request_id_and_the_install_is_a_security_event() -> None:
    m = FirmwareUpdate()
    step = m.request(LOC, T0, 0, 10, T0, signed())
    assert step == Step((r(S.DOWNLOADING), Download(m.job, 1, LOC)), changed=True)
    assert answer(step) == "Accepted"
    step = m.handle(DownloadSucceeded(m.job, FILE), T0 + 5)
    assert step.effects[0] == r(S.DOWNLOADED) and m.state is F.VERIFYING
    assert m.signed_trigger_status() == (S.DOWNLOADED, RID) and m.trigger_status() is S.DOWNLOADED
    # No installDateTime: verified, then the connectors are held at once (install when none charges).
    assert m.handle(SignatureValid(m.job), T0 + 6).effects == (r(S.SIGNATURE_VERIFIED), HoldConnectors())
    assert m.state is F.DOWNLOADED and m.next_deadline() is None
    assert m.signed_trigger_status() == (S.SIGNATURE_VERIFIED, RID)
    assert m.handle(NoTransactionRunning(), T0 + 7).effects == (r(S.INSTALLING), Install(m.job, FILE))
    assert m.handle(InstallSucceeded(m.job), T0 + 8).effects == (
        r(S.INSTALLED),
        SecurityEvent("FirmwareUpdated"),
        ReleaseConnectors(),
    )
    assert m.state is F.IDLE and m.signed_trigger_status() == (S.IDLE, None)
    assert m.snapshot().outcome is not None and m.snapshot().outcome.request_id == RID  # type: ignore[union-attr]


def test_the_verification_is_asked_of_the_shell_with_the_certificate_and_signature() -> None:
    m = FirmwareUpdate()
    m.request(LOC, T0, 0, 10, T0, signed())
    step = m.handle(DownloadSucceeded(m.job, FILE), T0 + 5)
    verify = step.effects[1]
    assert (verify.job, verify.file, verify.signature) == (m.job, FILE, "c2lnbmF0dXJl")  # type: ignore[union-attr]


def test_tc_081_an_invalid_signature_ends_the_job_with_its_security_event() -> None:
    m = verifying()
    step = m.handle(SignatureInvalid(m.job, "the image does not match its signature"), T0 + 6)
    why = "the image does not match its signature"
    assert step.effects == (
        r(S.INVALID_SIGNATURE, why),
        SecurityEvent("InvalidFirmwareSignature", why),
        ReleaseConnectors(),
    )
    assert m.state is F.IDLE and m.snapshot().outcome.status is S.INVALID_SIGNATURE  # type: ignore[union-attr]


def test_an_image_that_cannot_be_read_to_check_it_is_download_failed_not_a_forgery() -> None:
    """A restart into VERIFYING with the image gone (a cleared disk): DownloadFailed, and no
    InvalidFirmwareSignature security event (a false tamper alarm)."""
    m = verifying()
    step = m.handle(DownloadFailed(m.job, "the image could not be read"), T0 + 6)
    assert step.effects == (r(S.DOWNLOAD_FAILED, "the image could not be read"), ReleaseConnectors())
    assert m.state is F.IDLE


def test_dates_to_come_are_download_scheduled_and_install_scheduled() -> None:
    m = FirmwareUpdate()
    assert m.request(LOC, T0 + 3600, 0, 10, T0, signed(T0 + 7200)).effects == (r(S.DOWNLOAD_SCHEDULED),)
    assert m.signed_trigger_status() == (S.DOWNLOAD_SCHEDULED, RID) and m.next_deadline() == T0 + 3600
    assert m.handle(DueNow(), T0 + 3600).effects == (r(S.DOWNLOADING), Download(m.job, 1, LOC))
    m.handle(DownloadSucceeded(m.job, FILE), T0 + 3610)
    step = m.handle(SignatureValid(m.job), T0 + 3611)
    assert step.effects == (r(S.SIGNATURE_VERIFIED), r(S.INSTALL_SCHEDULED))  # charging goes on meanwhile
    assert m.state is F.INSTALL_SCHEDULED and m.next_deadline() == T0 + 7200
    assert m.signed_trigger_status() == (S.INSTALL_SCHEDULED, RID)
    assert m.handle(DueNow(), T0 + 7199) == Step()
    assert m.handle(DueNow(), T0 + 7200).effects == (HoldConnectors(),)
    assert m.state is F.DOWNLOADED


def test_an_install_date_already_past_installs_without_install_scheduled() -> None:
    m = verifying(install_date=T0 - 60)
    assert m.handle(SignatureValid(m.job), T0 + 6).effects == (r(S.SIGNATURE_VERIFIED), HoldConnectors())


def test_the_bridge_restarting_is_install_rebooting_and_a_roll_back_install_verification_failed() -> None:
    m = verifying()
    m.handle(SignatureValid(m.job), T0 + 6)
    m.handle(NoTransactionRunning(), T0 + 7)
    assert m.handle(InstallRestarting(m.job, "2.0", 300), T0 + 8).effects == (r(S.INSTALL_REBOOTING),)
    assert m.signed_trigger_status() == (S.INSTALL_REBOOTING, RID)
    assert m.handle(DueNow(), T0 + 308).effects == (RollBack(m.job),)
    assert m.handle(RolledBack(m.job, "no boot in 300 s"), T0 + 320).effects == (
        r(S.INSTALL_VERIFICATION_FAILED, "no boot in 300 s"),
        ReleaseConnectors(),
    )


@pytest.mark.parametrize("state", [F.SCHEDULED, F.DOWNLOADING, F.VERIFYING, F.INSTALL_SCHEDULED])
def test_a_new_request_cancels_one_not_installing_and_is_answered_accepted_canceled(
    state: FirmwareState,
) -> None:
    m = FirmwareUpdate()
    m.request(LOC, T0 + (3600 if state is F.SCHEDULED else 0), 0, 10, T0, signed(T0 + 9000))
    if state in (F.VERIFYING, F.INSTALL_SCHEDULED):
        m.handle(DownloadSucceeded(m.job, FILE), T0 + 1)
    if state is F.INSTALL_SCHEDULED:
        m.handle(SignatureValid(m.job), T0 + 2)
    assert m.state is state
    old = m.job
    step = m.request(LOC, T0 + 600, 0, 10, T0 + 3, signed(request_id=43))
    assert answer(step) == "AcceptedCanceled"
    assert step.effects[-1] == Report(S.DOWNLOAD_SCHEDULED, None, 43) and m.job == old + 1
    assert m.handle(SignatureValid(old), T0 + 4) == Step()  # the cancelled job's late outcome


def test_a_request_during_an_install_waits_for_it_and_is_accepted() -> None:
    m = verifying()
    m.handle(SignatureValid(m.job), T0 + 6)
    m.handle(NoTransactionRunning(), T0 + 7)
    step = m.request(LOC, T0, 0, 10, T0 + 8, signed(request_id=43))
    assert answer(step) == "Accepted" and m.state is F.INSTALLING
    step = m.handle(InstallSucceeded(m.job), T0 + 9)
    assert Report(S.DOWNLOADING, None, 43) in step.effects  # then the next one starts


def restored(m: FirmwareUpdate, now: float) -> tuple[FirmwareUpdate, Step]:
    return FirmwareUpdate.from_record(json.loads(json.dumps(m.to_record())), now)


def test_a_restart_keeps_the_signed_request_and_checks_again_a_verification_cut_short() -> None:
    m = verifying(install_date=T0 + 7200)
    back, step = restored(m, T0 + 60)
    assert back.current == m.current and back.current is not None and back.current.signed == signed(T0 + 7200)
    assert [type(e).__name__ for e in step.effects] == ["VerifySignature"]
    assert back.handle(SignatureValid(back.job), T0 + 61).effects[-1] == r(S.INSTALL_SCHEDULED)
    again, step = restored(back, T0 + 100)
    assert step == Step() and again.state is F.INSTALL_SCHEDULED and again.next_deadline() == T0 + 7200


def test_a_record_of_a_signed_state_without_a_signed_request_is_refused() -> None:
    record = {**verifying().to_record()}
    record["current"] = {k: v for k, v in record["current"].items() if k != "signed"}
    with pytest.raises(ValueError, match="not signed"):
        FirmwareUpdate.from_record(record, T0)


def test_a_plain_request_reports_without_a_request_id() -> None:
    m = FirmwareUpdate()
    assert m.request(LOC, T0 + 60, 0, 10, T0) == Step((), changed=True)  # no DownloadScheduled for plain
    assert m.signed_trigger_status() == (S.IDLE, None)
    assert "signed" not in json.dumps(m.to_record())


def test_bad_signed_fields_are_refused_naming_them() -> None:
    with pytest.raises(ValueError, match="requestId"):
        Signed("7", "pem", "sig")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="signature"):
        Signed(7, "pem", " ")
