"""Relay retrofit drivers (adapters/chargers/relay.py, shelly.py, tasmota.py): the pure draw inference,
the Shelly driver over HTTP against the emulator, the Tasmota driver over a real mosquitto, and one
session through the daemon."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call

from adapters.base import (
    DeviceEvent,
    DeviceRefused,
    DeviceUnreachable,
    NotSupportedByDevice,
    StateChanged,
)
from adapters.chargers.relay import DrawInference
from adapters.chargers.shelly import ShellyCharger, ShellyOptions, shelly_answer, shelly_status
from adapters.chargers.tasmota import TasmotaCharger, TasmotaOptions
from adapters.transports.pool import Transports
from bridge.config import ConfigError, load_config
from bridge.core.device_errors import ocpp_fault
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.emulators.shelly import EvLoad, ShellyEmulator
from tests.emulators.tasmota import TasmotaEmulator

ROOT = Path(__file__).resolve().parent.parent


async def until(predicate: Callable[[], Any], timeout_s: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- the inference (pure) ------------------------------------------------------------------------
def inference(idle_after_s: float = 60) -> DrawInference:
    return DrawInference(charging_above_w=50, idle_below_w=25, idle_after_s=idle_after_s)


def test_nothing_draws_while_the_relay_is_open() -> None:
    inf = inference()
    assert inf.update(False, 0.0, 0) is False
    assert inf.update(False, 5000.0, 1) is False  # a reading upstream of the relay proves nothing


def test_power_above_the_threshold_is_a_drawing_vehicle_at_once() -> None:
    inf = inference()
    assert inf.update(True, 2.5, 0) is False  # closed, the wallbox's own standby only
    assert inf.update(True, 50.0, 1) is False  # at the threshold is not above it
    assert inf.update(True, 3680.0, 2) is True


def test_low_power_must_last_idle_after_s_and_a_break_restarts_the_wait() -> None:
    inf = inference()
    inf.update(True, 3680.0, 0)
    assert inf.update(True, 10.0, 100) is True  # low from t=100
    assert inf.update(True, 10.0, 159.9) is True
    assert inf.update(True, 3000.0, 160) is True  # a dip, not an end
    assert inf.update(True, 10.0, 170) is True  # low again from t=170
    assert inf.update(True, 10.0, 229) is True
    assert inf.update(True, 10.0, 230) is False  # 60 s without a break
    assert inf.update(True, 0.0, 10_000) is False


def test_hysteresis_between_the_thresholds_keeps_the_last_decision() -> None:
    inf = inference()
    inf.update(True, 3680.0, 0)
    assert all(inf.update(True, 40.0, t) for t in range(1, 500, 50))  # in the band: not idle
    inf.update(True, 10.0, 500)
    assert inf.update(True, 10.0, 560) is False
    assert not any(inf.update(True, 40.0, t) for t in range(561, 1000, 50))  # nor charging
    assert inf.update(True, 51.0, 1000) is True  # above: again at once


def test_in_the_band_the_idle_wait_restarts() -> None:
    inf = inference()
    inf.update(True, 3680.0, 0)
    inf.update(True, 10.0, 10)
    inf.update(True, 30.0, 50)  # not below idle_below_w: the low stretch ends
    assert inf.update(True, 10.0, 80) is True
    assert inf.update(True, 10.0, 139) is True
    assert inf.update(True, 10.0, 140) is False


def test_opening_the_relay_forgets_the_draw() -> None:
    inf = inference()
    inf.update(True, 3680.0, 0)
    assert inf.update(False, 0.0, 1) is False
    assert inf.update(True, 10.0, 2) is False  # the next closing must show power again


def test_a_missing_measurement_changes_nothing_and_zero_delay_is_immediate() -> None:
    inf = inference(idle_after_s=0)
    assert inf.update(True, None, 0) is False
    inf.update(True, 100.0, 1)
    assert inf.update(True, None, 2) is True
    assert inf.update(True, 0.0, 3) is False


# -- options ------------------------------------------------------------------------------------------
def test_defaults_are_valid_and_problems_name_the_fix() -> None:
    assert ShellyOptions(url="http://192.0.2.7").validate() == []
    assert TasmotaOptions(broker="mqtt://user:pw@broker", topic="tasmota_A1B2C3").validate() == []
    bad = ShellyOptions(
        url="http://admin:pw@192.0.2.7/rpc", switch_id=-1, timeout_s=0, password="", phases=2,
        charging_above_w=20, idle_below_w=25, idle_after_s=-1, max_current_a=0,
    )  # fmt: skip
    problems = dict(bad.validate())
    assert set(problems) == {
        "url", "switch_id", "timeout_s", "password", "phases", "charging_above_w", "idle_after_s",
        "max_current_a",
    }  # fmt: skip
    assert "credentials" in problems["url"] and "hysteresis" in problems["charging_above_w"]
    assert "without a path" in dict(ShellyOptions(url="http://h/rpc").validate())["url"]
    assert "http://HOST" in dict(ShellyOptions(url="192.0.2.7").validate())["url"]
    tas = dict(TasmotaOptions(broker="http://h", topic="tele/x", relay=0, stale_after_s=0).validate())
    assert set(tas) == {"broker", "topic", "relay", "stale_after_s"}


def test_the_example_configurations_load() -> None:
    shelly = load_config(ROOT / "config" / "shelly-sdm630.yaml").charge_points[0].connectors[0].charger
    tasmota = load_config(ROOT / "config" / "tasmota-sdm120-rtu.yaml").charge_points[0].connectors[0].charger
    assert (shelly.type, tasmota.type) == ("shelly", "tasmota")
    assert isinstance(shelly.options, ShellyOptions) and isinstance(tasmota.options, TasmotaOptions)


def test_the_loader_reports_relay_option_problems(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"charger\.url: .*credentials"):
        make_config("ws://127.0.0.1:9/ocpp", tmp_path, charger={"type": "shelly", "url": "http://a:b@h"})
    with pytest.raises(ConfigError, match=r"charger\.topic: required"):
        make_config("ws://127.0.0.1:9/ocpp", tmp_path, charger={"type": "tasmota", "broker": "mqtt://h"})


# -- Shelly over HTTP ----------------------------------------------------------------------------------
@pytest.fixture
async def shelly() -> AsyncIterator[ShellyEmulator]:
    load = EvLoad(energy_wh=102650.773, plugged=True)
    async with ShellyEmulator(load=load) as emulator:
        yield emulator


def shelly_driver(emulator: ShellyEmulator, transports: Transports, **options: Any) -> ShellyCharger:
    return ShellyCharger(ShellyOptions(url=emulator.url, **options), transports)


async def test_shelly_state_and_units(shelly: ShellyEmulator, transports: Transports) -> None:
    driver = shelly_driver(shelly, transports, max_current_a=16)
    await driver.start()
    off = await driver.read()
    assert (off.plugged, off.ev_requesting, off.energy_allowed) == (None, False, False)
    assert (off.energy_wh, off.power_w, off.current_a, off.voltage_v) == (102650.773, 0.0, (0.0,), (230.0,))
    assert (off.frequency_hz, off.current_offered_a, off.fault) == (50.0, 0.0, None)

    await driver.set_enabled(True)
    assert shelly.outputs == [True] and shelly.calls[-1] == ("Switch.Set", {"id": 0, "on": True})
    on = await driver.read()
    assert (on.plugged, on.ev_requesting, on.energy_allowed, on.current_offered_a) == (None, True, True, 16)
    assert on.power_w == 3682.5 and on.current_a == (round(3682.5 / 230, 3),)
    assert on.energy_wh is not None and on.energy_wh >= 102650.773  # Wh, as aenergy.total

    await driver.set_enabled(False)
    assert shelly.outputs == [False] and shelly.calls[-1] == ("Switch.Set", {"id": 0, "on": False})
    assert (await driver.read()).ev_requesting is False  # open again: nothing can be seen


async def test_shelly_suspended_vehicle_after_the_idle_time(
    shelly: ShellyEmulator, transports: Transports
) -> None:
    clock = FakeClock()
    driver = ShellyCharger(ShellyOptions(url=shelly.url, idle_after_s=60), transports, clock=clock)
    await driver.set_enabled(True)
    assert (await driver.read()).ev_requesting
    shelly.load.suspend()  # the car is full: only the wallbox's standby flows
    assert (await driver.read()).ev_requesting  # low from now on
    clock.now += 59
    assert (await driver.read()).ev_requesting
    clock.now += 1
    reading = await driver.read()
    assert (reading.ev_requesting, reading.plugged, reading.power_w) == (False, None, 2.5)
    shelly.load.resume()
    assert (await driver.read()).ev_requesting  # drawing again: at once


async def test_shelly_without_power_inference_follows_the_relay(
    shelly: ShellyEmulator, transports: Transports
) -> None:
    """A Shelly that drives a contactor's coil sees only the coil: infer_from_power false."""
    shelly.load.unplug()
    driver = shelly_driver(shelly, transports, infer_from_power=False)
    await driver.set_enabled(True)
    reading = await driver.read()
    assert (reading.plugged, reading.ev_requesting) == (None, True)


