"""The OpenEVSE MQTT driver (adapters/chargers/openevse_mqtt.py, its pure part openevse_api.py) against
the gateway's MQTT emulator (tests/emulators/openevse_mqtt.py) through a real mosquitto: readings in
the device's units, claims and their acknowledgement, an overruled claim, a forgotten claim, the last
will as an outage, and the pushes that let the bridge read it only on its changes."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from adapters.base import DeviceEvent, DeviceRefused, DeviceUnreachable, NotSupportedByDevice, StateChanged
from adapters.chargers.openevse_api import (
    Claim,
    announced,
    claim_unmet,
    holds_claim,
    mqtt_value,
    override_takes,
    shows_claim,
)
from adapters.chargers.openevse_mqtt import OpenEvseMqttCharger, OpenEvseMqttOptions
from adapters.transports.pool import Transports
from bridge.config import ConfigError, parse_config
from tests.emulators.openevse import OVERRIDE_CLIENT, OpenEvseEmulator
from tests.emulators.openevse_mqtt import MQTT_CLIENT, OpenEvseMqttEmulator
from tests.helpers.parts import until
from tests.mosquitto import Broker

BASE = "openevse-55ad"

# -- pure mapping ------------------------------------------------------------------------------------


def test_payloads_and_documents() -> None:
    assert mqtt_value(b"3") == 3 and mqtt_value(b"1234.567") == 1234.567 and mqtt_value(b"false") is False
    assert mqtt_value(b"active") == "active" and mqtt_value(b'"x"') == '"x"' and mqtt_value(b"{}") == "{}"
    claim = Claim("active", 10)
    ack = {"priority": 500, "auto_release": False, "state": "active", "charge_current": 10, "max_current": 10}
    assert shows_claim(ack, claim) and not shows_claim({**ack, "charge_current": 16}, claim)
    assert not shows_claim({"state": "null"}, Claim("disabled")) and not holds_claim({"state": "null"})
    assert holds_claim({"state": "disabled"}) and not holds_claim(None)
    assert override_takes({"state": "disabled"}, claim) == ["state"]
    assert override_takes({"charge_current": 32}, claim) == ["charge_current"]
    assert override_takes({"state": "null"}, claim) == [] and override_takes(None, claim) == []
    assert claim_unmet({"status": "active", "max_current": 10}, claim) == []
    assert claim_unmet({"status": "disabled", "max_current": 16}, claim) == [
        "status=disabled",
        "max_current=16",
    ]
    assert announced({"state": "connected"}) is True and announced({"state": "disconnected"}) is False
    assert announced(None) is None and announced({"state": 1}) is None


def test_options_name_the_fix() -> None:
    ok = {"broker": "mqtt://192.0.2.5", "base_topic": BASE}
    assert OpenEvseMqttOptions(**ok).validate() == []
    assert [f for f, _ in OpenEvseMqttOptions().validate()] == ["broker", "base_topic"]
    assert "broker" in dict(OpenEvseMqttOptions(**{**ok, "broker": "http://h"}).validate())
    for bad in ("a/+", "emon/#", "/openevse", "openevse/", "a b"):
        assert "base_topic" in dict(OpenEvseMqttOptions(**{**ok, "base_topic": bad}).validate())
    assert OpenEvseMqttOptions(**{**ok, "base_topic": "emon/openevse-55ad"}).validate() == []
    assert "stale_after_s" in dict(OpenEvseMqttOptions(**ok, stale_after_s=1).validate())
    assert "max_current_a" in dict(OpenEvseMqttOptions(**ok, max_current_a=81).validate())
    secret = OpenEvseMqttOptions(broker="mqtt://u:s3cret@h", base_topic=BASE, timeout_s=0)
    assert "s3cret" not in str(secret.validate())


def test_check_names_each_problem_with_its_line() -> None:
    text = "\n".join([
        "charge_points:",
        "  - id: X",
        "    csms_url: ws://127.0.0.1:9000/ocpp",
        "    connectors:",
        "      - id: 1",
        "        charger:",
        "          type: openevse-mqtt",
        "          broker: mqtt://user:pw@192.0.2.5:99999",
        "          base_topic: openevse/#",
        "          phases: 2",
    ])  # fmt: skip
    with pytest.raises(ConfigError) as info:
        parse_config(text, "openevse-mqtt.yaml")
    lines = {p.path.rsplit(".", 1)[-1]: p.line for p in info.value.problems}
    assert lines == {"broker": 8, "base_topic": 9, "phases": 10}
    assert "pw" not in str(info.value).replace("phases", "")
    # As go-e takes it, `transport: mqtt` under the HTTP type: the fix is named.
    http = text.replace("type: openevse-mqtt", "type: openevse\n          url: http://192.0.2.9")
    with pytest.raises(
        ConfigError, match=r"transport: OpenEVSE over MQTT is its own type: type: openevse-mqtt"
    ):
        parse_config(http.replace("broker: mqtt://user:pw@192.0.2.5:99999", "transport: mqtt"), "x.yaml")


# -- against the emulator ----------------------------------------------------------------------------


@pytest.fixture
async def box(broker: Broker) -> AsyncIterator[OpenEvseMqttEmulator]:
    emu = OpenEvseMqttEmulator(broker.url, BASE, box=OpenEvseEmulator(voltage=240.0))
    await emu.start()
    yield emu
    await emu.stop()


def openevse(
    transports: Transports, broker: Broker, listen: bool = True, **options: Any
) -> tuple[OpenEvseMqttCharger, list[DeviceEvent]]:
    opts = OpenEvseMqttOptions(**{"broker": broker.url, "base_topic": BASE, "timeout_s": 1.0, **options})
    charger = OpenEvseMqttCharger(opts, transports)
    events: list[DeviceEvent] = []
    if listen:
        charger.set_listener(events.append)
    return charger, events


def claims_sent(emu: OpenEvseMqttEmulator) -> list[dict[str, Any]]:
    return [json.loads(p) for name, p in emu.commands if name == "claim/set"]


async def soon(predicate: Callable[[], bool], what: str) -> None:
    """Waits for what the emulator publishes to reach the driver (or the reverse)."""
    await until(predicate, what, timeout_s=3.0)


async def test_reading_follows_the_vehicle_and_the_claims(
    box: OpenEvseMqttEmulator, broker: Broker, transports: Transports
) -> None:
    charger, events = openevse(transports, broker)
    assert charger.reports_changes  # read on its pushes, not polled
    await charger.start()
    assert box.commands == []  # starting switches nothing
    first = await charger.read()
    # Operated by the bridge, the box is disabled until a transaction, from this very read on.
    assert claims_sent(box) == [{"auto_release": False, "state": "disabled"}]
    assert box.box.claims[MQTT_CLIENT] == (500, {"auto_release": False, "state": "disabled"})
    assert (first.plugged, first.ev_requesting, first.energy_allowed) == (False, False, False)
    assert first.energy_wh == 1_234_567.0 and first.fault is None and first.current_offered_a == 0.0

    events.clear()
    box.box.plug()
    await soon(lambda: StateChanged() in events, "a push on the plug")
    waiting = await charger.read()  # sleeping (254) with a vehicle: its wish is unknown
    assert (waiting.plugged, waiting.ev_requesting, waiting.energy_allowed) == (True, True, False)

    await charger.set_current(16.7)
    await charger.set_enabled(True)
    charging = await charger.read()  # the command returned once the status showed it
    assert (charging.plugged, charging.ev_requesting, charging.energy_allowed) == (True, True, True)
    assert box.box.evse_state() == 3 and box.box.amps() == 16.0
    assert charging.current_a == (16.0,) and charging.voltage_v == (240.0,)
    assert charging.power_w == 16 * 240 and charging.current_offered_a == 16.0
    sixteen = {"charge_current": 16, "max_current": 16}
    assert claims_sent(box)[1:] == [
        {"auto_release": False, "state": "disabled", **sixteen},
        {"auto_release": False, "state": "active", **sixteen},
    ]
    await asyncio.sleep(1.2)  # 3.84 kW: a watt-hour in about a second, published as it changes
    assert (await charger.read()).energy_wh == box.reported_energy_wh[-1] > 1_234_567

    box.box.ev_request(False)  # the car is full: connected, not charging
    await soon(lambda: charger.values.get("state") == 2, "state 2 published")
    full = await charger.read()
    assert (full.plugged, full.ev_requesting, full.energy_allowed) == (True, False, True)
    await charger.set_enabled(False)
    assert box.box.evse_state() == 254 and not box.box.charging()
    with pytest.raises(NotSupportedByDevice):
        await charger.set_phases(1)
    with pytest.raises(NotSupportedByDevice):
        await charger.unlock()
    await charger.close()


async def test_a_probe_switches_nothing(
    box: OpenEvseMqttEmulator, broker: Broker, transports: Transports
) -> None:
    box.box.plug()  # the box's default: active, so it charges
    await soon(lambda: box.published.get("state") == "3", "charging published")
    charger, _ = openevse(transports, broker, listen=False)  # no listener: `ocpp-bridge probe`
    await charger.start()
    reading = await charger.read()
    assert (reading.ev_requesting, reading.energy_allowed, reading.power_w) == (True, True, 32 * 240)
    assert box.commands == [] and box.box.claims == {}


async def test_an_overruled_claim_says_so(
    box: OpenEvseMqttEmulator, broker: Broker, transports: Transports
) -> None:
    charger, _ = openevse(transports, broker)
    await charger.read()
    box.box.plug()
    box.box.override({"state": "disabled"})  # someone pressed stop in the box's web page
    # Published before the claim is acknowledged, so the driver has it when the ack arrives.
    await soon(lambda: json.loads(box.published["override"]) == {"state": "disabled"}, "override out")
    with pytest.raises(DeviceRefused, match=r"manual override \(priority 1000\) overrules .*state=disabled"):
        await charger.set_enabled(True)
    assert box.box.claims[MQTT_CLIENT][1]["state"] == "active"  # the claim is made, and loses
    assert not box.box.charging()
    held = await charger.read()  # the reading says what the box does
    assert (held.plugged, held.energy_allowed) == (True, False)
    box.box.override(None)
    await soon(lambda: box.box.charging(), "charging once the override is gone")
    await soon(lambda: charger.values.get("status") == "active", "status active published")
    assert (await charger.read()).energy_allowed
    # A higher claim the gateway does not publish (its RFID, 1030): the status does not follow.
    box.box.claims[0x00010003] = (1030, {"state": "disabled"})
    await soon(lambda: charger.values.get("status") == "disabled", "status disabled published")
    with pytest.raises(DeviceRefused, match="status=disabled after the bridge's claim"):
        await charger.set_enabled(True)
    del box.box.claims[0x00010003]
    box.box.claims[OVERRIDE_CLIENT] = (1000, {"charge_current": 32, "max_current": 32})
    await soon(lambda: "charge_current" in box.published["override"], "the new override out")
    with pytest.raises(DeviceRefused, match="charge_current=32, max_current=32"):
        await charger.set_current(10)
    await charger.close()


async def test_a_forgotten_claim_is_made_again(
    box: OpenEvseMqttEmulator, broker: Broker, transports: Transports
) -> None:
    charger, events = openevse(transports, broker)
    await charger.read()
    box.box.plug()
    events.clear()
    await charger.reset(hard=False)  # the gateway restarts: last will, back, claims forgotten
    await soon(lambda: box.box.restarts == ["gateway"], "the restart command")
    await soon(lambda: charger.online is False, "its last will")
    with pytest.raises(DeviceUnreachable, match="last will on openevse/announce/55ad says disconnected"):
        await charger.read()
    await soon(lambda: charger.online is True and box.connected.is_set(), "back")
    assert StateChanged() in events
    # The box's default state without claims, published after its empty claim document.
    await soon(lambda: charger.values.get("status") == "active", "active, as after a restart")
    reading = await charger.read()
    assert not reading.energy_allowed and not box.box.charging()  # claimed disabled again at once
    assert box.box.claims[MQTT_CLIENT][1]["state"] == "disabled"
    await charger.reset(hard=True)
    await soon(lambda: box.box.restarts == ["gateway", "evse"], "the evse restart")
    await charger.close()


async def test_a_claim_with_no_acknowledgement_is_the_one_claimed_again_after_a_restart(
    box: OpenEvseMqttEmulator, broker: Broker, transports: Transports
) -> None:
    charger, _ = openevse(transports, broker, timeout_s=0.5)
    await charger.read()
    box.box.plug()
    await charger.set_enabled(True)
    assert box.box.charging()
    box.silent = True  # the stop is heard by nobody: no acknowledgement
    with pytest.raises(DeviceRefused, match="no acknowledgement"):
        await charger.set_enabled(False)
    box.silent = False
    await charger.reset(hard=False)  # the gateway restarts and forgets its claims: default active
    await soon(lambda: box.box.restarts == ["gateway"], "the restart command")
    await soon(lambda: charger.online is False, "its last will")
    await soon(lambda: charger.online is True and box.connected.is_set(), "back")
    await soon(lambda: charger.values.get("status") == "active", "active, as after a restart")
    reading = await charger.read()
    # The bridge's last word was "disabled": that is what it claims again, not the "active" before it.
    assert claims_sent(box)[-1]["state"] == "disabled"
    assert box.box.claims[MQTT_CLIENT][1]["state"] == "disabled"
    assert not reading.energy_allowed and not box.box.charging()
    await charger.close()


async def test_outage_and_back(box: OpenEvseMqttEmulator, broker: Broker, transports: Transports) -> None:
    charger, events = openevse(transports, broker, timeout_s=0.5)
    # The coordinator runs the background jobs; here the test does.
    jobs = [asyncio.create_task(job()) for job in charger.background()]
    try:
        await outage_and_back(box, broker, charger, events)
    finally:
        for job in jobs:
            job.cancel()
        await charger.close()


async def outage_and_back(
    box: OpenEvseMqttEmulator, broker: Broker, charger: OpenEvseMqttCharger, events: list[DeviceEvent]
) -> None:
    await charger.read()
    box.box.plug()
    await charger.set_enabled(True)
    box.box.set_fault(7)
    await soon(lambda: charger.values.get("state") == 7, "the fault published")
    faulted = await charger.read()
    assert faulted.fault is not None and faulted.fault.vendor_code == "state=7 no ground"
    box.box.set_fault(0)
    box.box.evse_connected = False
    await soon(lambda: charger.values.get("evse_connected") == 0, "evse_connected=0 published")
    with pytest.raises(DeviceUnreachable, match="evse_connected=0"):
        await charger.read()
    box.box.evse_connected = True
    # Its controller back before the power cut: else the read below may still see evse_connected=0,
    # an outage too, but not the one this step is about.
    await soon(lambda: charger.values.get("evse_connected") == 1, "evse_connected=1 published")

    events.clear()
    await box.power_cut()  # the broker publishes the last will
    await soon(lambda: StateChanged() in events, "a push on the last will")
    with pytest.raises(DeviceUnreachable, match="says disconnected"):
        await charger.read()
    with pytest.raises(DeviceUnreachable):
        await charger.set_enabled(False)
    await box.start()
    await soon(lambda: charger.online is True, "announced again")
    back = await charger.read()
    assert back.energy_allowed and box.box.charging()  # the claim held through the outage

    box.silent = True  # connected, announced, and saying nothing
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(DeviceRefused, match="did not take the claim: no acknowledgement"):
        await charger.set_current(10)
    assert loop.time() - began < 1.5
    box.silent = False

    events.clear()
    await broker.stop()  # the bridge's own broker goes away: the watchdog pushes, reads fail
    await until(lambda: StateChanged() in events, "a push on the broker's loss", timeout_s=4)
    # A stopping mosquitto may first hand on the gateway's last will, which the bridge's client can
    # read before it sees its own connection go: an outage either way, and then the broker's loss.
    deadline = loop.time() + 4
    while True:
        with pytest.raises(DeviceUnreachable) as raised:
            await charger.read()
        if re.search(r"not (connected|reachable)", str(raised.value)):
            break
        assert "says disconnected" in str(raised.value) and loop.time() < deadline, str(raised.value)
        await asyncio.sleep(0.05)
    await broker.restart()  # without persistence: the retained values are gone with it
    await box.start()  # the gateway connects again and publishes everything
    await until(lambda: charger.online is True and "state" in charger.values, "back on the broker", 5)
    again = await charger.read()
    assert again.energy_allowed and again.plugged


async def test_silence_is_an_outage_only_when_asked(
    box: OpenEvseMqttEmulator, broker: Broker, transports: Transports
) -> None:
    now = [1000.0]
    opts = OpenEvseMqttOptions(broker=broker.url, base_topic=BASE, timeout_s=1.0, stale_after_s=30)
    charger = OpenEvseMqttCharger(opts, transports, clock=lambda: now[0])
    plain, _ = openevse(transports, broker, listen=False)
    await charger.start()
    await plain.start()
    now[0] += 31  # the gateway said nothing for 31 s
    with pytest.raises(DeviceUnreachable, match=r"no message on openevse-55ad/\+ for 31 s"):
        await charger.read()
    assert (await plain.read()).plugged is False  # without stale_after_s: only the last will counts
    box.box.plug()
    await soon(lambda: charger.values.get("vehicle") == 1, "a message")
    assert (await charger.read()).plugged
    await charger.close()
    await plain.close()


async def test_a_gateway_gone_before_the_bridge_came_is_not_read_from_old_values(
    box: OpenEvseMqttEmulator, broker: Broker, transports: Transports
) -> None:
    await box.power_cut()  # its retained values stay on the broker; its last will replaces the announcement
    charger, _ = openevse(transports, broker, timeout_s=0.3)
    with pytest.raises(DeviceUnreachable, match="no announcement on openevse/announce/\\+ naming base topic"):
        await charger.start()
    assert "state" in charger.values  # the old values were there
    await box.start()
    await charger.start()
    assert charger.online is True
    await charger.close()


async def test_no_state_on_the_base_topic_names_the_fix(broker: Broker, transports: Transports) -> None:
    charger, _ = openevse(transports, broker, base_topic="openevse-none", timeout_s=0.3)
    with pytest.raises(DeviceUnreachable, match=r"no EVSE state on openevse-none/state .*mqtt_retained"):
        await charger.start()
    await charger.close()
