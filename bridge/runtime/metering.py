"""Meter values of a charge point: sampled during transactions, clock-aligned, and kept for the stop.

- **Sampled** (`MeterValueSampleInterval`): every interval from a transaction's start, a fresh reading,
  persisted, and its MeterValues as a transaction message. With sampling off a reading is still
  persisted every READING_PERSIST_S, so a transaction ended by a power cut stops at a recent value.
- **Clock-aligned** (`ClockAlignedDataInterval`): at instants aligned to midnight, the interval's
  means and the latest register, stamped with that instant; one timer for all connectors, re-armed
  when the interval changes. During a transaction they are transaction messages (persisted, queued);
  outside one they are sent without transactionId and not kept while offline.
- **Stop-transaction data** (`StopTxnSampledData`, `StopTxnAlignedData`): which values of each kind are
  kept for StopTransaction.transactionData (§3.16.5).
- **StartTransaction** carries the reservationId of the reservation the transaction used up.
- **meterStart and meterStop**: the register at the start, and a fresh reading at the stop (at most
  STOP_READING_TIMEOUT_S) so that meterStop is never below a register already sent.

Every write of a transaction's meter values happens under the connector's effects lock: a
StopTransaction cannot be queued between a reading's write and its queueing, so MeterValues never
follow their transaction's stop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from ocpp.v16 import call

from adapters.base import ChargerReading
from bridge.clock import Clock, iso
from bridge.core import connector as core
from bridge.core.config_keys import Configuration
from bridge.core.meter_values import next_aligned, sampled_values, stop_value, whole_wh
from bridge.flag import Flag
from bridge.ocpp.session import Session
from bridge.outbox import TransactionMessages
from bridge.runtime.connector import ConnectorRuntime
from bridge.runtime.effects import Spawn

log = logging.getLogger("bridge.chargepoint")

READING_PERSIST_S = 60.0  # with MeterValueSampleInterval 0, readings are still persisted this often
STOP_READING_TIMEOUT_S = 2.0  # a stop waits this long at most for the register it reports as meterStop
WALL_CLOCK_CHECK_S = 30.0  # a wall clock corrected by the central system moves the next aligned instant

Refresh = Callable[[int], Awaitable[ChargerReading | None]]


class Metering:
    def __init__(
        self,
        cp_id: str,
        connectors: Mapping[int, ConnectorRuntime],
        configuration: Configuration,
        clock: Clock,
        session: Session,
        messages: TransactionMessages,
        refresh: Refresh,
        spawn: Spawn,
    ) -> None:
        self._cp_id = cp_id
        self._connectors = connectors
        self._configuration = configuration
        self._clock = clock
        self._session = session
        self._messages = messages
        self._refresh = refresh  # reads the device and feeds the core (an unplug may end a transaction)
        self._spawn = spawn
        self._aligned_changed = Flag()

    @property
    def aligned_on(self) -> bool:
        """Whether clock-aligned values are sent (ClockAlignedDataInterval above 0)."""
        return self._configuration.get_int("ClockAlignedDataInterval") > 0

    def configuration_changed(self, key: str) -> None:
        if key == "ClockAlignedDataInterval":
            self._aligned_changed.set()

    # -- transactions ---------------------------------------------------------------------------
    async def start(self, cid: int, tx: core.Transaction) -> None:
        """A transaction started: its StartTransaction persisted (with its Transaction.Begin value),
        and its sampler running."""
        log.info("%s/%d: transaction %d started by %s at %d Wh", self._cp_id, cid, tx.local_id, tx.id_tag,
                 tx.meter_start_wh)  # fmt: skip
        rt = self._connectors[cid]
        at = iso(tx.started_at)
        begin = self.stop_value(rt.reading, at, "Transaction.Begin") if rt.reading is not None else None
        used = rt.core.used_reservation  # the reservation this transaction used up (§5.13)
        reservation_id = used.reservation_id if used is not None else None
        await self._messages.start(tx.local_id, cid, tx.id_tag, tx.meter_start_wh, at, begin, reservation_id)
        self.sample(cid, tx)

    def sample(self, cid: int, tx: core.Transaction) -> None:
        """Run the sampler of transaction `tx` (also of one resumed after a restart)."""
        rt = self._connectors[cid]
        rt.transaction_over = Flag()
        self._spawn(self._sample(cid, tx, rt.transaction_over), f"{cid}: meter values")

    async def stop(self, cid: int, stop: core.StopTransaction) -> None:
        """A transaction stopped: meterStop read afresh, its StopTransaction persisted."""
        rt = self._connectors[cid]
        # The sampler is woken, never cancelled: a cancel could land in its own store write
        # (or in this stop, when the sampler's read is what saw the unplug).
        rt.transaction_over.set()
        tx = stop.transaction
        # The core decided meterStop from the last reading; the device is read once more (energy is
        # off by now) so that meterStop is the register at the stop, never below one already sent.
        fresh = await rt.device.read_now(STOP_READING_TIMEOUT_S)  # None: the last reading stands
        meter_stop = stop.meter_stop_wh
        if fresh is not None and fresh.energy_wh is not None:
            meter_stop = max(meter_stop, whole_wh(fresh.energy_wh))
        log.info("%s/%d: transaction %d stopped (%s) at %d Wh", self._cp_id, cid, tx.local_id, stop.reason,
                 meter_stop)  # fmt: skip
        at = iso(stop.stopped_at)
        end = None
        if (last := fresh or rt.reading) is not None:
            # Transaction.End carries meterStop itself: the same register, the same rounding.
            end = self.stop_value(
                dataclasses.replace(last, energy_wh=float(meter_stop)), at, "Transaction.End"
            )
        await self._messages.stop(tx.local_id, meter_stop, at, str(stop.reason), stop.id_tag, end)

    def stop_value(self, reading: ChargerReading, at: str, context: str) -> dict[str, Any] | None:
        """A MeterValue for StopTransaction.transactionData, or None (bridge.core.meter_values)."""
        sampled = self._configuration.get_list("StopTxnSampledData")
        aligned = self._configuration.get_list("StopTxnAlignedData")
        return stop_value(reading, at, context, sampled, aligned)

    async def _sample(self, cid: int, tx: core.Transaction, over: Flag) -> None:
        """Every MeterValueSampleInterval from the start; ends by itself when the transaction is over."""
        rt = self._connectors[cid]
        due = self._clock.monotonic()
        while rt.still_running(tx):
            interval = self._configuration.get_int("MeterValueSampleInterval")
            period = interval if interval > 0 else READING_PERSIST_S
            # One period after the last instant, read now: a changed interval takes effect from the
            # next sample, without catching up on instants or leaving a gap.
            due += period
            if await over.wait_at_most(max(0.0, due - self._clock.monotonic())):
                return
            reading = await self._refresh(cid)  # may itself end the transaction (an unplug)
            if reading is None:
                continue
            at = iso(self._clock.now())
            values = sampled_values(
                reading, self._configuration.get_list("MeterValuesSampledData"), "Sample.Periodic"
            )
            kept = self.stop_value(reading, at, "Sample.Periodic") if interval > 0 else None
            async with rt.effects.lock:
                if not rt.still_running(tx):
                    return
                if interval > 0 and values:
                    await self._messages.meter_values(tx.local_id, cid, reading.energy_wh, at, values, kept)
                else:
                    await self._messages.reading(tx.local_id, reading.energy_wh, at, kept)

    # -- clock-aligned ----------------------------------------------------------------------------
    async def run_clock_aligned(self) -> None:
        """One timer for all connectors: at each aligned instant, every connector's values."""
        while True:
            interval = self._configuration.get_int("ClockAlignedDataInterval")
            self._aligned_changed.clear()
            if interval <= 0:
                await self._aligned_changed.wait()  # nothing to do until the interval is set
                continue
            target = next_aligned(self._clock.now().timestamp(), interval)
            left = target - self._clock.now().timestamp()
            if await self._aligned_changed.wait_at_most(min(left, WALL_CLOCK_CHECK_S)):
                continue  # the interval changed: aligned anew
            if self._clock.now().timestamp() < target:
                continue  # not there yet (a long wait in steps, or the wall clock moved back)
            await asyncio.gather(*(self._send_clock_aligned(cid, target) for cid in self._connectors))

    async def _send_clock_aligned(self, cid: int, at_s: float) -> None:
        rt = self._connectors[cid]
        if await self._refresh(cid) is None:
            return  # the device does not answer: no value rather than a stale one
        reading = rt.aligned.take(self._clock.monotonic())  # the interval's means, the latest register
        if reading is None:
            return
        values = sampled_values(
            reading, self._configuration.get_list("MeterValuesAlignedData"), "Sample.Clock"
        )
        stamp = iso(datetime.fromtimestamp(at_s, UTC))
        kept = self.stop_value(reading, stamp, "Sample.Clock")
        async with rt.effects.lock:  # ordered with the transaction's other messages
            tx = rt.core.transaction
            if tx is not None:
                if values:
                    await self._messages.meter_values(
                        tx.local_id, cid, reading.energy_wh, stamp, values, kept
                    )
                elif kept is not None:
                    await self._messages.reading(tx.local_id, reading.energy_wh, stamp, kept)
                return
        if not values or not self._session.online:
            # Outside a transaction they are not kept for later (as statuses are not): offline, or
            # with no primary at all (reporting only), nothing would ever take them from memory.
            return
        self._session.submit(
            lambda: call.MeterValues(
                connector_id=cid, meter_value=[{"timestamp": stamp, "sampledValue": values}]
            ),
            drop_when_offline=True,
        )

    # -- triggered --------------------------------------------------------------------------------
    def triggered(self, cid: int, wire_id: Callable[[int], int] | None = None) -> call.MeterValues | None:
        """Triggered MeterValues: the latest values of MeterValuesSampledData, context Trigger. Its
        transactionId is `wire_id` of the local transaction id (default: the primary's id); a
        reporting target passes its own, since the primary may have numbered none."""
        rt = self._connectors[cid]
        if rt.reading is None:
            return None
        values = sampled_values(rt.reading, self._configuration.get_list("MeterValuesSampledData"), "Trigger")
        if not values:
            return None
        tx = rt.core.transaction
        wire = wire_id or self._messages.transaction_id
        return call.MeterValues(
            connector_id=cid,
            transaction_id=wire(tx.local_id) if tx is not None else None,
            meter_value=[{"timestamp": iso(self._clock.now()), "sampledValue": values}],
        )
