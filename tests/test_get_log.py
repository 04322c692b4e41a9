"""GetLog end to end (security white paper N01, OCTT TC_079): the strict central system asks, the
bridge answers with the filename, uploads the security log's window (or the diagnostics archive) to a
real FTP or HTTP server, and reports each step with the GetLog's requestId."""

from __future__ import annotations

import asyncio
import tarfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call

from bridge.clock import iso
from bridge.daemon import Daemon
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.helpers.ftp_server import ftp_server
from tests.helpers.http_files import http_files
from tests.helpers.outage import on_port
from tests.processes import dead_port, free_port


def log_statuses(cs: StrictCentralSystem, cp_id: str = "CP-1") -> list[tuple[str, int | None]]:
    return [(p["status"], p.get("requestId")) for p in cs.calls(cp_id, "LogStatusNotification")]


async def booted(cs: StrictCentralSystem) -> None:
    await cs.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1, timeout=10)


def write_security_lines(daemon: Daemon) -> datetime:
    """An old line (two hours ago), a line inside the window and an event; returns the window's start."""
    security = daemon.charge_points["CP-1"].security
    now = datetime.now(UTC)
    assert security.events.log is not None
    security.events.log.write(now - timedelta(hours=2), "a line before the window")
    security.events.log.write(now - timedelta(minutes=1), "a line inside the window")
    security.events.emit("SettingSystemTime", "an event inside the window")
    return now - timedelta(hours=1)


def get_log(location: str, request_id: int, log_type: str = "SecurityLog", **fields: Any) -> call.GetLog:
    log: dict[str, str] = {"remoteLocation": location}
    for name in ("oldestTimestamp", "latestTimestamp"):
        if name in fields:
            log[name] = fields.pop(name)
    return call.GetLog(log=log, log_type=log_type, request_id=request_id, **fields)


async def test_the_security_log_is_uploaded_by_ftp_with_the_requests_id_tc_079(tmp_path: Path) -> None:
    home = tmp_path / "ftp"
    (home / "incoming").mkdir(parents=True)
    async with StrictCentralSystem() as cs, running(make_config(cs.url, tmp_path)) as daemon:
        with ftp_server(home) as site:
            await booted(cs)
            oldest = write_security_lines(daemon)
            latest = iso(datetime.now(UTC) + timedelta(minutes=1))
            answer = await cs.call(
                "CP-1", get_log(site.url("incoming/"), 7, oldestTimestamp=iso(oldest), latestTimestamp=latest)
            )
            await cs.wait_until(lambda: ("Uploaded", 7) in log_statuses(cs), 15, "Uploaded")
        cs.assert_clean()
    assert answer.status == "Accepted"
    assert answer.filename.startswith("securitylog-CP-1-") and answer.filename.endswith(".log")
    assert log_statuses(cs) == [("Uploading", 7), ("Uploaded", 7)]
    text = (home / "incoming" / answer.filename).read_text()
    assert "a line inside the window" in text and "SettingSystemTime" in text
    assert "a line before the window" not in text
    assert all(line[:4].isdigit() and line[23] == "Z" for line in text.splitlines())  # each with its time


async def test_the_security_log_is_uploaded_by_http_put_whole_without_a_window(tmp_path: Path) -> None:
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    async with StrictCentralSystem() as cs, http_files(tmp_path, uploads) as site:
        async with running(make_config(cs.url, tmp_path)) as daemon:
            await booted(cs)
            write_security_lines(daemon)
            answer = await cs.call("CP-1", get_log(f"{site.base}/upload/", 8))
            await cs.wait_until(lambda: ("Uploaded", 8) in log_statuses(cs), 15, "Uploaded")
        cs.assert_clean()
    assert log_statuses(cs) == [("Uploading", 8), ("Uploaded", 8)]
    text = (uploads / answer.filename).read_text()
    assert "a line before the window" in text and "a line inside the window" in text


