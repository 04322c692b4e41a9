"""The RemoteTrigger profile: TriggerMessage (OCPP 1.6 §5.17). `answer_trigger` is the decision and the
sending that TriggerMessage and the security extension's ExtendedTriggerMessage share."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from ocpp.routing import on
from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action

from bridge.ocpp.ports import DiagnosticsControl, FirmwareControl, Replies, Triggers

Message = Callable[[], Any]  # builds a message's payload at send time; None: nothing to send


def answer_trigger(
    link: Replies, t: Triggers, requested: str, connector_id: int | None, own: Mapping[str, Message]
) -> str:
    """Accepted, Rejected or NotImplemented; once answered, the message asked for is sent. `own`: the
    messages the caller adds to those both triggers know (BootNotification, Heartbeat,
    StatusNotification, MeterValues)."""
    if connector_id is not None and connector_id != 0 and not t.has_connector(connector_id):
        return "Rejected"  # e.g. NumberOfConnectors + 1 (TC_055)
    messages: list[Message]
    if requested == "BootNotification":
        if link.accepted:
            return "Rejected"  # ERRATA 3.35
        link.boot_now()
        return "Accepted"
    if requested == "Heartbeat":
        messages = [call.Heartbeat]
    elif requested == "StatusNotification":
        ids = [connector_id] if connector_id is not None else [0, *t.connector_ids]
        messages = [functools.partial(t.status_message, cid) for cid in ids]
    elif requested == "MeterValues":
        ids = [connector_id] if connector_id else list(t.connector_ids)
        messages = [functools.partial(t.meter_values_message, cid) for cid in ids]
    elif requested in own:
        messages = [own[requested]]
    else:
        return "NotImplemented"

    async def send() -> None:
        for message in messages:
            payload = message()
            if payload is not None:
                await t.send_now(payload)

    link.after_reply(send)
    return "Accepted"


class RemoteTriggerHandlers:
    def __init__(
        self, link: Replies, triggers: Triggers, diagnostics: DiagnosticsControl, firmware: FirmwareControl
    ) -> None:
        self._link = link
        self._triggers = triggers
        # The state now: Idle only when nothing runs (§4.6, ERRATA 3.35/3.46).
        self._own: dict[str, Message] = {
            "DiagnosticsStatusNotification": lambda: call.DiagnosticsStatusNotification(
                status=diagnostics.trigger_status()
            ),
            "FirmwareStatusNotification": lambda: call.FirmwareStatusNotification(
                status=firmware.trigger_status()
            ),
        }

    @on(Action.trigger_message)
    def trigger_message(
        self, requested_message: str, connector_id: int | None = None, **_: Any
    ) -> call_result.TriggerMessage:
        """Answer first, then send the message asked for."""
        status = answer_trigger(self._link, self._triggers, requested_message, connector_id, self._own)
        return call_result.TriggerMessage(status=status)
