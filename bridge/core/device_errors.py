"""Device errors as OCPP sees them: the one place that maps them (DESIGN.md rule 6).

Drivers raise three typed errors (`adapters.base`): the device did not
answer, it refused, or it cannot do this at all. What each means on the
wire depends on what was asked:

- a fault the device reports in a reading (a `Fault` of a `FaultKind`):
  Faulted, errorCode from `ERROR_CODES`, info the device's text and
  vendorErrorCode its own code, each cut to 50 characters;
- reads that fail up to the threshold, or a failed probe: Faulted, errorCode
  OtherError, info "<device>: <why>", vendorErrorCode the error's kind;
- UnlockConnector: NotSupportedByDevice is NotSupported; a refusal, silence or
  no answer in time is UnlockFailed;
- a charging limit: NotSupportedByDevice means nothing to set (nothing is
  limited by it); any other error means refused (the caller pauses charging
  while the limit is below the device's maximum);
- a hard reset: NotSupportedByDevice means nothing to do; other errors are
  tried again, then given up (the session restarts anyway).

Pure: no I/O, only the mapping.
"""

from __future__ import annotations

from enum import StrEnum

from adapters.base import DeviceError, DeviceFault, Fault, FaultKind, NotSupportedByDevice

INFO_LENGTH = 50  # StatusNotification.info and vendorErrorCode are CiString50

# A device's fault as OCPP 1.6's ChargePointErrorCode names it.
ERROR_CODES: dict[FaultKind, str] = {
    FaultKind.GROUND_FAULT: "GroundFailure",
    FaultKind.RESIDUAL_CURRENT: "GroundFailure",
    FaultKind.OVER_CURRENT: "OverCurrentFailure",
    FaultKind.OVER_VOLTAGE: "OverVoltage",
    FaultKind.UNDER_VOLTAGE: "UnderVoltage",
    FaultKind.OVER_TEMPERATURE: "HighTemperature",
    FaultKind.POWER_SWITCH: "PowerSwitchFailure",
    FaultKind.CABLE_LOCK: "ConnectorLockFailure",
    FaultKind.EV_COMMUNICATION: "EVCommunicationError",
    FaultKind.POWER_METER: "PowerMeterFailure",
    FaultKind.CARD_READER: "ReaderFailure",
    FaultKind.INTERNAL: "InternalError",
    FaultKind.PHASE: "OtherError",  # OCPP 1.6 has no code for the supply's phases
    FaultKind.OTHER: "OtherError",
}


def _cut(text: str | None) -> str | None:
    return None if text is None else text[:INFO_LENGTH]


def ocpp_fault(fault: Fault | DeviceFault) -> DeviceFault:
    """A reported fault as StatusNotification carries it: errorCode, info, vendorErrorCode. A
    DeviceFault (the simulated box's) is in OCPP's words already and stays as it is."""
    if isinstance(fault, DeviceFault):
        return fault
    return DeviceFault(ERROR_CODES[fault.kind], _cut(fault.info), _cut(fault.vendor_code))


def silent_fault(description: str, error: BaseException) -> DeviceFault:
    """The fault of a device that stopped answering (reads failed up to the threshold, or its probe)."""
    info = f"{description}: {error}"
    return DeviceFault("OtherError", info[:INFO_LENGTH], type(error).__name__[:INFO_LENGTH])


def unlock_status(error: BaseException | None) -> str:
    """UnlockConnector's answer after the device's unlock ended with `error` (None: it worked)."""
    if error is None:
        return "Unlocked"
    if isinstance(error, NotSupportedByDevice):
        return "NotSupported"
    return "UnlockFailed"  # refused, unreachable, or no answer in time


class LimitOutcome(StrEnum):
    APPLIED = "Applied"
    NOTHING_TO_SET = "NothingToSet"  # the device has no such setting: nothing is limited by it
    REFUSED = "Refused"  # the device did not take it: treat the limit as not applied


def limit_outcome(error: DeviceError | None) -> LimitOutcome:
    if error is None:
        return LimitOutcome.APPLIED
    if isinstance(error, NotSupportedByDevice):
        return LimitOutcome.NOTHING_TO_SET
    return LimitOutcome.REFUSED