async def test_a_diagnostics_log_is_the_diagnostics_archive(tmp_path: Path) -> None:
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    async with StrictCentralSystem() as cs, http_files(tmp_path, uploads) as site:
        async with running(make_config(cs.url, tmp_path)):
            await booted(cs)
            answer = await cs.call("CP-1", get_log(f"{site.base}/upload/", 9, "DiagnosticsLog"))
            await cs.wait_until(lambda: ("Uploaded", 9) in log_statuses(cs), 15, "Uploaded")
        cs.assert_clean()
    assert answer.filename.startswith("diagnosticslog-CP-1-") and answer.filename.endswith(".tar.gz")
    with tarfile.open(uploads / answer.filename, "r:gz") as tar:
        assert {"status.json", "config.yaml", "bridge.log"} <= set(tar.getnames())
    assert not cs.calls("CP-1", "DiagnosticsStatusNotification")  # GetLog says LogStatusNotification


async def test_a_new_request_cancels_the_running_one_whose_statuses_stop(tmp_path: Path) -> None:
    home = tmp_path / "ftp"
    home.mkdir()
    dead = f"ftp://cp:pw@127.0.0.1:{dead_port()}/"  # nothing listens: the first waits for a retry
    async with StrictCentralSystem() as cs, running(make_config(cs.url, tmp_path)) as daemon:
        with ftp_server(home) as site:
            await booted(cs)
            first = await cs.call("CP-1", get_log(dead, 1, retries=3, retry_interval=1))
            await cs.wait_until(lambda: ("Uploading", 1) in log_statuses(cs), 5, "Uploading 1")
            second = await cs.call("CP-1", get_log(site.url(), 2))
            await cs.wait_until(lambda: ("Uploaded", 2) in log_statuses(cs), 15, "Uploaded 2")
            # The first's three retries would all have failed within 3 s: none is made or reported.
            await asyncio.sleep(3.5)
            snapshot: Any = daemon.charge_points["CP-1"].security.logs.snapshot()
        cs.assert_clean()
    assert (first.status, second.status) == ("Accepted", "AcceptedCanceled")
    assert log_statuses(cs) == [("Uploading", 1), ("Uploading", 2), ("Uploaded", 2)]
    assert snapshot.outcome.request_id == 2 and snapshot.deadline is None
    assert (home / second.filename).exists()


async def test_upload_failure_comes_after_retries_plus_one_attempts(tmp_path: Path) -> None:
    location = f"ftp://cp:pw@127.0.0.1:{dead_port()}/"  # nothing listens there
    async with StrictCentralSystem() as cs, running(make_config(cs.url, tmp_path)) as daemon:
        await booted(cs)
        asked = time.monotonic()
        await cs.call("CP-1", get_log(location, 4, retries=2, retry_interval=1))
        await cs.wait_until(lambda: ("UploadFailure", 4) in log_statuses(cs), 15, "UploadFailure")
        took = time.monotonic() - asked
        snapshot: Any = daemon.charge_points["CP-1"].security.logs.snapshot()
        cs.assert_clean()
    assert log_statuses(cs) == [("Uploading", 4), ("UploadFailure", 4)]
    assert snapshot.attempt == 3 and 2.0 <= took < 6.0  # two intervals of 1 s between three attempts
    assert "refused" in (snapshot.outcome.reason or "").lower() and ":pw@" not in snapshot.outcome.reason


@pytest.mark.parametrize(
    ("location", "status"),
    [
        ("ftp://cp:wrong-password@127.0.0.1:{port}/", "PermissionDenied"),  # FTP 530
        ("sftp://cp@127.0.0.1:{port}/", "NotSupportedOperation"),  # a scheme we do not speak
        ("ftp:///no-host", "BadMessage"),  # not a location
        ("http://[::1/x", "BadMessage"),  # not even a URL: urlsplit raises (the job stayed Uploading)
    ],
)
async def test_a_failure_no_retry_mends_ends_the_upload_at_once(
    tmp_path: Path, location: str, status: str
) -> None:
    home = tmp_path / "ftp"
    home.mkdir()
    async with StrictCentralSystem() as cs, running(make_config(cs.url, tmp_path)) as daemon:
        with ftp_server(home) as site:
            await booted(cs)
            await cs.call("CP-1", get_log(location.format(port=site.port), 5, retries=3, retry_interval=30))
            await cs.wait_until(lambda: len(log_statuses(cs)) == 2, 10, status)
            snapshot: Any = daemon.charge_points["CP-1"].security.logs.snapshot()
        cs.assert_clean()
    assert log_statuses(cs) == [("Uploading", 5), (status, 5)]
    assert snapshot.attempt == 1 and snapshot.outcome.status == status
    assert "wrong-password" not in (snapshot.outcome.reason or "")


