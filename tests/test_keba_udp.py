"""The KEBA P30/P40 UDP driver against its emulator (tests/emulators/keba_udp.py) over real UDP sockets:
the start and capabilities, readings in the box's units, commands in its units, its error replies, its
pacing, its own datagrams, the failsafe, a card, an outage; its configuration checked with line
numbers; and `ocpp-bridge probe` against it.

Addressing: the real box answers to port 7090 of the sender's IP. Here the bridge's one socket binds
a free port (`local_port`), and the emulator's `reply_port` is that port: the same rule with 7090
replaced. The box serves on its own free port (`port`). Pacing is scaled down (0.02 s between
commands, 0.3 s after `ena 0`, a report again after 0.5 s), the box's and the driver's alike.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.base import (
    DeviceEvent,
    DeviceRefused,
    DeviceUnreachable,
    FaultKind,
    NotSupportedByDevice,
    StateChanged,
    TagPresented,
)
from adapters.chargers.keba_udp import KebaUdpCharger, KebaUdpOptions
from adapters.transports.pool import Transports
from bridge.config import ConfigError, parse_config
from bridge.probe import probe
from tests.emulators.keba_udp import KebaUdpBox, KebaUdpEmulator, keba_udp
from tests.helpers.parts import until
from tests.processes import free_udp_port

PACING = {"command_gap_s": 0.02, "disable_gap_s": 0.3, "repeat_gap_s": 0.5}
DRIVER = {
    "timeout_s": 0.3, "command_interval_s": 0.02, "after_disable_s": 0.3, "repeat_interval_s": 0.5,
    "keepalive_s": 1.0,
}  # fmt: skip
STALE = 0.55  # the driver's cache of a report is over: the next read asks again


def whole(wh: float) -> str:
    """As `ocpp-bridge probe` prints a number (no ".0")."""
    return f"{wh:.3f}".rstrip("0").rstrip(".")


def box(**fields: Any) -> KebaUdpBox:
    return KebaUdpBox(**{**PACING, **fields})


def options(emu: KebaUdpEmulator, **fields: Any) -> KebaUdpOptions:
    assert emu.reply_port is not None
    return KebaUdpOptions(host="127.0.0.1", port=emu.port, local_port=emu.reply_port, **{**DRIVER, **fields})


@pytest.fixture
async def emu() -> AsyncIterator[KebaUdpEmulator]:
    async with keba_udp(box(plugged=True), reply_port=free_udp_port()) as emulator:
        yield emulator


async def test_the_start_reads_the_box_and_the_capabilities_follow_it(transports: Transports) -> None:
    async with keba_udp(box(curr_hw_ma=13000), reply_port=free_udp_port()) as emu:
        charger = KebaUdpCharger(options(emu, max_current_a=32), transports)
        await charger.start()
        caps = charger.capabilities
        assert [c.text for c in emu.box.commands] == ["report 1", "report 2"]
    assert (caps.can_sense_plug, caps.can_unlock, caps.fixed_cable, caps.can_switch_phases) == (
        True, True, False, False,
    )  # fmt: skip
    assert (caps.has_meter, caps.has_rfid, caps.can_reset) == (True, False, False)
    assert (caps.min_current_a, caps.max_current_a, caps.current_step_a) == (6, 13, 0.001)  # Curr HW
    # A tethered box without a meter whose sessions need a card.
    async with keba_udp(box(auth_on=True, fixed_cable=True), reply_port=free_udp_port()) as emu:
        charger = KebaUdpCharger(options(emu, fixed_cable=True, meter=False), transports)
        await charger.start()
        caps = charger.capabilities
        with pytest.raises(NotSupportedByDevice, match="tethered"):
            await charger.unlock()
        assert (await charger.read()).energy_wh is None
    assert (caps.can_unlock, caps.fixed_cable, caps.has_meter, caps.has_rfid) == (False, True, False, True)


async def test_a_reading_in_the_devices_units(emu: KebaUdpEmulator, transports: Transports) -> None:
    charger = KebaUdpCharger(options(emu), transports)
    reading = await charger.read()
    assert (reading.plugged, reading.ev_requesting, reading.energy_allowed) == (True, True, True)
    assert reading.energy_wh == emu.box.reported_energy_wh[-1]  # E total in 0.1 Wh
    assert reading.power_w == 11040.0  # 3 x 16000 mA x 230 V in mW
    assert reading.current_a == (16.0, 16.0, 16.0) and reading.voltage_v == (230.0, 230.0, 230.0)
    assert reading.current_offered_a == 16.0 and reading.fault is None
    again = await charger.read()  # within the repeat gap: from the cache, nothing asked
    assert again.energy_wh == reading.energy_wh
    assert [c.text for c in emu.box.commands] == ["report 1", "report 2", "report 3"]
    emu.box.unplug()
    await asyncio.sleep(STALE)
    idle = await charger.read()
    assert (idle.plugged, idle.ev_requesting, idle.energy_allowed) == (False, False, False)
    assert idle.current_a is None and idle.power_w == 0
    assert emu.box.pacing_violations == []


async def test_energy_on_and_off_and_the_current_in_milliamperes(
    emu: KebaUdpEmulator, transports: Transports
) -> None:
    charger = KebaUdpCharger(options(emu), transports)
    await charger.set_current(7.3)
    await charger.set_current(7.3)  # the box holds it: not sent again within the gap
    await charger.set_enabled(False)
    await asyncio.sleep(STALE)
    suspended = await charger.read()
    await charger.set_enabled(True)
    await asyncio.sleep(STALE)
    resumed = await charger.read()
    assert emu.box.sent("curr") == ["7300"]
    assert emu.box.sent("ena") == ["0", "1"]
    assert (suspended.energy_allowed, suspended.ev_requesting, suspended.plugged) == (False, False, True)
    assert resumed.energy_allowed and resumed.current_a == (7.3, 7.3, 7.3)
    assert resumed.current_offered_a == 7.3
    with pytest.raises(DeviceRefused, match=r"current 17 A outside 6\.\.16 A"):
        await charger.set_current(17)
    assert emu.box.sent("curr") == ["7300"]  # nothing sent
    with pytest.raises(NotSupportedByDevice):
        await charger.set_phases(1)
    # `ena 1` came at least 2 s (here 0.3 s) after `ena 0`; nothing was ignored.
    (off,) = [c.at for c in emu.box.commands if c.text == "ena 0"]
    (on,) = [c.at for c in emu.box.commands if c.text == "ena 1"]
    assert on - off >= 0.29 and emu.box.pacing_violations == []


async def test_the_devices_error_replies_and_its_error_state(
    emu: KebaUdpEmulator, transports: Transports
) -> None:
    charger = KebaUdpCharger(options(emu), transports)
    with pytest.raises(DeviceRefused, match="refused 'unlock': TCH-ERR"):
        await charger.unlock()  # the guide: stop charging first
    await charger.set_enabled(False)
    await charger.unlock()
    assert emu.box.sent("unlock") == [""] and emu.box.plug_value() == 5  # in the vehicle, unlocked
    emu.box.errors = (1, 0)
    await asyncio.sleep(STALE)
    reading = await charger.read()
    assert reading.fault is not None and reading.fault.kind is FaultKind.OTHER
    assert reading.fault.vendor_code == "Error1=1 Error2=0" and not reading.energy_allowed
    # Out of range or unknown, from a client the box answers at its own port: TCH-ERR.
    async with keba_udp(box()) as plain:
        client = transports.udp(free_udp_port())
        replies: list[bytes] = []
        client.subscribe(("127.0.0.1", plain.port), replies.append)
        for command in ("curr 5000", "failsafe 5 0 1", "ena 2", "hello", "report 7", "curr 6000"):
            await client.send(("127.0.0.1", plain.port), command.encode())
            await asyncio.sleep(0.05)
        answers = lambda: [r.decode() for r in replies if r.startswith(b"TCH-")]  # noqa: E731
        await until(lambda: len(answers()) == 6, "six answers", timeout_s=3)
    assert answers() == ["TCH-ERR"] * 5 + ["TCH-OK :done"]


async def test_the_driver_paces_and_the_box_ignores_what_comes_too_soon(
    emu: KebaUdpEmulator, transports: Transports
) -> None:
    charger = KebaUdpCharger(options(emu), transports)
    await charger.read()
    for amps in (8, 9, 10):
        await charger.set_current(amps)
    times = [c.at for c in emu.box.commands]
    assert min(b - a for a, b in itertools.pairwise(times)) >= 0.019 and emu.box.pacing_violations == []
    await asyncio.sleep(STALE)  # another driver of the same box: its reports may be asked again
    hasty = KebaUdpCharger(options(emu, after_disable_s=0), transports)
    await hasty.set_enabled(False)
    with pytest.raises(DeviceUnreachable, match=r"no answer to 'curr 11000' within 0\.3 s"):
        await hasty.set_current(11)  # within 2 s (here 0.3 s) of `ena 0`: ignored
    assert [c.text for c in emu.box.pacing_violations] == ["curr 11000"]
    await asyncio.sleep(STALE)
    rushed = KebaUdpCharger(options(emu, command_interval_s=0), transports)
    with pytest.raises(DeviceUnreachable, match="no answer to 'report 2'"):
        await rushed.start()  # report 2 right after report 1, not 100 ms (here 20 ms) later
    assert emu.box.pacing_violations[-1].text == "report 2"
    # A report again within 5 s (here 0.5 s) is ignored too; a driver that waits is not refused.
    await asyncio.sleep(STALE)
    eager = KebaUdpCharger(options(emu, repeat_interval_s=0.1, keepalive_s=1), transports)
    await eager.read()
    await asyncio.sleep(0.15)
    with pytest.raises(DeviceUnreachable, match="no answer to 'report 3'"):
        await eager.read()
    assert emu.box.pacing_violations[-1].text == "report 3"


async def test_the_boxs_own_datagrams_are_pushed_as_changes(
    emu: KebaUdpEmulator, transports: Transports
) -> None:
    events: list[DeviceEvent] = []
    charger = KebaUdpCharger(options(emu), transports)
    await charger.set_enabled(True)  # a transaction's: the bridge's first read switches nothing off
    charger.set_listener(events.append)
    assert (await charger.read()).plugged
    asked = len(emu.box.commands)
    emu.box.unplug()  # State, Plug, Max curr change: the box says so on its own
    await until(lambda: StateChanged() in events, "a push", timeout_s=3)
    reading = await charger.read()  # within the gap: the cache, brought up to date by the datagrams
    assert not reading.plugged and not reading.ev_requesting
    assert {"Plug": 0} in emu.box.pushes and {"State": 1} in emu.box.pushes
    assert len(emu.box.commands) == asked  # nothing asked: the datagrams said it
    assert emu.box.sent("failsafe") == ["30 0 1"]  # at the first operated read
    assert emu.box.sent("ena") == ["1", "1"]  # and the bridge's word, which was on


async def test_the_failsafe_is_kept_alive_and_acts_when_the_bridge_falls_silent(
    emu: KebaUdpEmulator, transports: Transports
) -> None:
    charger = KebaUdpCharger(options(emu, failsafe_timeout_s=10), transports)
    await charger.read()
    assert emu.box.sent("failsafe") == [] and emu.box.sent("ena") == []  # a probe sends no command
    charger.set_listener(lambda event: None)
    await asyncio.sleep(STALE)
    taken_over = await charger.read()
    assert emu.box.sent("failsafe") == ["10 0 1"] and emu.box.sent("ena") == ["0"]
    assert not taken_over.energy_allowed  # the bridge decides, not the box
    await charger.set_enabled(True)
    (watch,) = charger.background()
    job = asyncio.create_task(watch())
    try:
        await until(lambda: len(emu.box.sent("curr")) >= 1, "a keep-alive", timeout_s=2.5)
    finally:
        job.cancel()
    assert emu.box.sent("curr") == ["16000"] and emu.box.charging()  # the set-point, every keepalive_s
    emu.box.kept_at -= 11  # the bridge died 11 s ago: nothing kept the failsafe waiting
    assert emu.box.failsafe_tripped and emu.box.state() == 5 and emu.box.max_curr() == 0
    assert emu.box.pacing_violations == []


async def test_a_card_at_the_box_is_presented_once_per_session(transports: Transports) -> None:
    async with keba_udp(box(auth_on=True), reply_port=free_udp_port()) as emu:
        emu.box.plug()
        emu.box.tap("AABBCCDD00000000")  # a session the box authorised before the bridge started
        events: list[DeviceEvent] = []
        charger = KebaUdpCharger(options(emu), transports)
        charger.set_listener(events.append)
        await charger.read()
        (watch,) = charger.background()
        job = asyncio.create_task(watch())
        try:
            assert len(emu.box.sent("report 100")) == 1  # at the start: the session there is learnt
            emu.box.unplug()
            await asyncio.sleep(0.2)
            emu.box.plug()
            await asyncio.sleep(0.6)
            assert TagPresented("AABBCCDD") not in events  # learnt, not presented
            emu.box.tap("e3f76b8d00000000")
            await until(lambda: TagPresented("E3F76B8D") in events, "the card", timeout_s=3)
            await asyncio.sleep(1.1)  # asked no more once the session showed its card
        finally:
            job.cancel()
    assert [e for e in events if isinstance(e, TagPresented)] == [TagPresented("E3F76B8D")]
    assert emu.box.pacing_violations == []


async def test_an_outage_is_unreachable_and_the_box_comes_back(
    emu: KebaUdpEmulator, transports: Transports
) -> None:
    events: list[DeviceEvent] = []
    charger = KebaUdpCharger(options(emu), transports)
    charger.set_listener(events.append)
    await charger.set_enabled(True)
    assert (await charger.read()).ev_requesting
    (watch,) = charger.background()
    job = asyncio.create_task(watch())
    try:
        emu.box.silent = True
        events.clear()
        await until(lambda: StateChanged() in events, "the watch noticing", timeout_s=3)
        with pytest.raises(DeviceUnreachable, match="no answer"):
            await charger.read()
        emu.box.silent = False
        events.clear()
        await until(lambda: StateChanged() in events, "the box back", timeout_s=3)
        await asyncio.sleep(STALE)
        assert (await charger.read()).ev_requesting
        await emu.stop()  # gone: nothing listens on its port
        await asyncio.sleep(STALE)
        with pytest.raises(DeviceUnreachable, match="no answer to 'report 2'"):
            await charger.read()
        await emu.start()  # the same port
        await asyncio.sleep(STALE)
        assert (await charger.read()).ev_requesting
    finally:
        job.cancel()
    # After each absence the bridge's word again: the failsafe and its energy switch.
    assert emu.box.sent("failsafe") == ["30 0 1"] * 3 and emu.box.sent("ena") == ["1"] * 4
    assert emu.box.pacing_violations == []


async def test_after_a_restart_the_first_card_session_is_presented(transports: Transports) -> None:
    """The box unplugged when the bridge starts, its last (ended) session authorised by a card: the
    next plug-in waits for its card, even the same one (a new session)."""
    async with keba_udp(box(auth_on=True), reply_port=free_udp_port()) as emu:
        emu.box.plug()
        emu.box.tap("AABBCCDD00000000")
        emu.box.unplug()
        events: list[DeviceEvent] = []
        charger = KebaUdpCharger(options(emu), transports)
        charger.set_listener(events.append)
        assert not (await charger.read()).plugged
        (watch,) = charger.background()
        job = asyncio.create_task(watch())
        try:
            emu.box.plug()
            emu.box.tap("AABBCCDD00000000")
            await until(lambda: TagPresented("AABBCCDD") in events, "the card", timeout_s=3)
        finally:
            job.cancel()
    assert emu.box.pacing_violations == []


async def test_a_box_that_refuses_the_failsafe_is_still_switched_off(
    transports: Transports, caplog: pytest.LogCaptureFixture
) -> None:
    async with keba_udp(box(plugged=True, refuse_failsafe=True), reply_port=free_udp_port()) as emu:
        charger = KebaUdpCharger(options(emu), transports)
        charger.set_listener(lambda event: None)
        with caplog.at_level(logging.WARNING, logger="adapters.keba_udp"):
            reading = await charger.read()  # the take-over: failsafe refused, `ena 0` all the same
            emu.box.silent = True  # an outage: the bridge's word again once it answers
            await asyncio.sleep(STALE)
            with pytest.raises(DeviceUnreachable):
                await charger.read()
            emu.box.silent = False
            await asyncio.sleep(STALE)
            assert not (await charger.read()).energy_allowed
        refused = [c.text for c in emu.box.commands if c.text.startswith("failsafe") and c.reply == "TCH-ERR"]
    assert not reading.energy_allowed and reading.plugged and not emu.box.charging()
    assert emu.box.sent("ena") == ["0", "0"] and refused == ["failsafe 30 0 1"] * 2
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]  # once
    assert "refused 'failsafe 30 0 1': TCH-ERR" in warning and "failsafe is off" in warning


async def test_the_reading_at_a_stop_is_the_register_at_the_stop(transports: Transports) -> None:
    """A stop's reading comes at once (the bridge waits for it no longer than the quiet time after
    `ena 0`) and holds the box's register at the stop, within what flows in 100 ms."""
    async with keba_udp(box(plugged=True, time_scale=100), reply_port=free_udp_port()) as emu:
        charger = KebaUdpCharger(options(emu), transports)
        charger.set_listener(lambda event: None)
        await charger.set_enabled(True)
        flowing = await charger.read()
        assert flowing.power_w == 11040
        hundred_ms_wh = 11040 * 100 * 0.1 / 3600
        # Report 3 asked 0.3 s ago, so within its gap, or (the second time) long enough ago.
        for pause in (0.3, STALE):
            await asyncio.sleep(pause)
            await charger.set_enabled(False)
            emu.box.status()  # the box's register brought up to now: no energy flows after `ena 0`
            at_stop = emu.box.e_total / 10
            stop = await asyncio.wait_for(charger.read(), DRIVER["after_disable_s"])
            assert stop.energy_wh is not None and at_stop - hundred_ms_wh <= stop.energy_wh <= at_stop
            await charger.set_enabled(True)
    assert emu.box.pacing_violations == []


