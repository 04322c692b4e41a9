"""The Shelly Pro 3EM template (adapters/templates/shelly-pro3em.yaml): the emulator's Gen2 RPC answers,
then the meter as the meter of record beside a simulated charger in the running bridge, its readings
equal to what the meter says and its register the transaction's meterStart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.emulators.shelly_em import ShellyPro3EmEmulator

CP = "CP-1"


@pytest.fixture
async def emu() -> AsyncIterator[ShellyPro3EmEmulator]:
    meter = ShellyPro3EmEmulator(time_scale=0.0)  # frozen counters: readings compared exactly
    meter.set_power(2300.0, 2310.0, 2290.0)
    async with meter:
        yield meter


async def test_the_emulator_answers_as_a_gen2_meter(emu: ShellyPro3EmEmulator) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{emu.url}/rpc/EM.GetStatus", params={"id": "0"}) as r:
            em = await r.json()
        async with http.post(f"{emu.url}/rpc", json={"id": 5, "src": "t", "method": "EMData.GetStatus",
                                                      "params": {"id": 0}}) as r:  # fmt: skip
            frame = await r.json()
        async with http.get(f"{emu.url}/rpc/EM.GetStatus", params={"id": "1"}) as r:
            unknown_id = (r.status, await r.json())
        async with http.get(f"{emu.url}/rpc/EM1.GetStatus", params={"id": "0"}) as r:
            no_method = (r.status, await r.json())
    assert (em["a_act_power"], em["total_act_power"], em["a_current"], em["b_voltage"]) == (
        2300.0, 6900.0, 10.0, 231.0,
    )  # fmt: skip
    assert em["n_current"] is None and "errors" not in em
    assert (frame["id"], frame["result"]["total_act"], frame["result"]["a_total_act_energy"]) == (
        5,
        6000.0,
        1000.0,
    )
    assert unknown_id == (400, {"code": -105, "message": "Argument 'id', value 1 not found!"})
    assert no_method == (404, {"code": 404, "message": "No handler for EM1.GetStatus"})


async def test_readings_equal_the_meters_and_its_register_starts_the_transaction(
    csms: StrictCentralSystem, emu: ShellyPro3EmEmulator, tmp_path: Path
) -> None:
    meter = {"type": "generic", "template": "shelly-pro3em", "params": {"url": emu.url}}
    config = make_config(csms.url, tmp_path, meter=meter, connector_fields={"poll_interval_s": 0.2})
    async with running(config) as daemon:
        connector = daemon.charge_points[CP].connectors[1]
        await csms.wait_until(lambda: connector.reading is not None, what="a first reading")
        reading = connector.reading
        assert reading.energy_wh == pytest.approx(6000.0)  # total_act, Wh
        assert reading.power_w == pytest.approx(6900.0)
        assert reading.current_a == pytest.approx((2300 / 230, 2310 / 231, 2290 / 229), abs=1e-3)
        assert reading.voltage_v == pytest.approx((230.0, 231.0, 229.0))
        assert reading.frequency_hz == pytest.approx(50.0)
        connector.charger.simulator.plug()  # the simulated charger beside the meter
        connector.charger.simulator.tap("TAG")
        start = await csms.wait_for_call(CP, "StartTransaction")
    assert start["meterStart"] == 6000
    assert {method for method, _ in emu.calls} == {"EM.GetStatus", "EMData.GetStatus"}