async def test_statuses_wait_in_the_outbox_through_an_outage(tmp_path: Path) -> None:
    """The upload succeeds while the central system is away: Uploaded is delivered when it is back."""
    home = tmp_path / "ftp"
    home.mkdir()
    ftp_port = free_port()
    cs = await on_port(free_port())
    try:
        async with running(make_config(cs.url, tmp_path)):
            await booted(cs)
            await cs.call("CP-1", get_log(f"ftp://cp:s3cret-ftp@127.0.0.1:{ftp_port}/", 6, retry_interval=2))
            await cs.wait_until(lambda: ("Uploading", 6) in log_statuses(cs), 5, "Uploading")
            await cs.stop()  # the retry comes while the central system is away
            with ftp_server(home, port=ftp_port):
                for _ in range(100):
                    if list(home.glob("securitylog-CP-1-*.log")):
                        break
                    await asyncio.sleep(0.1)
            assert list(home.glob("securitylog-CP-1-*.log")), "the retry uploaded nothing"
            await cs.start()
            await cs.wait_until(lambda: ("Uploaded", 6) in log_statuses(cs), 15, "Uploaded after the outage")
            cs.assert_clean()
    finally:
        await cs.stop()


async def test_a_restart_between_attempts_keeps_the_upload_going(tmp_path: Path) -> None:
    home = tmp_path / "ftp"
    home.mkdir()
    async with StrictCentralSystem() as cs:
        port = free_port()
        config = make_config(cs.url, tmp_path)
        async with running(config):
            await booted(cs)
            await cs.call("CP-1", get_log(f"ftp://cp:s3cret-ftp@127.0.0.1:{port}/", 11, retry_interval=3))
            await cs.wait_until(lambda: ("Uploading", 11) in log_statuses(cs), 5, "Uploading")
        with ftp_server(home, port=port):
            async with running(config):  # the record was kept: the retry happens after the restart
                await cs.wait_until(lambda: ("Uploaded", 11) in log_statuses(cs), 15, "Uploaded")
        cs.assert_clean()
    assert [(p["status"], p["requestId"]) for p in cs.delivered("CP-1", "LogStatusNotification")] == [
        ("Uploading", 11),
        ("Uploaded", 11),
    ]
    assert len(list(home.glob("securitylog-CP-1-*.log"))) == 1


async def test_a_replaced_upload_leaves_no_file_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file of a GetLog replaced while its thread still writes it is written after its clean-up
    ran: the next upload removes it (a DiagnosticsLog archive can be megabytes, each time)."""
    import bridge.runtime.logs as logs_module

    real = logs_module.write_window
    slow = {"first": True}

    def slow_first(*args: Any) -> None:
        if slow.pop("first", False):
            time.sleep(1.0)  # still writing when the second request replaces it
        real(*args)

    monkeypatch.setattr(logs_module, "write_window", slow_first)
    home = tmp_path / "ftp"
    home.mkdir()
    async with StrictCentralSystem() as cs, running(make_config(cs.url, tmp_path)):
        with ftp_server(home) as site:
            await booted(cs)
            await cs.call("CP-1", get_log(site.url(), 1))
            await asyncio.sleep(0.2)
            await cs.call("CP-1", get_log(site.url(), 2))
            await cs.wait_until(lambda: ("Uploaded", 2) in log_statuses(cs), 15, "Uploaded 2")
            await asyncio.sleep(1.5)  # the first's thread has ended by now
            await cs.call("CP-1", get_log(site.url(), 3))
            await cs.wait_until(lambda: ("Uploaded", 3) in log_statuses(cs), 15, "Uploaded 3")
    spool = tmp_path / "state" / "diagnostics"
    assert not spool.exists() or [p.name for p in spool.iterdir()] == []