async def test_shelly_errors_are_typed(shelly: ShellyEmulator, transports: Transports) -> None:
    with pytest.raises(DeviceRefused, match=r"Argument 'id', value 3 not found! \(code -105\)"):
        await shelly_driver(shelly, transports, switch_id=3).read()
    with pytest.raises(DeviceRefused, match=r"Argument 'id', value 3 not found!"):
        await shelly_driver(shelly, transports, switch_id=3).set_enabled(True)

    shelly.silent = True
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(DeviceUnreachable, match=r"no answer to Switch.GetStatus within 0.3 s"):
        await shelly_driver(shelly, transports, timeout_s=0.3).read()
    assert loop.time() - began < 2
    shelly.silent = False

    await shelly.stop()
    with pytest.raises(DeviceUnreachable, match=r"Switch\.Set"):
        await shelly_driver(shelly, transports).set_enabled(True)
    await shelly.start()  # back on the same port
    assert (await shelly_driver(shelly, transports).read()).energy_allowed is False


async def test_shelly_protection_fault_and_current_control(
    shelly: ShellyEmulator, transports: Transports
) -> None:
    driver = shelly_driver(shelly, transports, max_current_a=16)
    await driver.set_enabled(True)
    shelly.trip("overpower")
    reading = await driver.read()
    assert reading.energy_allowed is False and reading.fault is not None
    fault = ocpp_fault(reading.fault)
    assert (fault.error_code, fault.vendor_error_code) == ("OverCurrentFailure", "overpower")
    caps = driver.capabilities
    assert (caps.can_sense_plug, caps.can_unlock, caps.can_switch_phases, caps.has_meter) == (
        False, False, False, True,
    )  # fmt: skip
    assert (caps.min_current_a, caps.max_current_a) == (16, 16)
    await driver.set_current(16)  # what the wallbox offers anyway
    with pytest.raises(NotSupportedByDevice, match="cannot set a current"):
        await driver.set_current(10)
    with pytest.raises(NotSupportedByDevice):
        await driver.reset(hard=True)


