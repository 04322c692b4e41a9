"""`ocpp-bridge diagnostics`: the archive GetDiagnostics uploads, written to a local file for an installer.

The same members as the daemon's (`bridge.diagnostics.build_archive`): the window of the log files in
`<state_dir>/logs`, the configuration file (secrets masked), the running daemon's status from its local
API when it answers, and the versions.

The store is not read: `store.json` says so. The daemon holds the SQLite store (WAL), and even a
read-only connection to a WAL database writes its `-shm` index; run as root next to a service with a
dynamic user, it could leave files behind that the service cannot open at its next start (the
daemon's own archive has the summary). Nor are the devices probed: the daemon holds them (one request
at a time on an RS485 bus); their health is in the running daemon's status.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from bridge.config import Config
from bridge.diagnostics import LOGS_DIR, ArchiveParts, build_archive, rotated_files
from bridge.diagnostics.logfiles import BRIDGE_LOG, FRAMES_LOG
from bridge.status_cli import fetch_status

NOT_RUNNING = "the bridge is not running (its local API did not answer)"
STORE_SKIPPED = {
    "skipped": "not read by `ocpp-bridge diagnostics`: the running daemon holds the store",
}
DEVICES_SKIPPED = {
    "skipped": "not probed by `ocpp-bridge diagnostics`: the running daemon holds the devices; "
    "status.json has their health",
}
STATUS_TIMEOUT_S = 5.0


def parse_moment(option: str, text: str) -> datetime:
    """An end of the window: ISO 8601 with its time zone (`2025-01-31T02:00:00Z`, `...+01:00`)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{option} {text!r} is not an ISO 8601 time; write it like 2025-01-31T02:00:00Z"
        ) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{option} {text!r} has no time zone; add one, like 2025-01-31T02:00:00Z or +01:00")
    return moment


def running_status(config: Config) -> dict[str, Any]:
    """The running daemon's status from its local API, or an `error` that says why there is none."""
    if config.api.listen is None:
        return {"error": "the local API is switched off (api.listen: null): the bridge's status is unknown"}
    try:
        return fetch_status(config.api, timeout_s=STATUS_TIMEOUT_S)
    except ConnectionError as exc:
        # fetch_status says "cannot reach" when nothing answered; else the API refused (a wrong token).
        answered = "cannot reach" not in str(exc)
        return {"error": "the local API refused the request" if answered else NOT_RUNNING, "detail": str(exc)}


def readable_logs(logs_dir: Path) -> tuple[Path | None, str | None]:
    """`logs_dir` when its files can be read, else (None, why the archive has no log lines)."""
    try:
        if not stat.S_ISDIR(os.stat(logs_dir).st_mode):
            return None, f"{logs_dir} is not a directory: the archive holds no log lines"
        for name in (BRIDGE_LOG, FRAMES_LOG):
            for path in rotated_files(logs_dir / name):
                with path.open("rb"):
                    pass
    except FileNotFoundError:
        return None, f"{logs_dir} does not exist: the archive holds no log lines"
    except PermissionError:
        # The service's dynamic user owns state_dir: only root or that user may read it.
        return None, f"cannot read {logs_dir} (permission denied): run it as root for the log lines"
    except OSError as exc:
        return None, f"cannot read {logs_dir}: {exc.strerror or exc}; the archive holds no log lines"
    return logs_dir, None


def _stderr(text: str) -> None:
    print(text, file=sys.stderr)


def write_diagnostics(
    config: Config,
    config_path: Path,
    output: Path,
    start: datetime | None,
    stop: datetime | None,
    *,
    warn: Callable[[str], None] = _stderr,
) -> Path:
    """Writes the archive to `output` and returns its path. OSError when it cannot be written (nothing
    is left behind), ValueError when the window starts after it stops. What is missing from the
    archive (unreadable logs) is said to `warn`, not an error: the rest still helps."""
    if start is not None and stop is not None and start > stop:
        raise ValueError(f"--start ({start.isoformat()}) is after --stop ({stop.isoformat()})")
    logs_dir, problem = readable_logs(config.state_dir / LOGS_DIR)
    if problem is not None:
        warn(f"warning: {problem}")
    try:
        config_text: str | None = config_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        config_text = None  # the archive says it could not be read
    parts = ArchiveParts(
        logs_dir=logs_dir,
        start=start,
        stop=stop,
        config_text=config_text,
        status=running_status(config),
        store=STORE_SKIPPED,
        devices=DEVICES_SKIPPED,
    )
    return build_archive(output, parts)


def run_diagnostics(
    config_path: str, output: str, start: str | None, stop: str | None, load: Callable[[str], object]
) -> int:
    """The command: 0 with the archive's path printed; 2 for a bad option or an output that cannot be
    written (named, no traceback). `load` is the CLI's configuration loader (exits 2 itself)."""
    try:
        window = [None if text is None else parse_moment(option, text)
                  for option, text in (("--start", start), ("--stop", stop))]  # fmt: skip
    except ValueError as exc:
        _stderr(f"error: {exc}")
        return 2
    config = load(config_path)
    assert isinstance(config, Config)
    dest = Path(output)
    try:
        written = write_diagnostics(config, Path(config_path), dest, window[0], window[1])
    except ValueError as exc:
        _stderr(f"error: {exc}")
        return 2
    except OSError as exc:
        _stderr(
            f"error: cannot write the archive to {output}: {exc.strerror or exc}; "
            "-o/--output must name a file in a directory you can write"
        )
        return 2
    print(written.resolve())
    return 0
