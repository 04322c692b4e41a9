"""The RDM6300 reader (adapters/readers/rdm6300.py) on a real socat pseudo-terminal pair: frames written
at one end as the module sends them, read by the reader's background job at the other; its options
and configuration errors; and a card tapped at a relay wallbox through the daemon against the strict
central system (a tap starts a session, the same card again stops it)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.base import DeviceUnreachable
from adapters.readers.rdm6300 import Rdm6300Options, Rdm6300Reader
from adapters.readers.rdm6300_frames import encode
from bridge.config import ConfigError, load_config, parse_config
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.emulators.modbus_serving import socat_pair
from tests.emulators.shelly import EvLoad, ShellyEmulator
from tests.helpers.parts import until

ROOT = Path(__file__).resolve().parent.parent
CARD = "67003B51C6"  # devices.md §11.1's frame: checksum CB, printed number 0003887558
FRAME_GAP_S = 0.065  # how often the module repeats a frame while a card is held


class Module:
    """The module's side of the line: writes frames into one end of the pty pair."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY)

    def send(self, raw: bytes) -> None:
        os.write(self.fd, raw)

    async def hold(self, data: str, seconds: float) -> None:
        """A card held in the field: its frame every 65 ms."""
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while loop.time() < end:
            self.send(encode(data))
            await asyncio.sleep(FRAME_GAP_S)

    def close(self) -> None:
        os.close(self.fd)


@pytest.fixture
async def line(tmp_path: Path) -> AsyncIterator[tuple[Module, Path]]:
    """(the module's end, the reader's port)."""
    async with socat_pair(tmp_path) as (module_end, reader_end):
        module = Module(module_end)
        try:
            yield module, reader_end
        finally:
            module.close()


@contextlib.asynccontextmanager
async def listening(reader: Rdm6300Reader) -> AsyncIterator[asyncio.Task[None]]:
    """The reader's background job running, as the coordinator runs it; cancelled at the end."""
    [job] = reader.background()
    task = asyncio.create_task(job())
    await asyncio.sleep(0.05)  # the port is open and the loop watches it
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, DeviceUnreachable):
            await task


def reader_on(port: Path, **options: Any) -> tuple[Rdm6300Reader, list[str]]:
    reader = Rdm6300Reader(Rdm6300Options(port=str(port), **options))
    taps: list[str] = []
    reader.set_on_tag(taps.append)
    return reader, taps


# -- over the pty pair --------------------------------------------------------------------------------


async def test_a_held_card_is_one_tap_and_a_second_tap_is_another(line: tuple[Module, Path]) -> None:
    module, port = line
    reader, taps = reader_on(port, hold_s=0.3)
    assert reader.description == f"RDM6300 on {port}"
    async with listening(reader):
        await module.hold(CARD, 0.5)  # ~8 frames
        await until(lambda: taps == [CARD], "the taps", timeout_s=3)
        await asyncio.sleep(0.4)  # away from the field for longer than hold_s
        module.send(encode(CARD))
        await until(lambda: taps == [CARD, CARD], "the taps", timeout_s=3)
        module.send(encode("0A1B2C3D4E"))  # another card: a tap at once
        await until(lambda: len(taps) == 3, "the taps", timeout_s=3)
    assert taps == [CARD, CARD, "0A1B2C3D4E"]


async def test_bad_and_torn_frames_are_dropped_and_the_next_good_one_reads(
    line: tuple[Module, Path], caplog: pytest.LogCaptureFixture
) -> None:
    module, port = line
    reader, taps = reader_on(port, id_format="decimal")
    async with listening(reader):
        module.send(encode(CARD, check=0x00))  # bad checksum
        module.send(encode(CARD)[:6])  # torn: the next STX resynchronises
        module.send(b"\xff\x00noise")
        module.send(encode(CARD))
        await until(lambda: taps == ["0003887558"], "the taps", timeout_s=3)
    assert reader.dropped == 2
    dropped = [r.getMessage() for r in caplog.records if "frame dropped" in r.getMessage()]
    assert len(dropped) == 1  # then at most one line a minute
    assert "checksum 00 sent, CB computed" in dropped[0]


async def test_the_port_is_released_when_the_job_is_cancelled(line: tuple[Module, Path]) -> None:
    module, port = line
    first, _ = reader_on(port)
    async with listening(first) as task:
        # The port is locked for one reader: a second one is told so.
        second, _ = reader_on(port)
        [job] = second.background()
        with pytest.raises(DeviceUnreachable, match=f"cannot open {port}"):
            await job()
        assert not task.done()
    again, taps = reader_on(port)
    async with listening(again):
        module.send(encode(CARD))
        await until(lambda: taps == [CARD], "the taps", timeout_s=3)


async def test_a_missing_port_is_waited_for_then_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    reader, taps = reader_on(tmp_path / "ttyBRIDGE")  # the name socat_pair gives the reader's end
    reader.port_wait_s = 0.05
    [job] = reader.background()
    task = asyncio.create_task(job())
    try:
        await asyncio.sleep(0.2)
        assert not task.done()  # no failure every few seconds: one line, then it waits
        waiting = [r.getMessage() for r in caplog.records if "waiting for it" in r.getMessage()]
        assert waiting == [
            f"RDM6300 on {tmp_path / 'ttyBRIDGE'}: no device {tmp_path / 'ttyBRIDGE'} (is the reader wired"
            " and the UART enabled? ls -l /dev/serial*); waiting for it"
        ]
        async with socat_pair(tmp_path) as (module_end, _):
            module = Module(module_end)
            try:
                await asyncio.sleep(0.2)  # found and opened
                module.send(encode(CARD))
                await until(lambda: taps == [CARD], "the taps", timeout_s=3)
            finally:
                module.close()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, DeviceUnreachable):
            await task