# Each protection in a Switch status' `errors` as StatusNotification carries it: (errorCode, info,
# vendorErrorCode), the first listed naming the fault.
@pytest.mark.parametrize(
    ("errors", "expected"),
    [
        (["overtemp"], ("HighTemperature", "Shelly switch protection: overtemp", "overtemp")),
        (["overpower"], ("OverCurrentFailure", "Shelly switch protection: overpower", "overpower")),
        (["overcurrent"], ("OverCurrentFailure", "Shelly switch protection: overcurrent", "overcurrent")),
        (["overvoltage"], ("OverVoltage", "Shelly switch protection: overvoltage", "overvoltage")),
        (["undervoltage"], ("UnderVoltage", "Shelly switch protection: undervoltage", "undervoltage")),
        (["cooling"], ("OtherError", "Shelly switch protection: cooling", "cooling")),
        (
            ["overvoltage", "overtemp", "overpower"],
            ("OverVoltage", "Shelly switch protection: overvoltage, overtemp, o", "overvoltage"),
        ),
        (["x" * 60], ("OtherError", "Shelly switch protection: " + "x" * 24, "x" * 50)),
    ],
)
def test_each_shelly_protection_on_the_wire(errors: list[str], expected: tuple[str, str, str]) -> None:
    fault = shelly_status({"output": False, "apower": 0.0, "errors": errors}).fault
    assert fault is not None
    wire = ocpp_fault(fault)
    assert (wire.error_code, wire.info, wire.vendor_error_code) == expected
    assert shelly_status({"output": True, "apower": 0.0}).fault is None


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (
            400,
            b'{"code":-103,"message":"Missing required argument \'id\'!"}',
            r"Missing required .* \(code -103\)",
        ),
        (404, b'{"code":404,"message":"No handler for Switch.Nope"}', r"No handler for Switch\.Nope"),
        (500, b"", r"HTTP 500"),
        (502, b"<html>Bad Gateway</html>", r"HTTP 502"),
        (200, b"<html>not a Shelly</html>", r"not JSON"),
        (200, b'{"code":-109,"message":"busy"}', r"busy \(code -109\)"),
    ],
)
def test_shelly_error_answers_are_refusals(status: int, body: bytes, message: str) -> None:
    with pytest.raises(DeviceRefused, match=message):
        shelly_answer("Switch.GetStatus", status, body)
    assert shelly_answer("Switch.Set", 200, b'{"was_on":false}') == {"was_on": False}


