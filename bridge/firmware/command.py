"""The "command" install: an integrator's program run with the image's path; exit 0 is Installed.

It runs without a shell (argv + [image]), stdin /dev/null, stdout and stderr merged and logged line
by line as they come. Past its time limit its whole process group is stopped (TERM, then KILL 5 s
later): an install script's children go with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections import deque
from pathlib import Path

from bridge.core.firmware_effects import InstallFailed, InstallSucceeded, RolledBack
from bridge.firmware.install import InstallOutcome

LINE_MAX = 1_000  # characters of one output line kept (logged and in the reason)
TAIL_LINES = 20  # the last lines of output a failure's reason holds
KILL_AFTER_S = 5.0  # from TERM to KILL of a command past its time limit


class OutputTail:
    """The last lines of a process's output, each cut at LINE_MAX characters."""

    def __init__(self, lines: int = TAIL_LINES) -> None:
        self.lines: deque[str] = deque(maxlen=lines)

    def add(self, raw: bytes) -> str:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if len(line) > LINE_MAX:
            line = line[:LINE_MAX] + "…"
        self.lines.append(line)
        return line

    def text(self) -> str:
        return "\n".join(self.lines)


async def read_lines(stream: asyncio.StreamReader, tail: OutputTail, log: logging.Logger, name: str) -> None:
    """Each line as it comes, to the log and the tail; a line longer than the stream's limit is cut."""
    while True:
        try:
            raw = await stream.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            raw = exc.partial  # the last line, without its newline
        except asyncio.LimitOverrunError as exc:
            raw = await stream.readexactly(exc.consumed)  # a long line: its first part now
        if not raw:
            return
        log.info("%s: %s", name, tail.add(raw))


def exit_text(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


async def kill_group(proc: asyncio.subprocess.Process) -> None:
    """TERM to the process group, KILL KILL_AFTER_S later if its leader is still there."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), KILL_AFTER_S)
    except TimeoutError:
        pass
    # KILL the group in any case: a child that ignored TERM outlives its leader otherwise.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    await proc.wait()


class CommandInstaller:
    kind = "command"

    def __init__(self, argv: list[str], timeout_s: float, log: logging.Logger) -> None:
        if not argv or not all(isinstance(a, str) and a for a in argv):
            raise ValueError(f"firmware install command must be a non-empty list of words, got {argv!r}")
        if not timeout_s > 0:
            raise ValueError(f"firmware install timeout must be > 0 s, got {timeout_s!r}")
        self.argv = list(argv)
        self.timeout_s = timeout_s
        self.log = log

    async def install(self, image: Path, job: int) -> InstallOutcome:
        name = Path(self.argv[0]).name
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.argv, str(image),
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        except OSError as exc:
            return InstallFailed(
                job, f"install command {self.argv[0]} could not start: {exc.strerror or exc}"
            )
        assert proc.stdout is not None
        tail = OutputTail()
        reader = asyncio.create_task(read_lines(proc.stdout, tail, self.log, name))
        try:
            await asyncio.wait_for(proc.wait(), self.timeout_s)
        except TimeoutError:
            await kill_group(proc)
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            return InstallFailed(job, f"install command {self.argv[0]} timed out after {self.timeout_s:g} s "
                                 f"and was stopped{_last(tail)}")  # fmt: skip
        except asyncio.CancelledError:
            await kill_group(proc)
            reader.cancel()
            raise
        # The leader exited: what its children still write goes on until they close the pipe.
        try:
            await asyncio.wait_for(reader, KILL_AFTER_S)
        except TimeoutError:
            await kill_group(proc)
        code = proc.returncode
        assert code is not None
        if code == 0:
            self.log.info("install command %s succeeded for job %d", name, job)
            return InstallSucceeded(job)
        return InstallFailed(job, f"install command {self.argv[0]} {exit_text(code)}{_last(tail)}")

    async def resolve_interrupted(self, image: Path, job: int) -> InstallOutcome:
        return InstallFailed(job, "interrupted by a restart: the command's outcome is unknown")

    async def roll_back(self, job: int) -> tuple[RolledBack, bool]:
        return RolledBack(job, "nothing to roll back"), False

    def is_running(self, target: str) -> bool:
        return False

    def confirm(self, target: str) -> None:
        """A command's install is final when it exits 0."""


def _last(tail: OutputTail) -> str:
    return f"; its last output:\n{tail.text()}" if tail.lines else ""