async def test_a_line_that_goes_away_ends_the_job(tmp_path: Path) -> None:
    async with socat_pair(tmp_path) as (_, port):
        reader, _ = reader_on(port)
        [job] = reader.background()
        task = asyncio.create_task(job())
        await asyncio.sleep(0.05)
    # socat stopped: the pty's other end is gone (as a USB adapter pulled); the coordinator restarts it.
    with pytest.raises(DeviceUnreachable, match=f"RDM6300 on {port}"):
        await asyncio.wait_for(task, 3)


# -- options and configuration ---------------------------------------------------------------------------


def test_options_are_checked() -> None:
    assert Rdm6300Options(port="/dev/ttyAMA0").validate() == []
    assert [f for f, _ in Rdm6300Options().validate()] == ["port"]
    assert [f for f, _ in Rdm6300Options(port="COM3").validate()] == ["port"]
    assert [f for f, _ in Rdm6300Options(port="/dev/ttyS0", hold_s=0).validate()] == ["hold_s"]


CONFIG = """\
state_dir: /tmp/x
charge_points:
  - id: CP-1
    csms_url: ws://127.0.0.1:9/ocpp
    connectors:
      - id: 1
        charger: {{type: simulated}}
        card_reader:
{reader}
"""


def problems_of(reader: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(CONFIG.format(reader=reader), "reader.yaml")
    return str(caught.value)


def test_configuration_errors_name_the_line() -> None:
    text = problems_of("          type: rdm630")
    assert (
        "reader.yaml:9: charge_points[0].connectors[0].card_reader.type: unknown card reader type"
        " 'rdm630'; known types: evdev, rdm6300; did you mean 'rdm6300'?"
    ) in text
    text = problems_of("          type: rdm6300\n          id_format: dec")
    assert (
        "reader.yaml:10: charge_points[0].connectors[0].card_reader.id_format: expected one of 'hex',"
        " 'decimal', got the string 'dec'"
    ) in text
    text = problems_of("          type: rdm6300\n          hold_s: 2")
    assert "charge_points[0].connectors[0].card_reader.port: needs port" in text
    assert "reader.yaml:9: charge_points[0].connectors[0].card_reader.port" in text  # the block, not there
    text = problems_of("          type: rdm6300\n          port: /dev/ttyAMA0\n          baud: 9600")
    assert "reader.yaml:11: charge_points[0].connectors[0].card_reader.baud: unknown key 'baud'" in text
    assert "needs a type (one of: evdev, rdm6300)" in problems_of("          port: /dev/ttyAMA0")


def test_the_example_configuration_loads() -> None:
    config = load_config(ROOT / "config" / "card-reader.yaml")
    readers = [c.card_reader for cp in config.charge_points for c in cp.connectors if c.card_reader]
    assert [r.type for r in readers] == ["rdm6300"]
    assert readers[0].options.id_format == "decimal"


# -- through the daemon --------------------------------------------------------------------------------


async def test_a_tap_starts_a_session_at_a_relay_wallbox_and_the_same_card_stops_it(
    csms: StrictCentralSystem, line: tuple[Module, Path], tmp_path: Path
) -> None:
    module, port = line
    load = EvLoad(energy_wh=5000.0, plugged=True, time_scale=100)
    async with ShellyEmulator(load=load) as emulator:
        config = make_config(
            csms.url, tmp_path, charger={"type": "shelly", "url": emulator.url},
            connector_fields={"card_reader": {"type": "rdm6300", "port": str(port), "hold_s": 0.3}},
        )  # fmt: skip
        async with running(config) as daemon:
            device = daemon.charge_points["CP-1"].connectors[1].device
            assert device.capabilities.has_rfid  # a relay has no reader of its own; this one does
            await csms.wait_for_call(
                "CP-1", "StatusNotification", lambda p: (p["connectorId"], p["status"]) == (1, "Available")
            )
            await module.hold(CARD, 0.3)
            start = await csms.wait_for_call("CP-1", "StartTransaction")
            assert start["idTag"] == CARD
            assert [p["idTag"] for p in csms.calls("CP-1", "Authorize")] == [CARD]
            await csms.wait_until(lambda: emulator.outputs == [True], what="the relay closed")
            await asyncio.sleep(0.4)  # the card taken away, then tapped again
            await module.hold(CARD, 0.2)
            stop = await csms.wait_for_call("CP-1", "StopTransaction")
            await csms.wait_until(lambda: emulator.outputs == [False], what="the relay opened")
    assert (stop["idTag"], stop["reason"]) == (CARD, "Local")
    assert stop["transactionId"] == csms.last_transaction_id
    actions = [a for a in csms.actions("CP-1") if a in ("Authorize", "StartTransaction", "StopTransaction")]
    assert actions == ["Authorize", "StartTransaction", "StopTransaction"]  # the same card: no Authorize