async def test_shelly_digest_auth(transports: Transports) -> None:
    async with ShellyEmulator(password="s3cret") as emulator:
        good = shelly_driver(emulator, transports, password="s3cret")
        await good.set_enabled(True)
        assert (await good.read()).energy_allowed and emulator.outputs == [True]
        with pytest.raises(DeviceRefused, match="authentication failed"):
            await shelly_driver(emulator, transports, password="wrong").read()
        with pytest.raises(DeviceRefused, match="authentication failed"):
            await shelly_driver(emulator, transports).read()
        assert "s3cret" not in repr(good.options)


async def test_shelly_without_metering_is_refused_at_start(transports: Transports) -> None:
    async with ShellyEmulator(metering=False) as emulator:
        with pytest.raises(DeviceRefused, match="infer_from_power: false"):
            await shelly_driver(emulator, transports).start()
        await shelly_driver(emulator, transports, infer_from_power=False).start()


# -- Tasmota over MQTT ----------------------------------------------------------------------------------
def tasmota_driver(
    broker: Any, transports: Transports, clock: Callable[[], float] | None = None, **options: Any
) -> TasmotaCharger:
    opts = TasmotaOptions(broker=broker.url, topic="tasmota_A1B2C3", **{"timeout_s": 2, **options})
    return TasmotaCharger(opts, transports, **({"clock": clock} if clock else {}))


