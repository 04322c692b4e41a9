"""`ocpp-bridge <command>` run as a real process from the repository root."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.processes import child_env, stop_process

ROOT = Path(__file__).resolve().parent.parent.parent


async def run_cli(*args: str, limit_s: float = 20.0) -> tuple[int, str, str]:
    """Runs a short command to its end: (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bridge.cli",
        *args,
        cwd=ROOT,
        env=child_env(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), limit_s)
    finally:
        await stop_process(proc)
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")
