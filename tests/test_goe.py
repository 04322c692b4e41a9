"""The go-e driver (adapters/chargers/goe.py, its pure part goe_api.py) against the go-e emulator, over
real sockets and a real broker."""

from __future__ import annotations

import asyncio
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
    StateChanged,
    TagPresented,
)
from adapters.chargers.goe import GoeCharger, GoeOptions
from adapters.chargers.goe_api import (
    ERRORS_V1,
    ERRORS_V2,
    CarState,
    car_state,
    fault_from,
    filter_query,
    new_card_slot,
    reading_from,
    set_answer_problem,
    set_query,
    tag_for_card,
    v1_to_v2,
)
from adapters.transports.pool import Transports
from bridge.core.device_errors import ocpp_fault
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.emulators.goe import GoeEmulator

Factory = Callable[..., Awaitable[GoeEmulator]]


# -- pure mapping ------------------------------------------------------------------------------------


def test_car_state_maps_to_plug_and_request() -> None:
    assert car_state(1) == CarState(plugged=False, ev_requesting=False)  # Idle
    assert car_state(2) == CarState(plugged=True, ev_requesting=True)  # Charging
    assert car_state(3) == car_state(4) == CarState(plugged=True, ev_requesting=False)  # WaitCar, Complete
    for unknown in (0, 5, 6, None):  # Error, Error, Initializing: the last known plug state holds
        assert car_state(unknown).plugged is None


def test_wait_car_is_a_car_asking_only_while_go_e_holds_energy_back() -> None:
    def read(**values: Any) -> tuple[bool | None, bool, bool]:
        r = reading_from(values, phases=3, was_plugged=False)
        return r.plugged, r.ev_requesting, r.energy_allowed

    assert read(car=3, alw=False) == (True, True, False)  # the car's wish is unknown: IEC state B
    assert read(car=3, alw=True) == (True, False, True)  # offered, not taken: SuspendedEV
    assert read(car=4, alw=False) == (True, False, False)  # Complete
    assert read(car=2, frc=2) == (True, True, True)  # no alw in the answer: what was forced
    assert reading_from({"car": 5, "err": 0}, phases=3, was_plugged=True).plugged is True
    with pytest.raises(DeviceUnreachable, match="car=null"):
        reading_from({"car": None}, phases=3, was_plugged=False)


def wire(err: Any, car: Any, table: Any) -> DeviceFault | None:
    """go-e's fault as the central system sees it (through the one mapping, bridge.core.device_errors)."""
    fault = fault_from(err, car, table)
    return None if fault is None else ocpp_fault(fault)


def test_err_uses_the_firmware_export_numbering() -> None:
    assert fault_from(0, 2, ERRORS_V2) is None
    assert fault_from(16, 5, ERRORS_V2) == Fault(
        FaultKind.OVER_TEMPERATURE, "overtemperature", "err=16 Overtemp"
    )
    assert wire(16, 5, ERRORS_V2) == DeviceFault("HighTemperature", "overtemperature", "err=16 Overtemp")
    assert wire(1, 5, ERRORS_V2).error_code == "GroundFailure"  # type: ignore[union-attr]
    assert wire(4, 5, ERRORS_V2).error_code == "OverVoltage"  # type: ignore[union-attr]
    assert wire(5, 5, ERRORS_V2).error_code == "OverCurrentFailure"  # type: ignore[union-attr]
    assert wire(9, 5, ERRORS_V2).error_code == "PowerSwitchFailure"  # type: ignore[union-attr]
    assert wire(13, 5, ERRORS_V2).error_code == "ConnectorLockFailure"  # type: ignore[union-attr]
    assert wire(11, 5, ERRORS_V2) == DeviceFault("OtherError", "go-e error", "err=11 ?")
    assert wire(0, 5, ERRORS_V2) == DeviceFault("OtherError", "go-e reports car state Error", "car=5")
    assert wire("8", "5", ERRORS_V1) == DeviceFault(
        "GroundFailure", "protective earth missing", "err=8 NO_GROUND"
    )