async def test_tasmota_state_units_and_switching(broker: Any, transports: Transports) -> None:
    clock = FakeClock()
    load = EvLoad(energy_wh=6294.0, plugged=True)
    async with TasmotaEmulator(broker.url, load=load) as device:  # TelePeriod 300 s
        driver = tasmota_driver(broker, transports, clock)
        await driver.start()
        assert ("POWER", "") in device.commands and ("Status", "8") in device.commands
        off = await driver.read()
        assert (off.plugged, off.ev_requesting, off.energy_allowed, off.power_w) == (None, False, False, 0)
        assert off.energy_wh == 6294.0  # Total 6.294 kWh in Wh
        assert (off.voltage_v, off.current_a) == ((230,), (0.0,))

        await driver.set_enabled(True)
        assert device.power == [True] and device.commands[-1] == ("POWER", "ON")
        clock.now += 11  # older than stale_after_s (10 s): asked for again
        on = await driver.read()
        assert device.commands[-1] == ("Status", "8")
        assert (on.plugged, on.ev_requesting, on.energy_allowed, on.power_w) == (None, True, True, 3682)
        assert on.current_a == (round(3682.5 / 230, 3),)

        asked = len(device.commands)
        clock.now += 5
        await driver.read()  # fresh enough: no question on the bus
        assert len(device.commands) == asked

        await driver.set_enabled(False)
        assert device.power == [False] and device.commands[-1] == ("POWER", "OFF")


async def test_tasmota_pushed_messages_update_without_asking(broker: Any, transports: Transports) -> None:
    clock = FakeClock()
    load = EvLoad(plugged=True)
    async with TasmotaEmulator(broker.url, load=load, tele_period_s=0.2) as device:
        driver = tasmota_driver(broker, transports, clock)
        events: list[DeviceEvent] = []
        driver.set_listener(events.append)
        await driver.start()
        await device.press_button()  # switched at the device: stat/.../RESULT and stat/.../POWER
        await until(lambda: events == [StateChanged()])
        # A tele/.../SENSOR with the new power arrives on its own (TelePeriod 0.2 s here).
        await until(lambda: (driver.last_energy or {}).get("Power") == 3682)
        asked = len(device.commands)
        reading = await driver.read()
        assert (reading.energy_allowed, reading.power_w, reading.ev_requesting) == (True, 3682, True)
        assert len(device.commands) == asked


async def test_tasmota_offline_silent_and_broker_gone(broker: Any, transports: Transports) -> None:
    device = await TasmotaEmulator(broker.url).start()
    try:
        driver = tasmota_driver(broker, transports, timeout_s=0.5)
        await driver.start()
        device.silent = True  # still Online, answers nothing
        with pytest.raises(DeviceUnreachable, match=r"no answer to POWER ON within 0.5 s"):
            await driver.set_enabled(True)
        with pytest.raises(DeviceUnreachable, match="no answer"):
            await tasmota_driver(broker, transports, timeout_s=0.5).read()
        device.silent = False

        device.silent = True
        asked = len(device.commands)
        switching = asyncio.create_task(driver.set_enabled(True))
        await until(lambda: device.commands[asked:] == [("POWER", "ON")])
        await device.announce()  # an answer, but OFF (an interlock, a rule): refused, not unreachable
        with pytest.raises(DeviceRefused, match=r"POWER ON: the relay stayed OFF"):
            await switching
        device.silent = False

        await device.power_cut()  # the broker publishes the last will
        await until(lambda: driver.online is False)
        with pytest.raises(DeviceUnreachable, match=r"tele/tasmota_A1B2C3/LWT says Offline"):
            await driver.read()
        await device.start()  # back: LWT Online
        await until(lambda: driver.online is True)
        assert (await driver.read()).energy_allowed is False

        await broker.stop()
        await until(lambda: not transports.mqtt(broker.url).connected)
        with pytest.raises(DeviceUnreachable, match="not connected"):
            await driver.read()
    finally:
        await device.stop()


