"""The bridge's own log files: what they hold, their bounds, frames apart and masked, stderr unchanged."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from bridge.diagnostics import install_log_files, lines_between, rotated_files
from bridge.diagnostics.logfiles import Taker, UtcFormatter, Writer
from bridge.diagnostics.logwriter import LineMaker, RotatingFile
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.helpers.logfiles import entry, minute, stamped, write_lines
from tests.processes import ROOT, child_env

STAMPED = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (INFO|WARNING|ERROR|DEBUG) +[\w.]+: ")
KEY = "0123456789abcdef0123456789abcdef01234567"
FTP_PASSWORD = "ftp-Pa55word"


@pytest.fixture(autouse=True)
def levels_restored() -> Iterator[None]:
    root, frames = logging.getLogger(), logging.getLogger("ocpp.frames")
    before = root.level
    yield
    root.setLevel(before)
    frames.setLevel(logging.NOTSET)  # as the other tests found it


def test_lines_carry_their_utc_time_and_tracebacks_follow_them(tmp_path: Path) -> None:
    logging.getLogger().setLevel(logging.INFO)
    before = datetime.now(UTC)
    files = install_log_files(tmp_path, 64 * 1024, 2)
    try:
        log = logging.getLogger("bridge.test")
        log.info("CP-1/1: Charging")
        try:
            1 / 0  # noqa: B018
        except ZeroDivisionError:
            log.exception("CP-1/1: the charger failed")
        log.debug("not written at INFO")
    finally:
        files.remove()
    files.remove()  # a second time does nothing
    logging.getLogger("bridge.test").info("after the files are gone")
    after = datetime.now(UTC)
    lines = (tmp_path / "logs" / "bridge.log").read_text().splitlines()
    assert STAMPED.match(lines[0]) and lines[0].endswith(" INFO    bridge.test: CP-1/1: Charging")
    assert STAMPED.match(lines[1]) and lines[1].endswith("ERROR   bridge.test: CP-1/1: the charger failed")
    assert lines[2] == "Traceback (most recent call last):"
    assert lines[-1] == "ZeroDivisionError: division by zero"
    assert not any("not written" in line or "gone" in line for line in lines)
    when = datetime.strptime(lines[0][:23], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC)
    assert before - timedelta(milliseconds=1) <= when <= after
    # The window selection reads what the files wrote: the traceback comes with its line.
    window = list(lines_between(files.bridge_files(), before - timedelta(seconds=1), after))
    assert [line.decode().rstrip("\n") for line in window] == lines


def test_rotation_keeps_the_files_bounded_and_in_order(tmp_path: Path) -> None:
    logging.getLogger().setLevel(logging.INFO)
    files = install_log_files(tmp_path, 4096, 2, frames=False)
    try:
        for n in range(1000):
            logging.getLogger("bridge.test").info("line %04d %s", n, "x" * 40)
    finally:
        files.remove()
    paths = rotated_files(tmp_path / "logs" / "bridge.log")
    assert [p.name for p in paths] == ["bridge.log.2", "bridge.log.1", "bridge.log"]
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == sorted(p.name for p in paths)
    assert all(p.stat().st_size <= 4096 for p in paths)
    numbers = [int(line.split(b"line ")[1][:4]) for line in lines_between(paths, None, None)]
    assert numbers == list(range(numbers[0], 1000))  # oldest first, nothing lost between the files
    assert numbers[0] > 800  # the oldest were rotated away: the bound holds


def test_bad_bounds_are_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_bytes must be at least 4096"):
        install_log_files(tmp_path, 100, 2)
    with pytest.raises(ValueError, match="backups must be at least 1"):
        install_log_files(tmp_path, 8192, 0)
    assert not logging.getLogger("ocpp.frames").isEnabledFor(logging.DEBUG)


def test_a_full_queue_drops_lines_without_blocking_and_says_how_many() -> None:
    handler = Taker(bound=2)
    for n in range(5):
        handler.handle(logging.makeLogRecord({"msg": f"line {n}"}))
    assert handler.dropped == 3
    assert [handler.pending.popleft()[4] for _ in range(2)] == ["line 0", "line 1"]
    handler.handle(logging.makeLogRecord({"msg": "line 5"}))
    notes = [handler.pending.popleft() for _ in range(2)]
    assert notes[0][4] == "3 log lines were dropped: the log files fell behind"
    assert notes[0][2] == "WARNING" and notes[1][4] == "line 5"
    assert handler.dropped == 0


def test_the_message_is_made_when_logged_not_when_written() -> None:
    handler = Taker()
    state = {"status": "Charging"}
    fields = {"msg": "CP-1/1: %s", "args": (state,), "name": "bridge.test", "levelname": "INFO"}
    record = logging.makeLogRecord(fields)
    handler.handle(record)
    state["status"] = "Finishing"  # the caller goes on with its dict before the writer runs
    created, msecs, level, name, message = handler.pending.popleft()
    assert message == "CP-1/1: {'status': 'Charging'}"
    assert (created, msecs, level, name) == (record.created, int(record.msecs), "INFO", "bridge.test")


def test_lines_are_the_formatters_byte_for_byte_across_seconds() -> None:
    maker, formatter = LineMaker(), UtcFormatter()
    moments = [
        minute(0),
        minute(0) + timedelta(milliseconds=999),
        minute(0) + timedelta(seconds=1, milliseconds=7),
    ]
    for at in [*moments, minute(0) + timedelta(milliseconds=5)]:  # and back into a second it left
        record = logging.makeLogRecord({"name": "bridge.x", "levelname": "WARNING", "msg": "ünïcode: 50 %"})
        record.created, record.msecs = at.timestamp(), float(at.microsecond // 1000)
        made = maker.line(entry(at, "ünïcode: 50 %", "WARNING", "bridge.x"))
        assert made == formatter.format(record) + "\n" == stamped(at, "ünïcode: 50 %", "WARNING", "bridge.x")


def test_a_batch_is_one_write_and_rotation_goes_by_the_files_own_count(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "bridge.log", [stamped(minute(0), "written before the bridge started")])
    file = RotatingFile(path, 4096, 2)
    try:
        assert file.size == path.stat().st_size  # appends: counts what the file held
        batch = [
            stamped(minute(1), f"line {n} ünï \udc80") for n in range(20)
        ]  # multi-byte, a lone surrogate
        file.write(batch)
        assert (file.writes, file.rotations) == (1, 0)
        assert file.size == path.stat().st_size
        assert path.read_bytes().endswith(b"line 19 \xc3\xbcn\xc3\xaf \\udc80\n")
        lines = [stamped(minute(2), f"line {n:03d} " + "x" * 72) for n in range(200)]
        assert {len(line) for line in lines} == {128}  # 32 to a file
        room = (4096 - file.size) // 128
        file.write(lines)
        rotations = -(-(200 - room) // 32)
        assert (file.rotations, file.writes) == (rotations, 1 + rotations + 1)  # one write per file it filled
        assert file.size == path.stat().st_size == (200 - room - 32 * (rotations - 1)) * 128
    finally:
        file.close()
    paths = rotated_files(path)
    assert [p.name for p in paths] == ["bridge.log.2", "bridge.log.1", "bridge.log"]
    assert [p.stat().st_size for p in paths[:-1]] == [4096, 4096]  # full to the byte, never over
    kept = b"".join(p.read_bytes() for p in paths).decode().splitlines(keepends=True)
    assert kept == lines[-len(kept) :]  # the newest lines, in order, nothing lost between the files
    assert len(kept) == 64 + file.size // 128


def test_the_writer_batches_and_remove_writes_everything_taken(tmp_path: Path) -> None:
    logging.getLogger().setLevel(logging.INFO)
    files = install_log_files(tmp_path, 1024 * 1024, 2)
    try:
        log = logging.getLogger("bridge.test")
        others = [
            threading.Thread(target=lambda t=t: [log.info("thread %d line %d", t, n) for n in range(500)])
            for t in range(2)
        ]
        for thread in others:
            thread.start()
        for n in range(3000):
            log.info("line %d", n)
            logging.getLogger("ocpp.frames").debug('CP-1 -> [2,"%d","Heartbeat",{}]', n)
        for thread in others:
            thread.join()
    finally:
        files.remove()  # at once: most lines are still waiting for the writer
    bridge_lines = (tmp_path / "logs" / "bridge.log").read_text().splitlines()
    frame_lines = (tmp_path / "logs" / "frames.log").read_text().splitlines()
    assert [line.split(": ", 1)[1] for line in bridge_lines if "thread" not in line] == [
        f"line {n}" for n in range(3000)
    ]
    for t in range(2):
        assert [line.split(": ", 1)[1] for line in bridge_lines if f"thread {t}" in line] == [
            f"thread {t} line {n}" for n in range(500)
        ]
    assert len(frame_lines) == 3000 and frame_lines[-1].endswith('[2,"2999","Heartbeat",{}]')
    assert all(STAMPED.match(line) for line in bridge_lines + frame_lines)
    assert files.dropped == 0
    assert files.writer.batches <= 15  # 7,000 lines: a handful of batches, not a write each


def test_the_writer_sleeps_while_nothing_is_logged_and_wakes_for_one_line(tmp_path: Path) -> None:
    logging.getLogger().setLevel(logging.INFO)
    files = install_log_files(tmp_path, 64 * 1024, 2)
    try:
        log_file = tmp_path / "logs" / "bridge.log"
        logging.getLogger("bridge.test").info("one line")
        deadline = time.monotonic() + 2
        while "one line" not in log_file.read_text() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "one line" in log_file.read_text()  # alone, it is written within a batch period
        quiet = files.writer.wakeups
        time.sleep(0.8)  # four batch periods: an idle daemon's writer must not poll
        assert files.writer.wakeups == quiet
        logging.getLogger("bridge.test").info("another line")
        deadline = time.monotonic() + 2
        while "another line" not in log_file.read_text() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "another line" in log_file.read_text()
    finally:
        files.remove()


def test_lines_dropped_while_the_writer_is_behind_are_counted_in_the_file(tmp_path: Path) -> None:
    taker = Taker(bound=100)
    log = RotatingFile(tmp_path / "bridge.log", 64 * 1024, 2)
    writer = Writer(taker, log, None, 0.2)  # not started: it drains when the test says
    record = logging.makeLogRecord
    for n in range(150):
        taker.handle(record({"msg": f"line {n}", "name": "bridge.test", "levelname": "INFO"}))
    writer.drain()
    taker.handle(record({"msg": "after the writer caught up", "name": "bridge.test", "levelname": "INFO"}))
    writer.drain()
    log.close()
    lines = (tmp_path / "bridge.log").read_text().splitlines()
    assert [line.split(": ", 1)[1] for line in lines[:100]] == [f"line {n}" for n in range(100)]
    assert lines[100].endswith(
        " WARNING bridge.diagnostics.logfiles: 50 log lines were dropped: the log files fell behind"
    )
    assert lines[101].endswith(" INFO    bridge.test: after the writer caught up")
    assert len(lines) == 102 and writer.batches == 2 and taker.dropped == 0


SCRIPT = """
import logging, sys
from pathlib import Path
from bridge.log import setup_logging
from bridge.diagnostics import install_log_files
setup_logging("INFO", frames=sys.argv[2] == "frames")
files = install_log_files(Path(sys.argv[1]), 65536, 2)
logging.getLogger("ocpp.frames").debug("CP-1 -> %s", '[2,"1","Heartbeat",{}]')
logging.getLogger("bridge.test").info("an ordinary line")
files.remove()
logging.getLogger("ocpp.frames").debug("CP-1 -> after the files are gone")
"""


@pytest.mark.parametrize("frames", ["", "frames"])
def test_frames_have_their_own_file_and_reach_stderr_only_when_asked(tmp_path: Path, frames: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path), frames],
        cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    frame_lines = (tmp_path / "logs" / "frames.log").read_text().splitlines()
    assert len(frame_lines) == 1 and STAMPED.match(frame_lines[0])
    assert frame_lines[0].endswith(' DEBUG   ocpp.frames: CP-1 -> [2,"1","Heartbeat",{}]')
    assert "Heartbeat" not in (tmp_path / "logs" / "bridge.log").read_text()
    assert "an ordinary line" in (tmp_path / "logs" / "bridge.log").read_text()
    assert "an ordinary line" in done.stderr
    assert ("Heartbeat" in done.stderr) == bool(frames)  # the journal as before
    assert ("after the files are gone" in done.stderr) == bool(frames)


async def test_the_frame_file_masks_secrets_the_central_system_sends(
    csms: StrictCentralSystem, tmp_path: Path
) -> None:
    files = install_log_files(tmp_path / "state", 64 * 1024, 2)
    try:
        async with running(make_config(csms.url, tmp_path)):
            await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)
            await csms.send_raw(
                "CP-1", f'[2,"k1","ChangeConfiguration",{{"key":"AuthorizationKey","value":"{KEY}"}}]'
            )
            await csms.answer_of("CP-1", "k1")
            # A new AuthorizationKey reconnects with it (A01): the next call goes on the new link.
            await csms.wait_until(
                lambda: len(csms.links) == 2 and not csms.links[-1].closed, what="reconnected"
            )
            location = f"ftp://diag:{FTP_PASSWORD}@127.0.0.1:2121/uploads/"
            await csms.send_raw("CP-1", f'[2,"k2","GetDiagnostics",{{"location":"{location}"}}]')
            await csms.answer_of("CP-1", "k2")
    finally:
        files.remove()
    frames = (tmp_path / "state" / "logs" / "frames.log").read_text()
    everything = frames + (tmp_path / "state" / "logs" / "bridge.log").read_text()
    assert KEY not in everything and FTP_PASSWORD not in everything
    assert '"key":"AuthorizationKey","value":"***"' in frames
    assert "ftp://diag:***@127.0.0.1:2121/uploads/" in frames
    assert "BootNotification" in frames and "k2" in frames  # the frames are there, both ways
    assert any(" <- " in line for line in frames.splitlines())
    assert any(" -> " in line for line in frames.splitlines())


# The window: lines_between over files made by hand with known times.


def test_the_window_keeps_its_lines_with_their_tracebacks_and_both_ends(tmp_path: Path) -> None:
    log = write_lines(
        tmp_path / "bridge.log",
        [
            stamped(minute(0), "before"),
            "Traceback of the line before the window\n",
            stamped(minute(10), "at the start"),
            stamped(minute(11), "failed", "ERROR"),
            "Traceback (most recent call last):\n",
            "ZeroDivisionError: division by zero\n",
            stamped(minute(20), "at the stop"),
            "  its continuation\n",
            stamped(minute(20) + timedelta(milliseconds=1), "just after"),
            "Traceback of the line after the window\n",
        ],
    )
    got = b"".join(lines_between([log], minute(10), minute(20))).decode()
    assert got == "".join(
        [
            stamped(minute(10), "at the start"),
            stamped(minute(11), "failed", "ERROR"),
            "Traceback (most recent call last):\n",
            "ZeroDivisionError: division by zero\n",
            stamped(minute(20), "at the stop"),
            "  its continuation\n",
        ]
    )


def test_the_window_reads_rotated_files_oldest_first_and_in_any_time_zone(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    write_lines(logs / "bridge.log.2", [stamped(minute(n), f"line {n}") for n in range(0, 10)])
    write_lines(logs / "bridge.log.1", [stamped(minute(n), f"line {n}") for n in range(10, 20)])
    write_lines(logs / "bridge.log", [stamped(minute(n), f"line {n}") for n in range(20, 30)])
    write_lines(logs / "bridge.log.old", ["not a rotated file\n"])
    files = rotated_files(logs / "bridge.log")
    assert [f.name for f in files] == ["bridge.log.2", "bridge.log.1", "bridge.log"]
    berlin = timezone(timedelta(hours=1))
    got = [line.decode() for line in lines_between(files, minute(5).astimezone(berlin), minute(24))]
    assert got == [stamped(minute(n), f"line {n}") for n in range(5, 25)]
    assert len(list(lines_between(files, None, None))) == 30
    assert len(list(lines_between(files, minute(25), None))) == 5
    assert len(list(lines_between(files, None, minute(2)))) == 3


def test_the_window_takes_lines_out_of_order_and_skips_files_that_went(tmp_path: Path) -> None:
    """A Pi without a clock battery logs in 1970 until NTP answers: every line is looked at."""
    log = write_lines(
        tmp_path / "bridge.log",
        [
            "a traceback whose line was rotated away\n",
            stamped(datetime(1970, 1, 1, tzinfo=UTC), "booted without a clock"),
            stamped(minute(5), "in the window"),
            stamped(datetime(1970, 1, 1, 0, 1, tzinfo=UTC), "back in 1970"),
            stamped(minute(6), "in the window again"),
        ],
    )
    got = [line.decode() for line in lines_between([tmp_path / "gone.log", log], minute(0), minute(10))]
    assert got == [stamped(minute(5), "in the window"), stamped(minute(6), "in the window again")]
    everything = list(lines_between([log], None, minute(10)))
    assert everything[0] == b"a traceback whose line was rotated away\n"


def test_a_window_that_is_not_one_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must carry its time zone: 2025-01-31T02:00:00 has none"):
        list(lines_between([], minute(0).replace(tzinfo=None), None))
    with pytest.raises(ValueError, match=r"starts .* after it stops"):
        list(lines_between([], minute(1), minute(0)))
