"""UpdateFirmware end to end: the strict central system asks, the bridge answers with an empty conf,
waits for retrieveDate (moved here with an injected clock, and across a restart), downloads the image
from a real HTTP or FTP server, holds the connectors, waits for a running transaction to end, installs
it with the configured kind and reports each step on the wire."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call

from bridge.clock import Clock, iso
from bridge.runtime.snapshot import status_json
from bridge.transfer import supported_protocols
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.helpers.firmware import IMAGE, install_script, serving, triggered
from tests.helpers.flow import charging, ready, sim_of
from tests.helpers.ftp_server import ftp_server
from tests.helpers.http_files import http_files
from tests.helpers.pki import make_pki
from tests.processes import free_port

FULL_FLOW = ["Downloading", "Downloaded", "Installing", "Installed"]


def firmware_statuses(cs: StrictCentralSystem) -> list[str]:
    return [p["status"] for p in cs.calls("CP-1", "FirmwareStatusNotification")]


def connector_statuses(cs: StrictCentralSystem, connector: int = 1) -> list[str]:
    return [p["status"] for p in cs.calls("CP-1", "StatusNotification") if p["connectorId"] == connector]


def when(offset: timedelta) -> str:
    return iso(datetime.now(UTC) + offset)


async def finished(cs: StrictCentralSystem, last: str = "Installed", timeout: float = 15) -> None:
    await cs.wait_until(lambda: last in firmware_statuses(cs), timeout, last)


async def test_a_scheduled_update_starts_at_retrieve_date_and_installs_by_command(tmp_path: Path) -> None:
    argv, copied = install_script(tmp_path)
    clock = Clock()
    async with StrictCentralSystem() as cs, http_files(serving(tmp_path), tmp_path) as site:
        config = make_config(cs.url, tmp_path, firmware={"install": "command", "command": argv})
        async with running(config, clock) as daemon:
            await ready(cs)
            location = f"{site.base}/files/fw-2.0.bin"
            conf = await cs.call(
                "CP-1", call.UpdateFirmware(location=location, retrieve_date=when(timedelta(hours=2)))
            )
            assert conf is not None  # an empty UpdateFirmware.conf, validated by the strict peer
            await asyncio.sleep(1.0)
            assert firmware_statuses(cs) == []  # "allowed to retrieve after" retrieveDate: not before
            pending = status_json(daemon.charge_points["CP-1"].snapshot())["firmware"]
            assert pending["state"] == "Scheduled" and pending["status"] == "Idle"
            assert pending["location"] == location and pending["retrieve_date"] is not None
            clock.move(clock.offset_s + 2 * 3600 + 1)  # 2 h later
            await finished(cs)
            await cs.wait_until(lambda: connector_statuses(cs)[-1] == "Available", 5, "Available again")
            images = list((tmp_path / "state" / "firmware" / "images").rglob("*"))
        cs.assert_clean()
    assert firmware_statuses(cs) == FULL_FLOW
    assert copied.read_bytes() == IMAGE  # the command got the downloaded file's path
    # Held once the image is in (no new session), back once it is installed.
    assert connector_statuses(cs)[-2:] == ["Unavailable", "Available"]
    assert [p for p in images if p.is_file()] == []  # the image is deleted once installed


async def test_a_pending_update_survives_a_restart(tmp_path: Path) -> None:
    argv, copied = install_script(tmp_path)
    async with StrictCentralSystem() as cs, http_files(serving(tmp_path), tmp_path) as site:
        config = make_config(cs.url, tmp_path, firmware={"install": "command", "command": argv})
        async with running(config):
            await ready(cs)
            await cs.call("CP-1", call.UpdateFirmware(
                location=f"{site.base}/files/fw-2.0.bin", retrieve_date=when(timedelta(hours=3))
            ))  # fmt: skip
        assert firmware_statuses(cs) == []
        clock = Clock()
        clock.move(3 * 3600 + 5)  # the power comes back after 03:00
        async with running(config, clock):
            await finished(cs)
        cs.assert_clean()
    assert firmware_statuses(cs) == FULL_FLOW
    assert copied.read_bytes() == IMAGE


async def test_download_failed_after_exactly_retries_plus_one_attempts(tmp_path: Path) -> None:
    async with StrictCentralSystem() as cs, http_files(serving(tmp_path), tmp_path) as site:
        async with running(make_config(cs.url, tmp_path)) as daemon:
            await ready(cs)
            asked = time.monotonic()
            await cs.call("CP-1", call.UpdateFirmware(
                location=f"{site.base}/files/missing.bin", retrieve_date=when(timedelta(0)), retries=2,
                retry_interval=1,
            ))  # fmt: skip
            await finished(cs, "DownloadFailed")
            took = time.monotonic() - asked
            snapshot: Any = daemon.charge_points["CP-1"].firmware.snapshot()
        cs.assert_clean()
    assert firmware_statuses(cs) == ["Downloading", "DownloadFailed"]
    assert snapshot.attempt == 3  # retries + 1
    assert 2.0 <= took < 6.0  # two intervals of 1 s between three attempts
    assert "404" in (snapshot.outcome.reason or "")
    assert "Unavailable" not in connector_statuses(cs)  # the old software stays; nothing was held


async def test_with_no_install_configured_it_ends_installation_failed(tmp_path: Path) -> None:
    """D5: the request is answered and the image downloaded; the install fails, saying why."""
    async with StrictCentralSystem() as cs, http_files(serving(tmp_path), tmp_path) as site:
        async with running(make_config(cs.url, tmp_path)) as daemon:
            await ready(cs)
            await cs.call("CP-1", call.UpdateFirmware(
                location=f"{site.base}/files/fw-2.0.bin", retrieve_date=when(-timedelta(minutes=1))
            ))  # fmt: skip
            await finished(cs, "InstallationFailed")
            await cs.wait_until(lambda: connector_statuses(cs)[-1] == "Available", 5, "Available again")
            shown = status_json(daemon.charge_points["CP-1"].snapshot())["firmware"]
        cs.assert_clean()
    assert firmware_statuses(cs) == ["Downloading", "Downloaded", "Installing", "InstallationFailed"]
    assert shown["state"] == "Idle" and shown["last"]["status"] == "InstallationFailed"
    assert "firmware.install" in shown["last"]["reason"]


async def test_a_failing_command_ends_installation_failed_with_its_exit_code(tmp_path: Path) -> None:
    argv, _ = install_script(tmp_path, exit_code=3)
    async with StrictCentralSystem() as cs, http_files(serving(tmp_path), tmp_path) as site:
        config = make_config(cs.url, tmp_path, firmware={"install": "command", "command": argv})
        async with running(config) as daemon:
            await ready(cs)
            await cs.call("CP-1", call.UpdateFirmware(
                location=f"{site.base}/files/fw-2.0.bin", retrieve_date=when(timedelta(0))
            ))  # fmt: skip
            await finished(cs, "InstallationFailed")
            outcome: Any = daemon.charge_points["CP-1"].firmware.snapshot().outcome
        cs.assert_clean()
    assert firmware_statuses(cs) == ["Downloading", "Downloaded", "Installing", "InstallationFailed"]
    assert "3" in outcome.reason


async def test_a_running_transaction_is_never_cut_the_install_waits_for_its_end(tmp_path: Path) -> None:
    argv, copied = install_script(tmp_path)
    async with StrictCentralSystem() as cs, http_files(serving(tmp_path), tmp_path) as site:
        firmware = {"install": "command", "command": argv}
        async with running(make_config(cs.url, tmp_path, connectors=2, firmware=firmware)) as daemon:
            await ready(cs, connectors=2)
            await charging(cs, daemon)
            await cs.call("CP-1", call.UpdateFirmware(
                location=f"{site.base}/files/fw-2.0.bin", retrieve_date=when(timedelta(0))
            ))  # fmt: skip
            await finished(cs, "Downloaded")
            await asyncio.sleep(1.0)
            assert firmware_statuses(cs) == ["Downloading", "Downloaded"]  # waits for the transaction
            assert not cs.calls("CP-1", "StopTransaction") and not copied.exists()
            assert connector_statuses(cs)[-1] == "Charging"
            # The idle connector is held: Unavailable, and neither a remote start nor a tap starts there.
            assert connector_statuses(cs, 2)[-1] == "Unavailable"
            remote = await cs.call("CP-1", call.RemoteStartTransaction(id_tag="OTHER", connector_id=2))
            assert remote.status == "Rejected"
            sim_of(daemon, connector=2).plug()
            sim_of(daemon, connector=2).tap("OTHER")
            await asyncio.sleep(0.5)
            assert not [a for a in cs.calls("CP-1", "Authorize") if a["idTag"] == "OTHER"]
            sim_of(daemon).tap("TAG")  # the driver stops the session
            stop = await cs.wait_for_call("CP-1", "StopTransaction")
            await finished(cs)
            await cs.wait_until(lambda: connector_statuses(cs)[-1] == "Finishing", 5, "released")
        cs.assert_clean()
    assert stop["reason"] == "Local"
    assert firmware_statuses(cs) == FULL_FLOW
    # Held when the transaction ended (the cable still in: Unavailable, not Finishing), then released
    # (Finishing: the cable is still in).
    after = connector_statuses(cs)[connector_statuses(cs).index("Charging") :]
    assert after == ["Charging", "Unavailable", "Finishing"]
    assert connector_statuses(cs, 2)[-1] == "Preparing"  # released, with the cable plugged in meanwhile
    # Installing came after the StopTransaction on the wire.
    frames = [(f.message[2], f.message[3].get("status")) for link in cs.links for f in link.frames
              if f.direction == "in" and f.message and f.message[0] == 2]  # fmt: skip
    assert frames.index(("StopTransaction", None)) < frames.index(
        ("FirmwareStatusNotification", "Installing")
    )


async def test_a_connector_the_central_system_made_inoperative_stays_so_after_the_update(
    tmp_path: Path,
) -> None:
    argv, _ = install_script(tmp_path)
    async with StrictCentralSystem() as cs, http_files(serving(tmp_path), tmp_path) as site:
        config = make_config(cs.url, tmp_path, connectors=2, firmware={"install": "command", "command": argv})
        async with running(config):
            await ready(cs, connectors=2)
            await cs.call("CP-1", call.ChangeAvailability(connector_id=1, type="Inoperative"))
            await cs.call("CP-1", call.UpdateFirmware(
                location=f"{site.base}/files/fw-2.0.bin", retrieve_date=when(timedelta(0))
            ))  # fmt: skip
            await finished(cs)
            await cs.wait_until(lambda: connector_statuses(cs, 2)[-1] == "Available", 5, "2 back")
        cs.assert_clean()
    assert connector_statuses(cs, 2)[-2:] == ["Unavailable", "Available"]
    assert connector_statuses(cs, 1)[-1] == "Unavailable"  # still Inoperative


async def test_a_new_request_replaces_a_pending_one(tmp_path: Path) -> None:
    argv, copied = install_script(tmp_path)
    root = serving(tmp_path)
    (root / "fw-3.0.bin").write_bytes(b"three")
    clock = Clock()
    async with StrictCentralSystem() as cs, http_files(root, tmp_path) as site:
        config = make_config(cs.url, tmp_path, firmware={"install": "command", "command": argv})
        async with running(config, clock):
            await ready(cs)
            for name in ("fw-2.0.bin", "fw-3.0.bin"):
                await cs.call("CP-1", call.UpdateFirmware(
                    location=f"{site.base}/files/{name}", retrieve_date=when(timedelta(hours=1))
                ))  # fmt: skip
            clock.move(clock.offset_s + 3601)
            await finished(cs)
        cs.assert_clean()
    assert firmware_statuses(cs) == FULL_FLOW  # one update, the second
    assert copied.read_bytes() == b"three"


async def test_an_image_is_downloaded_by_ftp_with_a_password(tmp_path: Path) -> None:
    argv, copied = install_script(tmp_path)
    home = serving(tmp_path)
    async with StrictCentralSystem() as cs:
        with ftp_server(home) as ftp:
            config = make_config(cs.url, tmp_path, firmware={"install": "command", "command": argv})
            async with running(config) as daemon:
                await ready(cs)
                await cs.call("CP-1", call.UpdateFirmware(
                    location=ftp.url("fw-2.0.bin"), retrieve_date=when(timedelta(0))
                ))  # fmt: skip
                shown = json.dumps(status_json(daemon.charge_points["CP-1"].snapshot())["firmware"])
                await finished(cs)
        cs.assert_clean()
    assert copied.read_bytes() == IMAGE
    assert ftp.password not in shown and "cp:***@" in shown  # masked in the status


async def test_an_image_is_downloaded_by_ftps_from_a_server_the_system_trusts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    argv, copied = install_script(tmp_path)
    (tmp_path / "pki").mkdir()
    pki = make_pki(tmp_path / "pki")
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca_cert))  # the system's CA store, as OpenSSL reads it
    async with StrictCentralSystem() as cs:
        with ftp_server(serving(tmp_path), pki=pki) as ftp:
            config = make_config(cs.url, tmp_path, firmware={"install": "command", "command": argv})
            async with running(config):
                await ready(cs)
                await cs.call("CP-1", call.UpdateFirmware(
                    location=ftp.url("fw-2.0.bin"), retrieve_date=when(timedelta(0))
                ))  # fmt: skip
                await finished(cs)
        cs.assert_clean()
    assert ftp.scheme == "ftps" and firmware_statuses(cs) == FULL_FLOW
    assert copied.read_bytes() == IMAGE


async def test_trigger_message_reports_the_state_of_the_update(tmp_path: Path) -> None:
    argv, _ = install_script(tmp_path, sleep_s=3)
    clock = Clock()
    async with StrictCentralSystem() as cs, http_files(serving(tmp_path), tmp_path) as site:
        config = make_config(cs.url, tmp_path, firmware={"install": "command", "command": argv})
        async with running(config, clock) as daemon:
            await ready(cs)

            assert await triggered(cs, "FirmwareStatusNotification") == "Idle"  # nothing asked
            await cs.call("CP-1", call.UpdateFirmware(
                location=f"{site.base}/slow/fw-2.0.bin", retrieve_date=when(timedelta(hours=1))
            ))  # fmt: skip
            assert await triggered(cs, "FirmwareStatusNotification") == "Idle"  # scheduled: not started
            clock.move(clock.offset_s + 3601)
            await cs.wait_until(lambda: "Downloading" in firmware_statuses(cs), 5, "Downloading")
            assert (
                await triggered(cs, "FirmwareStatusNotification") == "Downloading"
            )  # the slow server stalls it
            await charging(cs, daemon)  # a transaction keeps the next update Downloaded
            await cs.call("CP-1", call.UpdateFirmware(
                location=f"{site.base}/files/fw-2.0.bin", retrieve_date=when(timedelta(0))
            ))  # fmt: skip  # replaces the stalled download
            await cs.wait_until(lambda: firmware_statuses(cs).count("Downloaded") == 1, 10, "Downloaded")
            assert await triggered(cs, "FirmwareStatusNotification") == "Downloaded"
            sim_of(daemon).tap("TAG")
            await cs.wait_until(lambda: "Installing" in firmware_statuses(cs), 10, "Installing")
            assert await triggered(cs, "FirmwareStatusNotification") == "Installing"  # the command takes 3 s
            await finished(cs)
            assert await triggered(cs, "FirmwareStatusNotification") == "Idle"
        cs.assert_clean()


async def test_the_profile_and_its_protocols_are_advertised(tmp_path: Path) -> None:
    async with StrictCentralSystem() as cs:
        async with running(make_config(cs.url, tmp_path)):
            await ready(cs)
            keys = ["SupportedFeatureProfiles", "SupportedFileTransferProtocols"]
            answer = await cs.call("CP-1", call.GetConfiguration(key=keys))
        cs.assert_clean()
    values = {k["key"]: k["value"] for k in answer.configuration_key}
    assert "FirmwareManagement" in values["SupportedFeatureProfiles"].split(",")
    assert values["SupportedFileTransferProtocols"].split(",") == supported_protocols()


async def test_a_location_that_is_no_url_fails_the_download_not_the_link(tmp_path: Path) -> None:
    async with StrictCentralSystem() as cs:
        async with running(make_config(cs.url, tmp_path)):
            await ready(cs)
            await cs.call("CP-1", call.UpdateFirmware(
                location=f"gopher://127.0.0.1:{free_port()}/x", retrieve_date=when(timedelta(0)), retries=0
            ))  # fmt: skip
            await finished(cs, "DownloadFailed")
        cs.assert_clean()
    assert firmware_statuses(cs) == ["Downloading", "DownloadFailed"]
