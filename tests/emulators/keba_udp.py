"""A KEBA KeContact P30 speaking its UDP protocol, on a real UDP socket on loopback.

It follows the published protocol (adapters/chargers/keba_udp_api.py, docs/devices/keba-udp.md):
- commands as plain ASCII: `report 1|2|3|100`, `ena 0|1`, `curr <mA>` (6000..63000), `currtime <mA>
  <s>`, `failsafe <s: 0|10..600> <mA: 0|6000..63000> <persist 0|1>`, `unlock`; a command answered
  with `TCH-OK :done`, a report with its JSON (with "ID"); report 2's State (1 no vehicle or waiting
  for a card, 2 ready, 3 charging, 4 error with Error1/Error2, 5 interrupted: `ena 0` or the failsafe
  at 0 mA), Plug (0/1 no vehicle, socket/tethered; 7 in the vehicle and locked, 5 once unlocked),
  Enable sys/user, Max curr and Curr HW in mA; report 3's U in V, I in mA, P in mW, E pres and E total
  in 0.1 Wh; report 100's Session ID and RFID tag;
- its own datagrams (`{"State": 3}`, one field each) to the address of the last command's sender when
  State, Plug, Input, Enable sys or Max curr change, and E pres at most once a second while it moves;
- failsafe: after `failsafe T mA p` the box expects `curr`, `currtime` or `ena` within T seconds; when
  none comes it offers the failsafe current (0: stops charging) until the next one.

Where the guide is silent, this emulator's choices, so that a driver that breaks the rules fails:
- pacing: a command less than `command_gap_s` (0.1 s) after the last one, within `disable_gap_s`
  (2 s) after `ena 0`, or a report asked again within `repeat_gap_s` (5 s) is ignored: no reply, no
  effect, recorded in `pacing_violations` (the guide asks for the gaps; what the box does otherwise
  it does not say, and silence is what a client must expect of UDP anyway);
- refusals: an unknown command, a value out of its range, or `unlock` while energy is enabled (the
  guide: stop charging first) is answered `TCH-ERR` (the guide names only the OK answer);
  `refuse_failsafe` answers `TCH-ERR` to every `failsafe` (firmware without it, or with it locked).
Addressing: the real box answers to port 7090 of the sender's IP. `reply_port` stands for that 7090:
the tests give it the bridge's `local_port`; None answers to the sender's own port. `silent`: the box
hears and sends nothing. `stop` and `start` again serve on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from adapters.chargers import keba_udp_api as api

VOLTS = 230
PUSH_TICK_S = 0.05  # how often the box looks for a change to send


@dataclass(frozen=True)
class Command:
    text: str
    at: float  # time.monotonic()
    reply: str | None  # None: ignored (pacing) or silent


@dataclass
class KebaUdpBox:
    product: str = "KC-P30-EC240422-E00"
    serial: str = "18416854"
    firmware: str = "P30 v 3.10.42 (200512-083215)"
    curr_hw_ma: int = 16000  # DIP switches and cable
    fixed_cable: bool = False
    auth_on: bool = False  # sessions need a card
    command_gap_s: float = 0.1
    disable_gap_s: float = 2.0
    repeat_gap_s: float = 5.0
    time_scale: float = 1.0  # energy flows this many times faster than real time
    e_pres_push_s: float = 1.0
    ev_max_a: float = 16.0
    # what happens at the box
    plugged: bool = False
    ev_wants: bool = True
    errors: tuple[int, int] = (0, 0)  # Error1, Error2: State 4 while either is set
    silent: bool = False
    refuse_failsafe: bool = False
    # what the box was told
    enabled: bool = True  # ena (Enable user)
    curr_user_ma: int = 63000
    unlocked: bool = False
    failsafe_timeout_s: int = 0
    failsafe_ma: int = 0
    failsafe_persisted: bool = False
    # sessions
    e_total: int = 123456789  # 0.1 Wh
    session_id: int = 40
    session_start: int = 123456789
    authorized: bool = False
    rfid_tag: str = "0000000000000000"
    # records
    commands: list[Command] = field(default_factory=list)
    pacing_violations: list[Command] = field(default_factory=list)
    pushes: list[dict[str, Any]] = field(default_factory=list)
    reported_energy_wh: list[float] = field(default_factory=list)
    reported_power_w: list[float] = field(default_factory=list)
    _last_at: float = -1e9
    _quiet_until: float = -1e9
    _asked: dict[str, float] = field(default_factory=dict)
    # monotonic time of the failsafe's last curr/currtime/ena (a test moves it back: a bridge gone silent)
    kept_at: float = field(default_factory=time.monotonic)
    _flow_at: float = field(default_factory=time.monotonic)
    _carry: float = 0.0

    # -- the test's side --
    def plug(self) -> None:
        self._flow()
        self.plugged, self.unlocked, self.authorized = True, False, False
        self.session_id += 1
        self.session_start, self.rfid_tag = self.e_total, "0000000000000000"

    def unplug(self) -> None:
        self._flow()
        self.plugged = False

    def tap(self, tag: str) -> None:
        """A card at the box's reader authorises the plugged-in session (report 100 shows it)."""
        self.authorized, self.rfid_tag = True, tag

    def sent(self, verb: str) -> list[str]:
        """The arguments of the commands starting with `verb` that the box took (not TCH-ERR), in order."""
        return [
            c.text[len(verb) :].strip()
            for c in self.commands
            if c.reply not in (None, "TCH-ERR") and (c.text == verb or c.text.startswith(verb + " "))
        ]

    # -- what the box shows --
    @property
    def failsafe_tripped(self) -> bool:
        return bool(self.failsafe_timeout_s) and time.monotonic() - self.kept_at > self.failsafe_timeout_s

    def enable_sys(self) -> bool:
        if not self.enabled or (self.failsafe_tripped and self.failsafe_ma == 0):
            return False
        return not self.auth_on or self.authorized

    def max_curr(self) -> int:
        if not self.enable_sys():
            return 0
        limit = min(self.curr_user_ma, self.curr_hw_ma)
        return min(limit, self.failsafe_ma) if self.failsafe_tripped else limit

    def state(self) -> int:
        if any(self.errors):
            return api.STATE_ERROR
        if not self.plugged or (self.auth_on and not self.authorized):
            return api.STATE_NOT_READY
        if self.max_curr() == 0:
            return api.STATE_INTERRUPTED
        return api.STATE_CHARGING if self.ev_wants else api.STATE_READY

    def charging(self) -> bool:
        return self.state() == api.STATE_CHARGING

    def plug_value(self) -> int:
        if not self.plugged:
            return api.PLUG_STATION if self.fixed_cable else api.PLUG_NONE
        return api.PLUG_EV if self.unlocked else api.PLUG_EV_LOCKED

    def currents_ma(self) -> list[int]:
        if not self.charging():
            return [0, 0, 0]
        amps = min(self.max_curr(), int(self.ev_max_a * 1000))
        return [amps, amps, amps]

    def power_mw(self) -> int:
        return sum(ma * VOLTS for ma in self.currents_ma())

    def _flow(self) -> None:
        now = time.monotonic()
        wh = self.power_mw() / 1000 * (now - self._flow_at) * self.time_scale / 3600
        units = wh * 10 + self._carry  # 0.1 Wh, the fraction kept for the next step
        self.e_total += int(units)
        self._carry, self._flow_at = units - int(units), now

    def status(self) -> dict[str, int]:
        """The fields the box sends on its own when they change."""
        self._flow()
        return {
            "State": self.state(), "Plug": self.plug_value(), "Input": 0,
            "Enable sys": int(self.enable_sys()), "Max curr": self.max_curr(),
            "E pres": self.e_total - self.session_start,
        }  # fmt: skip

    def report(self, number: int) -> dict[str, Any] | None:
        self._flow()
        sec = int(time.monotonic())
        if number == 1:
            return {"ID": "1", "Product": self.product, "Serial": self.serial, "Firmware": self.firmware,
                    "COM-module": 0, "Sec": sec}  # fmt: skip
        if number == 2:
            state = self.status()
            return {
                "ID": "2", "State": state["State"], "Error1": self.errors[0], "Error2": self.errors[1],
                "Plug": state["Plug"], "AuthON": int(self.auth_on),
                "Authreq": int(self.auth_on and self.plugged and not self.authorized),
                "Enable sys": state["Enable sys"], "Enable user": int(self.enabled),
                "Max curr": state["Max curr"], "Max curr %": state["Max curr"] // 60,
                "Curr HW": self.curr_hw_ma, "Curr user": self.curr_user_ma, "Curr FS": self.failsafe_ma,
                "Tmo FS": self.failsafe_timeout_s, "Curr timer": 0, "Tmo CT": 0, "Setenergy": 0,
                "Output": 0, "Input": 0, "Serial": self.serial, "Sec": sec,
            }  # fmt: skip
        if number == 3:
            currents, power = self.currents_ma(), self.power_mw()
            volts = VOLTS if self.charging() else 0
            self.reported_energy_wh.append(self.e_total / 10)
            self.reported_power_w.append(power / 1000)
            return {
                "ID": "3", "U1": volts, "U2": volts, "U3": volts,
                "I1": currents[0], "I2": currents[1], "I3": currents[2], "P": power, "PF": 1000,
                "E pres": self.e_total - self.session_start, "E total": self.e_total,
                "Serial": self.serial, "Sec": sec,
            }  # fmt: skip
        if number == 100:
            return {
                "ID": "100", "Session ID": self.session_id, "Curr HW": self.curr_hw_ma,
                "E start": self.session_start, "E pres": self.e_total - self.session_start,
                "started[s]": 0, "ended[s]": 0, "reason": 0, "RFID tag": self.rfid_tag,
                "RFID class": "00000000000000000000", "Serial": self.serial, "Sec": sec,
            }  # fmt: skip
        return None

    # -- commands --
    def handle(self, text: str) -> str | None:
        """The reply to a command; None: ignored (it came too soon)."""
        now = time.monotonic()
        too_soon = now - self._last_at < self.command_gap_s or now < self._quiet_until
        if text.startswith("report ") and now - self._asked.get(text, -1e9) < self.repeat_gap_s:
            too_soon = True
        if too_soon:
            ignored = Command(text, now, None)
            self.commands.append(ignored)
            self.pacing_violations.append(ignored)
            return None
        self._last_at = now
        if text.startswith("report "):
            self._asked[text] = now
        reply = self._carry_out(text, now)
        self.commands.append(Command(text, now, reply))
        return reply

    def _carry_out(self, text: str, now: float) -> str:
        ok, err = "TCH-OK :done", "TCH-ERR"
        self._flow()
        verb, *args = text.split()
        try:
            values = [int(a) for a in args]
        except ValueError:
            return err
        if verb == "report" and len(values) == 1:
            answer = self.report(values[0])
            return err if answer is None else json.dumps(answer)
        if verb == "ena" and values in ([0], [1]):
            self.enabled, self.kept_at = values == [1], now
            if not self.enabled:
                self._quiet_until = now + self.disable_gap_s
            return ok
        if verb == "curr" and len(values) == 1 and api.CURRENT_MIN_MA <= values[0] <= api.CURRENT_MAX_MA:
            self.curr_user_ma, self.kept_at = values[0], now
            return ok
        if verb == "currtime" and len(values) == 2 and _current_or_0(values[0]) and values[1] >= 0:
            self.curr_user_ma, self.enabled, self.kept_at = values[0], True, now
            return ok
        if verb == "failsafe" and len(values) == 3 and _failsafe_ok(*values) and not self.refuse_failsafe:
            self.failsafe_timeout_s, self.failsafe_ma = values[0], values[1]
            self.failsafe_persisted, self.kept_at = values[2] == 1, now
            return ok
        if verb == "unlock" and not values:
            if self.plugged and self.enable_sys():
                return err  # stop charging first
            self.unlocked = self.plugged
            return ok
        return err


