"""A charge point on the `ocpp` library that connects to the bridge's local endpoint as a
`type: ocpp` device (adapters/chargers/ocpp_device.py), for the tests.

It does what a wallbox does when told (RemoteStart: StartTransaction then Charging; RemoteStop:
StopTransaction then Finishing) and keeps what it was sent (`received`: (action, payload)). The test
drives the person's side (plug, tap) and the charger's own messages, deviations included.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

from ocpp.exceptions import NotImplementedError as CallNotImplemented
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from websockets.asyncio.client import ClientConnection, connect

from tests.peers.rpc_peer import PEER_DIR
from tests.processes import stop_process


def iso(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).isoformat(timespec="seconds").replace("+00:00", "Z")


class FakeWallbox(ChargePoint):  # type: ignore[misc]
    """Variants (keywords of `ocpp_charger`): `features`, its SupportedFeatureProfiles (None: it answers
    GetConfiguration with a CALLERROR NotImplemented); `rate_unit`, its
    ChargingScheduleAllowedChargingRateUnit; `refuses_remote_start`: "Rejected", or a CALLERROR
    "NotImplemented"; `free_mode`: the idTag of the transaction it starts itself at `plug()`. With
    SmartCharging a TxProfile of 0 for its transaction makes it SuspendedEVSE, its clearing Charging.
    Each connector has its own transaction and register (`transactions`, `registers`); the methods
    take `connector_id` (1 when not given), and `transaction_id` / `energy_wh` are connector 1's."""

    def __init__(
        self,
        identity: str,
        connection: ClientConnection,
        *,
        features: str | None = None,
        rate_unit: str = "Current",
        refuses_remote_start: str | None = None,
        free_mode: str | None = None,
    ) -> None:
        super().__init__(identity, connection, response_timeout=3)
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.transactions: dict[int, int] = {}  # connector -> its running transaction
        self.registers: dict[int, int] = {1: 1000}  # connector -> its register (Wh)
        self.pauses: dict[int, int] = {}  # a 0 TxProfile's id -> its connector
        self.id_tag = ""
        self.features, self.rate_unit = features, rate_unit
        self.refuses_remote_start, self.free_mode = refuses_remote_start, free_mode
        self.started: list[Any] = []  # the answers to its StartTransactions, in order

    @property
    def transaction_id(self) -> int | None:
        return self.transactions.get(1)

    @transaction_id.setter
    def transaction_id(self, value: int | None) -> None:
        self.set_transaction(1, value)

    def set_transaction(self, connector_id: int, value: int | None) -> None:
        if value is None:
            self.transactions.pop(connector_id, None)
        else:
            self.transactions[connector_id] = value

    @property
    def energy_wh(self) -> int:
        return self.registers[1]

    @energy_wh.setter
    def energy_wh(self, value: int) -> None:
        self.registers[1] = value

    def connector_of(self, transaction_id: int | None) -> int | None:
        return next((n for n, tx in self.transactions.items() if tx == transaction_id), None)

    @property
    def smart_charging(self) -> bool:
        return self.features is not None and "SmartCharging" in self.features

    def actions(self) -> list[str]:
        return [action for action, _ in self.received]

    async def plug(self, connector_id: int = 1) -> Any:
        """Plugged in: Preparing; in free mode its own StartTransaction (its answer returned)."""
        await self.status("Preparing", connector_id)
        if self.free_mode is None:
            return None
        return await self.begin(self.free_mode, connector_id=connector_id)

    async def send(self, payload: Any) -> Any:
        return await self.call(payload, suppress=False)

    async def status(self, status: str, connector_id: int = 1, error_code: str = "NoError") -> None:
        await self.send(
            call.StatusNotification(connector_id=connector_id, error_code=error_code, status=status)
        )

    async def begin(self, id_tag: str, timestamp: str | None = None, connector_id: int = 1) -> Any:
        register = self.registers.setdefault(connector_id, 1000)
        answer = await self.send(
            call.StartTransaction(
                connector_id=connector_id, id_tag=id_tag, meter_start=register, timestamp=timestamp or iso()
            )
        )
        self.started.append(answer)
        if answer.id_tag_info["status"] == "Accepted":
            self.set_transaction(connector_id, answer.transaction_id)
            await self.status("Charging", connector_id)
        return answer

    async def meter(
        self,
        power_w: float,
        transaction_id: int | None = None,
        *,
        step_wh: int = 100,
        untied: bool = False,
        connector_id: int = 1,
    ) -> None:
        """A MeterValues `step_wh` further on; `untied`: of no transaction (as a trigger asks)."""
        register = self.registers[connector_id] = self.registers.get(connector_id, 1000) + step_wh
        values = [
            {
                "value": str(register / 1000),
                "measurand": "Energy.Active.Import.Register",
                "unit": "kWh",
            },
            {"value": str(power_w), "measurand": "Power.Active.Import", "unit": "W"},
            *[
                {"value": "16.0", "measurand": "Current.Import", "unit": "A", "phase": p}
                for p in ("L1", "L2", "L3")
            ],
        ]
        own = self.transactions.get(connector_id)
        tx = None if untied else transaction_id if transaction_id is not None else own
        await self.send(
            call.MeterValues(
                connector_id=connector_id,
                transaction_id=tx,
                meter_value=[{"timestamp": iso(), "sampledValue": values}],
            )
        )

    @on("RemoteStartTransaction")
    async def on_remote_start(self, id_tag: str, **extra: Any) -> Any:
        self.received.append(("RemoteStartTransaction", {"id_tag": id_tag, **extra}))
        if self.refuses_remote_start == "NotImplemented":
            raise CallNotImplemented(description="no remote start here")
        if self.refuses_remote_start is not None:
            return call_result.RemoteStartTransaction(status=self.refuses_remote_start)
        self.id_tag = id_tag
        connector = extra.get("connector_id") or 1
        self.soon(self.begin(id_tag, connector_id=connector))
        return call_result.RemoteStartTransaction(status="Accepted")

    @on("RemoteStopTransaction")
    async def on_remote_stop(self, transaction_id: int) -> Any:
        self.received.append(("RemoteStopTransaction", {"transaction_id": transaction_id}))
        connector = self.connector_of(transaction_id)
        if connector is not None:
            self.soon(self.end(connector_id=connector))
        return call_result.RemoteStopTransaction(status="Rejected" if connector is None else "Accepted")

    async def end(self, reason: str = "Remote", connector_id: int = 1) -> None:
        ending = self.transactions.pop(connector_id, None)  # a start may follow before the answer
        assert ending is not None
        register = self.registers.get(connector_id, 1000)
        await self.send(
            call.StopTransaction(meter_stop=register, timestamp=iso(), transaction_id=ending, reason=reason)
        )
        await self.status("Finishing", connector_id)

    @on("SetChargingProfile")
    async def on_set_charging_profile(self, connector_id: int, cs_charging_profiles: dict[str, Any]) -> Any:
        self.received.append(("SetChargingProfile", {"connector_id": connector_id, **cs_charging_profiles}))
        p = cs_charging_profiles
        if self.smart_charging and p["charging_profile_purpose"] == "TxProfile":
            connector = self.connector_of(p.get("transaction_id"))
            if connector is None:
                return call_result.SetChargingProfile(status="Rejected")
            if p["charging_schedule"]["charging_schedule_period"][0]["limit"] == 0:
                self.pauses[p["charging_profile_id"]] = connector
                self.soon(self.status("SuspendedEVSE", connector))
        return call_result.SetChargingProfile(status="Accepted")

    @on("ClearChargingProfile")
    async def on_clear_charging_profile(self, **criteria: Any) -> Any:
        self.received.append(("ClearChargingProfile", criteria))
        if not self.smart_charging:
            raise CallNotImplemented(description="no smart charging here")
        connector = self.pauses.pop(criteria.get("id", 0), 1)
        if connector in self.transactions:
            self.soon(self.status("Charging", connector))
        return call_result.ClearChargingProfile(status="Accepted")

    @on("GetConfiguration")
    async def on_get_configuration(self, key: list[str] | None = None) -> Any:
        self.received.append(("GetConfiguration", {"key": key}))
        if self.features is None:
            raise CallNotImplemented(description="no configuration here")
        known = {
            "SupportedFeatureProfiles": self.features,
            "ChargingScheduleAllowedChargingRateUnit": self.rate_unit,
            "AuthorizeRemoteTxRequests": "false",
            "ChargeProfileMaxStackLevel": "3",
        }
        wanted = key or list(known)
        return call_result.GetConfiguration(
            configuration_key=[{"key": k, "readonly": True, "value": known[k]} for k in wanted if k in known],
            unknown_key=[k for k in wanted if k not in known] or None,
        )

    def soon(self, message: Any) -> None:
        """A message of its own sent after the answer it follows (a coroutine)."""
        asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(message))

    @on("TriggerMessage")
    async def on_trigger(self, requested_message: str, **extra: Any) -> Any:
        self.received.append(("TriggerMessage", {"requested_message": requested_message, **extra}))
        if requested_message == "MeterValues":
            connector = extra.get("connector_id") or 1
            self.soon(self.meter(0, step_wh=0, untied=True, connector_id=connector))
            return call_result.TriggerMessage(status="Accepted")
        return call_result.TriggerMessage(status="NotImplemented")

    @on("UnlockConnector")
    async def on_unlock(self, connector_id: int) -> Any:
        self.received.append(("UnlockConnector", {"connector_id": connector_id}))
        return call_result.UnlockConnector(status="Unlocked")

    def limits(self) -> list[float]:
        return [
            p["charging_schedule"]["charging_schedule_period"][0]["limit"]
            for a, p in self.received
            if a == "SetChargingProfile"
        ]


