"""The nine OCPP statuses as a projection of a connector's lifecycle and its latest reading (pure).

Never stored: worked out at each question, in the order of OCPP 1.6 §4.9. Faulted beats everything
(an overlay: the lifecycle underneath shows again when the fault clears). Inside a transaction the
reading decides: SuspendedEV while the cable is out, SuspendedEVSE while energy is not allowed (which
takes precedence over SuspendedEV), SuspendedEV while the vehicle does not ask, else Charging.
Unavailable only without a transaction: inoperative, or held for a firmware update. Then the session
state: Finishing, Reserved, Preparing (a tag waits for the cable, or the cable is in without a
session), else Available.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from adapters.base import DeviceFault
from bridge.core.connector_states import OPERATIVE_NOW, Availability, State


class Status(StrEnum):
    AVAILABLE = "Available"
    PREPARING = "Preparing"
    CHARGING = "Charging"
    SUSPENDED_EVSE = "SuspendedEVSE"
    SUSPENDED_EV = "SuspendedEV"
    FINISHING = "Finishing"
    RESERVED = "Reserved"
    UNAVAILABLE = "Unavailable"
    FAULTED = "Faulted"


@dataclass(frozen=True)
class StatusReport:
    """What a StatusNotification carries."""

    status: Status
    error_code: str = "NoError"
    info: str | None = None
    vendor_error_code: str | None = None


# Outside a transaction each session state has one status (IDLE: Preparing with the cable in).
_AT_REST = {
    State.IDLE: Status.AVAILABLE,
    State.AUTHORIZED: Status.PREPARING,
    State.FINISHING: Status.FINISHING,
    State.RESERVED: Status.RESERVED,
}


def project(
    state: State,
    availability: Availability,
    *,
    plugged: bool,
    ev_requesting: bool,
    energy_allowed: bool,
    fault: DeviceFault | None,
    held: bool = False,
) -> StatusReport:
    if fault is not None:
        return StatusReport(Status.FAULTED, fault.error_code, fault.info, fault.vendor_error_code)
    if state is State.TRANSACTION:
        if not plugged:
            return StatusReport(Status.SUSPENDED_EV, info="EV side disconnected")
        if not energy_allowed:
            return StatusReport(Status.SUSPENDED_EVSE)
        if not ev_requesting:
            return StatusReport(Status.SUSPENDED_EV)
        return StatusReport(Status.CHARGING)
    if availability not in OPERATIVE_NOW or held:
        return StatusReport(Status.UNAVAILABLE)
    if state is State.IDLE and plugged:
        return StatusReport(Status.PREPARING)
    return StatusReport(_AT_REST[state])
