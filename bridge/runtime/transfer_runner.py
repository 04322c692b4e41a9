"""What the two FirmwareManagement shells share: a pure job machine (`bridge.core.transfer_job`) kept
in the store, its deadline waited for, and its status notifications queued in the outbox.

`DiagnosticsRunner` (GetDiagnostics) and `FirmwareRunner` (UpdateFirmware) each add the effects of
their machine. The machine's record is stored in `job_records` whenever a step says it changed,
before the step's effects are carried out; the statuses go through the outbox, so an Uploaded or an
Installed is not lost to a reconnect or a restart.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any, Generic, Protocol, TypeVar

from bridge.clock import Clock, iso
from bridge.core.transfer_job import DueNow
from bridge.flag import Flag
from bridge.outbox import Outbox
from bridge.runtime.effects import Spawn
from bridge.runtime.wall_clock import wait_wall
from bridge.store import Store


class Machine(Protocol):
    """What the shell needs of a job machine (FirmwareUpdate, DiagnosticsUpload)."""

    def next_deadline(self) -> float | None: ...
    def handle(self, event: Any, now: float) -> Any: ...
    def to_record(self) -> Mapping[str, Any]: ...


M = TypeVar("M", bound=Machine)


class TransferRunner(Generic[M]):
    """The machine's store record, its deadline and its statuses; `_carry_out` is the subclass's."""

    def __init__(
        self,
        cp_id: str,
        clock: Clock,
        store: Store,
        outbox: Outbox,
        spawn: Spawn,
        *,
        machine: M,
        job_name: str,  # its key in the store's job_records
        action: str,  # the status notification it sends
        log: logging.Logger,
    ) -> None:
        self._cp_id = cp_id
        self._clock = clock
        self._store = store
        self._outbox = outbox
        self._spawn = spawn
        self._machine = machine
        self._job_name = job_name
        self._action = action
        self._log = log
        self._wake = Flag()
        self._timing = False  # the deadline task runs

    def _now(self) -> float:
        return self._clock.now().timestamp()

    def _carry_out(self, step: Any) -> None:
        raise NotImplementedError

    def _restored(self, record: str | None, read: Callable[[Mapping[str, Any], float], tuple[M, Any]]) -> Any:
        """The step a stored record asks for (None: nothing stored, or a record not valid, dropped)."""
        if record is None:
            return None
        try:
            self._machine, step = read(json.loads(record), self._now())
        except ValueError as exc:
            what = f"{self._cp_id}: the stored {self._job_name} job"
            self._log.error("%s is not valid and is dropped: %s", what, exc)
            self._save()
            return None
        return step

    def _arm(self) -> None:
        """After a step (the deadline may have moved): wake the timer, or start it when there is a
        deadline. No task waits while there is none: 5,000 idle charge points had two each."""
        if self._timing:
            self._wake.set()
        elif self._machine.next_deadline() is not None:
            self._timing = True
            self._spawn(self._deadlines(), f"{self._job_name} deadline")

    async def _deadlines(self) -> None:
        """Call the machine back at its deadline (retrieveDate, the next attempt) while it has one."""
        try:
            while (deadline := self._machine.next_deadline()) is not None:
                self._wake.clear()
                now = self._now()
                if deadline <= now:
                    self._carry_out(self._machine.handle(DueNow(), now))
                    continue
                await wait_wall(self._clock, self._wake, deadline - now)
        finally:
            self._timing = False

    def _save(self) -> None:
        record = json.dumps(self._machine.to_record())
        self._store.submit(self._store.save_job_record, self._cp_id, self._job_name, record)

    async def _saved(self) -> None:
        """The record stored and committed (before the process restarts)."""
        record = json.dumps(self._machine.to_record())
        await self._store.run(self._store.save_job_record, self._cp_id, self._job_name, record)

    def _report(
        self, status: str, reason: str | None, request_id: int | None = None, action: str | None = None
    ) -> None:
        """Queue the status notification; `request_id` (GetLog, SignedUpdateFirmware) goes with it;
        `action`: another notification than the runner's own (a signed update's)."""
        because = f": {reason}" if reason else ""
        self._log.info("%s: %s %s%s", self._cp_id, self._job_name, status, because)
        payload: dict[str, str | int] = {"status": status}
        if request_id is not None:
            payload["requestId"] = request_id
        action = action or self._action
        self._spawn(self._outbox.put(action, payload, iso(self._clock.now())), action)
