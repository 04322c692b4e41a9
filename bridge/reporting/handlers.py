"""What a reporting target may ask (docs/reporting.md, "What a target may ask"): it controls nothing.

GetConfiguration shows its own view (its HeartbeatInterval and MeterValueSampleInterval, which
ChangeConfiguration changes for it alone and the store keeps across restarts, and two read-only
keys); TriggerMessage sends it a BootNotification, Heartbeat, StatusNotification or MeterValues.
Every other action the charge point knows is refused: `Rejected` where its answer has that status
(OCPP 1.6 allows a charge point to refuse them), and CALLERROR NotSupported where it has none: the
routing answers any action without a handler so (bridge.ocpp.routing).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from ocpp.routing import on
from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action

from bridge.ocpp.handlers.remote_trigger import answer_trigger
from bridge.reporting.link import OWN_KEYS, SHOWN_KEYS, ReportingLink

log = logging.getLogger("bridge.reporting")

F = TypeVar("F", bound=Callable[..., Any])
# Triggered MeterValues of a connector, its transactionId from the local transaction id
# (bridge.runtime.metering.Metering.triggered).
TriggeredValues = Callable[[int, Callable[[int], int]], "call.MeterValues | None"]


def _on(action: str) -> Callable[[F], F]:
    """The `ocpp` library's @on, typed (its decorators are not)."""
    decorator: Callable[[F], F] = on(action)
    return decorator


# The actions answered Rejected (their answer has that status); UnlockConnector is answered with its
# own NotSupported status; the rest is CALLERROR NotSupported.
REJECTED = (
    "RemoteStartTransaction", "RemoteStopTransaction", "ChangeAvailability", "Reset", "SetChargingProfile",
    "ReserveNow", "CancelReservation", "ClearCache", "DataTransfer", "GetCompositeSchedule",
    "CertificateSigned", "InstallCertificate", "ExtendedTriggerMessage", "GetLog", "SignedUpdateFirmware",
)  # fmt: skip
NOT_SUPPORTED = (
    "ClearChargingProfile", "UpdateFirmware", "GetDiagnostics", "SendLocalList",
    "GetLocalListVersion", "DeleteCertificate", "GetInstalledCertificateIds",
)  # fmt: skip


class Triggers:
    """What TriggerMessage sends a target (bridge.ocpp.ports.Triggers)."""

    def __init__(self, link: ReportingLink, meter_values: TriggeredValues) -> None:
        self._link = link
        self._meter_values = meter_values  # the latest values, the transactionId from the local id

    def has_connector(self, connector_id: int) -> bool:
        return connector_id in self._link.connector_ids

    @property
    def connector_ids(self) -> tuple[int, ...]:
        return self._link.connector_ids

    def status_message(self, cid: int) -> call.StatusNotification:
        return self._link.statuses.triggered(cid)

    def meter_values_message(self, cid: int) -> call.MeterValues | None:
        # The connector's local transaction, named by the id THIS target gave (-1 while it has
        # none): never through the primary's id, which reporting only never has.
        return self._meter_values(cid, self._link.messages.transaction_id)

    async def send_now(self, payload: Any) -> Any:
        endpoint = self._link.session.endpoint
        return None if endpoint is None else await endpoint.call(payload)


class ReportingHandlers:
    def __init__(self, link: ReportingLink, triggers: Triggers) -> None:
        self._link = link
        self._triggers = triggers

    @_on(Action.get_configuration)
    def get_configuration(self, key: list[str] | None = None, **_: Any) -> call_result.GetConfiguration:
        asked = list(SHOWN_KEYS) if not key else key
        shown = {k.lower() for k in SHOWN_KEYS}
        known, unknown = self._link.configuration.get_configuration([k for k in asked if k.lower() in shown])
        unknown += [k for k in asked if k.lower() not in shown]
        entries = [
            {
                "key": e.key,
                "readonly": e.key not in OWN_KEYS,
                **({} if e.value is None else {"value": e.value}),
            }
            for e in known
        ]
        return call_result.GetConfiguration(configuration_key=entries, unknown_key=unknown or None)

    @_on(Action.change_configuration)
    def change_configuration(self, key: str, value: str, **_: Any) -> call_result.ChangeConfiguration:
        own = {k.lower(): k for k in OWN_KEYS}
        if key.lower() in own:
            status = self._link.configuration.change(own[key.lower()], value).status
        elif key.lower() in {k.lower() for k in SHOWN_KEYS}:
            status = "Rejected"  # shown to it read-only
        else:
            status = "NotSupported"  # outside its view: a key it does not know (TC_040_1)
        log.info("%s: ChangeConfiguration %s: %s", self._link.name, key, status)
        return call_result.ChangeConfiguration(status=status)

    @_on(Action.unlock_connector)
    def unlock_connector(self, connector_id: int, **_: Any) -> call_result.UnlockConnector:
        # Its answer has a status for it: no CALLERROR needed.
        log.info("%s: UnlockConnector %d refused (a reporting target controls nothing)", self._link.name,
                 connector_id)  # fmt: skip
        return call_result.UnlockConnector(status="NotSupported")

    @_on(Action.trigger_message)
    def trigger_message(
        self, requested_message: str, connector_id: int | None = None, **_: Any
    ) -> call_result.TriggerMessage:
        status = answer_trigger(self._link.session, self._triggers, requested_message, connector_id, {})
        return call_result.TriggerMessage(status=status)


def _rejecting(action: str) -> Callable[..., Any]:
    answer = getattr(call_result, action)

    def refuse(self: ReportingHandlers, **_: Any) -> Any:
        log.info("%s: %s refused (a reporting target controls nothing)", self._link.name, action)
        return answer(status="Rejected")

    refuse.__name__ = f"refuse_{action}"
    return _on(action)(refuse)


for _action in REJECTED:
    setattr(ReportingHandlers, f"refuse_{_action}", _rejecting(_action))
