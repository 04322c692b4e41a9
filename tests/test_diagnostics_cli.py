"""`ocpp-bridge diagnostics` as a real process: the archive an installer takes away, its log window, its
status (from a local API on a real socket, or none), no secret in it, and clear errors for bad options."""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
from collections.abc import AsyncIterator
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

from aiohttp import web

from bridge.diagnostics_cli import NOT_RUNNING
from tests.helpers.cli import run_cli
from tests.helpers.logfiles import minute, stamped, write_lines
from tests.processes import dead_port, free_port

CP_PASSWORD = "cp-Pa55word-7"
AUTH_KEY = "0123456789abcdef0123456789abcdef"  # AuthorizationKey, hex as the central system sets it
API_TOKEN = "api-T0ken-8"
SECRETS = [CP_PASSWORD, AUTH_KEY, API_TOKEN]


def _config(tmp_path: Path, api_port: int) -> Path:
    # The loader refuses AuthorizationKey under `ocpp:` (`password:` is the way); a commented one, left
    # from an old file, is what a real configuration may hold.
    text = (
        f"state_dir: {tmp_path / 'state'}\n"
        "api:\n"
        f"  listen: 127.0.0.1:{api_port}\n"
        f"  token: {API_TOKEN}\n"
        "charge_points:\n"
        "  - id: CP-1\n"
        "    csms_url: ws://127.0.0.1:1/ocpp\n"
        f"    password: {CP_PASSWORD}\n"
        "    ocpp:\n"
        f"      # AuthorizationKey: {AUTH_KEY}\n"
        "      HeartbeatInterval: 300\n"
        "    connectors:\n"
        "      - id: 1\n"
        "        charger: {type: simulated}\n"
    )
    path = tmp_path / "bridge.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive, "r:gz") as tar:
        out = {}
        for info in tar.getmembers():
            member = tar.extractfile(info)
            assert member is not None
            out[info.name] = member.read()
        return out


