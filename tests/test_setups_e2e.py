"""Every supported hardware setup, end to end: the real daemon, the strict central system
(tests/csms.py) and the device emulators over real sockets, a real mosquitto and a socat
pseudo-terminal pair.

The setups, one per example configuration:

- go-e over HTTP API v2 (config/goe-http.yaml),
- go-e over MQTT (config/goe-mqtt.yaml),
- a Shelly relay with an SDM630 meter of record behind a Modbus TCP gateway (config/shelly-sdm630.yaml),
- a Tasmota relay over MQTT with an SDM120 meter of record on Modbus RTU (config/tasmota-sdm120-rtu.yaml).

For each, a whole session: started by a tap where the device has a card reader (go-e), otherwise by
RemoteStartTransaction; energy flows in the emulator; periodic MeterValues carry
Energy.Active.Import.Register and Power.Active.Import of the device that bills (the meter of record
where there is one), with values the emulator did report; RemoteStopTransaction ends it with the
right meterStop, and the device is told to stop energy. And for each, the charger falling silent
mid-transaction: Faulted (OtherError, DeviceUnreachable), then Charging again when it answers, the
same transaction going on to one StopTransaction.

Each emulator records the energy and power it reported (`reported_energy_wh`, `reported_power_w`), so
the values on the wire are checked against what the device said, not against a copy of the driver's
arithmetic.

At the end, what writing these tests turned up: cancellations lost on Python 3.11 inside the Modbus and
MQTT libraries' `asyncio.wait_for` (a stopping daemon kept polling; fixed in the drivers), and a remote
start that arrives before a relay's first reading (the core waited for a plug a relay never reports:
fixed, the connector knows from the capabilities that the plug cannot be sensed).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, cast

import pytest
from ocpp.v16 import call

from adapters.chargers.goe import GoeOptions
from adapters.chargers.tasmota import TasmotaCharger, TasmotaOptions
from adapters.transports.modbus import ModbusBus
from adapters.transports.mqtt import MqttBroker
from adapters.transports.pool import Transports
from bridge.config import parse_config
from bridge.daemon import Daemon
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.emulators.eastron import EastronEmulator, EmulatedMeter, eastron_rtu, eastron_tcp
from tests.emulators.goe import GoeEmulator
from tests.emulators.shelly import EvLoad, ShellyEmulator
from tests.emulators.tasmota import TasmotaEmulator
from tests.mosquitto import mosquitto
from tests.processes import free_port

ROOT = Path(__file__).resolve().parent.parent
CP = "CP-1"
ENERGY = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"
# Small intervals keep each test to a few seconds: a sample every second, a read every 0.2 s, and a
# silent device Faulted after two failed reads.
OCPP = {"MeterValueSampleInterval": 1, "MeterValuesSampledData": [ENERGY, POWER]}
CONNECTOR = {"poll_interval_s": 0.2, "faulted_after_failed_polls": 2}
TIMEOUT_S = 0.5  # the drivers' per-request timeout: a silent device costs this much per read


class Reports(Protocol):
    """An emulator that records what it reported."""

    @property
    def reported_energy_wh(self) -> Sequence[float]: ...

    @property
    def reported_power_w(self) -> Sequence[float]: ...


# -- the setups ---------------------------------------------------------------------------------------


class Rig(abc.ABC):
    """One setup: its emulated devices, the configuration blocks naming them, and what happens at them."""

    name: str
    has_reader = False  # a card reader at the device: sessions start by a tap
    transient: frozenset[str] = frozenset()  # statuses that may flash by between the expected ones
    charger: dict[str, Any]
    meter: dict[str, Any] | None = None
    record: Reports  # the device whose energy is billed: the meter of record, else the charger
    other: Reports | None = None  # the charger's own counter, when a meter of record replaces it
    fault_info: str  # how the Faulted status's info starts: the device's description

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def stop(self) -> None: ...

    def arrive(self) -> None:  # noqa: B027 - most setups cannot see the vehicle arrive
        """The vehicle is plugged in (a relay cannot see it: its load is plugged from the start)."""

    def tap(self) -> None:
        raise NotImplementedError(f"{self.name} has no card reader")

    @abc.abstractmethod
    def energy_on(self) -> bool:
        """The device lets energy flow to the vehicle now."""

    @abc.abstractmethod
    def switching(self) -> list[bool]:
        """Every energy on / off command the device received, in order."""

    @abc.abstractmethod
    def set_silent(self, silent: bool) -> None:
        """The charger stops answering (True) or answers again (False)."""

    @property
    def after_stop(self) -> str:
        """The connector's status once the transaction is over: Finishing while a cable it can see
        is plugged, Available at once where it cannot see one."""
        return "Finishing" if self.has_reader else "Available"


class GoeHttp(Rig):
    name = "goe-http"
    has_reader = True

    def __init__(self) -> None:
        self.emu = GoeEmulator()
        self.record = self.emu
        self.fault_info = "go-e at 127.0.0.1"

    async def start(self) -> None:
        url = await self.emu.start_http()
        self.charger = {"type": "goe", "url": url, "timeout_s": TIMEOUT_S}

    async def stop(self) -> None:
        await self.emu.close()

    def arrive(self) -> None:
        self.emu.plug()

    def tap(self) -> None:
        self.emu.tap(1)  # the card named "User 1" in the go-e app

    def energy_on(self) -> bool:
        return self.emu.charging()

    def switching(self) -> list[bool]:
        # frc: 2 = force On, 1 = force Off
        return [value == "2" for key, value in self.emu.received if key == "frc"]

    def set_silent(self, silent: bool) -> None:
        self.emu.silent = silent


class GoeMqtt(GoeHttp):
    name = "goe-mqtt"

    def __init__(self, broker: Any) -> None:
        super().__init__()
        self.broker = broker
        self.fault_info = f"go-e {self.emu.serial} via MQTT"

    async def start(self) -> None:
        await self.emu.start_mqtt(self.broker.url)
        self.charger = {
            "type": "goe", "transport": "mqtt", "broker": self.broker.url, "serial": self.emu.serial,
            "timeout_s": TIMEOUT_S, "stale_after_s": 2,  # the least allowed: go-e publishes every second
        }  # fmt: skip


class ShellySdm630(Rig):
    name = "shelly-sdm630-tcp"
    transient = frozenset({"SuspendedEV"})  # the relay is closed before the vehicle is seen to draw

    def __init__(self) -> None:
        # ~100 Wh a second at 3.7 kW: the meter's 0.01 kWh steps show within a sample interval.
        self.load = EvLoad(energy_wh=102650.773, plugged=True, time_scale=100)
        self.shelly = ShellyEmulator(load=self.load)
        self.sdm = EmulatedMeter("sdm630", device_id=1)
        self.sdm.measure(self.load, energy_kwh=1234.5)  # its own register, far from the Shelly's
        self.record, self.other = self.sdm, self.shelly
        self._gateway: Any = None
        self.modbus: EastronEmulator | None = None

    async def start(self) -> None:
        await self.shelly.start()
        self._gateway = eastron_tcp(self.sdm)
        self.modbus = await self._gateway.__aenter__()
        self.fault_info = f"Shelly at {self.shelly.url} switch 0 with SDM630"[:50]
        self.charger = {"type": "shelly", "url": self.shelly.url, "timeout_s": TIMEOUT_S}
        self.meter = {"type": "sdm630", "modbus": self.modbus.url, "device_id": 1, "timeout_s": TIMEOUT_S}

    async def stop(self) -> None:
        try:
            if self._gateway is not None:
                await self._gateway.__aexit__(None, None, None)
        finally:
            await self.shelly.stop()

    def energy_on(self) -> bool:
        return self.shelly.outputs == [True] and self.load.power_w > self.load.standby_w

    def switching(self) -> list[bool]:
        return [params["on"] for method, params in self.shelly.calls if method == "Switch.Set"]

    def set_silent(self, silent: bool) -> None:
        self.shelly.silent = silent


class TasmotaSdm120Rtu(Rig):
    name = "tasmota-sdm120-rtu"
    transient = frozenset({"SuspendedEV"})

    def __init__(self, broker: Any, tmp_path: Path) -> None:
        self.broker = broker
        self.tmp_path = tmp_path
        self.load = EvLoad(energy_wh=6294.0, plugged=True, time_scale=100)
        self.tasmota = TasmotaEmulator(broker.url, load=self.load)  # TelePeriod 300 s, as shipped
        self.sdm = EmulatedMeter("sdm120", device_id=1)
        self.sdm.measure(self.load, energy_kwh=5678.9)
        self.record, self.other = self.sdm, self.tasmota
        self.fault_info = "Tasmota tasmota_A1B2C3 relay 1 with SDM120"
        self._bus: Any = None

    async def start(self) -> None:
        assert shutil.which("socat"), "socat is needed for the RTU setup (make test installs it)"
        await self.tasmota.start()
        self._bus = eastron_rtu(self.tmp_path, self.sdm)
        rtu: EastronEmulator = await self._bus.__aenter__()
        self.charger = {
            "type": "tasmota", "broker": self.broker.url, "topic": self.tasmota.topic,
            "timeout_s": TIMEOUT_S, "stale_after_s": 1,  # asks for Status 8 every second
        }  # fmt: skip
        self.meter = {"type": "sdm120", "modbus": rtu.url, "device_id": 1, "timeout_s": TIMEOUT_S}

    async def stop(self) -> None:
        try:
            if self._bus is not None:
                await self._bus.__aexit__(None, None, None)
        finally:
            await self.tasmota.stop()

    def energy_on(self) -> bool:
        return self.tasmota.power == [True] and self.load.power_w > self.load.standby_w

    def switching(self) -> list[bool]:
        return [
            payload == "ON" for command, payload in self.tasmota.commands if command == "POWER" and payload
        ]

    def set_silent(self, silent: bool) -> None:
        self.tasmota.silent = silent  # online (no last will), but answers nothing, sends no telemetry


SETUPS = ["goe-http", "goe-mqtt", "shelly-sdm630-tcp", "tasmota-sdm120-rtu"]


@pytest.fixture(params=SETUPS)
async def rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Rig]:
    setup: Rig
    async with contextlib.AsyncExitStack() as stack:
        if request.param == "goe-http":
            setup = GoeHttp()
        elif request.param == "goe-mqtt":
            setup = GoeMqtt(await stack.enter_async_context(mosquitto(tmp_path)))
        elif request.param == "shelly-sdm630-tcp":
            setup = ShellySdm630()
        else:
            setup = TasmotaSdm120Rtu(await stack.enter_async_context(mosquitto(tmp_path)), tmp_path)
        stack.push_async_callback(setup.stop)
        await setup.start()
        yield setup


# -- reading the wire ---------------------------------------------------------------------------------


def sampled(payload: dict[str, Any], measurand: str) -> list[dict[str, Any]]:
    return [v for mv in payload["meterValue"] for v in mv["sampledValue"] if v.get("measurand") == measurand]


def energy_of(payload: dict[str, Any]) -> float:
    (value,) = sampled(payload, ENERGY)
    return float(value["value"])


def expected_switching(rig: Rig) -> list[bool]:
    """go-e: force state Off when the bridge takes the charger over, On for the transaction, Off at its
    end. A relay: closed for the transaction, opened at its end."""
    return [False, True, False] if rig.has_reader else [True, False]


def opening(rig: Rig) -> list[str]:
    """The calls up to StartTransaction: boot, statuses, and with a card reader the tap's Authorize."""
    calls = ["BootNotification", "StatusNotification 0 Available", "StatusNotification 1 Available"]
    if rig.has_reader:
        calls += ["StatusNotification 1 Preparing", "Authorize"]
    return calls