# Every go-e error number as StatusNotification carries it: (errorCode, info, vendorErrorCode).
GOE_ERRORS_ON_THE_WIRE: list[tuple[Any, int, tuple[str, str, str]]] = [
    (ERRORS_V2, 1, ("GroundFailure", "residual current (AC)", "err=1 FiAc")),
    (ERRORS_V2, 2, ("GroundFailure", "residual current (DC)", "err=2 FiDc")),
    (ERRORS_V2, 3, ("OtherError", "phase fault", "err=3 Phase")),
    (ERRORS_V2, 4, ("OverVoltage", "overvoltage", "err=4 Overvolt")),
    (ERRORS_V2, 5, ("OverCurrentFailure", "overcurrent", "err=5 Overamp")),
    (ERRORS_V2, 6, ("EVCommunicationError", "vehicle diode check failed", "err=6 Diode")),
    (ERRORS_V2, 7, ("EVCommunicationError", "invalid proximity pilot (cable)", "err=7 PpInvalid")),
    (ERRORS_V2, 8, ("GroundFailure", "protective earth missing or invalid", "err=8 GndInvalid")),
    (ERRORS_V2, 9, ("PowerSwitchFailure", "contactor stuck closed", "err=9 ContactorStuck")),
    (ERRORS_V2, 10, ("PowerSwitchFailure", "contactor did not close", "err=10 ContactorMiss")),
    (ERRORS_V2, 12, ("ConnectorLockFailure", "cable lock stuck open", "err=12 StatusLockStuckOpen")),
    (ERRORS_V2, 13, ("ConnectorLockFailure", "cable lock stuck locked", "err=13 StatusLockStuckLocked")),
    (ERRORS_V2, 14, ("GroundFailure", "residual current device fault", "err=14 FiUnknown")),
    (ERRORS_V2, 15, ("OtherError", "unknown error", "err=15 Unknown")),
    (ERRORS_V2, 16, ("HighTemperature", "overtemperature", "err=16 Overtemp")),
    (ERRORS_V2, 17, ("InternalError", "no communication with charge controller", "err=17 NoComm")),
    (ERRORS_V2, 18, ("EVCommunicationError", "invalid control pilot signal", "err=18 CpInvalid")),
    (ERRORS_V2, 23, ("InternalError", "DC residual current self-test failed", "err=23 RdcSelfTestFailed")),
    (ERRORS_V1, 1, ("GroundFailure", "residual current", "err=1 RCCB")),
    (ERRORS_V1, 3, ("OtherError", "phase fault", "err=3 PHASE")),
    (ERRORS_V1, 8, ("GroundFailure", "protective earth missing", "err=8 NO_GROUND")),
    (ERRORS_V1, 10, ("InternalError", "internal error", "err=10 INTERNAL")),
]


@pytest.mark.parametrize(("table", "err", "expected"), GOE_ERRORS_ON_THE_WIRE)
def test_each_go_e_error_on_the_wire(table: Any, err: int, expected: tuple[str, str, str]) -> None:
    fault = wire(err, 2, table)
    assert fault is not None and (fault.error_code, fault.info, fault.vendor_error_code) == expected


def test_every_go_e_error_number_has_its_row() -> None:
    rows = {(id(table), err) for table, err, _ in GOE_ERRORS_ON_THE_WIRE}
    assert rows == {(id(t), n) for t in (ERRORS_V2, ERRORS_V1) for n in t}


def test_v1_strings_and_units_become_v2() -> None:
    v1 = {
        "car": "2", "alw": "1", "amp": "16", "err": "0", "eto": "1234", "uby": "0",
        "nrg": [230, 231, 229, 0, 160, 161, 159, 37, 37, 37, 0, 1104, 99, 99, 99, 0],
    }  # fmt: skip
    v2 = v1_to_v2(v1)
    assert v2["car"] == 2 and v2["alw"] is True and v2["amp"] == 16 and v2["err"] == 0 and v2["trx"] == 0
    assert v2["eto"] == 123_400  # 0.1 kWh
    assert v2["nrg"][4:7] == [16.0, 16.1, 15.9]  # 0.1 A
    assert v2["nrg"][7] == 3700  # 0.1 kW
    assert v2["nrg"][11] == 11_040  # 0.01 kW


