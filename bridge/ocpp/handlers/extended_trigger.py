"""The security extension's ExtendedTriggerMessage: TriggerMessage's messages (`answer_trigger`), with
LogStatusNotification, SignedFirmwareStatusNotification for FirmwareStatusNotification, and
SignChargePointCertificate (A02) instead of DiagnosticsStatusNotification."""

from __future__ import annotations

from typing import Any

from ocpp.routing import on
from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action

from bridge.ocpp.handlers.remote_trigger import Message, answer_trigger
from bridge.ocpp.ports import CertificateSigning, LogControl, Replies, SignedFirmwareStatus, Triggers


class ExtendedTriggerHandlers:
    def __init__(
        self,
        link: Replies,
        triggers: Triggers,
        logs: LogControl,
        firmware: SignedFirmwareStatus,
        signing: CertificateSigning | None = None,
    ) -> None:
        self._link = link
        self._triggers = triggers
        self._signing = signing

        def log_status() -> call.LogStatusNotification:
            status, request_id = logs.trigger()  # requestId left out only when nothing runs
            return call.LogStatusNotification(status=status, request_id=request_id)

        def firmware_status() -> call.SignedFirmwareStatusNotification:
            status, request_id = firmware.trigger_signed_status()
            return call.SignedFirmwareStatusNotification(status=status, request_id=request_id)

        self._own: dict[str, Message] = {
            "LogStatusNotification": log_status,
            "FirmwareStatusNotification": firmware_status,
        }

    @on(Action.extended_trigger_message)
    def extended_trigger_message(
        self, requested_message: str, connector_id: int | None = None, **_: Any
    ) -> call_result.ExtendedTriggerMessage:
        """Answer first, then send the message asked for; SignChargePointCertificate starts a signing
        request (its SignCertificate follows) or is Rejected when none can start."""
        if requested_message == "SignChargePointCertificate":
            started = self._signing is not None and self._signing.start_signing()
            return call_result.ExtendedTriggerMessage(status="Accepted" if started else "Rejected")
        status = answer_trigger(self._link, self._triggers, requested_message, connector_id, self._own)
        return call_result.ExtendedTriggerMessage(status=status)