def timeline(csms: StrictCentralSystem, transient: frozenset[str]) -> list[str]:
    """The charge point's calls in order: StatusNotification with its connector and status (a transient
    status left out), runs of MeterValues as one; heartbeats left out."""
    out: list[str] = []
    for payload in csms.calls(CP):
        action = payload["action"]
        if action == "Heartbeat":
            continue
        if action == "StatusNotification":
            if payload["status"] in transient:
                continue
            action = f"{action} {payload['connectorId']} {payload['status']}"
        if out and out[-1] == action and action in ("MeterValues", "StatusNotification 1 Charging"):
            continue  # a run of samples; Charging again after a transient status that was left out
        out.append(action)
    return out


def connector_statuses(csms: StrictCentralSystem, transient: frozenset[str]) -> list[str]:
    return [
        p["status"]
        for p in csms.calls(CP, "StatusNotification")
        if p["connectorId"] == 1 and p["status"] not in transient
    ]


async def begin(rig: Rig, csms: StrictCentralSystem, daemon: Daemon) -> dict[str, Any]:
    """Starts a transaction the way the setup allows; the StartTransaction payload."""
    await csms.wait_for_call(
        CP, "StatusNotification", lambda p: (p["connectorId"], p["status"]) == (1, "Available")
    )
    # The bridge has read the device (see test_a_remote_start_before_the_first_reading_of_a_relay).
    await csms.wait_until(lambda: daemon.charge_points[CP].connectors[1].reading, what="a first reading")
    if rig.has_reader:
        rig.arrive()
        await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Preparing")
        rig.tap()
    else:
        rig.arrive()
        answer = await csms.call(CP, call.RemoteStartTransaction(id_tag="REMOTE-1", connector_id=1))
        assert answer.status == "Accepted"
    start = await csms.wait_for_call(CP, "StartTransaction")
    await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Charging")
    return start


