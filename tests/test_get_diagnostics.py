"""GetDiagnostics end to end: the strict central system asks, the bridge answers with the file name,
builds the archive and uploads it to a real FTP or HTTP server, and reports each step on the wire."""

from __future__ import annotations

import json
import logging
import tarfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call

from bridge.clock import iso
from bridge.diagnostics import install_log_files
from bridge.runtime.snapshot import status_json
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.helpers.firmware import triggered
from tests.helpers.ftp_server import ftp_server
from tests.helpers.http_files import http_files
from tests.helpers.pki import make_pki
from tests.processes import dead_port, free_port

PASSWORD = "cp-secret-Pw1"  # the charge point's password towards the central system


def statuses(cs: StrictCentralSystem) -> list[str]:
    return [p["status"] for p in cs.calls("CP-1", "DiagnosticsStatusNotification")]


def delivered(cs: StrictCentralSystem) -> list[str]:
    return [p["status"] for p in cs.delivered("CP-1", "DiagnosticsStatusNotification")]


def members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


async def booted(cs: StrictCentralSystem) -> None:
    await cs.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1, timeout=10)


async def test_an_archive_is_uploaded_by_ftp_with_its_statuses_and_no_secret(tmp_path: Path) -> None:
    home = tmp_path / "ftp"
    (home / "incoming").mkdir(parents=True)
    async with StrictCentralSystem(password=PASSWORD) as cs:
        with ftp_server(home) as site:
            async with running(make_config(cs.url, tmp_path, password=PASSWORD)):
                await booted(cs)
                answer = await cs.call("CP-1", call.GetDiagnostics(location=site.url("incoming/")))
                name = answer.file_name
                assert name.startswith("diagnostics-CP-1-") and name.endswith(".tar.gz")
                await cs.wait_until(lambda: "Uploaded" in statuses(cs), 15, "Uploaded")
        cs.assert_clean()
    assert statuses(cs) == ["Uploading", "Uploaded"]
    archive = home / "incoming" / name
    content = members(archive)
    assert {"status.json", "versions.json", "config.yaml", "store.json", "devices.json"} <= set(content)
    status = json.loads(content["status.json"])
    assert status["id"] == "CP-1" and status["connectors"][0]["id"] == 1
    devices = json.loads(content["devices.json"])  # the last probe and reading of each device
    assert devices["1"]["description"] and devices["1"]["started"] is True and devices["1"]["answers"]
    assert devices["1"]["capabilities"]["can_sense_plug"] is True and "energy_wh" in devices["1"]["reading"]
    store = json.loads(content["store.json"])
    assert store["schema_version"] >= 9 and store["open_transactions"] == 0
    # The Uploading status itself is queued (or was just answered) as the archive is made.
    assert store["queued_messages"] in (0, 1) and store["file_bytes"] > 0
    for data in content.values():  # neither its own password nor the FTP server's
        assert PASSWORD.encode() not in data and site.password.encode() not in data


