"""Frames handed to bridge.log.log_frame: into frames.log without a LogRecord, masked on the writer's
thread, once each, on stderr only with --log-frames."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.diagnostics.logfiles import Taker, Writer
from bridge.diagnostics.logwriter import RotatingFile
from tests.processes import ROOT, child_env

STAMPED = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (INFO|WARNING|ERROR|DEBUG) +[\w.]+: ")
KEY = "0123456789abcdef0123456789abcdef01234567"

FRAME_SCRIPT = """
import sys
from pathlib import Path
from bridge.log import log_frame, setup_logging
from bridge.diagnostics import install_log_files
setup_logging("INFO", frames=sys.argv[2] == "frames")
files = install_log_files(Path(sys.argv[1]), 65536, 2)
log_frame("CP-1", "<-", sys.argv[3])
log_frame("CP-1", "->", '[3,"1",{"status":"Accepted"}]')
files.remove()
log_frame("CP-1", "->", "after the files are gone")
"""


@pytest.mark.parametrize("frames", ["", "frames"])
def test_frames_handed_to_log_frame_are_masked_in_their_file_once_and_on_stderr_only_when_asked(
    tmp_path: Path, frames: str
) -> None:
    secret_call = json.dumps(
        [2, "9", "ChangeConfiguration", {"key": "AuthorizationKey", "value": KEY}], separators=(",", ":")
    )
    done = subprocess.run(
        [sys.executable, "-c", FRAME_SCRIPT, str(tmp_path), frames, secret_call],
        cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    lines = (tmp_path / "logs" / "frames.log").read_text().splitlines()
    masked = '[2,"9","ChangeConfiguration",{"key":"AuthorizationKey","value":"***"}]'
    assert len(lines) == 2 and all(STAMPED.match(line) for line in lines)  # once each, not twice
    assert lines[0].endswith(f" DEBUG   ocpp.frames: CP-1 <- {masked}")
    assert lines[1].endswith(' DEBUG   ocpp.frames: CP-1 -> [3,"1",{"status":"Accepted"}]')
    assert "ocpp.frames" not in (tmp_path / "logs" / "bridge.log").read_text()
    assert KEY not in done.stderr
    assert (f"CP-1 <- {masked}" in done.stderr) == bool(frames)
    assert ("after the files are gone" in done.stderr) == bool(frames)


def test_frames_taken_share_the_bound_and_their_loss_is_counted(tmp_path: Path) -> None:
    taker = Taker(bound=3)
    frames = RotatingFile(tmp_path / "frames.log", 64 * 1024, 2)
    log = RotatingFile(tmp_path / "bridge.log", 64 * 1024, 2)
    writer = Writer(taker, log, frames, 0.2)  # not started: it drains when the test says
    taker.handle(logging.makeLogRecord({"msg": "a line", "name": "bridge.test", "levelname": "INFO"}))
    for n in range(4):
        taker.take_frame("CP-1", "->", f'[2,"{n}","Heartbeat",{{}}]')
    writer.drain()
    taker.take_frame("CP-1", "<-", "ftp://diag:Pa55@host/x")
    writer.drain()
    frames.close()
    log.close()
    frame_lines = (tmp_path / "frames.log").read_text().splitlines()
    assert [line.split(": ", 1)[1] for line in frame_lines] == [
        'CP-1 -> [2,"0","Heartbeat",{}]',
        'CP-1 -> [2,"1","Heartbeat",{}]',
        "CP-1 <- ftp://diag:***@host/x",
    ]
    log_lines = (tmp_path / "bridge.log").read_text().splitlines()
    assert log_lines[0].endswith(" INFO    bridge.test: a line")
    assert log_lines[1].endswith(
        " WARNING bridge.diagnostics.logfiles: 2 log lines were dropped: the log files fell behind"
    )