async def end(rig: Rig, csms: StrictCentralSystem, transaction_id: int) -> dict[str, Any]:
    """RemoteStopTransaction; the StopTransaction payload, once the connector shows the end."""
    answer = await csms.call(CP, call.RemoteStopTransaction(transaction_id=transaction_id))
    assert answer.status == "Accepted"
    stop = await csms.wait_for_call(CP, "StopTransaction")
    await csms.wait_until(
        lambda: connector_statuses(csms, rig.transient)[-1:] == [rig.after_stop], what="the end status"
    )
    return stop


def check_meter_values(
    rig: Rig, csms: StrictCentralSystem, start: dict[str, Any], stop: dict[str, Any]
) -> None:
    """Every MeterValues of the transaction: its fields, and values the billing device reported."""
    samples = csms.calls(CP, "MeterValues")
    assert samples
    billed = {int(wh) for wh in rig.record.reported_energy_wh}
    energies = []
    for payload in samples:
        assert payload["connectorId"] == 1 and payload["transactionId"] == csms.last_transaction_id
        (meter_value,) = payload["meterValue"]
        assert start["timestamp"] <= meter_value["timestamp"] <= stop["timestamp"]
        (energy,) = sampled(payload, ENERGY)
        (power,) = sampled(payload, POWER)
        assert (energy["unit"], energy["context"], energy["location"]) == ("Wh", "Sample.Periodic", "Outlet")
        assert (power["unit"], power["context"]) == ("W", "Sample.Periodic")
        wh = float(energy["value"])
        assert wh in rig.record.reported_energy_wh, f"{wh} Wh was never reported by {rig.name}'s meter"
        if rig.other is not None:  # the charger's own counter is not what is billed
            assert wh not in rig.other.reported_energy_wh
        assert any(abs(float(power["value"]) - w) < 0.01 for w in rig.record.reported_power_w)
        energies.append(wh)
    assert energies == sorted(energies)  # a register, sampled in order
    assert start["meterStart"] in billed and stop["meterStop"] in billed
    assert start["meterStart"] <= energies[0] and energies[-1] <= stop["meterStop"]
    assert stop["meterStop"] > start["meterStart"]  # energy flowed, and was billed