def test_a_host_name_with_a_typo_is_reported_with_its_line() -> None:
    text = CONFIG.format(host="keba..local", timeout=30, failsafe=0, keepalive=15)
    with pytest.raises(ConfigError) as info:
        parse_config(text, "keba.yaml")
    (problem,) = info.value.problems
    assert problem.path.endswith(".host") and "'keba..local' is not a host name" in problem.message
    assert text.splitlines()[problem.line - 1].strip().startswith("host:")
    for host in ("192.168.1.60:7090", "http://192.168.1.60", "keba box"):
        assert [f for f, _ in KebaUdpOptions(host=host).validate()] == ["host"], host


async def test_a_host_name_with_a_typo_does_not_start(transports: Transports) -> None:
    charger = KebaUdpCharger(KebaUdpOptions(host="keba..local", local_port=free_udp_port()), transports)
    with pytest.raises(DeviceUnreachable, match=r"'keba\.\.local' is not a host name"):
        await charger.start()


# -- configuration ------------------------------------------------------------------------------------

CONFIG = """\
state_dir: ./state
charge_points:
  - id: KEBA-1
    csms_url: ws://127.0.0.1:9000/ocpp
    connectors:
      - id: 1
        charger:
          type: keba-udp
          host: "{host}"
          failsafe_timeout_s: {timeout}
          failsafe_current_a: {failsafe}
          keepalive_s: {keepalive}
"""