def test_query_encoding() -> None:
    assert filter_query(("car", "alw"), "csv") == "filter=car,alw"
    assert filter_query(("car", "alw"), "json") == 'filter=["car","alw"]'
    assert set_query("frc", 2) == "frc=2"
    assert set_query("ocppe", False) == "ocppe=false"
    assert set_query("fna", "my charger") == 'fna="my%20charger"'
    assert set_answer_problem("amp", 200, {"amp": True}) is None
    assert set_answer_problem("amp", 200, {"amp": "value must be integer"}) == "value must be integer"
    assert "HTTP 404" in (set_answer_problem("amp", 404, "Not Found") or "")


def test_card_tags_and_taps() -> None:
    assert tag_for_card(2, "User 2", {}) == "User 2"
    assert tag_for_card(2, "User 2", {"User 2": "04A1B2C3"}) == "04A1B2C3"
    assert tag_for_card(2, None, {"2": "TAG-2"}) == "TAG-2"
    assert tag_for_card(3, None, {}) == "go-e card 3"
    assert tag_for_card(1, "A very long card name indeed", {}) == "A very long card nam"  # CiString20
    assert new_card_slot(None, 1) == 1 and new_card_slot(0, 2) == 2
    assert new_card_slot(1, 1) is None and new_card_slot(None, 0) is None and new_card_slot(1, None) is None


def test_options_name_the_fix() -> None:
    assert GoeOptions(url="http://192.0.2.7").validate() == []
    assert [f for f, _ in GoeOptions().validate()] == ["url"]
    mqtt = dict(GoeOptions(transport="mqtt").validate())
    assert "broker" in mqtt and "serial" in mqtt
    assert "api" in dict(GoeOptions(url="http://h", api="v3").validate())
    assert "transport" in dict(
        GoeOptions(transport="mqtt", api="v1", broker="mqtt://b", serial="1").validate()
    )
    assert "url" in dict(GoeOptions(url="ftp://h").validate())
    assert "min_current_a" in dict(GoeOptions(url="http://h", max_current_a=40).validate())


# -- over HTTP ---------------------------------------------------------------------------------------


@pytest.fixture
async def emulator() -> AsyncIterator[Factory]:
    started: list[GoeEmulator] = []

    async def make(**kwargs: Any) -> GoeEmulator:
        emu = GoeEmulator(**kwargs)
        await emu.start_http()
        started.append(emu)
        return emu

    yield make
    for emu in started:
        await emu.close()


def goe(transports: Transports, **options: Any) -> tuple[GoeCharger, list[DeviceEvent]]:
    charger = GoeCharger(GoeOptions(**{"timeout_s": 1.0, **options}), transports)
    events: list[DeviceEvent] = []
    charger.set_listener(events.append)
    return charger, events


async def test_v2_reading_follows_the_car(emulator: Factory, transports: Transports) -> None:
    emu = await emulator()
    charger, _ = goe(transports, url=emu.url)
    await charger.start()
    assert emu.received == []  # probing switches nothing
    first = await charger.read()
    # go-e's own logic had energy allowed (neutral force state, open access); operated by the
    # bridge it is Off until a transaction, from this very read on, and the reading says so.
    assert emu.received == [("frc", "1")]
    assert not first.energy_allowed
    idle = await charger.read()
    assert all(r.startswith("/api/status?filter=car,") for r in emu.requests if "status" in r)
    assert (idle.plugged, idle.ev_requesting, idle.energy_allowed) == (False, False, False)
    assert idle.energy_wh == 123_456 and idle.fault is None and idle.current_offered_a == 0.0

    emu.plug()
    waiting = await charger.read()  # car=3 WaitCar under force state Off: the car's wish is unknown
    assert (waiting.plugged, waiting.ev_requesting, waiting.energy_allowed) == (True, True, False)

    await charger.set_enabled(True)
    charging = await charger.read()
    assert (charging.plugged, charging.ev_requesting, charging.energy_allowed) == (True, True, True)
    assert charging.voltage_v == (230.0, 231.0, 229.0) and charging.current_a == (16.0, 16.0, 16.0)
    assert charging.power_w == 3 * 16 * 230 and charging.current_offered_a == 16.0
    assert charging.frequency_hz == 49.98

    emu.ev_request(False)  # the car is full: Complete
    full = await charger.read()
    assert (full.plugged, full.ev_requesting) == (True, False)
    emu.unplug()
    assert (await charger.read()).plugged is False