def config_for(rig: Rig, csms: StrictCentralSystem, tmp_path: Path) -> Any:
    return make_config(
        csms.url, tmp_path, ocpp=OCPP, charger=rig.charger, meter=rig.meter, connector_fields=CONNECTOR
    )


# -- the tests ----------------------------------------------------------------------------------------


async def test_a_whole_session(rig: Rig, csms: StrictCentralSystem, tmp_path: Path) -> None:
    async with running(config_for(rig, csms, tmp_path)) as daemon:
        start = await begin(rig, csms, daemon)
        assert rig.energy_on()
        # Energy flows: a periodic sample above meterStart.
        await csms.wait_for_call(CP, "MeterValues", lambda p: energy_of(p) > start["meterStart"], timeout=10)
        stop = await end(rig, csms, csms.last_transaction_id)
        assert not rig.energy_on()
        switching = rig.switching()

    tag = "User 1" if rig.has_reader else "REMOTE-1"
    assert (start["connectorId"], start["idTag"]) == (1, tag)
    assert (stop["transactionId"], stop["reason"]) == (csms.last_transaction_id, "Remote")
    check_meter_values(rig, csms, start, stop)
    assert switching == expected_switching(rig)

    assert timeline(csms, rig.transient) == [
        *opening(rig),
        "StartTransaction",
        "StatusNotification 1 Charging",
        "MeterValues",
        "StopTransaction",
        f"StatusNotification 1 {rig.after_stop}",
    ]


