"""The firmware update machine (bridge/core/firmware.py): its table row by row, retries, schedules,
replacement, restarts from every stored state, what a trigger reports. Time is passed, never slept."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable

import pytest

from bridge.core.firmware import (
    FATE,
    SIGNED_TABLE,
    TABLE,
    FirmwareState,
    FirmwareUpdate,
)
from bridge.core.firmware_effects import (
    Abandon,
    Download,
    DownloadFailed,
    DownloadSucceeded,
    Fate,
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
    Step,
    Superseded,
    VerifyImage,
)
from bridge.core.transfer_job import (
    GUARDS,
    DueNow,
    Facts,
    Guard,
    RetryRule,
    Row,
    find_row,
    masked,
)

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
LOC = "ftp://user:s3cret@files.example/fw.bin"
FILE = "/state/firmware/job.bin"
F, S = FirmwareState, FirmwareStatus
ALL_FACTS = [Facts(*bits) for bits in itertools.product((False, True), repeat=2)]
# The states a plain update goes through (the signed flavour's own are tested in
# test_signed_firmware_core.py).
PLAIN_STATES = [s for s in FirmwareState if s not in (F.VERIFYING, F.INSTALL_SCHEDULED)]


def in_state(state: FirmwareState, retries: int = 1) -> FirmwareUpdate:
    """A machine brought to `state` through its public inputs, at T0 (a download due at once)."""
    m = FirmwareUpdate()
    if state is F.IDLE:
        return m
    if state is F.SCHEDULED:
        m.request(LOC, T0 + 3600, retries, 60, T0)
        return m
    m.request(LOC, T0, retries, 60, T0)
    steps: dict[FirmwareState, list[FirmwareEvent]] = {
        F.DOWNLOADING: [],
        F.RETRY_WAIT: [DownloadFailed(m.job, "404")],
        F.DOWNLOADED: [DownloadSucceeded(m.job, FILE)],
        F.INSTALLING: [DownloadSucceeded(m.job, FILE), NoTransactionRunning()],
        F.AWAITING_BOOT: [
            DownloadSucceeded(m.job, FILE),
            NoTransactionRunning(),
            InstallRestarting(m.job, "2.0", 300),
        ],
    }
    if state is F.ROLLING_BACK:
        m = in_state(F.AWAITING_BOOT, retries)
        m.handle(DueNow(), T0 + 300)
    for event in steps.get(state, []):
        m.handle(event, T0)
    assert m.state is state
    return m


def event_for(kind: type, m: FirmwareUpdate) -> FirmwareEvent:
    events: dict[type, FirmwareEvent] = {
        DueNow: DueNow(),
        NoTransactionRunning: NoTransactionRunning(),
        DownloadSucceeded: DownloadSucceeded(m.job, FILE),
        DownloadFailed: DownloadFailed(m.job, "refused by ftp://user:pw@host/"),
        InstallSucceeded: InstallSucceeded(m.job),
        InstallRestarting: InstallRestarting(m.job, "2.0", 300),
        InstallFailed: InstallFailed(m.job, "exit 3"),
        NewVersionBooted: NewVersionBooted(m.job),
        RolledBack: RolledBack(m.job, "no boot in 300 s"),
    }
    return events[kind]


def row_id(row: Row) -> str:
    return f"{row.source}-{row.event.__name__}" + (f"[{row.guard}]" if row.guard else "")


# -- the table is well formed ------------------------------------------------------------------
def test_the_guards_of_one_state_and_event_never_hold_together() -> None:
    for key in {(r.source, r.event) for r in TABLE}:
        rows = [r for r in TABLE if (r.source, r.event) == key]
        for facts in ALL_FACTS:
            assert sum(r.guard is None or GUARDS[r.guard](facts) for r in rows) <= 1, key


@pytest.mark.parametrize(("table", "states"), [(TABLE, PLAIN_STATES), (SIGNED_TABLE, list(FirmwareState))])
def test_every_state_is_reachable_and_every_state_has_a_trigger_status_and_a_fate(
    table: tuple[Row, ...], states: list[FirmwareState]
) -> None:
    reached, frontier = {F.IDLE, F.SCHEDULED}, [F.SCHEDULED]  # a request leads to SCHEDULED
    while frontier:
        here = frontier.pop()
        for row in table:
            if row.source == here and row.target not in reached:
                reached.add(FirmwareState(row.target))
                frontier.append(FirmwareState(row.target))
    assert reached == set(states)
    assert set(FATE) == set(FirmwareState) - {F.IDLE}


def test_a_row_ends_the_job_exactly_when_it_leads_to_idle() -> None:
    for row in TABLE:
        assert (row.target is F.IDLE) == (row.outcome is not None), row_id(row)


# -- each row, through the machine ---------------------------------------------------------------
# What each row asks of the shell, given the machine before the event (its job).
EXPECTED: dict[str, Callable[[int], tuple[object, ...]]] = {
    "Scheduled-DueNow[due]": lambda j: (Report(S.DOWNLOADING), Download(j, 1, LOC)),
    "RetryWait-DueNow[due]": lambda j: (Download(j, 2, LOC),),
    "Downloading-DownloadFailed[retry left]": lambda j: (),
    "Downloading-DownloadFailed[no retry left]": lambda j: (
        Report(S.DOWNLOAD_FAILED, "refused by ftp://user:***@host/"),
        ReleaseConnectors(),
    ),
    "Downloading-DownloadSucceeded": lambda j: (Report(S.DOWNLOADED), HoldConnectors()),
    "Downloaded-NoTransactionRunning": lambda j: (Report(S.INSTALLING), Install(j, FILE)),
    "Downloaded-InstallFailed": lambda j: (Report(S.INSTALLATION_FAILED, "exit 3"), ReleaseConnectors()),
    "Installing-InstallSucceeded": lambda j: (
        Report(S.INSTALLED),
        SecurityEvent("FirmwareUpdated"),
        ReleaseConnectors(),
    ),
    "Installing-InstallFailed": lambda j: (Report(S.INSTALLATION_FAILED, "exit 3"), ReleaseConnectors()),
    "Installing-InstallRestarting": lambda j: (),
    "AwaitingBoot-NewVersionBooted": lambda j: (
        Report(S.INSTALLED),
        SecurityEvent("FirmwareUpdated"),
        ReleaseConnectors(),
    ),
    "AwaitingBoot-DueNow[due]": lambda j: (RollBack(j),),
    "AwaitingBoot-RolledBack": lambda j: (
        Report(S.INSTALLATION_FAILED, "no boot in 300 s"),
        ReleaseConnectors(),
    ),
    "RollingBack-RolledBack": lambda j: (
        Report(S.INSTALLATION_FAILED, "no boot in 300 s"),
        ReleaseConnectors(),
    ),
}


def test_every_row_has_its_expected_effects() -> None:
    assert {row_id(r) for r in TABLE} == set(EXPECTED)


@pytest.mark.parametrize("row", TABLE, ids=row_id)
def test_a_row_leads_where_it_says_with_its_effects(row: Row) -> None:
    m = in_state(FirmwareState(row.source), retries=0 if row.guard is Guard.NO_RETRY_LEFT else 1)
    now = m.next_deadline() or T0 + 1 if row.guard is Guard.DUE else T0 + 1
    job = m.job
    step = m.handle(event_for(row.event, m), now)
    assert m.state is row.target
    assert step == Step(EXPECTED[row_id(row)](job), changed=True)  # type: ignore[arg-type]
    if row.outcome is not None:
        assert m.snapshot().outcome is not None and m.snapshot().outcome.status is row.outcome  # type: ignore[union-attr]


@pytest.mark.parametrize("state", PLAIN_STATES)
def test_an_event_without_a_row_that_holds_is_ignored(state: FirmwareState) -> None:
    kinds = {r.event for r in TABLE} | {DueNow}
    for kind in kinds:
        m = in_state(state)
        if find_row(TABLE, state, event_for(kind, m), Facts(False, True)) is not None:
            continue  # the row holds without the deadline: tested above
        before = m.to_record()
        assert m.handle(event_for(kind, m), T0 + 1) == Step(), kind  # not due yet (deadlines are later)
        assert m.to_record() == before


def test_an_outcome_of_another_job_is_stale_and_ignored() -> None:
    m = in_state(F.DOWNLOADING)
    assert m.handle(DownloadSucceeded(m.job - 1, FILE), T0) == Step()
    assert m.handle(DownloadFailed(m.job + 1, "x"), T0) == Step()
    assert m.state is F.DOWNLOADING


# -- retries, schedules, defaults ----------------------------------------------------------------------
def test_download_failed_after_exactly_retries_plus_one_attempts_spaced_by_the_interval() -> None:
    m = FirmwareUpdate()
    step = m.request(LOC, T0, 3, 30, T0)
    assert step.effects == (Report(S.DOWNLOADING), Download(m.job, 1, LOC))
    now = T0
    for attempt in (2, 3, 4):
        now += 7  # the attempt took 7 s
        assert m.handle(DownloadFailed(m.job, "timeout"), now) == Step((), changed=True)
        assert m.next_deadline() == now + 30
        assert m.handle(DueNow(), now + 29.9) == Step()  # not before the interval
        assert m.trigger_status() is S.DOWNLOADING
        now += 30
        assert m.handle(DueNow(), now).effects == (Download(m.job, attempt, LOC),)
    step = m.handle(DownloadFailed(m.job, "timeout"), now + 7)
    assert step.effects == (Report(S.DOWNLOAD_FAILED, "timeout"), ReleaseConnectors())
    assert m.state is F.IDLE and m.next_deadline() is None and m.trigger_status() is S.IDLE


def test_a_retrieve_date_in_the_future_waits_for_it() -> None:
    m = FirmwareUpdate()
    assert m.request(LOC, T0 + 3 * 3600, 0, None, T0) == Step((), changed=True)
    assert m.state is F.SCHEDULED and m.next_deadline() == T0 + 3 * 3600
    assert m.trigger_status() is S.IDLE  # nothing in progress yet
    assert m.handle(DueNow(), T0 + 3 * 3600 - 1) == Step()
    step = m.handle(DueNow(), T0 + 3 * 3600)
    assert step.effects == (Report(S.DOWNLOADING), Download(m.job, 1, LOC))


def test_a_retrieve_date_in_the_past_starts_at_once() -> None:
    m = FirmwareUpdate()
    step = m.request(LOC, T0 - 86400, 0, None, T0)
    assert m.state is F.DOWNLOADING and step.effects == (Report(S.DOWNLOADING), Download(m.job, 1, LOC))


def test_defaults_are_one_retry_sixty_seconds_apart() -> None:
    assert RetryRule.of(None, None) == RetryRule(1, 60.0)
    m = FirmwareUpdate()
    m.request(LOC, T0, None, None, T0)
    m.handle(DownloadFailed(m.job, "x"), T0 + 1)
    assert m.next_deadline() == T0 + 61
    m.handle(DueNow(), T0 + 61)
    assert m.handle(DownloadFailed(m.job, "x"), T0 + 62).effects[0] == Report(S.DOWNLOAD_FAILED, "x")


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ((LOC, T0, -1, 60), "retries"),
        ((LOC, T0, True, 60), "retries"),
        ((LOC, T0, "2", 60), "retries"),
        ((LOC, T0, 1, -5), "retryInterval"),
        ((LOC, T0, 1, float("nan")), "retryInterval"),
        (("  ", T0, 1, 60), "location"),
    ],
)
def test_bad_input_is_refused_naming_the_field(args: tuple[object, ...], named: str) -> None:
    m = FirmwareUpdate()
    with pytest.raises(ValueError, match=named):
        m.request(*args, now=T0)  # type: ignore[arg-type]
    assert m.state is F.IDLE and m.job == 0


# -- charging is never cut ---------------------------------------------------------------------------
def test_after_the_download_it_holds_the_connectors_and_waits_for_no_transaction() -> None:
    m = in_state(F.DOWNLOADING)
    assert m.handle(DownloadSucceeded(m.job, FILE), T0).effects == (Report(S.DOWNLOADED), HoldConnectors())
    assert m.trigger_status() is S.DOWNLOADED and m.next_deadline() is None  # as long as charging lasts
    assert m.handle(DueNow(), T0 + 86400) == Step()
    assert m.handle(NoTransactionRunning(), T0 + 86400).effects == (
        Report(S.INSTALLING),
        Install(m.job, FILE),
    )


# -- replacement ---------------------------------------------------------------------------------------
NEW = "https://files.example/fw-2.bin"


@pytest.mark.parametrize("state", [F.SCHEDULED, F.RETRY_WAIT, F.DOWNLOADING, F.DOWNLOADED])
def test_a_request_replaces_a_job_that_has_not_started_installing(state: FirmwareState) -> None:
    m = in_state(state)
    old, job = m.current, m.job
    assert old is not None
    step = m.request(NEW, T0 + 600, 0, 10, T0 + 1)
    fate = Fate.DROPPED if state in (F.SCHEDULED, F.RETRY_WAIT) else Fate.CANCELLED
    expected: list[object] = [Superseded(old, fate)]
    if fate is Fate.CANCELLED:
        expected.append(Abandon(job))
    if state is F.DOWNLOADED:
        expected.append(ReleaseConnectors())
    assert step == Step(tuple(expected), changed=True)  # type: ignore[arg-type]
    assert m.state is F.SCHEDULED and m.job == job + 1 and m.next_deadline() == T0 + 600
    assert m.handle(DownloadSucceeded(job, FILE), T0 + 2) == Step()  # the old job's late outcome


@pytest.mark.parametrize("state", [F.INSTALLING, F.AWAITING_BOOT, F.ROLLING_BACK])
def test_a_request_during_an_install_starts_when_the_install_ends(state: FirmwareState) -> None:
    m = in_state(state)
    running, job = m.current, m.job
    assert running is not None
    step = m.request("https://a.example/first.bin", T0, 0, 10, T0 + 1)
    assert step == Step((Superseded(running, Fate.FINISHES_FIRST),), changed=True)
    step = m.request(NEW, T0, 0, 10, T0 + 2)  # a later request replaces the queued one
    queued = FirmwareRequest("https://a.example/first.bin", T0, RetryRule(0, 10.0))
    assert step == Step(
        (Superseded(queued, Fate.DROPPED), Superseded(running, Fate.FINISHES_FIRST)), changed=True
    )
    assert m.state is state and m.job == job and m.snapshot().queued_location == NEW
    end = InstallFailed(job, "x") if state is F.INSTALLING else RolledBack(job, "x")
    step = m.handle(end, T0 + 3)
    assert step.effects == (
        Report(S.INSTALLATION_FAILED, "x"),
        ReleaseConnectors(),
        Report(S.DOWNLOADING),
        Download(job + 1, 1, NEW),
    )
    assert m.current is not None and m.current.location == NEW and m.queued is None


# -- restarts --------------------------------------------------------------------------------------------
def restored(m: FirmwareUpdate, now: float) -> tuple[FirmwareUpdate, Step]:
    return FirmwareUpdate.from_record(json.loads(json.dumps(m.to_record())), now)


RESTART_EFFECTS: dict[FirmwareState, Callable[[int], tuple[object, ...]]] = {
    F.IDLE: lambda j: (),
    F.SCHEDULED: lambda j: (),
    F.RETRY_WAIT: lambda j: (),
    F.DOWNLOADING: lambda j: (),  # the attempt counts as failed; one re-try is left
    F.DOWNLOADED: lambda j: (HoldConnectors(), VerifyImage(j, FILE)),
    F.INSTALLING: lambda j: (HoldConnectors(), ResolveInterruptedInstall(j, FILE)),
    F.AWAITING_BOOT: lambda j: (HoldConnectors(),),
    F.ROLLING_BACK: lambda j: (HoldConnectors(), RollBack(j)),
}


@pytest.mark.parametrize("state", PLAIN_STATES)
def test_a_restart_in_each_state(state: FirmwareState) -> None:
    m = in_state(state)
    back, step = restored(m, T0 + 5)
    assert step.effects == RESTART_EFFECTS[state](m.job)
    expected_state = F.RETRY_WAIT if state is F.DOWNLOADING else state
    assert back.state is expected_state and back.job == m.job and back.current == m.current
    if state is F.DOWNLOADING:
        assert (
            back.next_deadline() == T0 + 5 + 60 and back.snapshot().last_error == "interrupted by a restart"
        )
    else:
        assert back.to_record() == m.to_record() and back.next_deadline() == m.next_deadline()


def test_a_restart_during_the_last_attempt_reports_download_failed() -> None:
    _, step = restored(in_state(F.DOWNLOADING, retries=0), T0 + 5)
    assert step.effects == (Report(S.DOWNLOAD_FAILED, "interrupted by a restart"), ReleaseConnectors())


def test_a_schedule_survives_a_restart_and_runs_after_it() -> None:
    back, _ = restored(in_state(F.SCHEDULED), T0 + 10)
    assert back.next_deadline() == T0 + 3600
    assert back.handle(DueNow(), T0 + 3600).effects == (Report(S.DOWNLOADING), Download(back.job, 1, LOC))


def test_the_new_version_reports_installed_after_its_boot_and_a_late_one_rolls_back() -> None:
    back, _ = restored(in_state(F.AWAITING_BOOT), T0 + 20)
    assert back.snapshot().target == "2.0" and back.next_deadline() == T0 + 300
    assert back.handle(DueNow(), T0 + 299) == Step()
    assert back.handle(NewVersionBooted(back.job), T0 + 30).effects == (
        Report(S.INSTALLED),
        SecurityEvent("FirmwareUpdated"),
        ReleaseConnectors(),
    )
    late, _ = restored(in_state(F.AWAITING_BOOT), T0 + 400)
    assert late.handle(DueNow(), T0 + 400).effects == (RollBack(late.job),)


def test_an_image_lost_across_a_restart_is_an_installation_failure() -> None:
    back, _ = restored(in_state(F.DOWNLOADED), T0 + 5)
    step = back.handle(InstallFailed(back.job, "image gone"), T0 + 6)
    assert step.effects == (Report(S.INSTALLATION_FAILED, "image gone"), ReleaseConnectors())


@pytest.mark.parametrize(
    "change",
    [
        {"version": 99},
        {"state": "Exploding"},
        {"job": "one"},
        {"current": None},
        {"file": None},
        {"deadline": "soon"},
        {"current": {"location": LOC, "retrieve_date": T0, "retries": -2, "retry_interval_s": 1}},
    ],
)
def test_a_bad_record_is_refused_without_its_secrets(change: dict[str, object]) -> None:
    record = {**in_state(F.INSTALLING).to_record(), **change}
    with pytest.raises(ValueError, match="firmware record is not valid") as info:
        FirmwareUpdate.from_record(record, T0)
    assert "s3cret" not in str(info.value)


# -- what the outside sees ----------------------------------------------------------------------------
TRIGGER = {
    F.IDLE: S.IDLE,
    F.SCHEDULED: S.IDLE,
    F.DOWNLOADING: S.DOWNLOADING,
    F.RETRY_WAIT: S.DOWNLOADING,
    F.DOWNLOADED: S.DOWNLOADED,
    F.INSTALLING: S.INSTALLING,
    F.AWAITING_BOOT: S.INSTALLING,
    F.ROLLING_BACK: S.INSTALLING,
}


@pytest.mark.parametrize("state", PLAIN_STATES)
def test_trigger_status_is_idle_only_when_nothing_is_in_progress(state: FirmwareState) -> None:
    assert in_state(state).trigger_status() is TRIGGER[state]


def test_after_an_end_the_trigger_says_idle_and_the_snapshot_keeps_the_outcome() -> None:
    m = in_state(F.INSTALLING)
    m.handle(InstallFailed(m.job, "exit 3 from ftp://u:pw@h/"), T0 + 9)
    snap = m.snapshot()
    assert m.trigger_status() is S.IDLE and snap.location is None
    assert snap.outcome is not None
    assert (snap.outcome.status, snap.outcome.reason, snap.outcome.at) == (
        S.INSTALLATION_FAILED,
        "exit 3 from ftp://u:***@h/",
        T0 + 9,
    )


def test_the_snapshot_of_a_pending_update_masks_the_password() -> None:
    snap = in_state(F.SCHEDULED).snapshot()
    assert snap.location == "ftp://user:***@files.example/fw.bin"
    assert (snap.state, snap.retrieve_date, snap.deadline, snap.attempt, snap.attempts) == (
        F.SCHEDULED,
        T0 + 3600,
        T0 + 3600,
        0,
        2,
    )
    assert "s3cret" not in repr(snap)


def test_masked() -> None:
    assert masked("ftps://a:b@h:21/d/") == "ftps://a:***@h:21/d/"
    assert masked("http://h/x?a=b@c") == "http://h/x?a=b@c"
    assert masked("ftp://anonymous@h/") == "ftp://anonymous@h/"