@contextlib.asynccontextmanager
async def _local_api(port: int, body: dict[str, Any], seen: list[str | None]) -> AsyncIterator[None]:
    """A stand-in for the daemon's local API: its status answer, and the Authorization headers it got."""

    async def status(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        return web.json_response(body)

    app = web.Application()
    app.router.add_get("/api/v1/status", status)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        yield
    finally:
        await runner.cleanup()


async def test_with_the_bridge_stopped_the_archive_says_so(tmp_path: Path) -> None:
    config = _config(tmp_path, dead_port())  # nothing listens there
    out = tmp_path / "diag.tar.gz"
    code, stdout, stderr = await run_cli("diagnostics", "--config", str(config), "-o", str(out))
    assert code == 0, stderr
    assert stdout.strip() == str(out.resolve())
    members = _members(out)
    assert list(members) == [
        "status.json", "versions.json", "config.yaml", "store.json", "devices.json",
        "bridge.log", "frames.log",
    ]  # fmt: skip
    status = json.loads(members["status.json"])
    assert status["error"] == NOT_RUNNING and "cannot reach the bridge" in status["detail"]
    assert "skipped" in json.loads(members["store.json"])  # the daemon holds the store: not opened
    assert json.loads(members["versions.json"])["python"]
    assert members["bridge.log"] == b""
    assert "does not exist" in stderr  # no log directory: said, not an error
    assert not (tmp_path / "state").exists()  # nothing made in the daemon's state_dir


async def test_only_the_lines_of_the_window_are_archived(tmp_path: Path) -> None:
    config = _config(tmp_path, free_port())
    logs = tmp_path / "state" / "logs"
    write_lines(logs / "bridge.log.1", [stamped(minute(m), f"old line at {m}") for m in (0, 5)])
    write_lines(
        logs / "bridge.log",
        [
            stamped(minute(10), "line at 10"),
            stamped(minute(15), "line at 15", level="ERROR"),
            "Traceback (most recent call last):\n",  # belongs to the line before it
            stamped(minute(20), "line at 20"),
            stamped(minute(25), "line at 25"),
        ],
    )
    write_lines(
        logs / "frames.log", [stamped(minute(m), f"frame at {m}", "DEBUG", "ocpp.frames") for m in (3, 12)]
    )
    out = tmp_path / "diag.tar.gz"
    start = minute(5).astimezone(timezone(timedelta(hours=1))).isoformat()  # 03:05+01:00 is 02:05Z
    assert start.endswith("+01:00")
    stop = minute(20).isoformat().replace("+00:00", "Z")
    code, _, stderr = await run_cli(
        "diagnostics", "-c", str(config), "-o", str(out), "--start", start, "--stop", stop
    )
    assert code == 0, stderr
    members = _members(out)
    assert members["bridge.log"].decode() == (
        stamped(minute(5), "old line at 5")
        + stamped(minute(10), "line at 10")
        + stamped(minute(15), "line at 15", level="ERROR")
        + "Traceback (most recent call last):\n"
        + stamped(minute(20), "line at 20")
    )
    assert members["frames.log"].decode() == stamped(minute(12), "frame at 12", "DEBUG", "ocpp.frames")


async def test_no_secret_of_the_configuration_or_the_status_is_in_the_archive(tmp_path: Path) -> None:
    port = free_port()
    config = _config(tmp_path, port)
    frame = f'[2,"1","ChangeConfiguration",{{"key":"AuthorizationKey","value":"{AUTH_KEY}"}}]'
    write_lines(
        tmp_path / "state" / "logs" / "frames.log",
        [stamped(minute(1), f"CP-1 <- {frame}", "DEBUG", "ocpp.frames")],
    )
    body = {
        "charge_points": [
            {"id": "CP-1", "csms_url": f"ws://CP-1:{CP_PASSWORD}@cs.example/ocpp", "connected": True}
        ],
        "configuration": {"AuthorizationKey": AUTH_KEY},
    }
    seen: list[str | None] = []
    out = tmp_path / "diag.tar.gz"
    async with _local_api(port, body, seen):
        code, _, stderr = await run_cli("diagnostics", "-c", str(config), "-o", str(out))
    assert code == 0, stderr
    assert seen == [f"Bearer {API_TOKEN}"]  # asked with the configuration's token
    members = _members(out)
    status = json.loads(members["status.json"])
    assert status["charge_points"][0]["id"] == "CP-1" and status["charge_points"][0]["connected"] is True
    assert "HeartbeatInterval: 300" in members["config.yaml"].decode()  # the rest is kept
    assert "ChangeConfiguration" in members["frames.log"].decode()
    with tarfile.open(out, "r:gz") as tar:  # every byte of every member, and the names too
        everything = b"".join(
            info.name.encode() + (tar.extractfile(info) or io.BytesIO()).read() for info in tar.getmembers()
        )
    for secret in SECRETS:
        assert secret.encode() not in everything, secret


async def test_a_bad_window_is_refused_naming_the_option(tmp_path: Path) -> None:
    config = _config(tmp_path, free_port())
    out = tmp_path / "diag.tar.gz"
    for args, named in [
        (["--start", "yesterday"], "--start 'yesterday' is not an ISO 8601 time"),
        (["--stop", "2025-01-31T02:00:00"], "--stop '2025-01-31T02:00:00' has no time zone"),
        (["--start", "2025-01-31T03:00:00Z", "--stop", "2025-01-31T02:00:00Z"], "--start"),
    ]:
        code, stdout, stderr = await run_cli("diagnostics", "-c", str(config), "-o", str(out), *args)
        assert code == 2, (args, stderr)
        assert named in stderr and "Traceback" not in stderr and stdout == ""
        assert not out.exists()


async def test_an_output_that_cannot_be_written_is_a_clear_error(tmp_path: Path) -> None:
    config = _config(tmp_path, free_port())
    (tmp_path / "a-directory").mkdir()
    for output in (tmp_path / "missing" / "diag.tar.gz", tmp_path / "a-directory"):
        code, stdout, stderr = await run_cli("diagnostics", "-c", str(config), "-o", str(output))
        assert code == 2, stderr
        assert f"cannot write the archive to {output}" in stderr
        assert "Traceback" not in stderr and stdout == ""
    assert list((tmp_path / "a-directory").iterdir()) == []  # no .partial left behind