def test_the_options_are_checked_with_line_numbers() -> None:
    text = CONFIG.format(host="192.0.2.9", timeout=30, failsafe=0, keepalive=15)
    good = parse_config(text, "keba.yaml")
    (connector,) = good.charge_points[0].connectors
    assert connector.charger.options == KebaUdpOptions(host="192.0.2.9")
    bad = CONFIG.format(host="", timeout=5, failsafe=3, keepalive=1)
    with pytest.raises(ConfigError) as info:
        parse_config(bad, "keba.yaml")
    found = {p.path.rsplit(".", 1)[-1]: (p.line, p.message) for p in info.value.problems}
    lines = bad.splitlines()
    for key, words in [
        ("host", "IP address"),
        ("failsafe_timeout_s", "0 (off) or 10 to 600"),
        ("failsafe_current_a", "0 (stop charging) or 6 to 63 A"),
        ("keepalive_s", "at least repeat_interval_s"),
    ]:
        line, message = found[key]
        assert lines[line - 1].strip().startswith(key + ":") and words in message, (key, line, message)


# -- ocpp-bridge probe --------------------------------------------------------------------------------


async def test_probe_describes_the_box_and_sends_no_command(emu: KebaUdpEmulator, tmp_path: Path) -> None:
    charger = {"type": "keba-udp", "host": "127.0.0.1", "port": emu.port, "local_port": emu.reply_port}
    doc = {
        "state_dir": str(tmp_path / "state"),
        "charge_points": [{
            "id": "KEBA-1", "csms_url": "ws://127.0.0.1:9/ocpp",
            "connectors": [{"id": 1, "charger": {**charger, **DRIVER}}],
        }],
    }  # fmt: skip
    lines: list[str] = []
    code = await probe(parse_config(yaml.safe_dump(doc)), lines.append, timeout_s=5)
    assert code == 0, lines
    assert lines == [
        f"KEBA-1 connector 1: KEBA at 127.0.0.1:{emu.port}",
        "  plugged: yes; vehicle asks for energy: yes; energy allowed: yes",
        f"  energy register: {whole(emu.box.reported_energy_wh[-1])} Wh; power: 11040 W; "
        "current: 16/16/16 A; voltage: 230/230/230 V",
        "  can: plug sensing yes, unlock yes, fixed cable no, phase switching no, reset no, meter yes, "
        "card reader no; 3 phase(s), current 6..16 A in steps of 0.001 A",
        "  OK",
        "1 of 1 device setups answer",
    ]
    assert [c.text for c in emu.box.commands] == ["report 1", "report 2", "report 3"]
