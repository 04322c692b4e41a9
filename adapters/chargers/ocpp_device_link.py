"""One OCPP charger's connection to the bridge's local endpoint: the central system's side of its
calls (BootNotification, Heartbeat, StatusNotification, MeterValues, Authorize, Start/StopTransaction,
DataTransfer), on the `ocpp` library's routing.

What the charger says is kept in `ChargerState` (its status, its meter, its own transaction) for the
driver (ocpp_device.py) to read; what it does that OCPP does not allow is recorded there as a short
text (`deviations`, the newest kept) and goes no further: the bridge's upstream messages are made
from readings, never forwarded from the charger.

Calls from the charger are handled one at a time in the order they came (OCPP-J), but in a task of
their own beside the reader of the socket (`run`): an Authorize, or a StartTransaction the bridge
did not ask for, waits for the bridge's decision (`Decisions`), and meanwhile the answers to the
bridge's own calls (a SetChargingProfile) must still be read, which the library's single loop would
not do.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from ocpp.routing import on as _library_on
from ocpp.v16 import ChargePoint as LibraryChargePoint
from ocpp.v16 import call_result
from websockets.asyncio.server import ServerConnection

log = logging.getLogger("adapters.ocpp_device")

DEVIATIONS_KEPT = 20
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def on(action: str) -> Callable[[F], F]:
    """The library's @on, typed (it is not)."""
    decorator: Callable[[F], F] = _library_on(action)
    return decorator


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# A connector's status -> (plugged, ev_requesting, energy_allowed); None: keep what was known.
STATUS_READING: dict[str, tuple[bool | None, bool, bool]] = {
    "Available": (False, False, False),
    "Preparing": (True, False, False),
    "Charging": (True, True, True),
    "SuspendedEV": (True, False, True),
    "SuspendedEVSE": (True, True, False),
    "Finishing": (True, False, False),
    "Reserved": (False, False, False),
    "Unavailable": (None, False, False),
    "Faulted": (None, False, False),
}
IN_TRANSACTION = {"Charging", "SuspendedEV", "SuspendedEVSE"}


@dataclass
class ChargerState:
    """What the charger told the bridge; the driver reads it."""

    connector_id: int
    booted: bool = False
    status: str | None = None
    error_code: str = "NoError"
    info: str | None = None
    vendor_error_code: str | None = None
    plugged: bool | None = None
    energy_wh: float | None = None
    power_w: float | None = None
    current_a: tuple[float, ...] | None = None
    voltage_v: tuple[float, ...] | None = None
    transaction_id: int | None = None  # the charger's transaction, with the id this link gave it
    stray_transaction_id: int | None = None  # one it reports that the bridge did not accept: stopped
    open_at_boot: int | None = None  # its transaction when it booted again: it must end it
    given_ids: deque[int] = field(default_factory=lambda: deque(maxlen=100))  # the newest
    deviations: deque[str] = field(default_factory=lambda: deque(maxlen=DEVIATIONS_KEPT))

    def deviation(self, text: str) -> None:
        log.warning("OCPP charger deviates from OCPP 1.6: %s", text)
        self.deviations.append(f"{now_iso()} {text}")


class Decisions:
    """The bridge's side of the charger's own starts, which the driver fills (see ocpp_device.py)."""

    def __init__(self) -> None:
        self.enabled = False  # the bridge's last set_enabled
        self.cards_waiting = 0  # Authorizes waiting for the bridge: their charger starts on its own
        self.changed = asyncio.Event()  # set on each set_enabled, for an Authorize that waits

    def set(self, enabled: bool) -> None:
        self.enabled = enabled
        self.changed.set()
        self.changed = asyncio.Event()