@contextlib.asynccontextmanager
async def ocpp_charger(
    url: str,
    identity: str,
    password: str,
    *,
    boot: bool = True,
    before_boot: Any = None,
    ssl_context: Any = None,
    **variant: Any,
) -> AsyncIterator[FakeWallbox]:
    """Connected, its reader running, booted (after sending `before_boot`, a call, if given: a
    deviation); disconnected on exit. `ssl_context` (an ssl.SSLContext) for a wss:// url; an empty
    `password` sends no Authorization header (security profile 3)."""
    token = base64.b64encode(f"{identity}:{password}".encode()).decode()
    headers = {"Authorization": f"Basic {token}"} if password else {}
    for _ in range(100):  # as a charger does, until the bridge's endpoint listens
        try:
            ws = await connect(
                f"{url}/{identity}",
                subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                additional_headers=headers,
                ssl=ssl_context,
            )
            break
        except OSError:
            await asyncio.sleep(0.05)
    else:
        raise AssertionError(f"the bridge's endpoint {url} never listened")
    async with ws:
        charger = FakeWallbox(identity, ws, **variant)
        reader = asyncio.create_task(charger.start())
        try:
            if before_boot is not None:
                await charger.send(before_boot)
            if boot:
                answer = await charger.send(
                    call.BootNotification(charge_point_model="T1", charge_point_vendor="Test")
                )
                assert answer.status == "Accepted"
            yield charger
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader


