"""The Tasmota SML template (adapters/templates/tasmota-sml.yaml): the SML reader's emulator on a real
broker, then the reader as the meter of record beside a simulated charger in the running bridge, its
readings equal to the last SENSOR message and its register the transaction's meterStart; a reader
that falls silent for longer than max_age_s is stale."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.emulators.tasmota_sml import TasmotaSmlEmulator

CP = "CP-1"


@pytest.fixture
async def emu(broker: Any) -> AsyncIterator[TasmotaSmlEmulator]:
    reader = TasmotaSmlEmulator(broker.url, "hichi", tele_period_s=0.3, time_scale=0.0)
    reader.set_power(1500.0, 1200.0, 900.0)
    async with reader:
        yield reader


async def test_the_emulator_publishes_an_sml_block(emu: TasmotaSmlEmulator, broker: Any) -> None:
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        await client.subscribe("tele/hichi/#")
        await client.subscribe("stat/hichi/#")
        await client.publish("cmnd/hichi/Status", "10")
        seen: dict[str, Any] = {}
        async with asyncio.timeout(5):
            async for message in client.messages:
                payload = message.payload if isinstance(message.payload, bytes) else b""
                seen[message.topic.value] = payload.decode()
                if {"tele/hichi/SENSOR", "stat/hichi/STATUS10", "tele/hichi/LWT"} <= set(seen):
                    break
    sensor = json.loads(seen["tele/hichi/SENSOR"])
    assert sensor["SML"]["Total_in"] == 4321.1234 and sensor["SML"]["Power_curr"] == 3600
    assert sensor["SML"]["current_l1"] == round(1500 / 230.1, 4) and "Time" in sensor
    assert json.loads(seen["stat/hichi/STATUS10"])["StatusSNS"]["SML"]["Meter_Id"] == "1ESY1161234567"
    assert seen["tele/hichi/LWT"] == "Online"


def config_for(csms: StrictCentralSystem, broker: Any, tmp_path: Path, max_age_s: float) -> Any:
    params = {"broker": broker.url, "topic": "hichi", "max_age_s": max_age_s}
    meter = {"type": "generic", "template": "tasmota-sml", "params": params}
    fields = {"poll_interval_s": 0.2, "faulted_after_failed_polls": 2}
    return make_config(csms.url, tmp_path, meter=meter, connector_fields=fields)


async def test_readings_equal_the_last_sensor_message(
    csms: StrictCentralSystem, emu: TasmotaSmlEmulator, broker: Any, tmp_path: Path
) -> None:
    async with running(config_for(csms, broker, tmp_path, 5)) as daemon:
        connector = daemon.charge_points[CP].connectors[1]
        await csms.wait_until(lambda: connector.reading is not None, what="a first reading")
        assert connector.reading.energy_wh == pytest.approx(4_321_123.4)  # Total_in, kWh
        assert connector.reading.power_w == 3600.0
        emu.set_power(2000.0, 0.0, 0.0)
        await csms.wait_until(lambda: connector.reading.power_w == 2000.0, what="the next SENSOR's power")
        connector.charger.simulator.plug()  # the simulated charger beside the meter
        connector.charger.simulator.tap("TAG")
        start = await csms.wait_for_call(CP, "StartTransaction")
    assert start["meterStart"] == 4_321_123


async def test_a_silent_reader_is_stale_after_max_age(
    csms: StrictCentralSystem, emu: TasmotaSmlEmulator, broker: Any, tmp_path: Path
) -> None:
    async with running(config_for(csms, broker, tmp_path, 1)):
        await csms.wait_for_call(CP, "StatusNotification", lambda p: p["connectorId"] == 1)
        await emu.power_cut()  # no SENSOR message any more
        faulted = await csms.wait_for_call(
            CP, "StatusNotification", lambda p: p["status"] == "Faulted", timeout=10
        )
        await emu.start()
        await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Available", count=2)
    assert faulted["errorCode"] == "OtherError"
