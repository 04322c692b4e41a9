"""Nothing lost: outages, CALLERRORs, restarts, damaged files, a bounded queue."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call

from adapters.chargers.simulated_state import read_state, write_state
from bridge.clock import Clock
from bridge.devices import device_state_file
from bridge.ocpp.session import Session
from bridge.outbox import TransactionMessages
from bridge.store import FILENAME, Store
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.helpers.flow import charging, sim_of
from tests.helpers.outage import on_port
from tests.helpers.power_cut import as_after_a_power_cut
from tests.processes import free_port

SAMPLING = {"MeterValueSampleInterval": 1}


def stamp(payload: dict[str, Any]) -> datetime:
    text = payload["meterValue"][0]["timestamp"] if "meterValue" in payload else payload["timestamp"]
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_an_outage_of_many_sample_intervals_loses_no_meter_value(tmp_path: Path) -> None:
    port = free_port()
    cs = await on_port(port)
    config = make_config(cs.url, tmp_path, ocpp=SAMPLING, charger={"time_scale": 100})
    async with running(config) as daemon:
        await charging(cs, daemon)
        await cs.wait_for_call("CP-1", "MeterValues")
        await cs.stop()  # the central system is gone for a while
        outage_started = time.monotonic()
        await asyncio.sleep(4.5)
        sim_of(daemon).unplug()  # the session ends while offline
        await asyncio.sleep(0.5)
        assert daemon.charge_points["CP-1"].session.pending_transactional() >= 5
        await cs.start()
        stop = await cs.wait_for_call("CP-1", "StopTransaction", timeout=10)
    await cs.stop()
    cs.assert_clean()
    tx_actions = ("StartTransaction", "MeterValues", "StopTransaction")
    tx_calls = [c for c in cs.delivered("CP-1") if c["action"] in tx_actions]
    assert tx_calls[0]["action"] == "StartTransaction" and tx_calls[-1]["action"] == "StopTransaction"
    meter_values = [c for c in tx_calls if c["action"] == "MeterValues"]
    assert len(meter_values) >= 5  # one per second, none lost
    times = [stamp(m) for m in meter_values]
    assert times == sorted(times)
    gaps = [b.timestamp() - a.timestamp() for a, b in itertools.pairwise(times)]
    assert all(g == pytest.approx(1.0, abs=0.3) for g in gaps), gaps
    assert {m["transactionId"] for m in meter_values} == {stop["transactionId"]} == {1}
    assert stop["reason"] == "EVDisconnected"
    # Timestamps say when things happened, not when they were delivered.
    assert stamp(stop).timestamp() < time.time() - (time.monotonic() - outage_started) + 5.5


async def test_a_refused_start_is_retried_per_the_rules_then_dropped_and_the_rest_follows(
    tmp_path: Path,
) -> None:
    async with StrictCentralSystem() as cs:
        cs.refuse["StartTransaction"] = 5  # more than the attempts
        ocpp = {"TransactionMessageAttempts": 2, "TransactionMessageRetryInterval": 1, **SAMPLING}
        async with running(make_config(cs.url, tmp_path, ocpp=ocpp)) as daemon:
            await charging(cs, daemon, answered=False)
            await cs.wait_for_call("CP-1", "MeterValues", timeout=6)
            sim_of(daemon).tap("TAG")
            stop = await cs.wait_for_call("CP-1", "StopTransaction", timeout=6)
            assert daemon.charge_points["CP-1"].connectors[1].core.transaction is None
        cs.assert_clean()
    starts = [
        f
        for link in cs.links
        for f in link.frames
        if f.direction == "in" and f.message and f.message[0] == 2 and f.message[2] == "StartTransaction"
    ]
    assert len(starts) == 2  # TransactionMessageAttempts
    assert starts[1].at - starts[0].at >= 0.95  # TransactionMessageRetryInterval x 1
    assert starts[0].message[1] != starts[1].message[1]  # a new id on the same connection (OCPP-J 4.1.3)
    assert stop["transactionId"] == -1  # its StartTransaction.conf never came (ERRATA 3.18)
    assert all(m["transactionId"] == -1 for m in cs.calls("CP-1", "MeterValues"))


async def test_queued_messages_survive_a_restart_and_are_sent_once_in_order(tmp_path: Path) -> None:
    port = free_port()
    cs = await on_port(port)
    config = make_config(cs.url, tmp_path, ocpp=SAMPLING)
    async with running(config) as daemon:
        await charging(cs, daemon)
        await cs.stop()
        await asyncio.sleep(2.5)
        sim_of(daemon).tap("TAG")  # stopped while offline
        await asyncio.sleep(0.3)
        queued = daemon.charge_points["CP-1"].session.pending_transactional()
    assert queued >= 3  # MeterValues and the StopTransaction wait in the store
    await cs.start()
    async with running(config) as daemon:
        stop = await cs.wait_for_call("CP-1", "StopTransaction", timeout=5)
        await asyncio.sleep(0.3)
        assert daemon.charge_points["CP-1"].session.pending_transactional() == 0
    await cs.stop()
    cs.assert_clean()
    assert stop["reason"] == "Local" and stop["transactionId"] == 1
    actions = [
        c["action"] for c in cs.calls("CP-1") if c["action"] in ("StartTransaction", "StopTransaction")
    ]
    assert actions == ["StartTransaction", "StopTransaction"]  # never a second start
    ids = [
        f.message[1]
        for link in cs.links
        for f in link.frames
        if f.direction == "in" and f.message and f.message[0] == 2
    ]
    assert len(ids) == len(set(ids))  # nothing delivered twice
    store = Store.open(tmp_path / "state")
    try:
        assert store.outbox("CP-1") == [] and store.transactions("CP-1") == []
    finally:
        store.close()


async def test_a_transaction_left_open_ends_with_power_loss_at_the_last_reading(tmp_path: Path) -> None:
    async with StrictCentralSystem() as cs:
        config = make_config(cs.url, tmp_path, ocpp=SAMPLING, charger={"time_scale": 100})
        async with running(config) as daemon:
            start = await charging(cs, daemon)
            last = await cs.wait_for_call("CP-1", "MeterValues", count=2, timeout=5)
        # The daemon is gone with the transaction running, as after a power cut.
        as_after_a_power_cut(tmp_path)
        async with running(config):
            stop = await cs.wait_for_call("CP-1", "StopTransaction", timeout=5)
        cs.assert_clean()
    last_energy = float(last["meterValue"][0]["sampledValue"][0]["value"])
    assert stop["reason"] == "PowerLoss" and stop["transactionId"] == 1
    assert stop["meterStop"] >= start["meterStart"]
    assert stop["meterStop"] >= int(last_energy)  # at least the last reading the central system saw
    assert stamp(stop) >= stamp(last)
    assert [c["action"] for c in cs.calls("CP-1")].count("StartTransaction") == 1


async def test_a_value_set_by_the_central_system_wins_over_the_file_after_a_restart(tmp_path: Path) -> None:
    async with StrictCentralSystem() as cs:
        config = make_config(cs.url, tmp_path, ocpp={"HeartbeatInterval": 300})
        async with running(config):
            await cs.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)
            answer = await cs.call(
                "CP-1", call.ChangeConfiguration(key="MeterValueSampleInterval", value="17")
            )
            assert answer.status == "Accepted"
            await asyncio.sleep(0.2)
        async with running(config) as daemon:
            assert daemon.charge_points["CP-1"].configuration.get_int("MeterValueSampleInterval") == 17


async def test_a_damaged_database_is_set_aside_and_the_daemon_works(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / FILENAME).write_bytes(b"\x00garbage" * 1000)
    async with StrictCentralSystem() as cs:
        async with running(make_config(cs.url, tmp_path)) as daemon:
            assert daemon.store.recovered_from is not None
            await charging(cs, daemon)
        cs.assert_clean()
    assert any(p.name.startswith(FILENAME + ".damaged-") for p in state.iterdir())


async def test_the_queue_is_bounded_by_dropping_the_oldest_meter_values(tmp_path: Path) -> None:
    config = make_config("ws://127.0.0.1:9/ocpp", tmp_path)
    store = Store.open(tmp_path / "state")
    session = Session(config.charge_points[0], _Config(), object(), Clock(), lambda: None, lambda _: None)
    messages = TransactionMessages(
        "CP-1", store, session, max_queued=100, on_start_answer=lambda *_: None, on_tag_info=lambda *_: None
    )
    try:
        await messages.start(1, 1, "TAG", 0, "2026-01-01T00:00:00.000Z")
        for n in range(150):
            at = f"2026-01-01T00:{n // 60:02d}:{n % 60:02d}.000Z"
            await messages.meter_values(1, 1, float(n), at, [{"value": str(n)}])
        await messages.stop(1, 150, "2026-01-01T01:00:00.000Z", "Local", None)
        rows = await store.run(store.outbox, "CP-1")
    finally:
        store.close()
    assert messages.dropped_meter_values == 51
    assert session.pending_transactional() == len(rows) == 101
    assert rows[0].action == "StartTransaction" and rows[-1].action == "StopTransaction"
    assert json.loads(rows[1].payload)["meterValue"][0]["timestamp"] == "2026-01-01T00:00:51.000Z"


class _Config:
    """The two values a Session reads outside a connection."""

    def get_int(self, name: str) -> int:
        return 30


async def test_an_unplug_seen_by_the_meter_samplers_read_still_stops_the_transaction(tmp_path: Path) -> None:
    """A driver that learns the plug state only by reading: the sampler's read may be the one
    that sees the unplug, and the stop it causes must not be lost."""
    async with StrictCentralSystem() as cs:
        async with running(make_config(cs.url, tmp_path, ocpp=SAMPLING)) as daemon:
            await charging(cs, daemon)
            await cs.wait_for_call("CP-1", "MeterValues")
            sim = sim_of(daemon)
            sim.unplug(announce=False)  # no event pushed: only a read finds out
            stop = await cs.wait_for_call("CP-1", "StopTransaction", timeout=4)
            await asyncio.sleep(1.5)  # no MeterValues may follow the stop
        cs.assert_clean()
    assert stop["reason"] == "EVDisconnected"
    assert cs.actions("CP-1").index("StopTransaction") > max(
        i for i, a in enumerate(cs.actions("CP-1")) if a == "MeterValues"
    )


async def test_a_stop_during_a_slow_meter_value_write_keeps_the_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow SD card: the stop comes while a reading is being written; the MeterValues still goes
    before the StopTransaction and nothing is left behind in the store."""
    original = Store.record_meter_values

    def slow(self: Store, *args: Any) -> int:
        time.sleep(0.5)
        return original(self, *args)

    monkeypatch.setattr(Store, "record_meter_values", slow)
    async with StrictCentralSystem() as cs:
        async with running(make_config(cs.url, tmp_path, ocpp=SAMPLING)) as daemon:
            await charging(cs, daemon)
            await asyncio.sleep(1.2)  # the first reading is being written now
            sim_of(daemon).tap("TAG")
            await cs.wait_for_call("CP-1", "StopTransaction", timeout=4)
            await asyncio.sleep(0.5)
            assert daemon.charge_points["CP-1"].session.pending_transactional() == 0
        cs.assert_clean()
    actions = [a for a in cs.actions("CP-1") if a in ("StartTransaction", "MeterValues", "StopTransaction")]
    assert actions[-1] == "StopTransaction" and actions[0] == "StartTransaction"
    store = Store.open(tmp_path / "state")
    try:
        assert store.outbox("CP-1") == [] and store.transactions("CP-1") == []
    finally:
        store.close()