async def test_the_charger_falls_silent_mid_transaction(
    rig: Rig, csms: StrictCentralSystem, tmp_path: Path
) -> None:
    async with running(config_for(rig, csms, tmp_path)) as daemon:
        start = await begin(rig, csms, daemon)
        await csms.wait_for_call(CP, "MeterValues")
        rig.set_silent(True)
        faulted = await csms.wait_for_call(
            CP, "StatusNotification", lambda p: p["status"] == "Faulted", timeout=10
        )
        before = len(csms.calls(CP, "MeterValues"))
        rig.set_silent(False)
        await csms.wait_for_call(
            CP, "StatusNotification", lambda p: p["status"] == "Charging", count=2, timeout=10
        )
        await csms.wait_for_call(CP, "MeterValues", count=before + 1, timeout=5)  # sampling goes on
        assert rig.energy_on()  # the outage did not stop the energy
        transaction_id = csms.last_transaction_id
        stop = await end(rig, csms, transaction_id)
        switching = rig.switching()

    assert faulted["connectorId"] == 1
    assert (faulted["errorCode"], faulted["vendorErrorCode"]) == ("OtherError", "DeviceUnreachable")
    assert faulted["info"].startswith(rig.fault_info) and len(faulted["info"]) <= 50
    # One transaction, carried through the outage.
    assert len(csms.calls(CP, "StartTransaction")) == 1 and len(csms.calls(CP, "StopTransaction")) == 1
    assert stop["transactionId"] == transaction_id
    check_meter_values(rig, csms, start, stop)
    assert switching == expected_switching(rig)

    assert timeline(csms, rig.transient) == [
        *opening(rig),
        "StartTransaction",
        "StatusNotification 1 Charging",
        "MeterValues",
        "StatusNotification 1 Faulted",
        "StatusNotification 1 Charging",
        "MeterValues",
        "StopTransaction",
        f"StatusNotification 1 {rig.after_stop}",
    ]


def test_the_go_e_examples_load() -> None:
    """goe-http.yaml is HTTP API v2 with `api: v1` a comment away; goe-mqtt.yaml is MQTT."""

    def options(text: str) -> GoeOptions:
        charger = parse_config(text, "example.yaml").charge_points[0].connectors[0].charger
        assert isinstance(charger.options, GoeOptions)
        return charger.options

    http_text = (ROOT / "config" / "goe-http.yaml").read_text()
    http = options(http_text)
    assert (http.transport, http.api, http.url) == ("http", "v2", "http://192.168.1.50")
    assert options(http_text.replace("# api: v1", "api: v1", 1)).api == "v1"
    mqtt = options((ROOT / "config" / "goe-mqtt.yaml").read_text())
    assert (mqtt.transport, mqtt.api, mqtt.serial, mqtt.url) == ("mqtt", "v2", "072246", None)
    assert mqtt.broker is not None and mqtt.broker.startswith("mqtt://")


# -- found on the way ---------------------------------------------------------------------------------


async def test_a_remote_start_before_the_first_reading_of_a_relay(
    csms: StrictCentralSystem, tmp_path: Path
) -> None:
    """A central system may start a transaction as soon as the charge point has booted; a relay whose
    first reading is still on its way must start it all the same."""
    load = EvLoad(energy_wh=102650.773, plugged=True)
    async with ShellyEmulator(load=load) as shelly:
        shelly.latency_s = 0.5  # the first reading takes a second (the probe, then the read)
        charger = {"type": "shelly", "url": shelly.url, "timeout_s": 2}
        async with running(make_config(csms.url, tmp_path, ocpp=OCPP, charger=charger)):
            await csms.wait_for_call(
                CP, "StatusNotification", lambda p: (p["connectorId"], p["status"]) == (1, "Available")
            )
            answer = await csms.call(CP, call.RemoteStartTransaction(id_tag="REMOTE-1", connector_id=1))
            assert answer.status == "Accepted"
            await csms.wait_for_call(CP, "StartTransaction", timeout=4)


class _Answer:
    """A pymodbus response as ModbusBus reads it."""

    registers = [0x4366, 0x199A]

    def isError(self) -> bool:  # pymodbus's name
        return False


