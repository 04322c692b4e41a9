"""Stopping the processes a test or benchmark started: by pid, never left behind."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal


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
