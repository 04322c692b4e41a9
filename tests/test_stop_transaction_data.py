"""StopTransaction.transactionData: StopTxnSampledData / StopTxnAlignedData, Transaction.Begin and
Transaction.End, StopTransactionMaxMeterValues, and what survives a power cut."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bridge.core.meter_values import thin_evenly
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.helpers.flow import charging, sim_of
from tests.helpers.power_cut import as_after_a_power_cut

STOP_DATA = {
    "MeterValueSampleInterval": 1,
    "MeterValuesSampledData": "Power.Active.Import",
    "StopTxnSampledData": "Energy.Active.Import.Register",
}


def contexts(stop: dict[str, Any]) -> list[str]:
    return [mv["sampledValue"][0]["context"] for mv in stop["transactionData"]]


def energies(stop: dict[str, Any]) -> list[float]:
    return [float(mv["sampledValue"][0]["value"]) for mv in stop["transactionData"]]


def test_thinning_keeps_begin_and_end_and_spreads_the_rest() -> None:
    values = list(range(10))
    assert thin_evenly(values, 10) == values
    assert thin_evenly(values, 4) == [0, 1, 5, 9]
    assert thin_evenly(values, 2) == [0, 9]
    assert thin_evenly(values, 1) == [9]
    kept = thin_evenly(list(range(1000)), 100)
    assert len(kept) == 100 and kept[0] == 0 and kept[-1] == 999 and kept == sorted(set(kept))


async def test_stop_transaction_carries_begin_periodic_and_end_values(tmp_path: Path) -> None:
    async with StrictCentralSystem() as cs:
        config = make_config(cs.url, tmp_path, ocpp=STOP_DATA, charger={"time_scale": 100})
        async with running(config) as daemon:
            start = await charging(cs, daemon)
            await cs.wait_for_call("CP-1", "MeterValues", count=2, timeout=5)
            sim_of(daemon).tap("TAG")
            stop = await cs.wait_for_call("CP-1", "StopTransaction")
        cs.assert_clean()
    ctx = contexts(stop)
    assert ctx[0] == "Transaction.Begin" and ctx[-1] == "Transaction.End"
    assert set(ctx[1:-1]) == {"Sample.Periodic"} and len(ctx) >= 4
    assert energies(stop)[0] == start["meterStart"]
    assert int(energies(stop)[-1]) == stop["meterStop"]
    assert energies(stop) == sorted(energies(stop))
    # Only the StopTxnSampledData measurand, with its unit; the MeterValues carried their own list.
    assert {sv["measurand"] for mv in stop["transactionData"] for sv in mv["sampledValue"]} == {
        "Energy.Active.Import.Register"
    }
    periodic = cs.calls("CP-1", "MeterValues")[0]["meterValue"][0]["sampledValue"]
    assert [sv["measurand"] for sv in periodic] == ["Power.Active.Import"]


async def test_without_stop_txn_keys_there_is_no_transaction_data(
    csms: StrictCentralSystem, tmp_path: Path
) -> None:
    config = make_config(csms.url, tmp_path, ocpp={"MeterValueSampleInterval": 1})
    async with running(config) as daemon:
        await charging(csms, daemon)
        await csms.wait_for_call("CP-1", "MeterValues", timeout=5)
        sim_of(daemon).tap("TAG")
        stop = await csms.wait_for_call("CP-1", "StopTransaction")
    assert "transactionData" not in stop


async def test_a_power_cut_keeps_the_values_taken_and_ends_them_with_the_last_reading(tmp_path: Path) -> None:
    async with StrictCentralSystem() as cs:
        config = make_config(cs.url, tmp_path, ocpp=STOP_DATA, charger={"time_scale": 100})
        async with running(config) as daemon:
            start = await charging(cs, daemon)
            await cs.wait_for_call("CP-1", "MeterValues", count=3, timeout=5)
        # The daemon is gone with the transaction running; the next one ends it with PowerLoss.
        as_after_a_power_cut(tmp_path)
        async with running(config):
            stop = await cs.wait_for_call("CP-1", "StopTransaction", timeout=5)
        cs.assert_clean()
    assert stop["reason"] == "PowerLoss"
    ctx = contexts(stop)
    assert (
        ctx[0] == "Transaction.Begin" and ctx[-1] == "Transaction.End" and ctx.count("Sample.Periodic") >= 2
    )
    assert energies(stop)[0] == start["meterStart"] and int(energies(stop)[-1]) == stop["meterStop"]


async def test_only_aligned_data_gives_begin_end_and_clock_values(tmp_path: Path) -> None:
    async with StrictCentralSystem() as cs:
        ocpp = {"ClockAlignedDataInterval": 1, "StopTxnAlignedData": "Energy.Active.Import.Register"}
        async with running(make_config(cs.url, tmp_path, ocpp=ocpp)) as daemon:
            await charging(cs, daemon)
            await cs.wait_for_call("CP-1", "MeterValues", count=2, timeout=5)
            sim_of(daemon).tap("TAG")
            stop = await cs.wait_for_call("CP-1", "StopTransaction")
        cs.assert_clean()
    ctx = contexts(stop)
    assert ctx[0] == "Transaction.Begin" and ctx[-1] == "Transaction.End" and "Sample.Clock" in ctx
    assert "Sample.Periodic" not in ctx
    stamps = [mv["timestamp"] for mv in stop["transactionData"]]
    assert stamps == sorted(stamps)  # in the order they were taken, Begin first, End last


def test_clock_aligned_values_are_time_weighted_means_over_the_interval() -> None:
    from adapters.base import ChargerReading
    from bridge.core.meter_values import IntervalAverage

    def r(power: float, amps: float, energy: float) -> ChargerReading:
        return ChargerReading(True, True, True, energy_wh=energy, power_w=power, current_a=(amps, amps, amps))

    avg = IntervalAverage()
    avg.add(r(1000, 1.5, 100), 0.0)
    avg.add(r(3000, 4.5, 103), 10.0)  # 1000 W held for 10 s
    avg.add(r(3000, 4.5, 120), 29.0)
    taken = avg.take(30.0)  # 3000 W for the last 20 s
    assert taken is not None
    assert taken.power_w is not None and abs(taken.power_w - (1000 * 10 + 3000 * 20) / 30) < 1e-9
    assert taken.current_a == (3.5, 3.5, 3.5)
    assert taken.energy_wh == 120  # a register: the latest, never averaged
    nxt = avg.take(40.0)  # a new interval: only the last reading, held
    assert nxt is not None and nxt.power_w == 3000
