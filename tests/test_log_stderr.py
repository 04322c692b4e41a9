"""bridge.log.BatchedStderr: stderr's lines as before, written a batch at a time, none lost at exit or
behind a crash's traceback."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from pathlib import Path

from bridge.log import BatchedStderr, LocalTimeFormatter
from tests.processes import ROOT, child_env


class CountingStream:
    """A stream that keeps what is written and counts the write calls."""

    def __init__(self) -> None:
        self.text = ""
        self.writes = 0

    def write(self, text: str) -> int:
        self.text += text
        self.writes += 1
        return len(text)

    def flush(self) -> None:
        pass


def handler_on(stream: CountingStream, every: float) -> BatchedStderr:
    handler = BatchedStderr(every)
    handler.setStream(stream)  # type: ignore[arg-type]
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    return handler


def test_many_lines_are_written_in_few_batches_in_order() -> None:
    stream = CountingStream()
    handler = handler_on(stream, 0.05)
    for n in range(2000):
        handler.handle(logging.makeLogRecord({"msg": f"line {n}", "levelname": "INFO"}))
    deadline = time.monotonic() + 5
    while stream.text.count("\n") < 2000 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stream.text.splitlines() == [f"INFO line {n}" for n in range(2000)]
    assert stream.writes <= 5  # not a write per line


def test_a_lone_line_is_written_within_its_batch_time_and_flush_writes_at_once() -> None:
    stream = CountingStream()
    handler = handler_on(stream, 0.1)
    began = time.monotonic()
    handler.handle(logging.makeLogRecord({"msg": "alone", "levelname": "WARNING"}))
    assert stream.text == ""  # waits for its batch
    while not stream.text and time.monotonic() - began < 5:
        time.sleep(0.005)
    assert stream.text == "WARNING alone\n"
    assert 0.09 <= time.monotonic() - began < 1.5
    handler.handle(logging.makeLogRecord({"msg": "then flushed", "levelname": "INFO"}))
    handler.flush()
    assert stream.text == "WARNING alone\nINFO then flushed\n" and stream.writes == 2
    time.sleep(0.2)  # the batch the line woke finds nothing left: no empty write
    assert stream.writes == 2


def test_the_time_is_logging_formatters_to_the_millisecond() -> None:
    fmt = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
    ours, theirs = LocalTimeFormatter(fmt), logging.Formatter(fmt)
    for created in (1_700_000_000.0, 1_700_000_000.999, 1_700_000_001.5, 1_700_000_001.001, 1_800_000_000.25):
        record = logging.makeLogRecord({"msg": "m", "name": "bridge.x", "levelname": "INFO"})
        record.created, record.msecs = created, int((created - int(created)) * 1000) + 0.0
        assert ours.format(record) == theirs.format(record)


CRASH = """
import logging, time
from bridge.log import setup_logging
setup_logging("INFO")
for n in range(3):
    logging.getLogger("bridge.test").info("before the crash %d", n)
raise RuntimeError("the crash")
"""

EXIT = """
import logging, sys
from bridge.log import setup_logging
setup_logging("INFO")
logging.getLogger("bridge.test").warning("the last line")
sys.exit(3)
"""


def test_lines_before_a_crash_precede_its_traceback_and_none_is_lost_at_exit(tmp_path: Path) -> None:
    crashed = subprocess.run(
        [sys.executable, "-c", CRASH], cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=30
    )
    lines = crashed.stderr.splitlines()
    assert crashed.returncode == 1
    assert [line.split(": ", 1)[1] for line in lines[:3]] == [f"before the crash {n}" for n in range(3)]
    assert lines[3] == "Traceback (most recent call last):" and lines[-1] == "RuntimeError: the crash"
    exited = subprocess.run(
        [sys.executable, "-c", EXIT], cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=30
    )
    assert exited.returncode == 3 and exited.stderr.endswith(" WARNING bridge.test: the last line\n")


class SlowStream(CountingStream):
    """A stderr that takes its time (the journal behind): each write blocks for `delay` seconds."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.writing = threading.Event()

    def write(self, text: str) -> int:
        self.writing.set()
        time.sleep(self.delay)
        return super().write(text)


def test_a_slow_stderr_never_holds_up_the_caller_of_a_log_line() -> None:
    stream = SlowStream(0.5)
    handler = handler_on(stream, 0.01)
    handler.handle(logging.makeLogRecord({"msg": "first", "levelname": "INFO"}))
    assert stream.writing.wait(5)  # the writer is in its slow write now
    began = time.monotonic()
    handler.handle(logging.makeLogRecord({"msg": "while it writes", "levelname": "INFO"}))
    assert time.monotonic() - began < 0.1
    handler.flush()  # waits for the slow write, then writes the rest
    assert stream.text == "INFO first\nINFO while it writes\n"


def test_a_stalled_stderr_holds_a_bounded_number_of_lines_and_says_how_many_it_dropped() -> None:
    stream = SlowStream(0.3)
    handler = BatchedStderr(0.01, max_waiting=100)
    handler.setStream(stream)  # type: ignore[arg-type]
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.handle(logging.makeLogRecord({"msg": "first"}))
    assert stream.writing.wait(5)  # the writer is stuck in its slow write
    for n in range(250):
        handler.handle(logging.makeLogRecord({"msg": f"line {n}"}))
    handler.flush()
    written = stream.text.splitlines()
    assert written[:2] == ["first", "line 0"] and written[100] == "line 99"  # the first 100 kept, in order
    assert written[101] == "(150 log lines dropped here: stderr could not keep up)"
    assert len(written) == 102 and handler.dropped == 0