async def test_an_archive_is_uploaded_by_ftps_with_the_log_lines_of_the_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FTPS, TLS on both channels, to a server whose CA the system trusts (SSL_CERT_FILE: the
    system's CA store, as OpenSSL reads it); the archive holds the window's log lines."""
    (tmp_path / "pki").mkdir()
    pki = make_pki(tmp_path / "pki")
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca_cert))
    home = tmp_path / "ftp"
    (home / "incoming").mkdir(parents=True)
    log_files = install_log_files(tmp_path / "state")  # as `ocpp-bridge run` does
    try:
        async with (
            StrictCentralSystem(password=PASSWORD) as cs,
            running(make_config(cs.url, tmp_path, password=PASSWORD)),
        ):
            with ftp_server(home, pki=pki) as site:
                await booted(cs)
                logging.getLogger("bridge.test").warning("a line inside the window")
                bridge_log = tmp_path / "state" / "logs" / "bridge.log"
                await cs.wait_until(lambda: b"inside the window" in bridge_log.read_bytes(), 5, "the line")
                start = iso(datetime.now(UTC) - timedelta(seconds=30))
                answer = await cs.call(
                    "CP-1", call.GetDiagnostics(location=site.url("incoming/"), start_time=start)
                )
                await cs.wait_until(lambda: "Uploaded" in statuses(cs), 15, "Uploaded")
            cs.assert_clean()
    finally:
        log_files.remove()
    assert site.scheme == "ftps" and statuses(cs) == ["Uploading", "Uploaded"]
    content = members(home / "incoming" / answer.file_name)
    assert b"a line inside the window" in content["bridge.log"]
    for data in content.values():
        assert PASSWORD.encode() not in data and site.password.encode() not in data


async def test_an_archive_is_uploaded_by_http_put(tmp_path: Path) -> None:
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    async with StrictCentralSystem() as cs, http_files(tmp_path, uploads) as site:
        async with running(make_config(cs.url, tmp_path)):
            await booted(cs)
            answer = await cs.call("CP-1", call.GetDiagnostics(location=f"{site.base}/upload/"))
            await cs.wait_until(lambda: "Uploaded" in statuses(cs), 15, "Uploaded")
        cs.assert_clean()
    assert statuses(cs) == ["Uploading", "Uploaded"]
    assert "status.json" in members(uploads / answer.file_name)


async def test_an_archive_is_posted_as_a_form_where_the_configuration_says_so(tmp_path: Path) -> None:
    """D6: a location under one of diagnostics.post_to gets a multipart POST to the URL itself."""
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    async with StrictCentralSystem() as cs, http_files(tmp_path, uploads) as site:
        diagnostics = {"post_to": [f"{site.base}/upload"], "post_field": "archive"}
        async with running(make_config(cs.url, tmp_path, diagnostics=diagnostics)):
            await booted(cs)
            answer = await cs.call("CP-1", call.GetDiagnostics(location=f"{site.base}/upload"))
            await cs.wait_until(lambda: "Uploaded" in statuses(cs), 15, "Uploaded")
        cs.assert_clean()
    assert statuses(cs) == ["Uploading", "Uploaded"]
    assert site.posted_fields == ["archive"]  # POSTed, in the configured field
    assert "status.json" in members(uploads / answer.file_name)


async def test_upload_failed_comes_after_exactly_retries_plus_one_attempts_spaced_by_the_interval(
    tmp_path: Path,
) -> None:
    location = f"ftp://cp:pw@127.0.0.1:{dead_port()}/"  # nothing listens there
    async with StrictCentralSystem() as cs:
        async with running(make_config(cs.url, tmp_path)) as daemon:
            await booted(cs)
            asked = time.monotonic()
            await cs.call("CP-1", call.GetDiagnostics(location=location, retries=2, retry_interval=1))
            await cs.wait_until(lambda: "UploadFailed" in statuses(cs), 15, "UploadFailed")
            took = time.monotonic() - asked
            snapshot: Any = daemon.charge_points["CP-1"].diagnostics.snapshot()
            status = status_json(daemon.charge_points["CP-1"].snapshot())  # what the API and MQTT show
        cs.assert_clean()
    assert statuses(cs) == ["Uploading", "UploadFailed"]
    assert snapshot.attempt == 3  # retries + 1
    shown = status["diagnostics"]
    assert shown["status"] == "Idle" and shown["last"]["status"] == "UploadFailed"
    assert "refused" in shown["last"]["reason"].lower() and ":pw@" not in json.dumps(shown)
    assert 2.0 <= took < 6.0  # two intervals of 1 s between three attempts
    assert "refused" in (snapshot.outcome.reason or "").lower() and ":pw@" not in snapshot.outcome.reason


async def test_trigger_message_reports_idle_uploading_and_idle_again(tmp_path: Path) -> None:
    location = f"ftp://cp:pw@127.0.0.1:{free_port()}/"
    async with StrictCentralSystem() as cs:
        async with running(make_config(cs.url, tmp_path)):
            await booted(cs)

            assert await triggered(cs, "DiagnosticsStatusNotification") == "Idle"  # nothing asked yet
            await cs.call("CP-1", call.GetDiagnostics(location=location, retries=1, retry_interval=3))
            await cs.wait_until(lambda: "Uploading" in statuses(cs), 5, "Uploading")
            assert (
                await triggered(cs, "DiagnosticsStatusNotification") == "Uploading"
            )  # between attempts: still in progress
            await cs.wait_until(lambda: "UploadFailed" in statuses(cs), 15, "UploadFailed")
            assert await triggered(cs, "DiagnosticsStatusNotification") == "Idle"
        cs.assert_clean()


async def test_a_restart_between_attempts_keeps_the_upload_going(tmp_path: Path) -> None:
    home = tmp_path / "ftp"
    home.mkdir()
    async with StrictCentralSystem() as cs:
        port = free_port()
        config = make_config(cs.url, tmp_path)
        async with running(config):
            await booted(cs)
            # The first attempt fails (no server yet); the next is due 3 s later.
            await cs.call("CP-1", call.GetDiagnostics(location=f"ftp://cp:s3cret-ftp@127.0.0.1:{port}/",
                                                      retries=1, retry_interval=3))  # fmt: skip
            await cs.wait_until(lambda: "Uploading" in statuses(cs), 5, "Uploading")
        with ftp_server(home, port=port):
            async with running(config):  # the record was kept: the retry happens after the restart
                await cs.wait_until(lambda: "Uploaded" in statuses(cs), 15, "Uploaded after the restart")
        cs.assert_clean()
    # The stop may come before Uploading's answer is taken in: it is sent again, with its message id.
    assert delivered(cs) == ["Uploading", "Uploaded"]
    assert len(list(home.glob("diagnostics-CP-1-*.tar.gz"))) == 1
