"""Metering (bridge.runtime.metering): sampled, clock-aligned and stop-transaction meter values.

Real: Metering, the transaction messages and their outbox over a real store (SQLite in tmp_path, read
back to see what was persisted and queued), the configuration keys, and one connector at run time: a
real core, coordinator and simulated charger whose energy register runs on the test's clock. Stand-in:
the link (`Link` of tests/helpers/parts.py): MeterValues outside a transaction are submitted to it;
where the central system must answer a StartTransaction, the test answers the outbox's head as the
session's sender would. The real link is exercised in test_session_flow and
test_stop_transaction_data. Time: a SteeredClock where the sampler or the clock-aligned timer must
wake (their asyncio waits follow the clock the test moves); a plain ManualClock elsewhere.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from ocpp.v16 import call, call_result

from adapters.base import ChargerReading
from adapters.chargers.simulated import SimulatedCharger
from bridge.core.connector import StartTransaction, StopReason, StopTransaction, Transaction
from bridge.core.meter_values import whole_wh
from bridge.outbox import TransactionMessages
from bridge.runtime.connector import ConnectorRuntime
from bridge.runtime.metering import Metering
from bridge.store import OutboxRow, Store, TransactionRow
from tests.helpers.clock import ManualClock
from tests.helpers.parts import (
    CP_ID,
    Link,
    SteeredClock,
    Tasks,
    configuration,
    connector,
    eventually,
    turns,
)

MIDNIGHT = datetime(2026, 1, 1, tzinfo=UTC)
REGISTER = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"


@pytest.fixture
async def steered() -> AsyncIterator[SteeredClock]:
    clock = SteeredClock(MIDNIGHT)
    yield clock
    clock.release()


class Meter:
    """Metering of a charge point with one connector, wired as bridge.chargepoint wires it."""

    def __init__(self, store: Store, clock: ManualClock, tasks: Tasks, **keys: str | int | bool) -> None:
        self.store, self.clock = store, clock
        self.cfg = configuration(**keys)
        self.link = Link()
        self.rt: ConnectorRuntime
        self.sim: SimulatedCharger
        self.rt, self.sim = connector(1, clock, tasks)
        self.messages = TransactionMessages(
            CP_ID, store, self.link, 1000, self._start_answered, lambda tag, info: None
        )
        self.metering = Metering(
            CP_ID, {1: self.rt}, self.cfg, clock, self.link, self.messages, self.refresh, tasks
        )
        self.cfg.on_change = lambda key, value: self.metering.configuration_changed(key)

    async def refresh(self, cid: int) -> ChargerReading | None:
        return await self.rt.device.refresh()

    def _start_answered(self, local_id: int, id_tag: str, answer: Any) -> None:
        self.rt.core.on_start_confirmed(local_id)

    async def start(self, tag: str = "TAG") -> Transaction:
        """Plug, a tag accepted: the transaction starts and energy flows (the register counts)."""
        self.sim.plug()
        await self.rt.device.refresh()
        decided = self.rt.core.on_authorized(tag, True, self.clock.now(), 60)
        assert isinstance(decided[0], StartTransaction)
        await self.metering.start(1, decided[0].transaction)
        await self.rt.device.set_energy(True)
        return decided[0].transaction

    async def stop(self) -> StopTransaction:
        decided = self.rt.core.stop(StopReason.REMOTE, self.clock.now(), None)
        stop = decided[-1]
        assert isinstance(stop, StopTransaction)
        await self.rt.device.set_energy(False)
        await self.metering.stop(1, stop)
        return stop

    async def outbox(self) -> list[OutboxRow]:
        return await self.store.run(self.store.outbox, CP_ID)

    async def actions(self) -> list[str]:
        return [row.action for row in await self.outbox()]

    async def transaction(self) -> TransactionRow:
        [row] = await self.store.run(self.store.transactions, CP_ID)
        return row

    async def stop_payload(self) -> dict[str, Any]:
        [row] = [r for r in await self.outbox() if r.action == "StopTransaction"]
        payload: dict[str, Any] = json.loads(row.payload)
        return payload


def register_of(meter_value: dict[str, Any]) -> int:
    [value] = [v for v in meter_value["sampledValue"] if v["measurand"] == REGISTER]
    return int(value["value"])


# -- StopTransaction.transactionData -------------------------------------------------------------
@pytest.mark.parametrize(
    ("sampled", "aligned", "context", "measurands"),
    [
        (POWER, REGISTER, "Sample.Periodic", [POWER]),
        (POWER, REGISTER, "Sample.Clock", [REGISTER]),
        (POWER, REGISTER, "Transaction.Begin", [POWER]),  # the sampled list first
        ("", REGISTER, "Transaction.End", [REGISTER]),  # ... the aligned one when only it is set
        ("", REGISTER, "Sample.Periodic", None),  # none configured for the kind: not kept
        (POWER, "", "Sample.Clock", None),
        ("", "", "Transaction.End", None),  # both empty: no transactionData at all
    ],
)
async def test_stop_value_takes_StopTxnSampledData_or_StopTxnAlignedData_by_context(
    store: Store, tasks: Tasks, sampled: str, aligned: str, context: str, measurands: list[str] | None
) -> None:
    meter = Meter(store, ManualClock(), tasks, StopTxnSampledData=sampled, StopTxnAlignedData=aligned)
    reading = ChargerReading(True, True, True, energy_wh=1234.9, power_w=7000.0)
    value = meter.metering.stop_value(reading, "2026-01-01T00:00:00.000Z", context)
    if measurands is None:
        assert value is None
        return
    assert value is not None and value["timestamp"] == "2026-01-01T00:00:00.000Z"
    assert [(v["measurand"], v["context"]) for v in value["sampledValue"]] == [
        (m, context) for m in measurands
    ]


# -- meterStop ---------------------------------------------------------------------------------
async def test_meter_stop_is_a_fresh_reading_never_below_it(store: Store, tasks: Tasks) -> None:
    clock = ManualClock()
    meter = Meter(store, clock, tasks, StopTxnSampledData=REGISTER)
    tx = await meter.start()
    clock.advance(600)  # ten minutes at 11 kW; the core's last reading is from the start
    stop = await meter.stop()
    assert stop.meter_stop_wh == tx.meter_start_wh == 0  # what the core knew
    fresh = whole_wh(meter.sim.state().energy_wh)
    assert fresh == 1840
    row = await meter.transaction()
    payload = await meter.stop_payload()
    assert row.meter_stop == payload["meterStop"] == fresh
    end = payload["transactionData"][-1]
    assert end["sampledValue"][0]["context"] == "Transaction.End" and register_of(end) == fresh


async def test_meter_stop_falls_back_to_the_last_reading_when_the_device_is_silent(
    store: Store, tasks: Tasks
) -> None:
    clock = ManualClock()
    meter = Meter(store, clock, tasks, StopTxnSampledData=REGISTER)
    await meter.start()
    clock.advance(60)
    await meter.rt.device.refresh()  # the last reading: 184 Wh
    clock.advance(600)
    meter.sim.silence()  # the register keeps counting, but nobody can read it
    loop = asyncio.get_running_loop()
    began = loop.time()
    stop = await meter.stop()
    assert loop.time() - began < 1  # a device that refuses holds nothing up
    payload = await meter.stop_payload()
    assert payload["meterStop"] == stop.meter_stop_wh == 184
    assert register_of(payload["transactionData"][-1]) == 184


# -- sampled -------------------------------------------------------------------------------------
async def test_meter_values_every_sample_interval_and_none_after_the_stop(
    store: Store, tasks: Tasks, steered: SteeredClock
) -> None:
    meter = Meter(store, steered, tasks, MeterValueSampleInterval=10, MeterValuesSampledData=REGISTER)
    await meter.start()
    await turns()  # the sampler waits for its first instant
    for n in (1, 2):
        steered.advance(10)
        await eventually(lambda n=n: _count(meter, "MeterValues", n), f"MeterValues {n}")
    await meter.stop()
    await turns()
    assert all(t.done() for t in tasks.named("meter values"))  # woken by the stop, not at its instant
    steered.advance(30)
    await turns()
    rows = await meter.outbox()
    assert [r.action for r in rows] == ["StartTransaction", "MeterValues", "MeterValues", "StopTransaction"]
    values = [json.loads(r.payload)["meterValue"][0] for r in rows[1:3]]
    assert [register_of(v) for v in values] == [30, 61]  # 11.04 kW for 10 s, then 20 s
    assert {v["sampledValue"][0]["context"] for v in values} == {"Sample.Periodic"}


async def _count(meter: Meter, action: str, n: int) -> bool:
    return (await meter.actions()).count(action) == n


async def _stamps(meter: Meter) -> list[str]:
    rows = [r for r in await meter.outbox() if r.action == "MeterValues"]
    return [json.loads(r.payload)["meterValue"][0]["timestamp"] for r in rows]


async def test_a_lowered_sample_interval_brings_no_burst(
    store: Store, tasks: Tasks, steered: SteeredClock
) -> None:
    meter = Meter(store, steered, tasks, MeterValueSampleInterval=60, MeterValuesSampledData=REGISTER)
    await meter.start()
    await turns()
    steered.advance(60)
    await eventually(lambda: _count(meter, "MeterValues", 1), "the first MeterValues")
    meter.cfg.change("MeterValueSampleInterval", "10")
    await turns()
    steered.advance(60)  # the wait armed with the old interval ends

    async def sampled_again() -> bool:
        return len(await _stamps(meter)) >= 2

    await eventually(sampled_again, "the next MeterValues")
    await asyncio.sleep(0.1)
    stamps = await _stamps(meter)
    assert len(stamps) == len(set(stamps)), stamps


async def test_a_raised_sample_interval_samples_again_within_the_new_interval(
    store: Store, tasks: Tasks, steered: SteeredClock
) -> None:
    meter = Meter(store, steered, tasks, MeterValueSampleInterval=10, MeterValuesSampledData=REGISTER)
    await meter.start()
    await turns()
    for n in (1, 2, 3):
        steered.advance(10)
        await eventually(lambda n=n: _count(meter, "MeterValues", n), f"MeterValues {n}")
    meter.cfg.change("MeterValueSampleInterval", "60")
    steered.advance(10)  # the wait armed with the old interval ends: at 00:00:40
    await eventually(lambda: _count(meter, "MeterValues", 4), "MeterValues 4")
    await turns()
    steered.advance(60)
    await asyncio.sleep(0.1)
    assert len(await _stamps(meter)) == 5, "no value within 60 s of the last one"


async def test_with_sampling_off_a_reading_is_still_persisted(
    store: Store, tasks: Tasks, steered: SteeredClock
) -> None:
    """So that a transaction cut off by a power cut ends at a recent register."""
    meter = Meter(store, steered, tasks, MeterValueSampleInterval=0)
    await meter.start()
    await turns()
    steered.advance(60)  # READING_PERSIST_S

    async def persisted() -> bool:
        return (await meter.transaction()).last_meter_wh == 184.0  # 11.04 kW for a minute

    await eventually(persisted, "the reading persisted")
    assert await meter.actions() == ["StartTransaction"]  # and no MeterValues


# -- clock-aligned -------------------------------------------------------------------------------
class CountingClock(SteeredClock):
    """Counts how often the wall clock is read: each turn of the clock-aligned timer reads it."""

    reads = 0

    def now(self) -> datetime:
        self.reads += 1
        return super().now()


async def test_the_clock_aligned_timer_sleeps_while_the_interval_is_0_and_wakes_when_set(
    store: Store, tasks: Tasks, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = CountingClock(MIDNIGHT)
    try:
        meter = Meter(store, clock, tasks, ClockAlignedDataInterval=0, MeterValuesAlignedData=REGISTER)
        looked_up: list[str] = []  # a timer that polls reads the interval (or the clock) as it goes round
        get_int = meter.cfg.get_int

        def counted(key: str) -> int:
            looked_up.append(key)
            return get_int(key)

        monkeypatch.setattr(meter.cfg, "get_int", counted)
        timer = asyncio.create_task(meter.metering.run_clock_aligned())
        await turns()
        wakeups = (clock.reads, len(looked_up))
        clock.advance(86400)
        await turns()
        assert (clock.reads, len(looked_up)) == wakeups and meter.link.pending == []  # none in a day
        assert meter.cfg.change("ClockAlignedDataInterval", "900").status == "Accepted"
        await turns()
        clock.advance(900)
        await until_submitted(meter)
        [message] = meter.link.send()
        assert isinstance(message, call.MeterValues) and message.transaction_id is None
        assert message.meter_value[0]["timestamp"] == "2026-01-02T00:15:00.000Z"
        assert message.meter_value[0]["sampledValue"][0]["context"] == "Sample.Clock"
        timer.cancel()
    finally:
        clock.release()


async def until_submitted(meter: Meter) -> None:
    async def submitted() -> bool:
        return bool(meter.link.pending)

    await eventually(submitted, "a MeterValues submitted")


async def test_a_changed_interval_re_arms_the_clock_aligned_timer(
    store: Store, tasks: Tasks, steered: SteeredClock
) -> None:
    meter = Meter(store, steered, tasks, ClockAlignedDataInterval=900, MeterValuesAlignedData=REGISTER)
    timer = asyncio.create_task(meter.metering.run_clock_aligned())
    await turns()  # waiting for 00:15
    steered.advance(10)
    await turns()
    meter.cfg.change("ClockAlignedDataInterval", "60")
    await turns()
    steered.advance(50)
    await until_submitted(meter)
    [message] = meter.link.send()
    assert message.meter_value[0]["timestamp"] == "2026-01-01T00:01:00.000Z"
    timer.cancel()


async def test_clock_aligned_values_of_a_transaction_are_transaction_messages(
    store: Store, tasks: Tasks, steered: SteeredClock
) -> None:
    meter = Meter(
        store, steered, tasks, ClockAlignedDataInterval=60, MeterValuesAlignedData=f"{REGISTER},{POWER}",
        MeterValueSampleInterval=0,
    )  # fmt: skip
    timer = asyncio.create_task(meter.metering.run_clock_aligned())
    await meter.start()
    await turns()
    steered.advance(60)
    await eventually(lambda: _count(meter, "MeterValues", 1), "the clock-aligned MeterValues")
    assert meter.link.pending == []  # persisted and queued with the transaction, not sent aside
    [row] = [r for r in await meter.outbox() if r.action == "MeterValues"]
    value = json.loads(row.payload)["meterValue"][0]
    assert value["timestamp"] == "2026-01-01T00:01:00.000Z" and register_of(value) == 184
    meter.sim.silence()
    steered.advance(60)
    await turns(50)
    assert await _count(meter, "MeterValues", 1)  # a silent device: no value rather than a stale one
    timer.cancel()


# -- triggered -----------------------------------------------------------------------------------
async def test_triggered_meter_values_carry_the_transaction_id(store: Store, tasks: Tasks) -> None:
    clock = ManualClock()
    meter = Meter(store, clock, tasks, MeterValuesSampledData=REGISTER)
    assert meter.metering.triggered(1) is None  # no reading yet
    await meter.rt.device.refresh()
    idle = meter.metering.triggered(1)
    assert idle is not None and idle.transaction_id is None
    assert idle.meter_value[0]["sampledValue"][0]["context"] == "Trigger"
    await meter.start()
    answer = call_result.StartTransaction(transaction_id=77, id_tag_info={"status": "Accepted"})
    await meter.link.answer_next(answer)
    charging = meter.metering.triggered(1)
    assert charging is not None and charging.transaction_id == 77