async def test_tasmota_without_metering(broker: Any, transports: Transports) -> None:
    async with TasmotaEmulator(broker.url, metering=False) as device:
        with pytest.raises(DeviceRefused, match="infer_from_power: false"):
            await tasmota_driver(broker, transports).start()
        driver = tasmota_driver(broker, transports, infer_from_power=False)
        await driver.start()  # STATUS8 without ENERGY is an answer all the same
        await driver.set_enabled(True)
        reading = await driver.read()
        assert (reading.energy_allowed, reading.ev_requesting, reading.energy_wh) == (True, True, None)
        assert device.power == [True]


async def test_tasmota_second_relay_of_a_two_channel_device(broker: Any, transports: Transports) -> None:
    async with TasmotaEmulator(broker.url, relays=2) as device:
        driver = tasmota_driver(broker, transports, relay=2)
        await driver.set_enabled(True)
        assert device.power == [False, True] and device.commands[-1] == ("POWER2", "ON")
        reading = await driver.read()
        assert (reading.energy_allowed, reading.power_w) == (True, 0)  # channel 2 of Power [p1, p2]


# -- through the daemon ----------------------------------------------------------------------------------
async def test_remote_start_closes_the_relay_and_the_session_runs_on_its_meter(
    csms: StrictCentralSystem, tmp_path: Path
) -> None:
    load = EvLoad(energy_wh=102650.773, plugged=True, time_scale=100)  # ~100 Wh a second at 3.7 kW
    async with ShellyEmulator(load=load) as emulator:
        config = make_config(csms.url, tmp_path, charger={"type": "shelly", "url": emulator.url})
        async with running(config) as daemon:
            await csms.wait_for_call(
                "CP-1", "StatusNotification", lambda p: (p["connectorId"], p["status"]) == (1, "Available")
            )
            result = await csms.call("CP-1", call.RemoteStartTransaction(id_tag="REMOTE-1", connector_id=1))
            assert result.status == "Accepted"
            start = await csms.wait_for_call("CP-1", "StartTransaction", timeout=3)
            assert start["meterStart"] == 102650  # aenergy.total as integer Wh
            await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Charging")
            assert emulator.outputs == [True]
            assert ("Switch.Set", {"id": 0, "on": True}) in emulator.calls
            core = daemon.charge_points["CP-1"].connectors[1].core
            await csms.wait_until(lambda: core.meter_wh() > start["meterStart"], 3, "energy to be read")
            stopped = await csms.call(
                "CP-1", call.RemoteStopTransaction(transaction_id=csms.last_transaction_id)
            )
            assert stopped.status == "Accepted"
            stop = await csms.wait_for_call("CP-1", "StopTransaction")
            await csms.wait_for_call(
                "CP-1", "StatusNotification", lambda p: (p["connectorId"], p["status"]) == (1, "Available"),
                count=2,
            )  # fmt: skip
        assert emulator.outputs == [False]
    assert stop["meterStop"] > start["meterStart"]  # the Shelly's own counter, in Wh
    statuses = [p["status"] for p in csms.calls("CP-1", "StatusNotification") if p["connectorId"] == 1]
    # Energy offered before the vehicle draws is SuspendedEV; no Preparing (nothing waits for a plug)
    # and no Finishing (no unplug can be seen).
    assert [s for s in statuses if s != "SuspendedEV"] == ["Available", "Charging", "Available"]


async def test_a_relay_left_on_without_a_transaction_is_switched_off_at_start(
    csms: StrictCentralSystem, tmp_path: Path
) -> None:
    """After a crash of the bridge (or a power cut of the Pi alone) the relay may still be closed:
    no energy may flow without a transaction to account for it."""
    async with ShellyEmulator(load=EvLoad(energy_wh=5000.0, plugged=True)) as emulator:
        emulator.outputs[0] = True
        config = make_config(csms.url, tmp_path, charger={"type": "shelly", "url": emulator.url})
        async with running(config):
            await csms.wait_until(lambda: emulator.outputs == [False], what="the relay opened")
            await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)
    assert ("Switch.Set", {"id": 0, "on": False}) in emulator.calls
    assert csms.calls("CP-1", "StartTransaction") == []