async def test_effects_are_carried_out_in_the_order_they_were_decided(tmp_path: Path) -> None:
    """Found by the crash test: a start decided in one task (an Authorize answer) and a stop decided
    just after in another (an unplug) must reach the store and the wire as start, then stop."""
    async with StrictCentralSystem() as cs:
        async with running(make_config(cs.url, tmp_path)) as daemon:
            await cs.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)
            cp = daemon.charge_points["CP-1"]
            rt = cp.connectors[1]
            sim_of(daemon).plug()
            await cs.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Preparing")
            now = cp.clock.now()
            first = rt.effects.apply(rt.core.on_authorized("RACE", True, now, 60))  # decided first, unawaited
            sim_of(daemon).unplug()
            reading = await sim_of(daemon).read()
            await rt.effects.apply(rt.core.on_reading(reading, now, True))  # the stop, decided second
            await first
            stop = await cs.wait_for_call("CP-1", "StopTransaction")
        cs.assert_clean()
    actions = [a for a in cs.actions("CP-1") if a in ("StartTransaction", "StopTransaction")]
    assert actions == ["StartTransaction", "StopTransaction"]
    assert stop["transactionId"] == cs.last_transaction_id and stop["reason"] == "EVDisconnected"


async def test_a_graceful_restart_resumes_the_running_transaction(tmp_path: Path) -> None:
    """A service restart (SIGTERM, then start) does not stop the session: the same transaction goes
    on with its id, its MeterValues carry it, and it ends once, when the driver ends it."""
    async with StrictCentralSystem() as cs:
        config = make_config(cs.url, tmp_path, ocpp=SAMPLING, charger={"time_scale": 100})
        async with running(config) as daemon:
            start = await charging(cs, daemon)
            before = await cs.wait_for_call("CP-1", "MeterValues", count=2, timeout=5)
        # The vehicle is still plugged in when the bridge comes back.
        again = make_config(cs.url, tmp_path, ocpp=SAMPLING, charger={"time_scale": 100, "plugged": True})
        async with running(again) as daemon:
            await cs.wait_for_call("CP-1", "BootNotification", count=2)
            after = await cs.wait_for_call(
                "CP-1", "MeterValues", lambda p: stamp(p) > stamp(before), timeout=5
            )
            await cs.wait_for_call(
                "CP-1", "StatusNotification", lambda p: p["status"] == "Charging", count=2, timeout=5
            )
            sim = daemon.charge_points["CP-1"].connectors[1].charger
            assert sim.state().enabled is True  # energy allowed again
            sim.tap("TAG")
            stop = await cs.wait_for_call("CP-1", "StopTransaction", timeout=5)
        cs.assert_clean()
    assert after["transactionId"] == stop["transactionId"] == 1
    assert stop["reason"] == "Local" and stop["meterStop"] >= start["meterStart"]
    assert [c["action"] for c in cs.calls("CP-1")].count("StartTransaction") == 1
    assert [c["action"] for c in cs.calls("CP-1")].count("StopTransaction") == 1