async def test_a_probe_switches_nothing(emulator: Factory, transports: Transports) -> None:
    emu = await emulator()
    emu.plug()  # go-e's own logic charges (force state neutral, open access)
    charger = GoeCharger(GoeOptions(url=emu.url), transports)  # no listener: `ocpp-bridge probe`
    await charger.start()
    reading = await charger.read()
    assert (reading.ev_requesting, reading.energy_allowed, reading.power_w) == (True, True, 3 * 16 * 230)
    assert emu.received == []


async def test_legacy_filter_syntax_is_detected(emulator: Factory, transports: Transports) -> None:
    emu = await emulator(legacy_filter=True)
    charger, _ = goe(transports, url=emu.url)
    await charger.start()
    emu.plug()
    reading = await charger.read()
    assert reading.plugged is True and reading.energy_wh == 123_456
    filters = [r.split("filter=", 1)[1] for r in emu.requests if "filter=" in r]
    assert filters[0].startswith("car,")  # tried first, answered {} by old firmware
    assert all(f.startswith('["car",') for f in filters[1:])
    assert all(f.count(",") < 10 for f in filters)  # at most 10 keys: old firmware cuts the rest


async def test_v1_strings_units_and_silent_refusals(emulator: Factory, transports: Transports) -> None:
    emu = await emulator()
    charger, _ = goe(transports, url=emu.url, api="v1", max_current_a=32)
    await charger.start()
    await charger.read()
    assert emu.received == [("alw", "0")]
    assert emu.requests == ["/status", "/status", "/mqtt?payload=alw=0"]
    emu.plug()
    await charger.set_current(10)
    await charger.set_enabled(True)
    assert emu.received[1:] == [("amx", "10"), ("alw", "1")]
    reading = await charger.read()
    assert (reading.plugged, reading.ev_requesting, reading.energy_allowed) == (True, True, True)
    assert reading.current_a == (10.0, 10.0, 10.0)  # 100 in 0.1 A
    assert reading.power_w == 6900  # 690 in 0.01 kW
    assert reading.energy_wh == 123_400  # 1234 in 0.1 kWh: v1 is coarse
    with pytest.raises(DeviceRefused, match=r"did not take amx=20: it still reports amp='10'"):
        await charger.set_current(20)  # above the box's ama 16: v1 just leaves the value
    with pytest.raises(NotSupportedByDevice):
        await charger.reset(hard=True)
    emu.set_error(8)
    fault = (await charger.read()).fault
    assert fault is not None and (ocpp_fault(fault).error_code, ocpp_fault(fault).vendor_error_code) == (
        "GroundFailure",
        "err=8 NO_GROUND",
    )


async def test_commands_are_written_as_the_wire_format_says(
    emulator: Factory, transports: Transports
) -> None:
    emu = await emulator()
    charger, _ = goe(transports, url=emu.url)
    await charger.start()
    assert charger.capabilities.can_switch_phases
    await charger.set_enabled(True)
    await charger.set_enabled(False)
    await charger.set_current(10.7)  # whole amperes, never more than asked
    await charger.set_phases(1)
    await charger.set_phases(3)
    await charger.reset(hard=False)
    await charger.read()  # the bridge has commanded: no take-over
    assert emu.received == [
        ("frc", "2"), ("frc", "1"), ("amp", "10"), ("psm", "1"), ("psm", "2"), ("rst", "1"),
    ]  # fmt: skip
    assert [r for r in emu.requests if r.startswith("/api/set")][-2:] == ["/api/set?psm=2", "/api/set?rst=1"]
    assert emu.rbc == 4
    with pytest.raises(NotSupportedByDevice):
        await charger.unlock()


