"""`ocpp-bridge check | run` as real processes: exit codes, messages, the local API, signals, secrets.

Every process is started with `python -m bridge.cli` from the repository root and stopped by its pid
(SIGTERM, then SIGKILL) whatever the test's outcome. The daemon's log goes to a file, not a pipe, so a
chatty process can never block on a full pipe while the test waits for something else.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import secrets
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from ocpp.v16 import call

from tests.csms import StrictCentralSystem
from tests.helpers.cli import run_cli
from tests.processes import free_port, start_daemon, stop_process

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "config").glob("*.yaml"))
CP_ID = "CP-1"


def _text(log: Path) -> str:
    return log.read_text(errors="replace")


@contextlib.asynccontextmanager
async def _daemon(config: Path, log: Path, *extra: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """`ocpp-bridge run --config <config>` with its stdout and stderr in `log`; stopped on exit."""
    proc = await start_daemon(config, log, *extra)
    try:
        yield proc
    finally:
        await stop_process(proc)


def _write_config(
    tmp_path: Path, csms_url: str, *, api_port: int | None = None, password: str | None = None
) -> Path:
    listen = "null" if api_port is None else f"127.0.0.1:{api_port}"
    password_line = f"    password: {password}\n" if password is not None else ""
    text = (
        f"state_dir: {tmp_path / 'state'}\n"
        "api:\n"
        f"  listen: {listen}\n"
        "charge_points:\n"
        f"  - id: {CP_ID}\n"
        f"    csms_url: {csms_url}\n"
        f"{password_line}"
        "    reconnect: {initial_s: 0.2, max_s: 1}\n"
        "    ocpp:\n"
        "      MessageTimeout: 5\n"
        "      WebSocketPingInterval: 0\n"
        "    connectors:\n"
        "      - id: 1\n"
        "        charger: {type: simulated}\n"
    )
    path = tmp_path / "bridge.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _exited(proc: asyncio.subprocess.Process, log: Path, what: str) -> None:
    """Fails with the process's log when it has exited although it should still run."""
    if proc.returncode is not None:
        pytest.fail(f"{what}: the daemon exited with {proc.returncode}:\n{_text(log)}")


async def _wait_for_api(
    session: aiohttp.ClientSession,
    base: str,
    proc: asyncio.subprocess.Process,
    log: Path,
    limit_s: float = 10.0,
) -> dict[str, Any]:
    deadline = time.monotonic() + limit_s
    while True:
        _exited(proc, log, "waiting for the local API")
        try:
            async with session.get(f"{base}/api/v1/status") as response:
                assert response.status == 200
                body: dict[str, Any] = await response.json()
                return body
        except aiohttp.ClientConnectionError:
            if time.monotonic() > deadline:
                pytest.fail(f"the local API did not answer within {limit_s} s:\n{_text(log)}")
            await asyncio.sleep(0.05)


# -- check ---------------------------------------------------------------------------


async def test_check_accepts_a_valid_file(tmp_path: Path) -> None:
    config = _write_config(tmp_path, "ws://127.0.0.1:9000/ocpp", api_port=8080)
    code, out, err = await run_cli("check", "--config", str(config))
    assert code == 0, err
    assert f"{config}: valid (1 charge point)" in out
    assert err == ""


async def test_check_names_every_problem_with_its_path_and_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(
        f"state_dir: {tmp_path / 'state'}\n"  # 1
        "api:\n"  # 2
        "  listen: 127.0.0.1:8080\n"  # 3
        "charge_points:\n"  # 4
        "  - id: CP-1\n"  # 5
        "    csms_url: ws://127.0.0.1:9000/ocpp\n"  # 6
        "    colour: blue\n"  # 7: unknown key
        "    boot_on_reconnect: maybe\n"  # 8: wrong type
        "    connectors:\n"  # 9
        "      - id: 1\n"  # 10
        "        charger:\n"  # 11
        "          type: simulated\n"  # 12
        "          phases: 2\n",  # 13: bad value
        encoding="utf-8",
    )
    code, out, err = await run_cli("check", "--config", str(config))
    assert code == 2, (out, err)
    assert out == ""
    assert "Traceback" not in err
    assert f"{config}:7: charge_points[0].colour: unknown key 'colour'" in err
    assert f"{config}:8: charge_points[0].boot_on_reconnect: expected true or false" in err
    assert f"{config}:13: charge_points[0].connectors[0].charger.phases: must be 1 or 3" in err


