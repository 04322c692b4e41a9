"""The energy register a central system sees never goes backwards within a transaction:
meterStart ≤ every Energy.Active.Import.Register (MeterValues and transactionData) ≤ meterStop.

All of them are whole Wh, rounded by one function; meterStop is read from the device at the stop
(after energy was switched off), the last reading standing in when the device does not answer.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapters.base import ChargerReading
from bridge.core.connector import Connector
from bridge.core.meter_values import sampled_values, whole_wh
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.helpers.flow import charging, sim_of

REGISTER = "Energy.Active.Import.Register"
SAMPLED = {
    "MeterValueSampleInterval": 1,
    "MeterValuesSampledData": f"{REGISTER},Power.Active.Import",
    "StopTxnSampledData": REGISTER,
}
ELEVEN_KW = {"time_scale": 100}  # the simulated charger's 16 A on 3 x 230 V, 100 times as fast


def registers(meter_values: list[dict[str, Any]]) -> list[str]:
    """The register values of MeterValue objects, in order, as sent."""
    return [
        sv["value"]
        for mv in meter_values
        for sv in mv["sampledValue"]
        if sv.get("measurand", REGISTER) == REGISTER
    ]


def test_registers_are_whole_wh_rounded_as_meter_start_and_stop() -> None:
    reading = ChargerReading(plugged=True, ev_requesting=True, energy_allowed=True, energy_wh=24.537)
    [value] = sampled_values(reading, [REGISTER], "Sample.Periodic")
    connector = Connector(1)
    connector.on_reading(reading, datetime(2026, 1, 1, tzinfo=UTC), stop_on_ev_disconnect=True)
    assert value["value"] == "24" == str(whole_wh(24.537)) == str(connector.meter_wh())
    assert value["unit"] == "Wh"


async def test_meter_stop_is_never_below_a_register_sent_during_the_transaction(tmp_path: Path) -> None:
    async with StrictCentralSystem() as cs:
        config = make_config(cs.url, tmp_path, ocpp=SAMPLED, charger=ELEVEN_KW)
        async with running(config) as daemon:
            start = await charging(cs, daemon)
            await cs.wait_for_call("CP-1", "MeterValues", count=3, timeout=5)
            sim = sim_of(daemon)
            sim.tap("TAG")  # between two samples, energy still flowing
            stop = await cs.wait_for_call("CP-1", "StopTransaction")
            after = (await sim.read()).energy_wh  # energy is off: the register stands still now
        cs.assert_clean()
    sent = [v for mv in cs.calls("CP-1", "MeterValues") for v in registers(mv["meterValue"])]
    kept = registers(stop["transactionData"])
    assert len(sent) >= 3 and len(kept) >= 5  # Begin, three samples at least, End
    assert all(v.isdigit() for v in sent + kept), sent + kept  # whole Wh, as meterStart and meterStop
    meter_start, meter_stop = start["meterStart"], stop["meterStop"]
    assert all(meter_start <= int(v) <= meter_stop for v in sent + kept), (meter_start, sent, meter_stop)
    assert [int(v) for v in sent] == sorted(int(v) for v in sent)
    assert [int(v) for v in kept] == sorted(int(v) for v in kept)
    assert int(kept[0]) == meter_start and int(kept[-1]) == meter_stop  # Begin and End
    # Read at the stop, not taken from the last poll: what the device shows once energy is off.
    assert after is not None and meter_stop == whole_wh(after)


async def test_a_device_silent_at_the_stop_leaves_meter_stop_at_the_last_reading(tmp_path: Path) -> None:
    async with StrictCentralSystem() as cs:
        config = make_config(cs.url, tmp_path, ocpp=SAMPLED, charger=ELEVEN_KW)
        async with running(config) as daemon:
            start = await charging(cs, daemon)
            await cs.wait_for_call("CP-1", "MeterValues", count=2, timeout=5)
            sim = sim_of(daemon)
            sim.silence()
            sim.tap("TAG")
            stop = await cs.wait_for_call("CP-1", "StopTransaction", timeout=3)
        cs.assert_clean()
    sent = [int(v) for mv in cs.calls("CP-1", "MeterValues") for v in registers(mv["meterValue"])]
    kept = [int(v) for v in registers(stop["transactionData"])]
    assert start["meterStart"] <= min(sent + kept) and max(sent + kept) == stop["meterStop"]
    assert kept[-1] == stop["meterStop"]