async def test_write_errors_are_typed_with_the_chargers_text(
    emulator: Factory, transports: Transports
) -> None:
    emu = await emulator()
    charger, _ = goe(transports, url=emu.url, max_current_a=32)
    await charger.start()
    with pytest.raises(DeviceRefused, match=r"amp: value out of range 6\.\.16"):
        await charger.set_current(20)
    # A read-only key: HTTP 500 with the key's error text (go-eCharger-API-v2#4).
    with pytest.raises(DeviceRefused, match=r"alw: tried to set api key without setter \(true\)"):
        await charger.link.write("alw", True)
    async with aiohttp.ClientSession() as session:
        async with session.get(emu.url + "/api/set?alw=true") as response:
            assert response.status == 500
            assert await response.json() == {"alw": "alw: tried to set api key without setter (true)"}
        async with session.get(emu.url + "/api/set?fna=unquoted") as response:  # not JSON
            problem = set_answer_problem("fna", response.status, await response.json())
    assert problem == "fna: tried to set api key with invalid json InvalidInput (unquoted)"


async def test_no_psm_means_no_phase_switching(emulator: Factory, transports: Transports) -> None:
    emu = await emulator(has_psm=False)
    charger, _ = goe(transports, url=emu.url)
    await charger.start()
    assert not charger.capabilities.can_switch_phases
    with pytest.raises(NotSupportedByDevice, match="psm"):
        await charger.set_phases(1)
    assert emu.received == []


async def test_start_refuses_while_goes_own_ocpp_client_is_on(
    emulator: Factory, transports: Transports
) -> None:
    emu = await emulator(ocppe=True)
    charger, _ = goe(transports, url=emu.url)
    with pytest.raises(DeviceRefused, match=r"own OCPP client is enabled.*/api/set\?ocppe=false"):
        await charger.start()
    with pytest.raises(DeviceRefused, match="ocppe"):
        await charger.read()  # every use asks again
    assert emu.received == []  # nothing touched while another OCPP client owns the box
    emu.keys["ocppe"] = False  # switched off by the user
    assert (await charger.read()).plugged is False
    assert emu.received == [("frc", "1")]


async def test_card_tap_is_presented_as_an_id_tag(emulator: Factory, transports: Transports) -> None:
    emu = await emulator(card_names=("User 1", "Anna"))
    charger, events = goe(transports, url=emu.url)
    await charger.start()
    emu.plug()
    await charger.read()
    emu.tap(2)
    await charger.read()
    await charger.read()  # the same transaction slot again is no new tap
    assert events == [TagPresented("Anna")]
    emu.unplug()
    await charger.read()
    emu.plug()
    emu.tap(2)
    await charger.read()
    assert events[1:] == [TagPresented("Anna")]

    # Firmware 60+: names in c<n>n; a mapping to the card's real UID.
    emu2 = await emulator(card_keys="cNn", card_names=("User 1", "Anna"))
    charger2, events2 = goe(transports, url=emu2.url, card_tags={"User 1": "04A1B2C3D4"})
    await charger2.start()
    emu2.tap(1)
    await charger2.read()
    assert events2 == [TagPresented("04A1B2C3D4")]


async def test_faults_and_unreachable(emulator: Factory, transports: Transports) -> None:
    emu = await emulator()
    charger, _ = goe(transports, url=emu.url, timeout_s=0.3)
    await charger.start()
    emu.plug()
    await charger.read()
    emu.set_error(12)
    reading = await charger.read()
    assert reading.fault is not None and ocpp_fault(reading.fault) == DeviceFault(
        "ConnectorLockFailure", "cable lock stuck open", "err=12 StatusLockStuckOpen"
    )
    assert reading.plugged is True  # car=5 says nothing of the plug: the last known state holds
    emu.set_error(0)
    emu.controller_lost = True
    with pytest.raises(DeviceUnreachable, match="car=null"):
        await charger.read()
    emu.controller_lost = False
    emu.silent = True
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(DeviceUnreachable, match="no answer"):
        await charger.read()
    with pytest.raises(DeviceUnreachable):
        await charger.set_enabled(True)
    assert loop.time() - began < 1.5  # each request gives up after timeout_s
    emu.silent = False
    await emu.close()
    with pytest.raises(DeviceUnreachable):  # connection refused
        await charger.read()


# -- over MQTT ---------------------------------------------------------------------------------------


