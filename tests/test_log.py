"""Journal-friendly logging: priority prefixes only when stderr is the journal's stream."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import logging
from bridge.log import setup_logging
setup_logging("INFO")
logging.getLogger("bridge.chargepoint").warning("CP-1/1: simulated charger did not answer")
logging.getLogger("bridge.chargepoint").info("CP-1/1: Charging")
logging.getLogger("bridge.chargepoint").debug("not shown at INFO")
"""


def run(tmp_path: Path, journal: str | None) -> str:
    out = tmp_path / "stderr.txt"
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    with out.open("w") as stream:
        if journal == "match":
            st = os.fstat(stream.fileno())
            env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
        elif journal is not None:
            env["JOURNAL_STREAM"] = journal
        subprocess.run([sys.executable, "-c", SCRIPT], stderr=stream, env=env, check=True, timeout=30)
    return out.read_text()


def test_lines_carry_syslog_priorities_when_stderr_is_the_journal(tmp_path: Path) -> None:
    assert run(tmp_path, "match").splitlines() == [
        "<4>bridge.chargepoint: CP-1/1: simulated charger did not answer",
        "<6>bridge.chargepoint: CP-1/1: Charging",
    ]


def test_plain_lines_when_stderr_is_not_the_journal(tmp_path: Path) -> None:
    for journal in (None, "1:2", "garbage"):
        lines = run(tmp_path, journal).splitlines()
        assert len(lines) == 2
        assert " WARNING bridge.chargepoint: CP-1/1: simulated charger did not answer" in lines[0]
        assert not lines[0].startswith("<")
