"""`ocpp-bridge run` under a small supervisor that restarts it as systemd's unit does: after a
non-zero exit other than 2 (Restart=on-failure, RestartPreventExitStatus=2), after `restart_s`,
at most `max_starts` times. Every process it starts is stopped by its pid."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable
from pathlib import Path

from tests.processes import ROOT, child_env, stop_process

NO_RESTART = (0, 2)  # a clean stop, or a configuration error: restarting would not fix it


class Supervisor:
    def __init__(
        self,
        config: Path,
        log: Path,
        *extra: str,
        env: dict[str, str] | None = None,
        restart_s: float = 0.2,
        max_starts: int = 10,
    ) -> None:
        self.argv = [sys.executable, "-m", "bridge.cli", "run", "--config", str(config), *extra]
        self.log = log
        log.touch()  # read before the first process writes
        self.env = env or child_env()
        self.restart_s = restart_s
        self.max_starts = max_starts
        self.pids: list[int] = []  # of each start
        self.exits: list[int] = []  # of each process that ended by itself
        self.proc: asyncio.subprocess.Process | None = None
        self.task: asyncio.Task[None] | None = None
        self.changed = asyncio.Event()
        self.stopping = False

    async def start(self) -> None:
        self.task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        while not self.stopping and len(self.pids) < self.max_starts:
            with self.log.open("ab") as sink:
                self.proc = await asyncio.create_subprocess_exec(
                    *self.argv, cwd=ROOT, env=self.env, stdin=asyncio.subprocess.DEVNULL,
                    stdout=sink, stderr=sink,
                )  # fmt: skip
            self.pids.append(self.proc.pid)
            self.changed.set()
            if self.stopping:  # stop() came while it was being started
                await stop_process(self.proc)
            code = await self.proc.wait()
            self.exits.append(code)
            self.changed.set()
            if code in NO_RESTART or self.stopping:
                return
            await asyncio.sleep(self.restart_s)

    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def wait_for(self, done: Callable[[Supervisor], bool], timeout_s: float) -> None:
        """Until `done(self)` holds (checked at each start and exit, and every 0.1 s)."""
        async with asyncio.timeout(timeout_s):
            while not done(self):
                self.changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.changed.wait(), 0.1)

    async def stop(self) -> int | None:
        """No more restarts; the running process stopped (TERM, KILL after 5 s); its exit code."""
        self.stopping = True
        code = None
        if self.proc is not None and self.proc.returncode is None:
            code = await stop_process(self.proc)
        if self.task is not None:
            await self.task  # it starts nothing more: at most it was sleeping before a restart
        return code