async def endpoint_listening(port: int, timeout: float = 5.0) -> None:
    """Returns once the bridge's endpoint on 127.0.0.1:`port` accepts connections."""
    async with asyncio.timeout(timeout):
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return


class NodeCharger:
    """`node tests/peers/ocpp_rpc_charger.js`: the third-party `ocpp-rpc` client in strict mode as a
    `type: ocpp` charger. `events` holds what it printed (one dict a line); `call` sends the bridge a
    call and returns its answer; the process is stopped by its pid on exit."""

    def __init__(self, url: str, identity: str, password: str) -> None:
        self.args = ["--url", url, "--identity", identity, "--password", password]
        self.events: list[dict[str, Any]] = []
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self._changed = asyncio.Event()

    async def __aenter__(self) -> NodeCharger:
        self._proc = await asyncio.create_subprocess_exec(
            "node", "ocpp_rpc_charger.js", *self.args, cwd=PEER_DIR,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 20,
        )  # fmt: skip
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._proc is not None:
            await stop_process(self._proc, grace_s=3.0)
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        while line := await self._proc.stdout.readline():
            self.events.append(json.loads(line))
            self._changed.set()
            self._changed = asyncio.Event()

    async def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10
    ) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                changed = self._changed
                for event in self.events:
                    if predicate(event):
                        return event
                await changed.wait()

    async def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdin is not None
        command_id = next(self._ids)
        self._proc.stdin.write(
            json.dumps({"id": command_id, "method": method, "params": params}).encode() + b"\n"
        )
        event = await self.wait_for(lambda e: e.get("id") == command_id and e["event"] in ("result", "error"))
        assert event["event"] == "result", f"{method}: {event}"
        result: dict[str, Any] = event["result"]
        return result