def _current_or_0(ma: int) -> bool:
    return ma == 0 or api.CURRENT_MIN_MA <= ma <= api.CURRENT_MAX_MA


def _failsafe_ok(timeout_s: int, ma: int, persist: int) -> bool:
    low, high = api.FAILSAFE_TIMEOUT_RANGE_S
    return (timeout_s == 0 or low <= timeout_s <= high) and _current_or_0(ma) and persist in (0, 1)


class KebaUdpEmulator(asyncio.DatagramProtocol):
    """The box behind a UDP socket on `host` (127.0.0.1, or another loopback address)."""

    def __init__(self, box: KebaUdpBox, *, host: str = "127.0.0.1", reply_port: int | None = None) -> None:
        self.box = box
        self.host = host
        self.port = 0
        self.reply_port = reply_port
        self._transport: asyncio.DatagramTransport | None = None
        self._sender: tuple[str, int] | None = None  # where replies and pushes go
        self._ticker: asyncio.Task[None] | None = None
        self._pushed: dict[str, int] = {}
        self._e_pres_at = 0.0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=(self.host, self.port))
        self._transport = transport
        self.port = transport.get_extra_info("sockname")[1]
        self._ticker = asyncio.create_task(self._tick())

    async def stop(self) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()
        ticker, self._ticker = self._ticker, None
        if ticker is not None:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if self.box.silent or self._transport is None:
            return
        self._sender = (addr[0], self.reply_port or addr[1])
        if not self._pushed:
            self._pushed = self.box.status()  # what the first sender is told of is news from now on
        reply = self.box.handle(data.decode("ascii", errors="replace").strip())
        if reply is not None:
            self._transport.sendto(reply.encode("ascii"), self._sender)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(PUSH_TICK_S)
            if self.box.silent or self._sender is None or self._transport is None:
                continue
            now = time.monotonic()
            for key, value in self.box.status().items():
                if self._pushed.get(key) == value:
                    continue
                if key == "E pres" and now - self._e_pres_at < self.box.e_pres_push_s:
                    continue
                if key == "E pres":
                    self._e_pres_at = now
                self._pushed[key] = value
                self.box.pushes.append({key: value})
                self._transport.sendto(json.dumps({key: value}).encode("ascii"), self._sender)


@contextlib.asynccontextmanager
async def keba_udp(
    box: KebaUdpBox, *, host: str = "127.0.0.1", reply_port: int | None = None
) -> AsyncIterator[KebaUdpEmulator]:
    """The box served on a free UDP port of `host`, stopped at the end."""
    emulator = KebaUdpEmulator(box, host=host, reply_port=reply_port)
    await emulator.start()
    try:
        yield emulator
    finally:
        await emulator.stop()
