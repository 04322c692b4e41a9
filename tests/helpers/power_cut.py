"""A daemon stopped as a power cut would stop it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bridge.store import FILENAME


def as_after_a_power_cut(tmp_path: Path) -> None:
    """A daemon stopped in-process stopped gracefully: its running transactions are marked to resume.
    A power cut leaves no such mark: take it away, as the power cut would have."""
    db = sqlite3.connect(tmp_path / "state" / FILENAME)
    with db:
        db.execute("UPDATE transactions SET suspended_at = NULL")
    db.close()
