"""The daemon's one security log: each charge point writes and reads its own lines."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bridge.diagnostics import lines_between
from bridge.security.security_log import SecurityLog, security_log_path

T0 = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)


def test_charge_points_share_one_file_and_each_reads_its_own_lines(tmp_path: Path) -> None:
    shared = SecurityLog.at(tmp_path)
    assert SecurityLog.at(tmp_path) is shared  # one per state directory
    one, other = shared.for_charge_point("CP-1"), shared.for_charge_point("CP-10")
    one.write(T0, "StartupOfTheDevice (critical)", "ocpp-bridge 1.0")  # no event loop: written at once
    other.write(T0, "StartupOfTheDevice (critical)", "ocpp-bridge 1.0")
    one.write(T0, "AuthorizationKey changed\nforged: line")  # a newline cannot start a line of its own
    shared.close()
    assert one.files() == [security_log_path(tmp_path)] == [tmp_path / "security" / "security.log"]
    lines = list(lines_between(one.files(), None, None))
    assert lines == [
        b"2026-12-07T06:00:00.000Z CP-1 StartupOfTheDevice (critical): ocpp-bridge 1.0\n",
        b"2026-12-07T06:00:00.000Z CP-10 StartupOfTheDevice (critical): ocpp-bridge 1.0\n",
        b"2026-12-07T06:00:00.000Z CP-1 AuthorizationKey changed forged: line\n",
    ]
    assert [line for line in lines if one.owns(line)] == [lines[0], lines[2]]  # CP-10 is not CP-1
    assert [line for line in lines if other.owns(line)] == [lines[1]]