@pytest.fixture
async def mqtt_emulator(broker: Any) -> AsyncIterator[Callable[..., Awaitable[GoeEmulator]]]:
    started: list[GoeEmulator] = []

    async def make(frc: int = 0, **kwargs: Any) -> GoeEmulator:
        emu = GoeEmulator(**kwargs)
        emu.keys["frc"] = frc
        await emu.start_mqtt(broker.url)
        started.append(emu)
        return emu

    yield make
    for emu in started:
        await emu.close()


async def _until(predicate: Callable[[], Any], timeout_s: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_mqtt_values_events_and_set_result(
    broker: Any, mqtt_emulator: Callable[..., Awaitable[GoeEmulator]], transports: Transports
) -> None:
    emu = await mqtt_emulator(mqtt_prefix="/go-eCharger")  # old firmware's leading slash
    charger, events = goe(
        transports, transport="mqtt", broker=broker.url, serial=emu.serial, topic_prefix="/go-eCharger"
    )
    await charger.start()
    assert charger.capabilities.can_switch_phases  # psm among the retained topics
    reading = await charger.read()
    assert emu.received == [("frc", "1")]  # set, answered `success` on frc/result
    assert reading.plugged is False and reading.energy_wh == 123_456

    events.clear()
    emu.plug()
    await _until(lambda: events == [StateChanged()])  # car 1 -> 3 wakes the bridge without a poll
    await charger.set_enabled(True)
    await _until(lambda: emu.car() == 2 and charger.link.values.get("car") == 2)  # type: ignore[attr-defined]
    reading = await charger.read()
    assert (reading.plugged, reading.ev_requesting, reading.energy_allowed) == (True, True, True)
    emu.tap(1)
    await _until(lambda: TagPresented("User 1") in events)

    with pytest.raises(DeviceRefused, match=r"go-e refused amp=20: amp: value out of range 6\.\.16"):
        await charger.link.write("amp", 20)
    with pytest.raises(DeviceRefused, match="without setter"):
        await charger.link.write("alw", True)
    await charger.set_current(10)
    assert emu.received[-3:] == [("amp", "20"), ("alw", "true"), ("amp", "10")]
    await charger.close()


async def test_mqtt_without_answer_or_messages_is_unreachable(
    broker: Any, mqtt_emulator: Callable[..., Awaitable[GoeEmulator]], transports: Transports
) -> None:
    emu = await mqtt_emulator(frc=1, mqtt_writes_allowed=False)  # already Off: start writes nothing
    # stale_after_s below what validate() allows, to keep the test short
    charger, _ = goe(
        transports, transport="mqtt", broker=broker.url, serial=emu.serial, timeout_s=0.5, stale_after_s=0.8
    )
    await charger.start()
    with pytest.raises(DeviceUnreachable, match="no answer on go-eCharger/072246/frc/result"):
        await charger.set_enabled(True)
    assert emu.received == []  # the box ignored the write
    await charger.read()
    emu.silent = True
    await asyncio.sleep(1.0)
    with pytest.raises(DeviceUnreachable, match="no message from go-e"):
        await charger.read()

    other, _ = goe(transports, transport="mqtt", broker=broker.url, serial="999999", timeout_s=0.5)
    with pytest.raises(DeviceUnreachable, match="check serial"):
        await other.start()


# -- through the daemon ------------------------------------------------------------------------------


async def test_session_through_the_daemon(
    csms: StrictCentralSystem, emulator: Factory, tmp_path: Any
) -> None:
    emu = await emulator()
    config = make_config(csms.url, tmp_path, charger={"type": "goe", "url": emu.url, "timeout_s": 2})
    async with running(config):
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)
        emu.plug()
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Preparing")
        eto = emu.eto
        emu.tap(1)
        start = await csms.wait_for_call("CP-1", "StartTransaction")
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Charging")
        await csms.wait_until(lambda: emu.eto > eto, what="energy to flow")
    assert start["idTag"] == "User 1"
    assert start["meterStart"] == eto == 123_456  # the eto register, untouched until frc=2
    assert ("frc", "2") in emu.received
    # Force-off at the first read, then the current (no charging profile: the maximum), then energy.
    assert emu.received[: emu.received.index(("frc", "2"))] == [("frc", "1"), ("amp", "16")]