async def test_a_vehicle_gone_during_a_graceful_restart_ends_the_transaction_as_unplugged(
    tmp_path: Path,
) -> None:
    async with StrictCentralSystem() as cs:
        config = make_config(cs.url, tmp_path, ocpp=SAMPLING)
        async with running(config) as daemon:
            await charging(cs, daemon)
            await cs.wait_for_call("CP-1", "MeterValues", timeout=5)
        # The vehicle leaves while the bridge is down: the simulated box's state file says so.
        path = device_state_file(config.state_dir, "CP-1", 1)
        saved = read_state(path)
        assert saved is not None and saved.plugged
        write_state(path, dataclasses.replace(saved, plugged=False))
        async with running(config):
            stop = await cs.wait_for_call("CP-1", "StopTransaction", timeout=5)
        cs.assert_clean()
    assert stop["reason"] == "EVDisconnected" and stop["transactionId"] == 1


async def test_a_deauthorized_transaction_stays_without_energy_across_a_graceful_restart(
    tmp_path: Path,
) -> None:
    """StopTransactionOnInvalidId false: an invalid tag's transaction goes on without energy
    (SuspendedEVSE); a service restart must not give it energy back."""
    ocpp = {**SAMPLING, "StopTransactionOnInvalidId": False, "MaxEnergyOnInvalidId": 0}
    async with StrictCentralSystem(invalid_tags=["BAD"]) as cs:
        config = make_config(cs.url, tmp_path, ocpp=ocpp)
        async with running(config) as daemon:
            await cs.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)
            sim_of(daemon).plug()
            # A remote start is not authorized first (AuthorizeRemoteTxRequests false): the central
            # system says Invalid only in StartTransaction.conf.
            await cs.call("CP-1", call.RemoteStartTransaction(id_tag="BAD", connector_id=1))
            await cs.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "SuspendedEVSE")
        again = make_config(cs.url, tmp_path, ocpp=ocpp, charger={"plugged": True})
        async with running(again) as daemon:
            await cs.wait_for_call("CP-1", "BootNotification", count=2)
            await cs.wait_for_call("CP-1", "MeterValues", lambda p: p["transactionId"] == 1, timeout=5)
            rt = daemon.charge_points["CP-1"].connectors[1]
            assert rt.core.transaction is not None and rt.core.transaction.deauthorized
            assert rt.core.status().status.value == "SuspendedEVSE"
            assert sim_of(daemon).state().enabled is False
        cs.assert_clean()
