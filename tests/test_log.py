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


def test_every_line_of_a_traceback_carries_the_priority(tmp_path: Path) -> None:
    """journald files each line on its own: `journalctl -p err` must show the traceback with its error."""
    script = (
        "import logging\nfrom bridge.log import setup_logging\nsetup_logging('INFO')\n"
        "try:\n    1 / 0\nexcept ZeroDivisionError:\n"
        "    logging.getLogger('bridge.daemon').exception('health check failed')\n"
    )
    out = tmp_path / "stderr.txt"
    with out.open("w") as stream:
        st = os.fstat(stream.fileno())
        env = {**os.environ, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        subprocess.run([sys.executable, "-c", script], stderr=stream, env=env, check=True, timeout=30)
    lines = out.read_text().splitlines()
    assert lines[0] == "<3>bridge.daemon: health check failed"
    assert len(lines) > 3 and all(line.startswith("<3>") for line in lines)
    assert lines[-1] == "<3>ZeroDivisionError: division by zero"
