"""The Core profile's calls from the central system."""

from __future__ import annotations

import logging
from typing import Any

from ocpp.charge_point import snake_to_camel_case
from ocpp.routing import on
from ocpp.v16 import call_result
from ocpp.v16.enums import Action

from bridge.ocpp.ports import ConfigurationStore, RemoteControl, Replies, SmartChargingControl, VendorData

log = logging.getLogger("bridge.handlers")


class CoreHandlers:
    def __init__(
        self,
        name: str,
        link: Replies,
        configuration: ConfigurationStore,
        remote: RemoteControl,
        smart: SmartChargingControl,
        vendors: VendorData,
    ) -> None:
        self._name = name  # the charge point id, in logs
        self._link = link
        self._configuration = configuration
        self._remote = remote
        self._smart = smart
        self._vendors = vendors

    # -- configuration ---------------------------------------------------------
    @on(Action.get_configuration)
    def get_configuration(self, key: list[str] | None = None, **_: Any) -> call_result.GetConfiguration:
        known, unknown = self._configuration.get_configuration(key)
        return call_result.GetConfiguration(
            configuration_key=[
                {"key": e.key, "readonly": e.readonly, **({"value": e.value} if e.value is not None else {})}
                for e in known
            ],
            unknown_key=unknown or None,
        )

    @on(Action.change_configuration)
    def change_configuration(self, key: str, value: str, **_: Any) -> call_result.ChangeConfiguration:
        outcome = self._configuration.change(key, value)
        shown = "***" if outcome.key.lower() == "authorizationkey" else value
        log.info(
            "%s: ChangeConfiguration %s=%s: %s%s",
            self._name,
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
            self._smart.parse(profile, connector_id or 0)
        cid = self._remote.remote_start_target(connector_id, id_tag)  # a reserved connector takes its tag
        if not self._link.accepted or cid is None:
            return call_result.RemoteStartTransaction(status="Rejected")
        if profile is not None:
            why = self._smart.remote_start_profile(cid, id_tag, profile)
            if why is not None:
                log.warning("%s: RemoteStartTransaction rejected: %s", self._name, why)
                return call_result.RemoteStartTransaction(status="Rejected")
        self._link.after_reply(lambda: self._remote.remote_start(cid, id_tag))  # a coroutine: run as a task
        return call_result.RemoteStartTransaction(status="Accepted")

    @on(Action.remote_stop_transaction)
    def remote_stop_transaction(self, transaction_id: int, **_: Any) -> call_result.RemoteStopTransaction:
        cid = self._remote.connector_of_transaction(transaction_id)
        if cid is None or not self._link.accepted:
            return call_result.RemoteStopTransaction(status="Rejected")
        self._link.after_reply(lambda: self._remote.remote_stop(cid))
        return call_result.RemoteStopTransaction(status="Accepted")

    @on(Action.reset)
    def reset(self, type: str, **_: Any) -> call_result.Reset:
        """Accepted, then (after the answer) StopTransaction SoftReset/HardReset and a new boot."""
        self._link.after_reply(lambda: self._remote.reset(hard=type == "Hard"))
        return call_result.Reset(status="Accepted")

    @on(Action.unlock_connector)
    async def unlock_connector(self, connector_id: int, **_: Any) -> call_result.UnlockConnector:
        # Device I/O inside the handler (bounded by a timeout): the answer must say whether it worked.
        return call_result.UnlockConnector(status=await self._remote.unlock(connector_id))

    @on(Action.change_availability)
    async def change_availability(
        self, connector_id: int, type: str, **_: Any
    ) -> call_result.ChangeAvailability:
        status = await self._remote.change_availability(connector_id, type == "Operative")
        log.info("%s: ChangeAvailability %d %s: %s", self._name, connector_id, type, status)
        self._link.after_reply(self._remote.report_statuses)
        return call_result.ChangeAvailability(status=status)

    # -- other Core actions ---------------------------------------------------------
    @on(Action.clear_cache)
    async def clear_cache(self, **_: Any) -> call_result.ClearCache:
        await self._remote.clear_cache()  # cleared on disk before it is said
        return call_result.ClearCache(status="Accepted")

    @on(Action.data_transfer)
    def data_transfer(
        self, vendor_id: str, message_id: str | None = None, data: str | None = None, **_: Any
    ) -> call_result.DataTransfer:
        status, answer = self._vendors.answer(vendor_id, message_id, data)
        log.info("%s: DataTransfer %s/%s: %s", self._name, vendor_id, message_id, status)
        return call_result.DataTransfer(status=status, data=answer)
