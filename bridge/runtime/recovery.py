"""What a restart gives back of the transactions that were running, and what a stop leaves for it.

- A **graceful stop** (a service restart) marks the running transactions as suspended, with what they
  know beyond their row (the tag's group, an invalid tag's energy budget, deauthorized).
- At the next start a suspended transaction **resumes**: its id, meterStart and queued messages go on;
  energy is allowed again at the first reading that still shows the vehicle, and an unplug seen then
  ends it as usual. The store's mark is cleared only once the charge point runs (`running`): a stop
  before that keeps the transaction resumable.
- A transaction that was running when the bridge **died** (a crash, a power cut) cannot be known to be
  the same session: it ends with PowerLoss, as of the last reading persisted.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from adapters.base import ChargerReading
from bridge.clock import Clock, iso
from bridge.core import connector as core
from bridge.core.meter_values import whole_wh
from bridge.outbox import TransactionMessages
from bridge.runtime.connector import ConnectorRuntime
from bridge.runtime.metering import Metering
from bridge.store import Store, Stored, TransactionRow

log = logging.getLogger("bridge.chargepoint")


class Recovery:
    def __init__(
        self,
        cp_id: str,
        connectors: Mapping[int, ConnectorRuntime],
        store: Store,
        clock: Clock,
        messages: TransactionMessages,
        metering: Metering,
    ) -> None:
        self._cp_id = cp_id
        self._connectors = connectors
        self._store = store
        self._clock = clock
        self._messages = messages
        self._metering = metering
        self._resumed: list[
            int
        ] = []  # transactions resumed by `restore`, marked in the store until `running`

    async def restore(self, stored: Stored | None = None) -> None:
        """Queue the last run's messages again, resume what was suspended, end what was cut off.
        `stored`: this charge point's rows, read already (else read now)."""
        for row in await self._messages.restore(stored):
            rt = self._connectors.get(row.connector)
            if row.suspended_at is not None and rt is not None and rt.core.transaction is None:
                self._resume(rt, row)
                continue
            # The device cannot tell us it is still the same session: it ends as of the last reading.
            meter_stop = max(row.meter_start, whole_wh(row.last_meter_wh or row.meter_start))
            stopped_at = row.last_meter_at or row.started_at
            log.warning(
                "%s/%d: transaction %d was running when the bridge stopped; ended with PowerLoss at %d Wh",
                self._cp_id, row.connector, row.id, meter_stop,
            )  # fmt: skip
            end = self._metering.stop_value(
                ChargerReading(None, False, False, energy_wh=meter_stop), stopped_at, "Transaction.End"
            )
            await self._messages.stop(
                row.id, meter_stop, stopped_at, str(core.StopReason.POWER_LOSS), None, end
            )

    def _resume(self, rt: ConnectorRuntime, row: TransactionRow) -> None:
        started = datetime.fromisoformat(row.started_at.replace("Z", "+00:00"))
        state: dict[str, Any] = {}
        with contextlib.suppress(ValueError, TypeError):
            state = dict(json.loads(row.suspended_state or "{}"))
        limit = state.get("invalid_energy_limit_wh")
        tx = core.Transaction(
            row.id, row.id_tag, row.meter_start, started,
            parent_id_tag=state.get("parent_id_tag"),
            invalid_energy_limit_wh=float(limit) if isinstance(limit, int | float) else None,
            deauthorized=state.get("deauthorized") is True,
        )  # fmt: skip
        rt.core.resume(tx)
        if row.last_meter_wh is not None:
            rt.core.energy_wh = max(rt.core.energy_wh or 0.0, row.last_meter_wh)
        rt.resume_pending = True
        self._resumed.append(row.id)
        log.warning(
            "%s/%d: transaction %d resumes (the bridge was stopped at %s while it ran)",
            self._cp_id, row.connector, row.id, row.suspended_at,
        )  # fmt: skip
        self._metering.sample(row.connector, tx)

    async def running(self) -> None:
        """The charge point runs again: from now on a crash ends the resumed transactions with PowerLoss."""
        if self._resumed:
            await self._store.run(self._store.resumed, self._resumed)
            self._resumed = []

    async def suspend(self) -> None:
        """A graceful stop: the transactions running now are marked to resume at the next start."""
        running = {
            tx.local_id: json.dumps({
                "parent_id_tag": tx.parent_id_tag,
                "invalid_energy_limit_wh": tx.invalid_energy_limit_wh,
                "deauthorized": tx.deauthorized,
            })
            for rt in self._connectors.values()
            if (tx := rt.core.transaction) is not None
        }  # fmt: skip
        if running:
            await self._store.run(self._store.suspend_transactions, iso(self._clock.now()), running)
            log.info("%s: %d transaction(s) will resume at the next start", self._cp_id, len(running))
