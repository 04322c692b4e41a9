"""The RemoteTrigger profile: TriggerMessage (OCPP 1.6 §5.17)."""

from __future__ import annotations

from typing import Any

from ocpp.routing import on
from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action

from bridge.ocpp.ports import DiagnosticsControl, FirmwareControl, Replies, Triggers


class RemoteTriggerHandlers:
    def __init__(
        self, link: Replies, triggers: Triggers, diagnostics: DiagnosticsControl, firmware: FirmwareControl
    ) -> None:
        self._link = link
        self._triggers = triggers
        self._diagnostics = diagnostics
        self._firmware = firmware

    @on(Action.trigger_message)
    def trigger_message(
        self, requested_message: str, connector_id: int | None = None, **_: Any
    ) -> call_result.TriggerMessage:
        """Answer first, then send the message asked for."""
        t = self._triggers
        if connector_id is not None and connector_id != 0 and not t.has_connector(connector_id):
            return call_result.TriggerMessage(status="Rejected")  # e.g. NumberOfConnectors + 1 (TC_055)
        messages: list[Any] = []
        if requested_message == "BootNotification":
            if self._link.accepted:
                return call_result.TriggerMessage(status="Rejected")  # ERRATA 3.35
            self._link.boot_now()
            return call_result.TriggerMessage(status="Accepted")
        if requested_message == "Heartbeat":
            messages = [call.Heartbeat()]
        elif requested_message == "StatusNotification":
            ids = [connector_id] if connector_id is not None else [0, *t.connector_ids]
            messages = [lambda cid=cid: t.status_message(cid) for cid in ids]
        elif requested_message == "MeterValues":
            ids = [connector_id] if connector_id else list(t.connector_ids)
            messages = [lambda cid=cid: t.meter_values_message(cid) for cid in ids]
        elif requested_message == "DiagnosticsStatusNotification":
            # The state now: Idle only when nothing runs (§4.6, ERRATA 3.35/3.46).
            messages = [lambda: call.DiagnosticsStatusNotification(status=self._diagnostics.trigger_status())]
        elif requested_message == "FirmwareStatusNotification":
            messages = [lambda: call.FirmwareStatusNotification(status=self._firmware.trigger_status())]
        else:
            return call_result.TriggerMessage(status="NotImplemented")

        async def send() -> None:
            for message in messages:
                payload = message() if callable(message) else message
                if payload is not None:
                    await t.send_now(payload)

        self._link.after_reply(send)
        return call_result.TriggerMessage(status="Accepted")
