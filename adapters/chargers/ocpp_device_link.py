"""One OCPP charger's connection to the bridge's local endpoint: the central system's side of its
calls (BootNotification, Heartbeat, StatusNotification, MeterValues, Authorize, Start/StopTransaction,
DataTransfer), on the `ocpp` library's ChargePoint: its `@on` routes and its `call` for the bridge's own
calls, but the charger's calls are checked and answered here (`_answer`): inline against compiled
1.6 schemas (adapters/transports/ocpp16_schema.py), CALLERRORs with 1.6 codes, no generic key
conversion; the library's check in a thread executor and its routing were most of the link's CPU
(bench/ocpp_device.py).

What the charger says is kept in `ChargerState` (its status, its meter, its own transaction) for the
driver (ocpp_device.py) to read; what it does that OCPP does not allow is recorded there as a short
text (`deviations`, the newest kept) and goes no further: the bridge's upstream messages are made
from readings, never forwarded from the charger.

One link serves every connector of the charger that a connector of the bridge drives (a `Seat` each,
ocpp_device_hub.py keeps them): StatusNotification, MeterValues and StartTransaction go to the
connector they name, StopTransaction to the connector whose transaction it is, connector 0's status
(the charger as a whole) to every one; a connector no one drives is answered, its values ignored, and
noted once (`ChargerWide.undriven`). Authorize names no connector: see `on_authorize`.

Calls from the charger are handled one at a time in the order they came (OCPP-J), but in a task of
their own beside the reader of the socket (`run`): an Authorize, or a StartTransaction the bridge
did not ask for, waits for the bridge's decision (`Decisions`), and meanwhile the answers to the
bridge's own calls (a SetChargingProfile) must still be read, which the library's single loop would
not do. A call whose handler never waits (ANSWERED_AT_ONCE), with none before it, is answered by the
reader itself: the same order, without a task switch per MeterValues.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from ocpp.routing import on as _library_on
from ocpp.v16 import ChargePoint as LibraryChargePoint
from ocpp.v16 import call_result
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from adapters.chargers.ocpp_device_frames import CALLERROR, camel, message_of, parse_time, snake
from adapters.chargers.ocpp_device_state import DEVIATIONS_KEPT as DEVIATIONS_KEPT
from adapters.chargers.ocpp_device_state import IN_TRANSACTION, ChargerWide, Seat, now_iso, silent
from adapters.chargers.ocpp_device_state import STATUS_READING as STATUS_READING
from adapters.chargers.ocpp_device_state import ChargerState as ChargerState
from adapters.chargers.ocpp_device_state import Decisions as Decisions
from adapters.chargers.ocpp_device_values import take, take_start, take_stop
from adapters.transports.ocpp16_schema import CALL, CALLRESULT, UnknownAction, violation

log = logging.getLogger("adapters.ocpp_device")

# Calls read while one is being handled: OCPP-J allows one outstanding call per side, but a charger
# that sends its StatusNotification before its StartTransaction's answer is common and served. Past
# these the call gets a GenericError at once, so a flood is not held in memory (nor read faster than
# the answers go out: the refusal's send waits for the socket).
CALLS_QUEUED = 8
# Calls whose handlers never wait for the bridge: answered by the reader itself when nothing is queued.
ANSWERED_AT_ONCE = frozenset({"MeterValues", "StatusNotification", "Heartbeat"})
STALE_START_S = 60.0  # a StartTransaction the bridge did not ask for, begun this long before it connected

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def on(action: str) -> Callable[[F], F]:
    """The library's @on, typed (it is not)."""
    decorator: Callable[[F], F] = _library_on(action)
    return decorator


