"""A charger with a card reader beside it (adapters/chargers/with_reader.py): everything goes to the
charger, the reader's taps leave through the charger's listener as the go-e's card's do; how a
configuration builds it (bridge/devices.py); what the systemd unit gives a reader.

The charger here is the Shelly driver against its emulator over HTTP; the reader is a stand-in of the
`CardReader` contract (the RDM6300 on a real pty is tested in test_rdm6300)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from adapters.base import BackgroundJob, CardReader, DeviceEvent, TagPresented
from adapters.chargers.composed import MeteredCharger
from adapters.chargers.shelly import ShellyCharger, ShellyOptions
from adapters.chargers.simulated import SimulatedCharger, SimulatedOptions
from adapters.chargers.with_reader import ChargerWithCardReader, with_card_reader
from adapters.readers.rdm6300 import Rdm6300Reader
from adapters.transports.pool import Transports
from bridge.devices import build_charger
from bridge.runtime.coordinator import poll_interval_for
from tests.conftest import make_config
from tests.emulators.shelly import EvLoad, ShellyEmulator

ROOT = Path(__file__).resolve().parent.parent


class HandReader(CardReader):
    """A reader whose cards are tapped by the test; records its lifecycle."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []
        self.on_tag: Callable[[str], None] | None = None

    def set_on_tag(self, on_tag: Callable[[str], None] | None) -> None:
        super().set_on_tag(on_tag)
        self.on_tag = on_tag  # kept here too: a test reaches no private attribute

    @property
    def description(self) -> str:
        return "hand reader"

    def tap(self, id_tag: str) -> None:
        if self.on_tag is not None:
            self.on_tag(id_tag)

    async def start(self) -> None:
        self.calls.append("start")

    async def close(self) -> None:
        self.calls.append("close")

    def background(self) -> tuple[BackgroundJob, ...]:
        return (self.job,)

    async def job(self) -> None:
        self.calls.append("job")


async def test_a_relay_wallbox_gets_a_card_reader(transports: Transports) -> None:
    async with ShellyEmulator(load=EvLoad(energy_wh=1000.0, plugged=True)) as emulator:
        shelly = ShellyCharger(ShellyOptions(url=emulator.url), transports)
        reader = HandReader()
        charger = with_card_reader(shelly, reader)
        assert not charger.reports_changes  # a Shelly is polled, with a reader as without
        events: list[DeviceEvent] = []
        charger.set_listener(events.append)
        assert not shelly.capabilities.has_rfid
        assert charger.capabilities == dataclasses.replace(shelly.capabilities, has_rfid=True)
        assert charger.description == f"{shelly.description} with hand reader"
        assert charger.simulator is None

        await charger.start()
        assert reader.calls == ["start"]
        reader.tap("04A1B2C3")
        assert events == [TagPresented("04A1B2C3")]
        assert charger.background() == shelly.background() + reader.background()

        await charger.set_enabled(True)  # control goes to the charger
        assert emulator.outputs == [True]
        reading = await charger.read()
        assert reading.energy_allowed  # the charger's reading, as it is
        assert reading.energy_wh is not None and 1000.0 <= reading.energy_wh < 1001.0
        await charger.close()
        assert reader.calls == ["start", "close"]


async def test_a_charger_with_its_own_reader_keeps_it() -> None:
    sim = SimulatedCharger(SimulatedOptions())
    reader = HandReader()
    charger = with_card_reader(sim, reader)
    # The simulated box reports its changes: it is still read on them, not every second.
    assert charger.reports_changes and poll_interval_for(charger, None) is None
    events: list[DeviceEvent] = []
    charger.set_listener(events.append)
    sim.tap("AT-THE-BOX")
    reader.tap("AT-THE-READER")
    assert events == [TagPresented("AT-THE-BOX"), TagPresented("AT-THE-READER")]
    assert charger.simulator is sim  # the local API still drives the simulated box
    charger.set_listener(None)
    reader.tap("NOBODY-LISTENS")
    assert len(events) == 2


async def test_a_configuration_builds_the_reader_beside_the_charger_and_its_meter(
    tmp_path: Path, transports: Transports
) -> None:
    reader = {"type": "rdm6300", "port": "/dev/ttyAMA0"}
    config = make_config(
        "ws://127.0.0.1:9/ocpp", tmp_path, meter={"type": "sdm630", "modbus": "tcp://192.0.2.50"},
        connector_fields={"card_reader": reader},
    )  # fmt: skip
    [connector] = config.charge_points[0].connectors
    charger = build_charger(connector, transports)
    assert isinstance(charger, ChargerWithCardReader)
    assert isinstance(charger.charger, MeteredCharger)
    assert isinstance(charger.reader, Rdm6300Reader) and charger.reader.port == "/dev/ttyAMA0"
    assert charger.description.endswith("with RDM6300 on /dev/ttyAMA0")
    caps = charger.capabilities
    assert (caps.has_rfid, caps.has_meter) == (True, True)
    plain = build_charger(
        make_config("ws://127.0.0.1:9/ocpp", tmp_path).charge_points[0].connectors[0], transports
    )
    assert not isinstance(plain, ChargerWithCardReader)


def test_the_service_may_open_serial_and_input_devices() -> None:
    lines = (ROOT / "systemd" / "ocpp-bridge.service").read_text(encoding="utf-8").splitlines()
    assert "SupplementaryGroups=dialout" in lines  # /dev/tty* (RDM6300, Modbus RTU)
    assert "SupplementaryGroups=input" in lines  # /dev/input/* (keyboard-wedge readers)
    assert "DeviceAllow=char-input r" in lines  # DevicePolicy=closed lets only listed devices open
    assert "DeviceAllow=char-ttyAMA rw" in lines  # the Pi's UART
    assert "PrivateDevices=no" in lines  # a private /dev would hold no reader