class ChargerLink(LibraryChargePoint):  # type: ignore[misc]  # the library is untyped
    """The charger's calls, answered as its central system; `call` sends the bridge's."""

    def __init__(
        self,
        identity: str,
        connection: ServerConnection,
        state: ChargerState,
        decisions: Decisions,
        *,
        heartbeat_interval_s: int,
        card_wait_s: float,
        call_timeout_s: float,
        on_change: Callable[[], None],
        on_tag: Callable[[str], None],
        next_transaction_id: Callable[[], int],
    ) -> None:
        super().__init__(identity, connection, response_timeout=call_timeout_s)
        self.connection = connection
        self.state = state
        self.decisions = decisions
        self.heartbeat_interval_s = heartbeat_interval_s
        self.card_wait_s = card_wait_s
        self.on_change = on_change
        self.on_tag = on_tag
        self.next_transaction_id = next_transaction_id
        self.connected_at = datetime.now(UTC)
        self.booted = False  # on this connection
        self.boot_seen = asyncio.Event()
        self.ended_after_boot = asyncio.Event()  # it ended the transaction it had before its boot

    async def run(self) -> None:
        """Reads the socket until it closes: answers to the bridge's calls at once, the charger's calls
        in order through one worker."""
        calls: asyncio.Queue[str] = asyncio.Queue()

        async def worker() -> None:
            while True:
                await self.route_message(await calls.get())

        async with asyncio.TaskGroup() as group:
            task = group.create_task(worker())
            try:
                async for raw in self.connection:
                    text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
                    if _is_call(text):
                        calls.put_nowait(text)
                    else:
                        await self.route_message(text)
            finally:
                task.cancel()

    def _before_boot(self, action: str) -> None:
        if not self.booted:
            self.state.deviation(f"{action} before its BootNotification on this connection")

    def _ours(self, connector_id: int) -> bool:
        return connector_id == self.state.connector_id

    @on("BootNotification")
    async def on_boot_notification(self, **_: Any) -> Any:
        self.booted = self.state.booted = True
        self.state.open_at_boot = self.state.transaction_id
        self.boot_seen.set()
        self.on_change()
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
        if self._ours(connector_id):
            s = self.state
            previous = s.status
            if status in IN_TRANSACTION and s.transaction_id is None:
                s.deviation(f"StatusNotification {status} on connector {connector_id} without a transaction")
            elif status in IN_TRANSACTION and s.open_at_boot is not None:
                self._resumed(s.open_at_boot)
            if previous == "Available" and status in ("Finishing", "SuspendedEV"):
                s.deviation(f"StatusNotification {previous} -> {status} on connector {connector_id}")
            s.status, s.error_code = status, error_code
            s.info, s.vendor_error_code = extra.get("info"), extra.get("vendor_error_code")
            plugged = STATUS_READING.get(status, (None, False, False))[0]
            if plugged is not None:
                s.plugged = plugged
            self.on_change()
        return call_result.StatusNotification()

    @on("MeterValues")
    async def on_meter_values(
        self, connector_id: int, meter_value: list[dict[str, Any]], **extra: Any
    ) -> Any:
        self._before_boot("MeterValues")
        transaction_id = extra.get("transaction_id")
        s = self.state
        if transaction_id is not None and transaction_id != s.transaction_id:
            s.deviation(f"MeterValues for transaction {transaction_id}, not its transaction")
            s.stray_transaction_id = transaction_id
            self.on_change()
        elif transaction_id is not None and transaction_id == s.open_at_boot:
            self._resumed(transaction_id)
        if self._ours(connector_id):
            unknown = s.energy_wh is None
            for sample in meter_value:
                self._take(sample.get("sampled_value", []))
            if unknown and s.energy_wh is not None:
                self.on_change()  # its first register: a meter now (the bridge reads it at once)
        return call_result.MeterValues()

    def _resumed(self, transaction_id: int) -> None:
        """After a reboot a charger ends the transaction it had (StopTransaction, PowerLoss or Reboot);
        one that goes on with it is noted once. The bridge's own transaction goes by its own rules."""
        self.state.deviation(
            f"resumed transaction {transaction_id} after it booted again, instead of ending it"
        )
        self.state.open_at_boot = None

    def _take(self, values: list[dict[str, Any]]) -> None:
        currents: dict[str, float] = {}
        voltages: dict[str, float] = {}
        for v in values:
            measurand = v.get("measurand", "Energy.Active.Import.Register")
            unit = v.get("unit")
            try:
                number = float(v["value"])
            except (KeyError, ValueError):
                self.state.deviation(f"MeterValues with a value that is not a number: {v.get('value')!r}")
                continue
            phase = v.get("phase", "L1")
            if measurand == "Energy.Active.Import.Register" and phase in ("L1", None) and "phase" not in v:
                self.state.energy_wh = number * 1000 if unit == "kWh" else number
            elif measurand == "Power.Active.Import" and "phase" not in v:
                self.state.power_w = number * 1000 if unit == "kW" else number
            elif measurand == "Current.Import":
                currents[phase[:2]] = number
            elif measurand == "Voltage":
                voltages[phase[:2]] = number
        if currents:
            self.state.current_a = tuple(currents[p] for p in ("L1", "L2", "L3") if p in currents)
        if voltages:
            self.state.voltage_v = tuple(voltages[p] for p in ("L1", "L2", "L3") if p in voltages)

    @on("Authorize")
    async def on_authorize(self, id_tag: str) -> Any:
        """A card at the charger: the bridge is told (TagPresented) and decides through its own
        transaction; the answer waits for that, Accepted once the bridge switches energy on."""
        self._before_boot("Authorize")
        if self.decisions.enabled and self.state.transaction_id is None:
            return call_result.Authorize(id_tag_info={"status": "Accepted"})
        accepted = await self._decided(id_tag)
        return call_result.Authorize(id_tag_info={"status": "Accepted" if accepted else "Invalid"})

    async def _decided(self, id_tag: str) -> bool:
        """The bridge is told of the tag and decides by its own transaction: True once it switches
        energy on, False when it has not within card_wait_s."""
        waiting = self.decisions.changed
        self.decisions.cards_waiting += 1
        self.on_tag(id_tag)
        try:
            async with asyncio.timeout(self.card_wait_s):
                while not self.decisions.enabled:
                    await waiting.wait()
                    waiting = self.decisions.changed
        except TimeoutError:
            return False
        finally:
            self.decisions.cards_waiting -= 1
        return True

    @on("StartTransaction")
    async def on_start_transaction(
        self, connector_id: int, id_tag: str, meter_start: int, timestamp: str, **_: Any
    ) -> Any:
        """Given a local id; Accepted only once the bridge lets energy flow: a start the bridge did not
        ask for (a charger in free mode, one that starts on its own after a card, one that refuses
        RemoteStartTransaction) presents its tag and waits for the bridge's decision as an Authorize
        does, Invalid when none came, so the charger ends it; a stale one is Invalid at once."""
        self._before_boot("StartTransaction")
        s = self.state
        transaction_id = self.next_transaction_id()
        s.given_ids.append(transaction_id)
        began = _parse_time(timestamp)
        stale = began is not None and (self.connected_at - began).total_seconds() > 60
        if stale:
            s.deviation(f"StartTransaction of a session begun at {timestamp}, before it connected")
        invalid = call_result.StartTransaction(
            transaction_id=transaction_id, id_tag_info={"status": "Invalid"}
        )
        if not self._ours(connector_id):
            return invalid
        if s.transaction_id is not None:
            s.deviation(f"StartTransaction while its transaction {s.transaction_id} was not stopped")
        s.energy_wh = float(meter_start)
        if stale or (not self.decisions.enabled and not await self._decided(id_tag)):
            return invalid
        s.transaction_id = transaction_id
        self.on_change()
        return call_result.StartTransaction(transaction_id=transaction_id, id_tag_info={"status": "Accepted"})

    @on("StopTransaction")
    async def on_stop_transaction(
        self, meter_stop: int, timestamp: str, transaction_id: int, **_: Any
    ) -> Any:
        self._before_boot("StopTransaction")
        s = self.state
        if transaction_id not in s.given_ids:
            s.deviation(f"StopTransaction of transaction {transaction_id}, which this bridge never gave")
        if transaction_id == s.stray_transaction_id:
            s.stray_transaction_id = None
        if transaction_id == s.open_at_boot:
            s.open_at_boot = None  # ended after its reboot, as OCPP asks
            self.ended_after_boot.set()
        if transaction_id == s.transaction_id:
            s.energy_wh = float(meter_stop)
            s.transaction_id = None
        self.on_change()
        return call_result.StopTransaction(id_tag_info={"status": "Accepted"})

    @on("DataTransfer")
    async def on_data_transfer(self, vendor_id: str, **_: Any) -> Any:
        return call_result.DataTransfer(status="Rejected")


def _is_call(text: str) -> bool:
    try:
        message = json.loads(text)
    except ValueError:
        return True  # the library answers what it cannot parse
    return isinstance(message, list) and bool(message) and message[0] == 2


def _parse_time(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
