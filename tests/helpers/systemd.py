"""systemd's own tools, for the tests that check the unit offline."""

from __future__ import annotations

import shutil

import pytest


def systemd_analyze() -> str:
    """The path of systemd-analyze; the test fails, saying how to install it, when it is missing."""
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.fail(
            "systemd-analyze is missing: it is in Debian's package `systemd` "
            "(sudo apt-get install systemd; `make test` installs it when missing)"
        )
    return path
