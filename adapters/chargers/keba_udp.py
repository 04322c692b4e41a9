"""KEBA KeContact P30 (c-/x-series) and P40 over UDP, port 7090.

Docs: docs/devices/keba-udp.md (enabling UDP on the box, what works, what does not); the commands, the
datagrams and the pure mapping are in keba_udp_api.py.

Theory
------
One socket: the box answers, and sends its own status datagrams, to port 7090 of the IP the last
command came from, whatever the source port. So the bridge binds one UDP socket on `local_port`
(7090) for all its boxes (adapters/transports/udp.py, `Transports.udp`) and this driver subscribes
to its box's (IP, port). A reply carries no request id: the driver has one command in flight per
box and takes a report's reply by its "ID", a command's by its `TCH-` text.

Pacing (the guide's §2.1): at least `command_interval_s` (0.1 s) between any two commands, at least
`after_disable_s` (2 s) after `ena 0`, and no repetition of the same report within
`repeat_interval_s` (5 s). So the reports are cached: report 3 (the meter) for 5 s; report 2 (the
state) for `keepalive_s`, since the box's own datagrams (State, Plug, Input, Enable sys, Max curr,
E pres) keep it current in between, but for 5 s only while the box does not answer, or after it
pushed State 4 (the error codes are only in report 2). A read therefore costs at most one command
(report 3) most of the time, and no 100 ms gap. A report asked and not answered is not asked again
before the gap is over: such a read fails at once as unreachable (the box would ignore it anyway). A
set-point already sent (the same `curr`) within the gap is not sent again: the box holds it.

Changes: each of the box's datagrams that changes a state field pushes a StateChanged, so the driver
`reports_changes` and the bridge reads it on those pushes and every 5 s while energy flows (E pres
moves with the energy and is merged without a push). The background job (`background()`) runs every
`repeat_interval_s` and does what nothing else would notice: it refreshes the failsafe (below), asks
`report 2` once the cached one is `keepalive_s` old (a box that stops answering pushes a
StateChanged, so the bridge reads and finds it unreachable; one that answers again pushes another:
silence is noticed within keepalive_s + repeat_interval_s + timeout_s of the last answer), and asks
`report 100` while a vehicle is plugged in on a box with authorisation on (AuthON) until its session
shows the card that authorised it: a TagPresented. The session found at the start (which asks report
100 once) is learnt, not presented: after a restart mid-session it would stop that session's
transaction. A learnt session the box is no longer plugged into has ended: the next plug-in waits for
its card (an unplug, or a plug-in the box pushes, starts the wait). The box's datagrams themselves
come through the shared socket's callback (`_on_datagram`), not through the job.

The bridge owns the decision to charge: once it operates the box (it has set a listener; `ocpp-bridge
probe` does not, and sends no command), the first read sends `failsafe` and `ena 0` unless the bridge
has switched energy already; after an outage it sends them again with its own last word (the box may
have rebooted, which forgets `ena 0`). A box that refuses `failsafe` (TCH-ERR: a firmware without
it) still gets `ena 0`, and one WARNING says the failsafe is off. Switching a charging box off also
takes the register at the stop (`_switch`): the bridge's reading for meterStop comes in the 2 s quiet
time after `ena 0`, in which a read asks nothing and serves the cache.

Current: `curr <mA>` rather than `currtime`: `currtime` also enables the box (it ends an `ena 0`), so it
cannot keep a suspended box alive; instead `failsafe <timeout> <mA> <persist>` is set when the bridge
takes over, and `curr` with the current set-point is sent again every `keepalive_s` (at most half the
failsafe timeout). A bridge that dies stops those commands, and after the timeout the box falls back
to the failsafe current (0: no charging).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adapters.base import (
    BackgroundJob,
    Charger,
    ChargerCapabilities,
    ChargerReading,
    DeviceError,
    DeviceRefused,
    DeviceUnreachable,
    NotSupportedByDevice,
    StateChanged,
    TagPresented,
)
from adapters.chargers import keba_udp_api as api
from adapters.chargers.keba_udp_options import KebaUdpOptions, host_problem
from adapters.transports.pool import Transports
from adapters.transports.udp import Peer, UdpSocket

log = logging.getLogger("adapters.keba_udp")


@dataclass
class _Cached:
    fields: dict[str, Any]
    asked_at: float  # loop time the report was asked


class KebaUdpCharger(Charger):
    Options = KebaUdpOptions
    reports_changes = True

    def __init__(self, options: KebaUdpOptions, transports: Transports) -> None:
        super().__init__()
        self.options = options
        self._socket: UdpSocket = transports.udp(options.local_port)
        self._peer: Peer | None = None  # (IP, port), resolved at the start
        self._lock = asyncio.Lock()  # one command in flight, paced
        self._report_lock = asyncio.Lock()  # one look at the cache and its refresh at a time
        self._waiting: tuple[str | None, asyncio.Future[api.Datagram]] | None = None
        self._last_sent = -1e9  # loop time of the last command
        self._quiet_until = -1e9  # after `ena 0`
        self._sent: dict[str, float] = {}  # command -> loop time it was last sent
        self._reports: dict[int, _Cached] = {}
        self._answering = True  # False from a command's timeout to the box's next datagram
        self._down = False  # the box stopped answering, as the watch last told the bridge
        self._error_pushed = False  # State 4 came in a datagram: its codes are only in report 2
        self._started = False
        self._curr_hw_ma = 0
        self._auth_on = False
        self._current_ma = api.milliamps(options.max_current_a)  # the set-point, kept alive
        self._enabled: bool | None = None  # as the bridge last switched it
        self._asserted = False  # failsafe and energy sent since the start or the last outage
        self._failsafe_at = -1e9
        self._failsafe_refused = False  # the box answered TCH-ERR to `failsafe` (warned once)
        self._tag_seen: tuple[int, str | None] | None = None  # report 100's session, last handled
        self._awaiting_tag = False  # a vehicle was plugged in since the last card

    # -- capabilities -----------------------------------------------------------------------------
    @property
    def capabilities(self) -> ChargerCapabilities:
        o = self.options
        top = o.max_current_a
        if self._curr_hw_ma:
            top = min(top, self._curr_hw_ma / 1000)
        return ChargerCapabilities(
            can_sense_plug=True,
            can_unlock=not o.fixed_cable,
            fixed_cable=o.fixed_cable,
            can_switch_phases=False,  # only through a KeContact S10 and the X2 output: not driven
            can_reset=False,
            has_meter=o.meter,
            has_rfid=self._auth_on,  # report 2's AuthON at the start: cards authorise sessions
            phases=o.phases,
            min_current_a=o.min_current_a,
            max_current_a=max(top, o.min_current_a),
            current_step_a=0.001,  # the box takes mA
        )

    @property
    def description(self) -> str:
        port = "" if self.options.port == api.PORT else f":{self.options.port}"
        return f"KEBA at {self.options.host}{port}"

    # -- the wire -----------------------------------------------------------------------------------
    def _on_datagram(self, data: bytes) -> None:
        try:
            datagram = api.parse(data)
        except ValueError as exc:
            log.debug("%s: datagram dropped: %s", self.description, exc)
            return
        self._answering = True
        if isinstance(datagram, api.Push):
            self._merge(datagram.fields)
            return
        if self._waiting is None or self._waiting[1].done():
            return  # late: its command timed out
        want, future = self._waiting
        if isinstance(datagram, api.Report) and datagram.number == want:
            future.set_result(datagram)
        elif isinstance(datagram, api.Ack) and (want is None or not datagram.ok):
            future.set_result(datagram)

    def _merge(self, fields: Mapping[str, Any]) -> None:
        """The box's own datagram: into the cached reports; a changed state field is pushed on."""
        changed = False
        report2 = self._reports.get(2)
        was_plugged = report2 is not None and api.plugged(report2.fields)
        for key, value in fields.items():
            if key == "E pres" and 3 in self._reports:
                self._reports[3].fields[key] = value
            elif key in api.REPORT_2_FIELDS and report2 is not None:
                changed |= report2.fields.get(key) != value
                report2.fields[key] = value
                self._error_pushed |= key == "State" and value == api.STATE_ERROR
            elif key in api.STATE_FIELDS:
                changed = True
        if report2 is not None and "Plug" in fields:
            self._note_plug(report2.fields, was_plugged)
        if changed:
            self._emit(StateChanged())

    async def _ask(self, command: str, report: int | None = None) -> api.Ack | api.Report:
        """Sends `command` when the pacing allows and waits for its answer: a report's (`report`) or
        a command's TCH-OK; a TCH-ERR is a refusal, no answer within timeout_s unreachable."""
        o = self.options
        assert self._peer is not None
        loop = asyncio.get_running_loop()
        async with self._lock:
            wait = max(self._last_sent + o.command_interval_s, self._quiet_until) - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            future: asyncio.Future[api.Datagram] = loop.create_future()
            self._waiting = (None if report is None else str(report), future)
            try:
                await self._socket.send(self._peer, command.encode("ascii"))
                async with asyncio.timeout(o.timeout_s):
                    answer = await future
            except TimeoutError:
                self._answering = False
                raise DeviceUnreachable(
                    f"{self.description}: no answer to {command!r} within {o.timeout_s:g} s"
                ) from None
            except OSError as exc:
                raise DeviceUnreachable(f"{self.description}: cannot send {command!r}: {exc}") from None
            finally:
                # The gaps count from the answer (or the timeout), not the sending: the box counts
                # from its receipt, and a datagram may take longer than the one after it.
                self._waiting = None
                self._last_sent = self._sent[command] = loop.time()
                if command == api.DISABLE:
                    self._quiet_until = self._last_sent + o.after_disable_s
        if isinstance(answer, api.Ack) and not answer.ok:
            raise DeviceRefused(f"{self.description} refused {command!r}: {answer.text}")
        assert not isinstance(answer, api.Push)
        log.debug("%s: %s answered", self.description, command)
        return answer

    async def _command(self, command: str) -> None:
        await self._ask(command)
        if command.startswith(("curr ", "ena ")):
            self._failsafe_at = asyncio.get_running_loop().time()  # either keeps the failsafe waiting

    async def _report(self, number: int, max_age_s: float | None = None) -> dict[str, Any]:
        """Report `number`, from the cache while it is younger than `max_age_s` (repeat_interval_s)."""
        gap = self.options.repeat_interval_s
        async with self._report_lock:
            now = asyncio.get_running_loop().time()
            cached = self._reports.get(number)
            if cached is not None and now - cached.asked_at < (gap if max_age_s is None else max_age_s):
                return cached.fields
            asked = self._sent.get(api.report(number))
            if asked is not None and now - asked < gap:
                raise DeviceUnreachable(
                    f"{self.description}: no answer to 'report {number}' {now - asked:.1f} s ago "
                    f"(the box takes the same command at most every {gap:g} s)"
                )
            answer = await self._ask(api.report(number), number)
            assert isinstance(answer, api.Report)
            fields = dict(answer.fields)
            self._reports[number] = _Cached(fields, self._sent[api.report(number)])
        if number == 2:
            self._error_pushed = False
            self._auth_on = api.as_int(fields, "AuthON") == 1
            self._note_plug(fields, True)
        return fields

    def _note_plug(self, report2: Mapping[str, Any], was_plugged: bool) -> None:
        if not was_plugged or not api.plugged(report2):
            self._awaiting_tag = True  # an unplug ends the session; a plug-in pushed starts one

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._started:
            return
        o = self.options
        loop = asyncio.get_running_loop()
        if self._peer is None:
            if (problem := host_problem(o.host)) is not None:
                raise DeviceUnreachable(f"{self.description}: {problem}")
            try:
                infos = await loop.getaddrinfo(o.host, o.port, family=socket.AF_INET, type=socket.SOCK_DGRAM)
            except (OSError, ValueError) as exc:  # ValueError: UnicodeError of a name IDNA refuses
                raise DeviceUnreachable(f"{self.description}: cannot resolve {o.host!r}: {exc}") from None
            self._peer = (str(infos[0][4][0]), o.port)
        self._socket.subscribe(self._peer, self._on_datagram)
        try:
            await self._socket.open()
        except OSError as exc:
            raise DeviceUnreachable(f"cannot bind UDP port {o.local_port} (KEBA's): {exc}") from None
        try:
            report1 = await self._report(1)
            report2 = await self._report(2)
            self._curr_hw_ma = api.as_int(report2, "Curr HW")
            if self._auth_on:
                await self._look_for_card()  # learns the session that is there before the bridge
        except ValueError as exc:
            raise DeviceRefused(f"{self.description}: not a KEBA report: {exc}") from None
        self._started = True
        log.info(
            "%s: %s; hardware limit %g A, authorisation by card %s",
            self.description, api.describe(report1), self._curr_hw_ma / 1000,
            "on" if self._auth_on else "off",
        )  # fmt: skip

    async def close(self) -> None:
        if self._peer is not None:
            self._socket.unsubscribe(self._peer, self._on_datagram)  # the socket is the pool's

    def background(self) -> tuple[BackgroundJob, ...]:
        return (self._watch,)

    # -- reading ----------------------------------------------------------------------------------
    async def read(self) -> ChargerReading:
        try:
            await self.start()
            report2 = await self._report(2, self._report2_age())  # first: a silent box gets no commands
            if self._listener is not None and not self._asserted:
                await self._assert()  # the box's datagrams bring report 2's changes meanwhile
            report3 = await self._report(3) if self.options.meter else None
            return api.reading_from(report2, report3, phases=self.options.phases)
        except DeviceUnreachable:
            self._asserted = False  # it may come back rebooted: failsafe and energy are sent again
            raise
        except ValueError as exc:
            raise DeviceRefused(f"{self.description}: a report the driver cannot read: {exc}") from None

    def _report2_age(self) -> float:
        """How old report 2 may be: the box's datagrams keep it current, so keepalive_s; the guide's
        gap while the box does not answer or after it pushed State 4 (whose codes only report 2 has);
        any age in the quiet time after `ena 0` (the reading at a stop, which must not wait)."""
        o = self.options
        if self._answering and asyncio.get_running_loop().time() < self._quiet_until:
            return float("inf")  # it just answered `ena 0`; asking would only wait out the quiet time
        return o.repeat_interval_s if not self._answering or self._error_pushed else o.keepalive_s

    async def _assert(self) -> None:
        """The bridge's word at its first reading and after an outage: the failsafe, and energy off
        unless the bridge switched it (the box's own logic would charge a plugged car by itself)."""
        o = self.options
        if o.failsafe_timeout_s:
            try:
                await self._command(
                    api.failsafe(
                        o.failsafe_timeout_s, api.milliamps(o.failsafe_current_a), o.failsafe_persist
                    )
                )
                log.info("%s: failsafe %g A after %d s without the bridge", self.description,
                         o.failsafe_current_a, o.failsafe_timeout_s)  # fmt: skip
                self._failsafe_refused = False
            except DeviceRefused as exc:  # the energy switch below must not depend on it
                if not self._failsafe_refused:
                    log.warning(
                        "%s; the failsafe is off: if the bridge dies, the box keeps its last `ena` and "
                        "`curr` (a car may go on charging with no transaction). Check the firmware, or "
                        "set failsafe_timeout_s: 0 to stop asking", exc,
                    )  # fmt: skip
                self._failsafe_refused = True
        await self._switch(bool(self._enabled))
        self._asserted = True

    # -- the background job -------------------------------------------------------------------------
    async def _watch(self) -> None:
        """Every repeat_interval_s: the failsafe kept, the box's silence noticed, a card looked for."""
        o = self.options
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(o.repeat_interval_s)
            try:
                now = loop.time()
                keep = self._asserted and o.failsafe_timeout_s and not self._failsafe_refused
                if keep and now - self._failsafe_at >= o.keepalive_s:
                    await self._command(api.curr(self._current_ma))
                await self._report(2, self._report2_age())  # is it there? (datagrams are not asked)
                if self._auth_on and self._listener is not None:
                    await self._look_for_card()
            except DeviceError as exc:
                if not self._down:
                    self._down = True
                    log.debug("%s: %s", self.description, exc)
                    self._emit(StateChanged())  # the bridge reads, and finds it unreachable
                continue
            except ValueError:
                continue
            if self._down and self._answering:  # it answered again (not merely a cache's answer)
                self._down = False
                self._emit(StateChanged())

    async def _look_for_card(self) -> None:
        """Report 100 while a vehicle is plugged in and its session has shown no card yet."""
        report2 = self._reports.get(2)
        first = self._tag_seen is None
        if not first and not (self._awaiting_tag and report2 is not None and api.plugged(report2.fields)):
            return
        asked = self._sent.get(api.report(100))
        if asked is not None and asyncio.get_running_loop().time() - asked < self.options.repeat_interval_s:
            return
        session, tag = api.session_tag(await self._report(100))
        if first:
            self._tag_seen = (session, tag)  # learnt: a session older than the bridge's look
            # Unplugged, that card belongs to a session that has ended: the next plug-in needs one.
            self._awaiting_tag = tag is None or report2 is None or not api.plugged(report2.fields)
            return
        if tag is not None and (session, tag) != self._tag_seen:
            self._tag_seen, self._awaiting_tag = (session, tag), False
            self._emit(TagPresented(tag))

    # -- commands ---------------------------------------------------------------------------------
    async def set_enabled(self, enabled: bool) -> None:
        await self.start()
        await self._switch(enabled)

    async def _switch(self, enabled: bool) -> None:
        """`ena`; switching off a box that charges, also the register at the stop (report 3, cached).

        The bridge reads the device right after it switched energy off (meterStop), and waits for that
        reading no longer than the box's quiet time after `ena 0` (2 s), in which nothing may be
        asked: without this, that reading would be a report 3 up to repeat_interval_s old. So report
        3 is asked just before `ena 0` when its gap allows (the register within a command interval
        and a reply of the stop); otherwise (it was asked less than repeat_interval_s ago) right
        after `ena 0`, once both the quiet time and its gap are over (the register no longer moves),
        which keeps this call up to repeat_interval_s. The read then takes it from the cache."""
        was_on, self._enabled = self._enabled, enabled  # the bridge's word from now on
        report2 = self._reports.get(2)
        charging = report2 is not None and report2.fields.get("State") == api.STATE_CHARGING
        stop_reading = was_on is True and not enabled and self.options.meter and charging
        if stop_reading and self._report_gap_left(3) <= 0:
            stop_reading = not await self._fresh_report3()
        await self._command(api.ena(enabled))
        if stop_reading:
            await asyncio.sleep(self._report_gap_left(3))
            await self._fresh_report3()

    def _report_gap_left(self, number: int) -> float:
        """How long until report `number` may be asked again (0 or less: now)."""
        asked = self._sent.get(api.report(number), -1e9)
        return asked + self.options.repeat_interval_s - asyncio.get_running_loop().time()

    async def _fresh_report3(self) -> bool:
        """Report 3 asked now (its pacing kept), for the cache; a failure only logged: the switch goes on."""
        try:
            await self._report(3, max_age_s=0)
        except DeviceError as exc:
            log.debug("%s: no reading at the switch-off: %s", self.description, exc)
            return False
        return True

    async def set_current(self, amps: float) -> None:
        caps = self.capabilities
        if not caps.min_current_a <= amps <= caps.max_current_a:
            span = f"{caps.min_current_a:g}..{caps.max_current_a:g} A"
            raise DeviceRefused(f"current {amps:g} A outside {span}")
        await self.start()
        milliamps = api.milliamps(amps)
        command = api.curr(milliamps)
        sent = self._sent.get(command)
        now = asyncio.get_running_loop().time()
        if milliamps == self._current_ma and sent is not None and now - sent < self.options.repeat_interval_s:
            return  # the box holds it: the same command again within the gap is no news
        self._current_ma = milliamps
        await self._command(command)

    async def unlock(self) -> None:
        if self.options.fixed_cable:
            raise NotSupportedByDevice("this KEBA has a tethered cable: nothing to unlock")
        await self.start()
        # The guide: stop charging first. The bridge does (a transaction ends before an unlock); the
        # driver does not switch energy behind its back: a box still charging refuses (TCH-ERR).
        await self._command(api.UNLOCK)
