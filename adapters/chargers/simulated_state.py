"""The simulated charger's state file: what makes the simulated box the same device after a restart
(adapters/chargers/simulated.py), its format, atomic writes, and the one writer of all boxes' files.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import weakref
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from adapters.base import DeviceFault

STATE_VERSION = 1  # of the state file's layout


class KeepsState(Protocol):
    """A box whose state StateWriter writes (SimulatedCharger)."""

    @property
    def state_file(self) -> Path | None: ...
    def unsaved_state(self) -> SimulatorState | None: ...
    def state_written(self, state: SimulatorState, error: OSError | None) -> None: ...
    def keeps_changing(self) -> bool: ...


@dataclass(frozen=True)
class SimulatorState:
    """What makes the simulated box the same device after a restart: the content of its state file."""

    plugged: bool
    ev_suspended: bool
    enabled: bool  # the relay: the bridge lets energy flow
    current_a: float  # the current offered
    energy_wh: float  # the register, unrounded
    fault: DeviceFault | None = None


def _flag(data: dict[str, Any], key: str) -> bool:
    value = data.get(key)
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false")
    return value


def _amount(data: dict[str, Any], key: str) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{key} must be a number, 0 or more")
    return float(value)


def _state_from(data: Any) -> SimulatorState:
    """The state in a decoded file; ValueError saying what is wrong."""
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        raise ValueError(f"not a version {STATE_VERSION} state")
    fault, raw = None, data.get("fault")
    if raw is not None:
        if not (isinstance(raw, dict) and isinstance(raw.get("error_code"), str)
                and isinstance(raw.get("info"), str | None)):  # fmt: skip
            raise ValueError("fault must be null or {error_code, info}")
        fault = DeviceFault(raw["error_code"], raw.get("info"))
    return SimulatorState(
        plugged=_flag(data, "plugged"),
        ev_suspended=_flag(data, "ev_suspended"),
        enabled=_flag(data, "enabled"),
        current_a=_amount(data, "current_a"),
        energy_wh=_amount(data, "energy_wh"),
        fault=fault,
    )


def read_state(path: Path) -> SimulatorState | None:
    """The state in `path`; None when there is no file; ValueError (naming the file) when it is damaged.
    Blocking file I/O: run it in a thread."""
    try:
        text = path.read_bytes().decode("utf-8")
        return _state_from(json.loads(text))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ValueError(f"{path}: {exc}") from exc


def write_state(path: Path, state: SimulatorState) -> None:
    """Replace `path` atomically: a reader finds the old state or the new one, never half of one, also
    after a power cut. Blocking file I/O: run it in a thread."""
    _replace(path, state)
    _sync_directory(path.parent)


def write_states(batch: list[tuple[Path, SimulatorState]]) -> list[OSError | None]:
    """`write_state` for many files: each replaced atomically, each directory made durable once at the
    end. The error of each write (None when it worked), in order. Blocking file I/O: run it in a thread."""
    errors: list[OSError | None] = []
    for path, state in batch:
        try:
            _replace(path, state)
        except OSError as exc:
            errors.append(exc)
        else:
            errors.append(None)
    for directory in {path.parent for (path, _), error in zip(batch, errors, strict=True) if error is None}:
        _sync_directory(directory)
    return errors


def _replace(path: Path, state: SimulatorState) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps({"version": STATE_VERSION, **asdict(state)}, indent=1) + "\n"
    # One name, so that what a crash left is overwritten, not piled up (the writes of one file are
    # never concurrent: see StateWriter and SimulatedCharger.close).
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _sync_directory(directory: Path) -> None:
    # A rename is durable only once its directory is.
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class StateWriter:
    """Writes the state files of the simulated boxes that changed, every `every_s`, for all the boxes of
    one event loop at once: one timer and one thread job (a directory made durable once) per round,
    rather than a task, a timer and a thread hop per box. A box is watched from a change until its
    state has been written, and for as long as its energy flows."""

    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self._boxes: set[KeepsState] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._round: asyncio.Task[None] | None = None
        self.writing: asyncio.Future[list[OSError | None]] | None = None  # the round's thread job
        self._last: list[tuple[Path, SimulatorState]] = []  # the states of boxes closing now
        self._last_job: asyncio.Task[list[OSError | None]] | None = None

    def watch(self, box: KeepsState) -> None:
        self._boxes.add(box)
        self._arm()

    def forget(self, box: KeepsState) -> None:
        self._boxes.discard(box)

    async def write_last(self, path: Path, state: SimulatorState) -> OSError | None:
        """The state of a box that closes, written in one thread job with those of every box closing at
        the same moment (a stop of 5,000 boxes made 5,000 jobs of two fsyncs each: 6.7 s). Its error,
        or None."""
        self._last.append((path, state))
        index = len(self._last) - 1
        if self._last_job is None:
            self._last_job = asyncio.get_running_loop().create_task(self._write_last(), name="last states")
        errors = await asyncio.shield(self._last_job)
        return errors[index]

    async def _write_last(self) -> list[OSError | None]:
        await asyncio.sleep(0)  # the boxes closed together (one gather) join this job
        batch, self._last, self._last_job = self._last, [], None
        return await asyncio.to_thread(write_states, batch)

    def _arm(self) -> None:
        if self._timer is None and (self._round is None or self._round.done()):
            self._timer = asyncio.get_running_loop().call_later(self.every_s, self._due)

    def _due(self) -> None:
        self._timer = None
        self._round = asyncio.get_running_loop().create_task(self._write(), name="simulated state files")

    async def _write(self) -> None:
        boxes, self._boxes = self._boxes, set()
        batch = [(box, state) for box in boxes if (state := box.unsaved_state()) is not None]
        try:
            if batch:
                files = [(box.state_file, state) for box, state in batch if box.state_file is not None]
                self.writing = asyncio.ensure_future(asyncio.to_thread(write_states, files))
                errors = await asyncio.shield(self.writing)
                for (box, state), error in zip(batch, errors, strict=True):
                    box.state_written(state, error)
        finally:
            self._boxes |= {box for box in boxes if box.keeps_changing()}
            if self._boxes:
                self._round = None
                self._arm()


# One writer per event loop and interval (a test's loop ends with the test).
_writers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[float, StateWriter]] = (
    weakref.WeakKeyDictionary()
)


def writer_for(every_s: float) -> StateWriter:
    by_interval = _writers.setdefault(asyncio.get_running_loop(), {})
    return by_interval.setdefault(every_s, StateWriter(every_s))


def read_states(paths: list[Path]) -> list[SimulatorState | ValueError | None]:
    """`read_state` for many files: each one's state, None (no file) or its ValueError, in order.
    Blocking file I/O: run it in a thread."""
    out: list[SimulatorState | ValueError | None] = []
    for path in paths:
        try:
            out.append(read_state(path))
        except ValueError as exc:
            out.append(exc)
    return out


class StateReader:
    """The state files of every box that starts in one turn of the event loop, read in one thread job:
    5,000 boxes starting together made 5,000 thread handoffs (about 1 s of a boot of 5,000 charge
    points)."""

    def __init__(self) -> None:
        self._paths: list[Path] = []
        self._job: asyncio.Task[list[SimulatorState | ValueError | None]] | None = None

    async def read(self, path: Path) -> SimulatorState | None:
        """As `read_state`, batched with the reads asked for in the same turn."""
        if self._job is None:
            self._job = asyncio.ensure_future(self._read_batch())
        job, index = self._job, len(self._paths)
        self._paths.append(path)
        result = (await asyncio.shield(job))[index]
        if isinstance(result, ValueError):
            raise result
        return result

    async def _read_batch(self) -> list[SimulatorState | ValueError | None]:
        await asyncio.sleep(0)  # the boxes starting in this turn add their paths first
        paths, self._paths, self._job = self._paths, [], None
        return await asyncio.to_thread(read_states, paths)


_readers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, StateReader] = weakref.WeakKeyDictionary()


def reader_for() -> StateReader:
    """The reader of the running event loop."""
    return _readers.setdefault(asyncio.get_running_loop(), StateReader())
