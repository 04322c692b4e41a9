"""Runs of a charge point's recovery part (bridge.runtime.recovery) over one store, and the restarts
between them: what tests/test_recovery.py does again and again.

A `Run` is one life of the charge point: a store opened on the state directory, connectors at run
time (real core, coordinator and simulated charger), the transaction messages over the outbox,
Metering and Recovery, wired as bridge.chargepoint wires them, and the stand-in link of
tests/helpers/parts.py. `Restarts.restart` ends a run (a graceful stop suspends first; a crash or a
power cut does not) and starts the next on the same store, restored.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from ocpp.v16 import call_result

from adapters.base import ChargerReading
from adapters.chargers.simulated import SimulatedCharger
from bridge.core.connector import StartTransaction, Transaction
from bridge.outbox import TransactionMessages
from bridge.runtime.connector import ConnectorRuntime
from bridge.runtime.metering import Metering
from bridge.runtime.recovery import Recovery
from bridge.store import Store, TransactionRow
from tests.helpers.clock import ManualClock
from tests.helpers.parts import CP_ID, Link, Tasks, configuration, connector

REGISTER = "Energy.Active.Import.Register"


class Run:
    """One run of a charge point with `connectors` connectors over the store in `state`, wired as
    bridge.chargepoint wires its recovery."""

    def __init__(self, state: Path, clock: ManualClock, connectors: int = 1) -> None:
        self.clock = clock
        self.store = Store.open(state)
        self.tasks = Tasks()
        self.cfg = configuration(connectors, StopTxnSampledData=REGISTER, MeterValueSampleInterval=0)
        self.link = Link()
        # New local ids follow the store's: ids are never reused.
        new_id = itertools.count(self.store.next_transaction_id()).__next__
        self.connectors: dict[int, ConnectorRuntime] = {}
        self.sims: dict[int, SimulatedCharger] = {}
        for cid in range(1, connectors + 1):
            self.connectors[cid], self.sims[cid] = connector(cid, clock, self.tasks, new_id=new_id)
        self.messages = TransactionMessages(
            CP_ID, self.store, self.link, 1000, self._start_answered, lambda tag, info: None
        )
        self.metering = Metering(
            CP_ID, self.connectors, self.cfg, clock, self.link, self.messages, self.refresh, self.tasks
        )
        self.recovery = Recovery(CP_ID, self.connectors, self.store, clock, self.messages, self.metering)
        self.ended = False

    async def refresh(self, cid: int) -> ChargerReading | None:
        return await self.connectors[cid].device.refresh()

    def _start_answered(self, local_id: int, id_tag: str, answer: Any) -> None:
        for rt in self.connectors.values():
            rt.core.on_start_confirmed(local_id)

    async def charge(self, cid: int = 1, tag: str = "TAG", cs_id: int = 77) -> Transaction:
        """A transaction started on connector `cid`, answered by the central system with `cs_id`."""
        rt = self.connectors[cid]
        self.sims[cid].plug()
        await rt.device.refresh()
        [start, _] = rt.core.on_authorized(tag, True, self.clock.now(), 60)
        assert isinstance(start, StartTransaction)
        await self.metering.start(cid, start.transaction)
        answer = call_result.StartTransaction(
            transaction_id=cs_id, id_tag_info={"status": "Accepted", "parentIdTag": "GROUP"}
        )
        await self.link.answer_next(answer)
        return start.transaction

    async def rows(self) -> list[TransactionRow]:
        return await self.store.run(self.store.transactions, CP_ID)

    async def stops(self) -> list[dict[str, Any]]:
        outbox = await self.store.run(self.store.outbox, CP_ID)
        return [json.loads(r.payload) for r in outbox if r.action == "StopTransaction"]

    async def end(self) -> None:
        """The run is over (a graceful stop has suspended first; a crash has not)."""
        if not self.ended:
            self.ended = True
            await self.tasks.close()
            self.store.close()


class Restarts:
    """The runs of one test, on one state directory and one clock; `close` ends what is still open."""

    def __init__(self, state: Path, clock: ManualClock | None = None) -> None:
        self.state = state
        self.clock = clock or ManualClock()
        self.runs: list[Run] = []

    def first(self, connectors: int = 1) -> Run:
        """The first run: a store with nothing of this charge point in it yet, not restored."""
        return self._open(connectors)

    async def restart(
        self, previous: Run, *, graceful: bool, connectors: int | None = None, off_for_s: float = 0.0
    ) -> Run:
        """`previous` ends, gracefully (its transactions suspended first, as a daemon's stop does) or
        not (a crash, a power cut); the charge point stays off `off_for_s`; the next run opens the same
        store with `connectors` connectors (as many as before unless given) and restores."""
        if graceful:
            await previous.recovery.suspend()
        await previous.end()
        self.clock.advance(off_for_s)
        run = self._open(len(previous.connectors) if connectors is None else connectors)
        await run.recovery.restore()
        return run

    def _open(self, connectors: int) -> Run:
        run = Run(self.state, self.clock, connectors)
        self.runs.append(run)
        return run

    async def close(self) -> None:
        for run in self.runs:
            await run.end()