class ChargerLink(LibraryChargePoint):  # type: ignore[misc]  # the library is untyped
    """The charger's calls, answered as its central system, each routed to the connector it names
    (`seats`, the driven connectors, kept up to date by the hub); `call` sends the bridge's."""

    def __init__(
        self,
        identity: str,
        connection: ServerConnection,
        charger: ChargerWide,
        seats: Mapping[int, Seat],
        *,
        heartbeat_interval_s: int,
        card_wait_s: float,
        call_timeout_s: float,
        next_transaction_id: Callable[[], int],
    ) -> None:
        super().__init__(identity, connection, response_timeout=call_timeout_s)
        self.connection = connection
        self.charger = charger
        self.seats = seats
        self.heartbeat_interval_s = heartbeat_interval_s
        self.card_wait_s = card_wait_s
        self.next_transaction_id = next_transaction_id
        self.connected_at = datetime.now(UTC)
        # "Booted" is the charger's, not the connection's: one that booted before in this run and
        # reconnects (a Wi-Fi blip) sends no new BootNotification, as OCPP 1.6 allows.
        self.booted = charger.booted
        self.booted_here = False  # a BootNotification on this connection
        self.boot_seen = asyncio.Event()
        self.called_unbooted = asyncio.Event()  # a call before any boot: the hub asks it to boot
        if self.booted:
            self.boot_seen.set()
        self.last_heard = time.monotonic()  # any frame from it (monotonic seconds)
        self.timeouts = 0  # the bridge's calls it left unanswered in a row (the driver counts them)
        # Its clock against the bridge's, in seconds (the bridge's time minus its timestamps): the least
        # seen on this connection since its boot, as buffered samples only make it larger. A charger
        # whose clock is behind, or that sends local time without an offset, is judged by its own clock.
        self.clock_offset_s: float | None = None

    async def run(self) -> None:
        """Reads the socket until it closes: answers to the bridge's calls at once, the charger's calls
        in order through one worker."""
        calls: asyncio.Queue[list[Any]] = asyncio.Queue(CALLS_QUEUED)
        busy = [False]  # the worker is answering a call

        async def worker() -> None:
            while True:
                message = await calls.get()
                busy[0] = True
                try:
                    await self._answer_safely(message)
                finally:
                    busy[0] = False

        async with asyncio.TaskGroup() as group:
            task = group.create_task(worker())
            try:
                async for raw in self.connection:
                    self.last_heard = time.monotonic()
                    await self._read(raw, calls, idle=not busy[0])
            finally:
                task.cancel()

    async def _answer_safely(self, message: list[Any]) -> None:
        try:
            await self._answer(message)
        except Exception:  # one call never ends the link (a send that fails ends the reader)
            self._warn("answer", "a call could not be answered", exc_info=True)

    async def _read(self, raw: str | bytes, calls: asyncio.Queue[list[Any]], *, idle: bool) -> None:
        """One frame: a call queued for the worker (refused when too many wait), or answered here when
        nothing is before it and its handler never waits; an answer to the bridge's call routed by the
        library; whatever it holds, it never ends the link."""
        try:
            text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
            message = message_of(text)
            if message is None:
                self._warn("frame", "a frame that is not OCPP-J ignored")
            elif message[0] != CALL:
                await self.route_message(text)  # an answer to the bridge's call: the library's
            elif idle and calls.empty() and len(message) == 4 and message[2] in ANSWERED_AT_ONCE:
                # The same order as through the worker, without a task switch per message (the
                # common case: a MeterValues each interval).
                await self._answer_safely(message)
            elif calls.full():
                self._warn("queue", "a call while its earlier calls are unanswered refused")
                await self._error(message[1], "GenericError", "a call before the answer to its previous one")
            else:
                calls.put_nowait(message)
        except (ConnectionClosed, asyncio.CancelledError):
            raise
        except Exception:
            self._warn("frame", "a frame could not be handled", exc_info=True)

    def silent(self, now: float) -> bool:
        """Nothing heard from it for too long at `now` (monotonic seconds): see state.silent."""
        return silent(self.last_heard, now, self.heartbeat_interval_s)

    def _warn(self, kind: str, text: str, *, exc_info: bool = False) -> None:
        """A warning of the link, at most once per kind a minute (a storm of bad frames)."""
        if self.charger.warn_now(kind, time.monotonic()):
            log.warning("OCPP charger %s: %s", self.id, text, exc_info=exc_info)

    async def _answer(self, message: list[Any]) -> None:
        """One call of the charger, checked against its 1.6 schema and answered by its handler (or
        with the CALLERROR that says what is wrong). Not the library's route_message: its schema check
        in a thread and its generic key conversion were most of the link's CPU (bench/ocpp_device.py)."""
        unique_id = message[1]
        if len(message) != 4 or not isinstance(message[2], str) or not isinstance(message[3], dict):
            await self._error(unique_id, "FormationViolation", "a CALL is [2, id, action, {payload}]")
            return
        action, payload = message[2], message[3]
        try:
            wrong = violation(CALL, action, payload)
        except UnknownAction:
            await self._error(unique_id, "NotImplemented", "an action OCPP 1.6 does not know")
            return
        handler = self.route_map.get(action, {}).get("_on_action")
        if handler is None:
            await self._error(unique_id, "NotSupported", f"{action} is not supported")
            return
        if wrong is not None:
            log.warning(
                "OCPP charger %s: %s refused (%s): %s", self.id, action, wrong.code, wrong.description
            )
            await self._error(unique_id, wrong.code, wrong.description)
            return
        try:
            answer = camel(await handler(**snake(payload)))
            wrong = violation(CALLRESULT, action, answer)
            if wrong is not None:
                raise ValueError(f"the answer breaks its schema: {wrong.description}")
        except Exception:  # one bad call never ends the link
            log.exception("OCPP charger %s: answering %s failed", self.id, action)
            await self._error(unique_id, "InternalError", f"{action} could not be answered")
            return
        if not answer:  # most answers (MeterValues, StatusNotification): no list to encode
            await self.connection.send(f"[{CALLRESULT},{json.dumps(unique_id)},{{}}]")
            return
        await self._send_frame([CALLRESULT, unique_id, answer])

    async def _error(self, unique_id: str, code: str, description: str) -> None:
        await self._send_frame([CALLERROR, unique_id, code, description, {}])

    async def _send_frame(self, frame: list[Any]) -> None:
        # Not logged: a frame may hold a secret, and the daemon keeps the library's frame logs quiet too.
        await self.connection.send(json.dumps(frame, separators=(",", ":")))

    def _before_boot(self, action: str) -> None:
        if not self.booted:
            self.called_unbooted.set()
            self.charger.deviation(f"{action} before its BootNotification on this connection")

    def _seat(self, connector_id: int) -> Seat | None:
        """The driven connector `connector_id`; None (noted once) for one no connector of the bridge
        drives. Connector 0 is the charger as a whole, never a seat."""
        seat = self.seats.get(connector_id)
        if seat is None and connector_id > 0:
            self.charger.not_driven(connector_id)
        return seat

    def _changed_all(self) -> None:
        for seat in list(self.seats.values()):
            seat.on_change()

    @on("BootNotification")
    async def on_boot_notification(self, **_: Any) -> Any:
        self.booted = self.booted_here = self.charger.booted = True
        self.clock_offset_s = None  # it sets its clock from our answer's currentTime
        for seat in self.seats.values():
            seat.state.booted = True
            seat.state.open_at_boot = seat.state.transaction_id
        self.boot_seen.set()
        self._changed_all()
        return call_result.BootNotification(
            current_time=now_iso(), interval=self.heartbeat_interval_s, status="Accepted"
        )

    @on("Heartbeat")
    async def on_heartbeat(self) -> Any:
        self._before_boot("Heartbeat")
        return call_result.Heartbeat(current_time=now_iso())

    @on("StatusNotification")
    async def on_status_notification(
        self, connector_id: int, error_code: str, status: str, **extra: Any
    ) -> Any:
        self._before_boot("StatusNotification")
        self._clock(extra.get("timestamp"))
        if connector_id == 0:  # the charger as a whole: its fault is a fault of each connector
            c = self.charger
            c.status, c.error_code = status, error_code
            c.info, c.vendor_error_code = extra.get("info"), extra.get("vendor_error_code")
            self._changed_all()
            return call_result.StatusNotification()
        seat = self._seat(connector_id)
        if seat is not None:
            s = seat.state
            previous = s.status
            if status in IN_TRANSACTION and s.transaction_id is None:
                s.deviation(f"StatusNotification {status} on connector {connector_id} without a transaction")
            elif status in IN_TRANSACTION and s.open_at_boot is not None:
                self._resumed(s, s.open_at_boot)
            if previous == "Available" and status in ("Finishing", "SuspendedEV"):
                s.deviation(f"StatusNotification {previous} -> {status} on connector {connector_id}")
            s.status, s.error_code = status, error_code
            s.info, s.vendor_error_code = extra.get("info"), extra.get("vendor_error_code")
            plugged = STATUS_READING.get(status, (None, False, False))[0]
            if plugged is not None:
                s.plugged = plugged
            seat.on_change()
        return call_result.StatusNotification()

    @on("MeterValues")
    async def on_meter_values(
        self, connector_id: int, meter_value: list[dict[str, Any]], **extra: Any
    ) -> Any:
        self._before_boot("MeterValues")
        for sample in meter_value:
            self._clock(sample.get("timestamp"))
        transaction_id = extra.get("transaction_id")
        seat = self._seat(connector_id)
        if seat is None:
            return call_result.MeterValues()  # connector 0's meter, or one the bridge does not drive
        s = seat.state
        if transaction_id is not None and transaction_id != s.transaction_id:
            s.deviation(f"MeterValues for transaction {transaction_id}, not its transaction")
            s.stray_transaction_id = transaction_id
            seat.on_change()
        elif transaction_id is not None and transaction_id == s.open_at_boot:
            self._resumed(s, transaction_id)
        unknown = s.energy_wh is None
        for sample in meter_value:
            take(s, sample.get("sampled_value", []))  # finite, plausible values only
        if unknown and s.energy_wh is not None:
            seat.on_change()  # its first register: a meter now (the bridge reads it at once)
        return call_result.MeterValues()

    def _seat_of(self, transaction_id: int | None) -> Seat | None:
        """The connector whose transaction (running, stray or open at its boot) this is."""
        if transaction_id is None:
            return None
        for seat in self.seats.values():
            s = seat.state
            if transaction_id in (s.transaction_id, s.stray_transaction_id, s.open_at_boot):
                return seat
        return None

    def _resumed(self, state: ChargerState, transaction_id: int) -> None:
        """After a reboot a charger ends the transaction it had (StopTransaction, PowerLoss or Reboot);
        one that goes on with it is noted once. The bridge's own transaction goes by its own rules."""
        state.deviation(f"resumed transaction {transaction_id} after it booted again, instead of ending it")
        state.open_at_boot = None

    @on("Authorize")
    async def on_authorize(self, id_tag: str) -> Any:
        """A card at the charger: presented to the connector it is for, which decides through the
        bridge's own transaction; the answer waits for that, Accepted once the bridge switches energy on.
        Authorize names no connector: with several driven, `_card_seat` picks one; when it cannot,
        Accepted at once, and its StartTransaction (which names its connector) presents the card there
        and waits for the bridge's decision (docs/devices/ocpp.md)."""
        self._before_boot("Authorize")
        seat = self._card_seat()
        if seat is None:
            return call_result.Authorize(id_tag_info={"status": "Accepted"})
        if seat.decisions.enabled and seat.state.transaction_id is None:
            return call_result.Authorize(id_tag_info={"status": "Accepted"})
        accepted = await self._decided(seat, id_tag)
        return call_result.Authorize(id_tag_info={"status": "Accepted" if accepted else "Invalid"})

    def _card_seat(self) -> Seat | None:
        """The connector a card is for: the only one driven; else the one plugged without a
        transaction; else, none being so, the one whose transaction runs (a card that ends it); None
        when that does not name one."""
        seats = list(self.seats.values())
        if len(seats) == 1:
            return seats[0]  # its one connector, plugged or not (a card before the plug waits)
        free = [seat for seat in seats if seat.state.plugged and seat.state.transaction_id is None]
        running = [seat for seat in seats if seat.state.transaction_id is not None]
        if len(free) == 1:
            return free[0]
        return running[0] if not free and len(running) == 1 else None

    async def _decided(self, seat: Seat, id_tag: str) -> bool:
        """The connector is told of the tag and decides by the bridge's own transaction: True once it
        switches energy on, False when it has not within card_wait_s."""
        decisions = seat.decisions
        waiting = decisions.changed
        decisions.cards_waiting += 1
        seat.on_tag(id_tag)
        try:
            async with asyncio.timeout(self.card_wait_s):
                while not decisions.enabled:
                    await waiting.wait()
                    waiting = decisions.changed
        except TimeoutError:
            return False
        finally:
            decisions.cards_waiting -= 1
        return True

    @on("StartTransaction")
    async def on_start_transaction(
        self, connector_id: int, id_tag: str, meter_start: int, timestamp: str, **_: Any
    ) -> Any:
        """Given a local id; Accepted only once the bridge lets energy flow on that connector: a start
        the bridge did not ask for (a charger in free mode, one that starts on its own after a card, one
        that refuses RemoteStartTransaction, a card whose connector was not known at its Authorize)
        presents its tag and waits for the bridge's decision as an Authorize does, Invalid when none
        came, so the charger ends it; a stale one, or one on a connector the bridge does not drive, is
        Invalid at once."""
        self._before_boot("StartTransaction")
        transaction_id = self.next_transaction_id()
        self.charger.given_ids.append(transaction_id)
        seat = self._seat(connector_id)
        asked = seat is not None and seat.decisions.enabled  # the bridge asked for it: never stale
        stale = not asked and self._stale(timestamp)
        if stale:
            self.charger.deviation(f"StartTransaction of a session begun at {timestamp}, before it connected")
        invalid = call_result.StartTransaction(
            transaction_id=transaction_id, id_tag_info={"status": "Invalid"}
        )
        if seat is None:
            return invalid
        s = seat.state
        if s.transaction_id is not None:
            s.deviation(f"StartTransaction while its transaction {s.transaction_id} was not stopped")
        if stale or (not seat.decisions.enabled and not await self._decided(seat, id_tag)):
            return invalid  # its meterStart is not taken
        s.transaction_id = transaction_id
        take_start(s, meter_start)  # never lowers the register (ocpp_device_values.py)
        seat.on_change()
        return call_result.StartTransaction(transaction_id=transaction_id, id_tag_info={"status": "Accepted"})

    def _clock(self, timestamp: Any) -> None:
        """Learns its clock's offset from a timestamp it sent (see `clock_offset_s`)."""
        moment = parse_time(timestamp) if isinstance(timestamp, str) else None
        if moment is not None:
            offset = (datetime.now(UTC) - moment).total_seconds()
            known = self.clock_offset_s
            self.clock_offset_s = offset if known is None else min(known, offset)

    def _stale(self, timestamp: str) -> bool:
        """A start more than STALE_START_S before this connection, by its own clock where known: one
        from before a reconnect (a charger that starts offline and tells later)."""
        began = parse_time(timestamp)
        if began is None:
            return False
        return (self.connected_at - began).total_seconds() - (self.clock_offset_s or 0.0) > STALE_START_S

    @on("StopTransaction")
    async def on_stop_transaction(
        self, meter_stop: int, timestamp: str, transaction_id: int, **_: Any
    ) -> Any:
        """Routed by its transaction id to the connector whose transaction it is."""
        self._before_boot("StopTransaction")
        if transaction_id not in self.charger.given_ids:
            self.charger.deviation(
                f"StopTransaction of transaction {transaction_id}, which this bridge never gave"
            )
        seat = self._seat_of(transaction_id)
        if seat is None:
            return call_result.StopTransaction(id_tag_info={"status": "Accepted"})
        s = seat.state
        if transaction_id == s.stray_transaction_id:
            s.stray_transaction_id = None
        if transaction_id == s.open_at_boot:
            s.open_at_boot = None  # ended after its reboot, as OCPP asks
            seat.ended_after_boot.set()
        if transaction_id == s.transaction_id:
            take_stop(s, meter_stop)  # never lowers the register (ocpp_device_values.py)
            s.transaction_id = None
        seat.on_change()
        return call_result.StopTransaction(id_tag_info={"status": "Accepted"})

    @on("DataTransfer")
    async def on_data_transfer(self, vendor_id: str, **_: Any) -> Any:
        return call_result.DataTransfer(status="Rejected")
