"""The OpenEVSE driver (adapters/chargers/openevse.py, its pure part openevse_api.py) against the OpenEVSE
emulator over real sockets: readings in the device's units, claims, the device's error replies, an
outage."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from adapters.base import (
    DeviceEvent,
    DeviceFault,
    DeviceRefused,
    DeviceUnreachable,
    Fault,
    FaultKind,
    NotSupportedByDevice,
)
from adapters.chargers.openevse import OpenEvseCharger, OpenEvseOptions
from adapters.chargers.openevse_api import Claim, answer_problem, claim_losers, fault_from, reading_from
from adapters.transports.pool import Transports
from bridge.config import ConfigError, parse_config
from bridge.core.device_errors import ocpp_fault
from tests.emulators.openevse import OVERRIDE_CLIENT, OpenEvseEmulator

Factory = Callable[..., Awaitable[OpenEvseEmulator]]
CLIENT = OpenEvseOptions().client_id


# -- pure mapping ------------------------------------------------------------------------------------


def read(**status: Any) -> tuple[bool | None, bool, bool]:
    r = reading_from({"status": "active", **status}, phases=1, was_plugged=False)
    return r.plugged, r.ev_requesting, r.energy_allowed


def test_evse_states_map_as_evcc_reads_them() -> None:
    assert read(state=1, vehicle=0) == (False, False, True)  # A
    assert read(state=2, vehicle=1) == (True, False, True)  # B, offered and not taken: SuspendedEV
    assert read(state=3, vehicle=1) == (True, True, True)  # C
    # Sleeping under a "disabled" claim: the vehicle's wish is unknown, taken to ask (SuspendedEVSE).
    assert read(state=254, vehicle=1, status="disabled") == (True, True, False)
    assert read(state=254, vehicle=0, status="disabled") == (False, False, False)
    assert read(state=255, vehicle=1, status="disabled") == (True, True, False)
    held = reading_from({"state": 0, "status": "active"}, phases=1, was_plugged=True)
    assert held.plugged is True and not held.energy_allowed  # starting up: the last plug state holds
    with pytest.raises(DeviceUnreachable, match="evse_connected=0"):
        reading_from({"state": 1, "evse_connected": 0}, phases=1, was_plugged=False)
    with pytest.raises(DeviceRefused, match="no EVSE state"):
        reading_from({"status": "active"}, phases=1, was_plugged=False)


def test_units_of_a_status_answer() -> None:
    status = {
        "state": 3, "status": "active", "vehicle": 1, "amp": 15_950, "voltage": 239.5, "power": 3820.0,
        "pilot": 16, "total_energy": 1234.5671, "frequency": 4998,
    }  # fmt: skip
    one = reading_from(status, phases=1, was_plugged=True)
    assert one.current_a == (15.95,) and one.voltage_v == (239.5,) and one.power_w == 3820.0
    assert one.energy_wh == 1_234_567.1 and one.frequency_hz == 49.98 and one.current_offered_a == 16.0
    three = reading_from(status, phases=3, was_plugged=True)
    assert three.current_a == (15.95, 15.95, 15.95) and three.voltage_v == (239.5,) * 3
    assert reading_from({**status, "frequency": None}, phases=1, was_plugged=True).frequency_hz is None


# Every EVSE fault state as StatusNotification carries it: (errorCode, info, vendorErrorCode).
FAULTS_ON_THE_WIRE = [
    (4, ("OtherError", "ventilation required", "state=4 vent required")),
    (5, ("EVCommunicationError", "vehicle diode check failed", "state=5 diode check failed")),
    (6, ("GroundFailure", "GFCI (residual current) tripped", "state=6 GFCI fault")),
    (7, ("GroundFailure", "no ground", "state=7 no ground")),
    (8, ("PowerSwitchFailure", "relay stuck closed", "state=8 stuck relay")),
    (9, ("GroundFailure", "GFCI self-test failed", "state=9 GFCI self-test failure")),
    (10, ("HighTemperature", "over temperature", "state=10 over temperature")),
    (11, ("OverCurrentFailure", "over current", "state=11 over current")),
]


@pytest.mark.parametrize(("state", "expected"), FAULTS_ON_THE_WIRE)
def test_each_fault_state_on_the_wire(state: int, expected: tuple[str, str, str]) -> None:
    fault = fault_from(state)
    assert fault is not None
    wire = ocpp_fault(fault)
    assert (wire.error_code, wire.info, wire.vendor_error_code) == expected
    reading = reading_from({"state": state, "status": "active", "vehicle": 1}, phases=1, was_plugged=False)
    assert reading.fault == fault and reading.plugged is True and not reading.energy_allowed


def test_no_other_state_is_a_fault() -> None:
    assert all(fault_from(s) is None for s in (0, 1, 2, 3, 12, 254, 255, None))


def test_claims_and_answers() -> None:
    assert Claim("disabled").body() == {"auto_release": False, "state": "disabled"}
    assert Claim("active", 10).body() == {
        "auto_release": False, "state": "active", "charge_current": 10, "max_current": 10,
    }  # fmt: skip
    assert Claim(None, 10).fields() == ["charge_current", "max_current"]
    assert answer_problem("POST /claims/1", 200, {"msg": "done"}) is None
    assert answer_problem("POST /claims/1", 400, {"msg": "Could not make claim"}) == (
        "POST /claims/1: HTTP 400 Could not make claim"
    )
    assert "authentication failed" in str(answer_problem("GET /status", 401, "Unauthorized"))
    assert "HTTP 429" in str(answer_problem("GET /status", 429, {"msg": "locked"}))
    target = {"properties": {}, "claims": {"state": 1000, "charge_current": 7}}
    assert claim_losers(target, Claim("active", 6), 7) == {"state": 1000, "max_current": None}
    assert claim_losers(target, Claim(None, None), 7) == {}
    with pytest.raises(DeviceRefused, match="without its claims"):
        claim_losers({"msg": "Not found"}, Claim("active"), 7)


def test_options_name_the_fix() -> None:
    assert OpenEvseOptions(url="http://192.0.2.9").validate() == []
    assert [f for f, _ in OpenEvseOptions().validate()] == ["url"]
    assert "url" in dict(OpenEvseOptions(url="http://u:p@h").validate())  # credentials stay out of URLs
    assert "password" in dict(OpenEvseOptions(url="http://h", username="admin").validate())
    assert "password" in dict(OpenEvseOptions(url="http://h", username="admin", password="").validate())
    assert "client_id" in dict(OpenEvseOptions(url="http://h", client_id=0).validate())
    assert "phases" in dict(OpenEvseOptions(url="http://h", phases=2).validate())
    assert "min_current_a" in dict(OpenEvseOptions(url="http://h", min_current_a=5).validate())
    assert "max_current_a" in dict(OpenEvseOptions(url="http://h", max_current_a=81).validate())
    assert "secret" not in repr(OpenEvseOptions(url="http://h", username="a", password="secret"))


def test_check_names_each_problem_with_its_line() -> None:
    text = "\n".join([
        "charge_points:",
        "  - id: X",
        "    csms_url: ws://127.0.0.1:9000/ocpp",
        "    connectors:",
        "      - id: 1",
        "        charger:",
        "          type: openevse",
        "          url: ftp://192.0.2.9",
        "          client_id: 0",
        "          max_current_a: 99",
    ])  # fmt: skip
    with pytest.raises(ConfigError) as info:
        parse_config(text, "openevse.yaml")
    lines = {p.path.rsplit(".", 1)[-1]: p.line for p in info.value.problems}
    assert lines == {"url": 8, "client_id": 9, "max_current_a": 10}
    assert "OpenEVSE takes 6 to 80 A" in str(info.value)


# -- against the emulator ----------------------------------------------------------------------------


@pytest.fixture
async def emulator() -> AsyncIterator[Factory]:
    started: list[OpenEvseEmulator] = []

    async def make(**kwargs: Any) -> OpenEvseEmulator:
        emu = OpenEvseEmulator(**kwargs)
        await emu.start()
        started.append(emu)
        return emu

    yield make
    for emu in started:
        await emu.close()


def openevse(transports: Transports, **options: Any) -> tuple[OpenEvseCharger, list[DeviceEvent]]:
    charger = OpenEvseCharger(OpenEvseOptions(**{"timeout_s": 1.0, **options}), transports)
    events: list[DeviceEvent] = []
    charger.set_listener(events.append)
    return charger, events


def posted(emu: OpenEvseEmulator) -> list[tuple[str, Any]]:
    return [(path, json.loads(body)) for method, path, body in emu.requests if method == "POST"]


async def test_reading_follows_the_vehicle_and_the_claims(emulator: Factory, transports: Transports) -> None:
    emu = await emulator()
    charger, _ = openevse(transports, url=emu.url)
    await charger.start()
    assert posted(emu) == []  # starting switches nothing
    first = await charger.read()
    # The box's default state is active; operated by the bridge it is disabled until a transaction,
    # from this very read on, and the reading says so.
    assert posted(emu) == [(f"/claims/{CLIENT}", {"auto_release": False, "state": "disabled"})]
    assert emu.claims[CLIENT][0] == 500  # an HTTP claim's priority
    assert (first.plugged, first.ev_requesting, first.energy_allowed) == (False, False, False)
    assert first.energy_wh == 1_234_567.0 and first.fault is None and first.current_offered_a == 0.0

    emu.plug()
    waiting = await charger.read()  # sleeping (254) with a vehicle: its wish is unknown
    assert (waiting.plugged, waiting.ev_requesting, waiting.energy_allowed) == (True, True, False)

    await charger.set_current(16.7)
    await charger.set_enabled(True)
    charging = await charger.read()
    assert (charging.plugged, charging.ev_requesting, charging.energy_allowed) == (True, True, True)
    assert emu.evse_state() == 3 and emu.amps() == 16.0
    assert charging.current_a == (16.0,) and charging.voltage_v == (240.0,)
    assert charging.power_w == 16 * 240 and charging.current_offered_a == 16.0
    # The current in whole amperes, as the offer and as the cap; the state kept.
    sixteen = {"charge_current": 16, "max_current": 16}
    assert posted(emu)[1:] == [
        (f"/claims/{CLIENT}", {"auto_release": False, "state": "disabled", **sixteen}),
        (f"/claims/{CLIENT}", {"auto_release": False, "state": "active", **sixteen}),
    ]
    await asyncio.sleep(1.2)  # 3.84 kW: a watt-hour in about a second
    assert (await charger.read()).energy_wh == int(emu.energy_wh) > 1_234_567  # the register moved

    emu.ev_request(False)  # the car is full: connected, not charging
    full = await charger.read()
    assert (full.plugged, full.ev_requesting, full.energy_allowed) == (True, False, True)
    await charger.set_enabled(False)
    assert emu.evse_state() == 254 and not emu.charging()
    emu.unplug()
    assert (await charger.read()).plugged is False


async def test_a_current_set_before_the_first_read_holds_the_box_too(
    emulator: Factory, transports: Transports
) -> None:
    emu = await emulator()
    emu.plug()
    charger, _ = openevse(transports, url=emu.url)
    await charger.set_current(10)
    assert not emu.charging()  # the box's default (active) never got to charge the car
    assert posted(emu) == [
        (
            f"/claims/{CLIENT}",
            {"auto_release": False, "state": "disabled", "charge_current": 10, "max_current": 10},
        )
    ]
    await charger.read()
    assert len(posted(emu)) == 1  # taken over already


async def test_a_probe_switches_nothing(emulator: Factory, transports: Transports) -> None:
    emu = await emulator()
    emu.plug()  # the box's default: active, so it charges
    charger = OpenEvseCharger(OpenEvseOptions(url=emu.url), transports)  # no listener: `ocpp-bridge probe`
    await charger.start()
    reading = await charger.read()
    assert (reading.ev_requesting, reading.energy_allowed, reading.power_w) == (True, True, 32 * 240)
    assert posted(emu) == [] and emu.claims == {}


async def test_a_higher_claim_overrules_the_bridge_and_says_so(
    emulator: Factory, transports: Transports
) -> None:
    emu = await emulator()
    charger, _ = openevse(transports, url=emu.url)
    await charger.read()
    emu.plug()
    emu.override({"state": "disabled"})  # someone pressed stop in the box's web page
    with pytest.raises(
        DeviceRefused, match=f"overrules the bridge's \\(state by client {OVERRIDE_CLIENT}\\)"
    ):
        await charger.set_enabled(True)
    assert not emu.charging()
    held = await charger.read()  # the reading says what the box does; claimed again, still overruled
    assert (held.plugged, held.energy_allowed) == (True, False)
    assert [p for p, _ in posted(emu)].count(f"/claims/{CLIENT}") == 3  # take-over, command, again
    emu.override(None)
    reading = await charger.read()  # the claim was kept: active now the override is gone
    assert reading.energy_allowed and emu.charging()


async def test_a_forgotten_claim_is_made_again(emulator: Factory, transports: Transports) -> None:
    emu = await emulator()
    charger, _ = openevse(transports, url=emu.url)
    await charger.read()
    emu.plug()
    await charger.reset(hard=False)  # the gateway restarts and forgets its claims: default active
    assert emu.restarts == ["gateway"] and emu.claims == {}
    reading = await charger.read()
    assert not reading.energy_allowed and not emu.charging()  # claimed disabled again at once
    assert emu.claims[CLIENT][1]["state"] == "disabled"
    await charger.reset(hard=True)
    assert emu.restarts == ["gateway", "evse"] and CLIENT in emu.claims


async def test_a_claim_with_no_answer_is_the_one_claimed_again_after_a_restart(
    emulator: Factory, transports: Transports
) -> None:
    emu = await emulator()
    charger, _ = openevse(transports, url=emu.url, timeout_s=0.5)
    await charger.read()
    emu.plug()
    await charger.set_enabled(True)
    assert emu.charging()
    emu.silent = True  # the stop gets no answer
    with pytest.raises(DeviceUnreachable):
        await charger.set_enabled(False)
    emu.silent = False
    await charger.reset(hard=False)  # the gateway restarts and forgets its claims: default active
    assert emu.restarts == ["gateway"]
    reading = await charger.read()
    # The bridge's last word was "disabled": that is what it claims again, not the "active" before it.
    assert posted(emu)[-1] == (f"/claims/{CLIENT}", {"auto_release": False, "state": "disabled"})
    assert emu.claims[CLIENT][1]["state"] == "disabled"
    assert not reading.energy_allowed and not emu.charging()


async def test_the_devices_error_replies_are_refusals(emulator: Factory, transports: Transports) -> None:
    emu = await emulator()
    charger, _ = openevse(transports, url=emu.url)
    await charger.read()
    for other in range(1, 10):  # nine other clients: with the bridge's, ten claims, the most it keeps
        emu.claims[other] = (500, {"charge_current": 10})
    await charger.set_current(8)  # the bridge's claim exists: it is updated
    del emu.claims[CLIENT]
    emu.claims[10] = (500, {})
    with pytest.raises(DeviceRefused, match="HTTP 400 Could not make claim"):
        await charger.set_current(8)
    emu.claims[10] = (500, {"state": "disabled"})  # another client holds the box off
    with pytest.raises(DeviceRefused, match="HTTP 400 Could not make claim"):
        await charger.set_enabled(True)
    sent = len(posted(emu))
    reading = await charger.read()  # a refused claim is not the bridge's word: nothing to claim again
    assert not reading.energy_allowed and len(posted(emu)) == sent
    emu.claims.clear()
    with pytest.raises(NotSupportedByDevice):
        await charger.set_phases(1)
    with pytest.raises(NotSupportedByDevice):
        await charger.unlock()

    async with aiohttp.ClientSession() as session:  # the replies themselves, as the driver gets them
        async with session.post(emu.url + f"/claims/{CLIENT}", data="{not json") as r:
            assert (r.status, await r.json()) == (400, {"msg": "Could not parse JSON"})
        async with session.get(emu.url + "/claims/424242") as r:
            assert (r.status, await r.json()) == (404, {"msg": "Not found"})
        async with session.post(emu.url + "/claims", data="{}") as r:
            assert r.status == 405
        async with session.get(emu.url + "/override") as r:
            assert r.status == 404


async def test_basic_auth_and_its_lockout(emulator: Factory, transports: Transports) -> None:
    emu = await emulator(credentials=("admin", "s3cret-pw"))
    good, _ = openevse(transports, url=emu.url, username="admin", password="s3cret-pw")
    assert (await good.read()).energy_wh is not None
    bad, _ = openevse(transports, url=emu.url, username="admin", password="wrong-pw")
    for _ in range(5):
        with pytest.raises(DeviceRefused, match="authentication failed") as refused:
            await bad.read()
        assert "wrong-pw" not in str(refused.value)
    with pytest.raises(DeviceRefused, match="HTTP 429"):  # throttled: even the right password waits
        await good.read()


async def test_faults_and_an_outage(emulator: Factory, transports: Transports) -> None:
    emu = await emulator()
    charger, _ = openevse(transports, url=emu.url, timeout_s=0.3)
    await charger.read()
    emu.plug()
    emu.set_fault(7)
    reading = await charger.read()
    assert reading.fault == Fault(FaultKind.GROUND_FAULT, "no ground", "state=7 no ground")
    assert ocpp_fault(reading.fault) == DeviceFault("GroundFailure", "no ground", "state=7 no ground")
    assert reading.plugged is True
    emu.set_fault(0)
    emu.evse_connected = False
    with pytest.raises(DeviceUnreachable, match="evse_connected=0"):
        await charger.read()
    emu.evse_connected = True
    emu.silent = True
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(DeviceUnreachable, match="no answer"):
        await charger.read()
    with pytest.raises(DeviceUnreachable):
        await charger.set_enabled(True)
    assert loop.time() - began < 1.5  # each request gives up after timeout_s
    emu.silent = False
    back = await charger.read()  # and back
    assert back.plugged is True and back.fault is None
    await charger.set_enabled(True)
    assert emu.charging()
    await emu.close()
    with pytest.raises(DeviceUnreachable):  # connection refused
        await charger.read()
