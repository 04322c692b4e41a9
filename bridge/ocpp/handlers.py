"""What the charge point answers to the central system's calls.

Each handler decides and answers at once (handlers hold up the receive
loop, so no device I/O and no `call()` here); what an answer promises runs
through `after_reply`, once the answer is on the wire. Actions of
OCPP 1.6 without a handler here are answered `NotSupported` by the RPC
layer: that is the honest answer until a feature is built.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ocpp.charge_point import snake_to_camel_case
from ocpp.routing import on
from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action

from bridge.core.connector import Status

if TYPE_CHECKING:
    from bridge.chargepoint import ChargePoint

log = logging.getLogger("bridge.handlers")


class CentralSystemHandlers:
    def __init__(self, cp: ChargePoint) -> None:
        self.cp = cp

    def _after_reply(self, followup: Any) -> None:
        endpoint = self.cp.session.endpoint
        if endpoint is not None:
            endpoint.after_reply(followup)

    # -- configuration ---------------------------------------------------------
    @on(Action.get_configuration)
    def get_configuration(self, key: list[str] | None = None, **_: Any) -> call_result.GetConfiguration:
        known, unknown = self.cp.configuration.get_configuration(key)
        return call_result.GetConfiguration(
            configuration_key=[
                {"key": e.key, "readonly": e.readonly, **({"value": e.value} if e.value is not None else {})}
                for e in known
            ],
            unknown_key=unknown or None,
        )

    @on(Action.change_configuration)
    def change_configuration(self, key: str, value: str, **_: Any) -> call_result.ChangeConfiguration:
        outcome = self.cp.configuration.change(key, value)
        shown = "***" if outcome.key.lower() == "authorizationkey" else value
        log.info(
            "%s: ChangeConfiguration %s=%s: %s%s",
            self.cp.cfg.id,
            outcome.key,
            shown,
            outcome.status,
            f" ({outcome.reason})" if outcome.reason else "",
        )
        return call_result.ChangeConfiguration(status=outcome.status)

    # -- remote control ----------------------------------------------------------
    @on(Action.remote_start_transaction)
    def remote_start_transaction(
        self,
        id_tag: str,
        connector_id: int | None = None,
        charging_profile: dict[str, Any] | None = None,
        **_: Any,
    ) -> call_result.RemoteStartTransaction:
        profile = snake_to_camel_case(charging_profile) if charging_profile is not None else None
        if profile is not None:
            # Its values are checked first, as SetChargingProfile checks them: the same invalid
            # profile gets the same CALLERROR whatever the connectors are doing.
            self.cp.smart.parse(profile, connector_id or 0)
        cid = self._connector_for_remote_start(connector_id)
        if not self.cp.session.accepted or cid is None:
            return call_result.RemoteStartTransaction(status="Rejected")
        if profile is not None:
            why = self.cp.smart.remote_start_profile(cid, id_tag, profile)
            if why is not None:
                log.warning("%s: RemoteStartTransaction rejected: %s", self.cp.cfg.id, why)
                return call_result.RemoteStartTransaction(status="Rejected")
        self._after_reply(lambda: self.cp.remote_start(cid, id_tag))  # a coroutine: run as a task
        return call_result.RemoteStartTransaction(status="Accepted")

    def _connector_for_remote_start(self, connector_id: int | None) -> int | None:
        """The connector a remote start goes to, or None when it must be Rejected."""
        free = (Status.AVAILABLE, Status.PREPARING)
        if connector_id is not None:
            rt = self.cp.connectors.get(connector_id)
            if rt is None or rt.core.transaction is not None or rt.core.status().status not in free:
                return None
            return connector_id
        # Without a connectorId: the connector where a car waits, else the first free one.
        by_status = {cid: rt.core.status().status for cid, rt in self.cp.connectors.items()}
        for wanted in (Status.PREPARING, Status.AVAILABLE):
            for cid, status in by_status.items():
                if status is wanted:
                    return cid
        return None

    @on(Action.remote_stop_transaction)
    def remote_stop_transaction(self, transaction_id: int, **_: Any) -> call_result.RemoteStopTransaction:
        cid = self.cp.connector_of_transaction(transaction_id)
        if cid is None or not self.cp.session.accepted:
            return call_result.RemoteStopTransaction(status="Rejected")
        self._after_reply(lambda: self.cp.remote_stop(cid))
        return call_result.RemoteStopTransaction(status="Accepted")

    @on(Action.reset)
    def reset(self, type: str, **_: Any) -> call_result.Reset:
        """Accepted, then (after the answer) StopTransaction SoftReset/HardReset and a new boot."""
        self._after_reply(lambda: self.cp.reset(hard=type == "Hard"))
        return call_result.Reset(status="Accepted")

    @on(Action.unlock_connector)
    async def unlock_connector(self, connector_id: int, **_: Any) -> call_result.UnlockConnector:
        # Device I/O inside the handler (bounded by a timeout): the answer must say whether it worked.
        return call_result.UnlockConnector(status=await self.cp.unlock(connector_id))

    @on(Action.change_availability)
    async def change_availability(
        self, connector_id: int, type: str, **_: Any
    ) -> call_result.ChangeAvailability:
        status = await self.cp.change_availability(connector_id, type == "Operative")
        log.info("%s: ChangeAvailability %d %s: %s", self.cp.cfg.id, connector_id, type, status)
        self._after_reply(self.cp.report_statuses)
        return call_result.ChangeAvailability(status=status)

    # -- RemoteTrigger ----------------------------------------------------------------------
    @on(Action.trigger_message)
    def trigger_message(
        self, requested_message: str, connector_id: int | None = None, **_: Any
    ) -> call_result.TriggerMessage:
        """Answer first, then send the message asked for (OCPP 1.6 §5.17)."""
        cp = self.cp
        if connector_id is not None and connector_id != 0 and connector_id not in cp.connectors:
            return call_result.TriggerMessage(status="Rejected")  # e.g. NumberOfConnectors + 1 (TC_055)
        messages: list[Any] = []
        if requested_message == "BootNotification":
            if cp.session.accepted:
                return call_result.TriggerMessage(status="Rejected")  # ERRATA 3.35
            cp.session.boot_now()
            return call_result.TriggerMessage(status="Accepted")
        if requested_message == "Heartbeat":
            messages = [call.Heartbeat()]
        elif requested_message == "StatusNotification":
            ids = [connector_id] if connector_id is not None else [0, *cp.connectors]
            messages = [lambda cid=cid: cp.status_message(cid) for cid in ids]
        elif requested_message == "MeterValues":
            ids = [connector_id] if connector_id else list(cp.connectors)
            messages = [lambda cid=cid: cp.meter_values_message(cid) for cid in ids]
        elif requested_message == "DiagnosticsStatusNotification":
            messages = [call.DiagnosticsStatusNotification(status="Idle")]  # nothing in progress
        elif requested_message == "FirmwareStatusNotification":
            messages = [call.FirmwareStatusNotification(status="Idle")]
        else:
            return call_result.TriggerMessage(status="NotImplemented")

        async def send() -> None:
            for message in messages:
                payload = message() if callable(message) else message
                if payload is not None:
                    await cp.send_now(payload)

        self._after_reply(send)
        return call_result.TriggerMessage(status="Accepted")

    # -- SmartCharging --------------------------------------------------------------------
    @on(Action.set_charging_profile)
    async def set_charging_profile(
        self, connector_id: int, cs_charging_profiles: dict[str, Any], **_: Any
    ) -> call_result.SetChargingProfile:
        status = self.cp.smart.set_profile(connector_id, snake_to_camel_case(cs_charging_profiles))
        await self.cp.smart.flush()  # on disk before it is said (profiles survive a reboot)
        return call_result.SetChargingProfile(status=status)

    @on(Action.clear_charging_profile)
    async def clear_charging_profile(
        self,
        id: int | None = None,
        connector_id: int | None = None,
        charging_profile_purpose: str | None = None,
        stack_level: int | None = None,
        **_: Any,
    ) -> call_result.ClearChargingProfile:
        status = self.cp.smart.clear(id, connector_id, charging_profile_purpose, stack_level)
        await self.cp.smart.flush()
        return call_result.ClearChargingProfile(status=status)

    @on(Action.get_composite_schedule)
    def get_composite_schedule(
        self, connector_id: int, duration: int, charging_rate_unit: str | None = None, **_: Any
    ) -> call_result.GetCompositeSchedule:
        answer = self.cp.smart.composite_schedule(connector_id, duration, charging_rate_unit)
        return call_result.GetCompositeSchedule(
            status=answer["status"],
            connector_id=answer.get("connectorId"),
            schedule_start=answer.get("scheduleStart"),
            charging_schedule=answer.get("chargingSchedule"),
        )

    # -- other Core actions ---------------------------------------------------------
    @on(Action.clear_cache)
    async def clear_cache(self, **_: Any) -> call_result.ClearCache:
        await self.cp.authorizer.clear()  # cleared on disk before it is said
        return call_result.ClearCache(status="Accepted")

    @on(Action.data_transfer)
    def data_transfer(
        self, vendor_id: str, message_id: str | None = None, data: str | None = None, **_: Any
    ) -> call_result.DataTransfer:
        status, answer = self.cp.data_transfer.answer(vendor_id, message_id, data)
        log.info("%s: DataTransfer %s/%s: %s", self.cp.cfg.id, vendor_id, message_id, status)
        return call_result.DataTransfer(status=status, data=answer)