@pytest.mark.parametrize("kind", ["missing", "directory"])
async def test_check_on_a_file_it_cannot_read_says_so_without_a_traceback(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "nowhere.yaml"
    if kind == "directory":
        path.mkdir()
    code, out, err = await run_cli("check", "--config", str(path))
    assert code == 2, (out, err)
    assert "Traceback" not in err
    assert err.startswith(f"error: cannot read {path}: ")
    reason = "No such file or directory" if kind == "missing" else "Is a directory"
    assert reason in err
    assert len(err.strip().splitlines()) == 1


async def test_run_with_a_state_dir_it_cannot_use_says_which_and_why_without_a_traceback(
    tmp_path: Path,
) -> None:
    config = _write_config(tmp_path, "ws://127.0.0.1:9000/ocpp")
    (tmp_path / "state").write_text("a file where the directory should be\n", encoding="utf-8")
    code, out, err = await run_cli("run", "--config", str(config))
    assert code == 2, (out, err)
    assert "Traceback" not in err
    assert f"error: cannot use state_dir {tmp_path / 'state'}: " in err
    assert "File exists" in err or "Not a directory" in err


def test_there_are_example_configurations() -> None:
    assert EXAMPLES, "config/*.yaml holds no example configuration"


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
async def test_every_example_configuration_passes_check(example: Path) -> None:
    code, out, err = await run_cli("check", "--config", str(example))
    assert code == 0, err
    assert f"{example}: valid (" in out


# -- run -------------------------------------------------------------------------------


async def test_run_boots_serves_the_local_api_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    sim = f"{base}/api/v1/charge_points/{CP_ID}/connectors/1/sim"
    log = tmp_path / "run.log"
    async with StrictCentralSystem(boot=[("Accepted", 300)]) as cs:
        config = _write_config(tmp_path, cs.url, api_port=port)
        async with _daemon(config, log) as proc, aiohttp.ClientSession() as http:
            await cs.wait_for_call(CP_ID, "StatusNotification", lambda p: p["connectorId"] == 1, timeout=10)
            await cs.wait_for_call(CP_ID, "StatusNotification", lambda p: p["connectorId"] == 0)
            actions = cs.actions(CP_ID)
            assert actions[0] == "BootNotification"
            assert [c["connectorId"] for c in cs.calls(CP_ID, "StatusNotification")][:2] == [0, 1]

            await _wait_for_api(http, base, proc, log)
            async with http.post(sim, json={"action": "plug"}) as response:
                assert response.status == 200, await response.text()
                assert await response.json() == {"ok": True, "action": "plug"}
            await cs.wait_for_call(CP_ID, "StatusNotification", lambda p: p["status"] == "Preparing")
            async with http.post(sim, json={"action": "tap", "id_tag": "ABC123"}) as response:
                assert response.status == 200, await response.text()
            await cs.wait_for_call(CP_ID, "Authorize", lambda p: p["idTag"] == "ABC123")
            start = await cs.wait_for_call(CP_ID, "StartTransaction", lambda p: p["idTag"] == "ABC123")
            assert start["connectorId"] == 1
            await cs.wait_for_call(CP_ID, "StatusNotification", lambda p: p["status"] == "Charging")
            transaction_id = cs.last_transaction_id
            assert transaction_id > 0

            async with http.get(f"{base}/api/v1/status") as response:
                assert response.status == 200
                status = await response.json()
            (cp,) = status["charge_points"]
            assert cp["id"] == CP_ID
            assert cp["connected"] is True
            assert cp["accepted"] is True
            (connector,) = cp["connectors"]
            assert connector["id"] == 1
            assert connector["status"] == "Charging"
            assert connector["transaction_id"] == transaction_id
            assert connector["id_tag"] == "ABC123"

            wrong: list[tuple[str, dict[str, Any], int]] = [
                (f"{base}/api/v1/charge_points/NO-SUCH-CP/connectors/1/sim", {"action": "plug"}, 404),
                (f"{base}/api/v1/charge_points/{CP_ID}/connectors/9/sim", {"action": "plug"}, 404),
                (sim, {"action": "dance"}, 400),
                (sim, {"action": "tap"}, 400),
            ]
            for url, body, expected in wrong:
                async with http.post(url, json=body) as response:
                    assert response.status == expected, (url, body, await response.text())
                    answer = await response.json()
                    assert isinstance(answer.get("error"), str) and answer["error"], answer

            _exited(proc, log, "before SIGTERM")
            os.kill(proc.pid, signal.SIGTERM)
            try:
                code = await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                pytest.fail(f"the daemon did not stop within 10 s of SIGTERM:\n{_text(log)}")
            assert code == 0, _text(log)
        cs.assert_clean()
    assert "Traceback" not in _text(log)


async def test_run_log_with_frames_shows_neither_the_password_nor_a_new_authorization_key(
    tmp_path: Path,
) -> None:
    password = "pw-" + secrets.token_urlsafe(12)
    new_key = secrets.token_hex(20)  # 40 hex characters
    assert len(new_key) == 40
    token = base64.b64encode(f"{CP_ID}:{password}".encode()).decode()
    log = tmp_path / "run.log"
    port = free_port()
    served: list[str] = []  # what the local API shows: status and metrics
    async with StrictCentralSystem(boot=[("Accepted", 300)], password=password) as cs:
        config = _write_config(tmp_path, cs.url, password=password, api_port=port)
        async with _daemon(config, log, "--log-frames", "--log-level", "DEBUG") as proc:
            await cs.wait_for_call(CP_ID, "StatusNotification", lambda p: p["connectorId"] == 1, timeout=10)
            assert (f"/ocpp/{CP_ID}", 101) in cs.handshakes
            answer = await cs.call(CP_ID, call.ChangeConfiguration(key="AuthorizationKey", value=new_key))
            assert answer.status in ("Accepted", "Rejected", "NotSupported", "RebootRequired")
            async with aiohttp.ClientSession() as http:
                await _wait_for_api(http, f"http://127.0.0.1:{port}", proc, log)
                for path in ("/api/v1/status", "/metrics"):
                    async with http.get(f"http://127.0.0.1:{port}{path}") as response:
                        assert response.status == 200
                        served.append(await response.text())
            _exited(proc, log, "after ChangeConfiguration")
            os.kill(proc.pid, signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 10) == 0
        cs.assert_clean()
    text = _text(log)
    # The frames were logged (else the test proves nothing), the secret ones redacted.
    assert "BootNotification" in text
    assert "ChangeConfiguration" in text and "AuthorizationKey" in text, text
    for secret in (password, token, new_key, new_key.upper()):
        assert secret not in text, f"the log shows a secret:\n{text}"
    assert "ChangeConfiguration" in served[1]  # the metrics counted it, without its value
    for secret in (password, token, new_key, new_key.upper()):
        assert all(secret not in body for body in served), "the local API shows a secret"


async def test_run_keeps_its_own_log_files_with_the_frames_and_no_secret(tmp_path: Path) -> None:
    # Without --log-frames: the journal shows no frame, the bridge's frame file keeps them all.
    password = "pw-" + secrets.token_urlsafe(12)
    new_key = secrets.token_hex(20)
    log = tmp_path / "run.log"
    async with StrictCentralSystem(boot=[("Accepted", 300)], password=password) as cs:
        config = _write_config(tmp_path, cs.url, password=password)
        async with _daemon(config, log) as proc:
            await cs.wait_for_call(CP_ID, "StatusNotification", lambda p: p["connectorId"] == 1, timeout=10)
            await cs.call(CP_ID, call.ChangeConfiguration(key="AuthorizationKey", value=new_key))
            os.kill(proc.pid, signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 10) == 0
    logs = tmp_path / "state" / "logs"
    bridge_log = (logs / "bridge.log").read_text(encoding="utf-8")
    frames_log = (logs / "frames.log").read_text(encoding="utf-8")
    assert f"{CP_ID}: BootNotification Accepted" in bridge_log and "bridge: stopped" in bridge_log
    assert re.search(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ", bridge_log, re.M)  # UTC, to select by time
    assert '"BootNotification"' in frames_log and "AuthorizationKey" in frames_log
    assert '"BootNotification"' not in _text(log)  # not in the journal without --log-frames
    for secret in (password, new_key, new_key.upper()):
        assert secret not in bridge_log + frames_log


async def test_check_warns_of_a_short_api_token_without_quoting_it(tmp_path: Path) -> None:
    path = tmp_path / "short-token.yaml"
    path.write_text(
        f"state_dir: {tmp_path / 'state'}\napi: {{listen: '127.0.0.1:8080', token: tok-9f3}}\n"
        "charge_points:\n  - id: CP-1\n    csms_url: ws://127.0.0.1:9000/ocpp\n"
        "    connectors: [{id: 1, charger: {type: simulated}}]\n"
    )
    code, out, err = await run_cli("check", "--config", str(path))
    assert code == 0, err  # a warning: the file is valid
    assert f"{path}: warning: api.token has 7 characters: use at least 16" in out
    assert "tok-9f3" not in out + err
