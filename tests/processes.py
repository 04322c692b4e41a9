"""The processes a test or benchmark starts: a free port for them, their memory, and stopping them by
pid, never left behind."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from asyncio.subprocess import Process
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


_HELD: list[socket.socket] = []  # dead ports' sockets, held for the life of the test process


def dead_port() -> int:
    """A TCP port on 127.0.0.1 where a connection is refused, and stays refused: it is bound (so no
    other test process running beside this one can take it) but never listens."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    _HELD.append(s)
    port: int = s.getsockname()[1]
    return port


def free_udp_port() -> int:
    """A UDP port that nothing is bound to now (on any address: a test's socket may bind 0.0.0.0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("0.0.0.0", 0))
        port: int = s.getsockname()[1]
        return port


def vmrss_mib(pid: int | str = "self") -> float:
    """A process's resident memory (/proc/<pid>/status VmRSS), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"no VmRSS in /proc/{pid}/status")


async def stop_process(proc: asyncio.subprocess.Process, grace_s: float = 5.0) -> int:
    """SIGTERM, then SIGKILL if it has not exited within `grace_s`; returns the exit code.

    os.kill, not proc.send_signal: Popen.send_signal polls first and may reap the child
    behind asyncio's child watcher (which then logs "Unknown child process").
    """
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), grace_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode


ROOT = Path(__file__).resolve().parent.parent

# Variables a child must not inherit from whoever runs the tests or benchmarks: journald formatting,
# systemd's state directory and notify socket, import timing, and "no bytecode" (start-up figures).
_INHERITED_NOT = (
    "JOURNAL_STREAM",
    "STATE_DIRECTORY",
    "NOTIFY_SOCKET",
    "PYTHONIMPORTTIME",
    "PYTHONDONTWRITEBYTECODE",
)


async def first_line(proc: asyncio.subprocess.Process, timeout_s: float) -> str | None:
    """The next line `proc` writes to its stdout (a PIPE), stripped; None when none comes within
    `timeout_s` or it closed its stdout."""
    assert proc.stdout is not None
    try:
        raw = await asyncio.wait_for(proc.stdout.readline(), timeout_s)
    except TimeoutError:
        return None
    return raw.decode().strip() if raw else None


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _INHERITED_NOT}
    env.update(extra)
    return env


async def start_daemon(config: Path, log: Path, *extra: str, env: dict[str, str] | None = None) -> Process:
    """`python -m bridge.cli run --config <config>` with stdout and stderr in `log` (a file, so a
    full pipe can never block it). The caller stops it with `stop_process`."""
    with log.open("wb") as sink:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bridge.cli", "run", "--config", str(config), *extra,
            cwd=ROOT, env=env or child_env(), stdin=asyncio.subprocess.DEVNULL, stdout=sink, stderr=sink,
        )  # fmt: skip