async def _cancel_as_it_is_answered(task: asyncio.Task[Any], answer: Callable[[], object]) -> None:
    """The answer (`answer()` brings it) and the cancellation arrive in the same turn of the event loop:
    the case in which Python 3.11's asyncio.wait_for returns the answer and drops the cancellation."""
    for _ in range(5):
        await asyncio.sleep(0)  # the task is waiting for its answer
    answer()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_modbus_read_cancelled_as_its_answer_arrives_is_cancelled() -> None:
    """pymodbus waits for its answer with asyncio.wait_for; a poll loop cancelled at that moment went on
    polling, and the daemon never finished stopping."""
    answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    class Library:  # waits as pymodbus 3.x does (pymodbus/transaction/transaction.py)
        connected = True

        async def connect(self) -> bool:
            return True

        async def read_input_registers(self, address: int, count: int, device_id: int) -> Any:
            return await asyncio.wait_for(answer, 5)

        def close(self) -> None:
            pass

    bus = ModbusBus("tcp://127.0.0.1:502", make_client=lambda address: Library())
    reading = asyncio.create_task(bus.read_input_registers(1, 0x0000, 2))
    await _cancel_as_it_is_answered(reading, lambda: answer.set_result(_Answer()))


async def _hears_nothing() -> AsyncIterator[Any]:
    await asyncio.Event().wait()
    yield  # never reached: an async generator


class _MqttLibrary:
    """An aiomqtt.Client as MqttBroker uses it: its connection is up once `up` is done, it hears no
    message, and a publish waits for its PUBACK (`puback`) as aiomqtt does (Client._wait_for)."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.up: asyncio.Future[None] = loop.create_future()
        self.puback: asyncio.Future[None] = loop.create_future()

    async def __aenter__(self) -> _MqttLibrary:
        await self.up
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    @property
    def messages(self) -> AsyncIterator[Any]:
        return _hears_nothing()

    async def publish(self, topic: str, payload: Any, qos: int, retain: bool) -> None:
        await asyncio.wait_for(self.puback, 5)


async def test_an_mqtt_publish_cancelled_as_its_puback_arrives_is_cancelled() -> None:
    library = _MqttLibrary()
    library.up.set_result(None)
    broker = MqttBroker("mqtt://127.0.0.1:1883", make_client=lambda address: cast(Any, library))
    try:
        assert await broker.wait_connected(5)
        publishing = asyncio.create_task(broker.publish("cmnd/x/POWER", "ON"))
        await _cancel_as_it_is_answered(publishing, lambda: library.puback.set_result(None))
    finally:
        await broker.close()


async def test_waiting_for_the_broker_cancelled_as_it_connects_is_cancelled() -> None:
    library = _MqttLibrary()  # it stays connecting until the test completes its connection
    broker = MqttBroker(f"mqtt://127.0.0.1:{free_port()}", make_client=lambda address: cast(Any, library))
    try:
        waiting = asyncio.create_task(broker.wait_connected(5))
        for _ in range(5):
            await asyncio.sleep(0)
        library.up.set_result(None)
        await asyncio.sleep(0)  # the broker's task runs: connected, and the waiting caller is woken
        assert broker.connected
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
    finally:
        await broker.close()


async def test_a_tasmota_question_cancelled_as_its_answer_arrives_is_cancelled() -> None:
    handlers: list[Callable[[str, bytes], None]] = []

    class Broker:  # the one broker connection, as the driver uses it
        connected = True

        async def subscribe(self, topic_filter: str, handler: Callable[[str, bytes], None]) -> None:
            handlers.append(handler)

        async def wait_connected(self, timeout: float) -> bool:
            return True

        async def publish(self, topic: str, payload: str) -> None:
            pass

    broker = Broker()

    class OneBroker(Transports):
        def mqtt(self, url: str) -> MqttBroker:
            return broker  # type: ignore[return-value]

    options = TasmotaOptions(broker="mqtt://127.0.0.1", topic="tasmota_A1B2C3")
    tasmota = TasmotaCharger(options, OneBroker())
    asking = asyncio.create_task(tasmota.set_enabled(True))  # POWER ON, then waits for stat/.../POWER
    await _cancel_as_it_is_answered(asking, lambda: handlers[0]("stat/tasmota_A1B2C3/POWER", b"ON"))
