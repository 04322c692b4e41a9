"""A wallbox behind a Tasmota metering relay described generically over MQTT (tests/helpers/generic.py's
tasmota_block: its telemetry topics and its POWER command) passes the scenarios of a built-in relay
driver through the whole bridge against the strict central system and a real mosquitto: a whole
session, a charging profile's limit (a switch: below the wallbox's own current it pauses), an outage
of the relay (Faulted, recovery, one transaction) and of the broker."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from adapters.base import DeviceRefused, DeviceUnreachable, StateChanged
from adapters.generic.device import GenericCharger, GenericMeter
from adapters.generic.sources import MAX_PAYLOAD
from adapters.transports.pool import Transports
from tests.conftest import running
from tests.csms import StrictCentralSystem
from tests.emulators.shelly import EvLoad
from tests.emulators.tasmota import TasmotaEmulator
from tests.helpers.generic import (
    CP,
    ENERGY,
    bridge_config,
    check_energy,
    first_reading,
    next_status,
    options,
    profile,
    remote_start,
    remote_stop,
    sampled,
    set_profile,
    statuses,
    tasmota_block,
)
from tests.helpers.parts import eventually, until

TELE_S = 0.2


@pytest.fixture
async def relay(broker: Any) -> AsyncIterator[TasmotaEmulator]:
    load = EvLoad(plugged=True, time_scale=100, energy_wh=1_234_000)
    async with TasmotaEmulator(broker.url, load=load, tele_period_s=TELE_S, power_retain=True) as device:
        await device.announce()  # as Tasmota does at its start with PowerRetain 1
        yield device


def power_commands(relay: TasmotaEmulator) -> list[str]:
    return [payload for command, payload in relay.commands if command == "POWER" and payload]


async def test_a_whole_session(
    relay: TasmotaEmulator, broker: Any, csms: StrictCentralSystem, tmp_path: Path
) -> None:
    async with running(bridge_config(csms, tmp_path, tasmota_block(broker.url, relay.topic))) as daemon:
        await first_reading(csms, daemon)
        start = await remote_start(csms)
        assert relay.power == [True]
        await csms.wait_for_call(
            CP, "MeterValues", lambda p: sampled(p, ENERGY) > start["meterStart"], timeout=10
        )
        stop = await remote_stop(csms, then="Available")  # the relay cannot see the plug
        assert relay.power == [False]
    check_energy(relay.reported_energy_wh, csms, start, stop)
    assert power_commands(relay)[-2:] == ["ON", "OFF"]
    assert statuses(csms) == ["Available", "Charging", "Available"]  # no plug to see: no Preparing


async def test_a_limit_below_the_wallboxs_own_current_pauses_and_a_raise_resumes(
    relay: TasmotaEmulator, broker: Any, csms: StrictCentralSystem, tmp_path: Path
) -> None:
    async with running(bridge_config(csms, tmp_path, tasmota_block(broker.url, relay.topic))) as daemon:
        await first_reading(csms, daemon)
        await remote_start(csms)
        tx = csms.last_transaction_id
        await csms.wait_until(lambda: relay.load.power_w > 3000, what="the vehicle drawing")
        paused = next_status(csms, "SuspendedEVSE")
        await set_profile(csms, 1, profile(2, "TxProfile", 10, transactionId=tx))
        await paused
        assert relay.power == [False]
        resumed = next_status(csms, "Charging")
        await set_profile(csms, 1, profile(2, "TxProfile", 16, transactionId=tx))
        await resumed
        assert relay.power == [True]
        await remote_stop(csms, then="Available")
    assert power_commands(relay)[-4:] == ["ON", "OFF", "ON", "OFF"]
    assert len(csms.calls(CP, "StartTransaction")) == 1


async def test_an_outage_of_the_relay_faults_and_recovers_in_one_transaction(
    relay: TasmotaEmulator, broker: Any, csms: StrictCentralSystem, tmp_path: Path
) -> None:
    async with running(bridge_config(csms, tmp_path, tasmota_block(broker.url, relay.topic))) as daemon:
        await first_reading(csms, daemon)
        start = await remote_start(csms)
        await csms.wait_for_call(CP, "MeterValues")
        relay.silent = True  # connected, but its telemetry stops: older than max_age_s
        faulted = await next_status(csms, "Faulted")
        relay.silent = False
        await next_status(csms, "Charging")
        assert relay.power == [True]
        stop = await remote_stop(csms, then="Available")
    assert (faulted["errorCode"], faulted["vendorErrorCode"]) == ("OtherError", "DeviceUnreachable")
    assert faulted["info"].startswith("Tasmota (generic)")
    assert len(csms.calls(CP, "StartTransaction")) == 1 and stop["transactionId"] == csms.last_transaction_id
    check_energy(relay.reported_energy_wh, csms, start, stop)


async def test_messages_are_read_at_once_and_the_broker_gone_is_unreachable(
    relay: TasmotaEmulator, broker: Any, transports: Transports, tmp_path: Path
) -> None:
    driver = GenericCharger(options(tmp_path, charger=tasmota_block(broker.url, relay.topic)), transports)
    events: list[object] = []
    driver.set_listener(events.append)
    await driver.start()
    caps = driver.capabilities
    assert not caps.can_sense_plug and caps.min_current_a == caps.max_current_a == 16 and caps.has_meter
    reading = await driver.read()
    assert reading.plugged is None and not reading.energy_allowed and reading.energy_wh == 1_234_000
    await driver.set_enabled(True)
    assert relay.power == [True]  # set_enabled waited for stat/<topic>/POWER to show it
    await until(lambda: any(isinstance(e, StateChanged) for e in events), "a StateChanged pushed", 5)
    await until(lambda: relay.load.power_w > 3000, "the vehicle drawing", 5)
    reading = await driver.read()
    assert reading.energy_allowed and reading.ev_requesting and reading.voltage_v == (230,)
    await broker.stop()
    with pytest.raises(DeviceUnreachable, match="not connected"):
        await driver.set_enabled(False)
    with pytest.raises(DeviceUnreachable, match="not connected"):
        await driver.read()
    await driver.close()


async def test_a_message_larger_than_64_kib_is_refused_naming_its_topic(
    broker: Any, transports: Transports, tmp_path: Path
) -> None:
    topic = "meter/e"
    block = {"type": "generic", "read": {"energy_wh": {"mqtt": {"broker": broker.url, "topic": topic}}}}
    meter = GenericMeter(options(tmp_path, meter=block), transports)

    async def reads_the_new_value() -> bool:
        with contextlib.suppress(DeviceRefused):
            return (await meter.read()).energy_wh == 1234.5
        return False

    async with aiomqtt.Client("127.0.0.1", port=broker.port) as client:
        await client.publish(topic, " " * MAX_PAYLOAD + "1", retain=True)
        with pytest.raises(
            DeviceRefused, match=rf"^MQTT topic {topic}: a message of 65537 bytes, larger than 64 KiB$"
        ):
            await meter.start()  # its first reading
        await client.publish(topic, "1234.5", retain=True)
        await eventually(reads_the_new_value, "the next message read", 5)
    await meter.close()
