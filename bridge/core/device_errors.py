"""Device errors as OCPP sees them: the one place that maps them (DESIGN.md rule 6).

Drivers raise three typed errors (`adapters.base`): the device did not
answer, it refused, or it cannot do this at all. What each means on the
wire depends on what was asked:

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

from adapters.base import DeviceError, DeviceFault, NotSupportedByDevice

INFO_LENGTH = 50  # StatusNotification.info and vendorErrorCode are CiString50


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
