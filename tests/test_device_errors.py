"""The one mapping of device errors to OCPP (bridge.core.device_errors), row by row."""

from __future__ import annotations

import pytest

from adapters.base import DeviceError, DeviceFault, DeviceRefused, DeviceUnreachable, NotSupportedByDevice
from bridge.core.device_errors import LimitOutcome, limit_outcome, silent_fault, unlock_status


def test_a_silent_device_is_other_error_naming_the_device_and_why_within_50_characters() -> None:
    fault = silent_fault("go-e at 192.0.2.7", DeviceUnreachable("timed out after 5 s"))
    assert fault == DeviceFault("OtherError", "go-e at 192.0.2.7: timed out after 5 s", "DeviceUnreachable")
    long = silent_fault("SDM630 #1 on rtu:///dev/ttyUSB0", DeviceRefused("x" * 80))
    assert fault.info is not None and long.info is not None and len(long.info) == 50


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (None, "Unlocked"),
        (NotSupportedByDevice("no lock"), "NotSupported"),
        (DeviceRefused("motor stuck"), "UnlockFailed"),
        (DeviceUnreachable("no answer"), "UnlockFailed"),
        (TimeoutError(), "UnlockFailed"),
    ],
)
def test_unlock_answers(error: BaseException | None, status: str) -> None:
    assert unlock_status(error) == status


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (None, LimitOutcome.APPLIED),
        (NotSupportedByDevice("no current control"), LimitOutcome.NOTHING_TO_SET),
        (DeviceRefused("amp out of range"), LimitOutcome.REFUSED),
        (DeviceUnreachable("no answer"), LimitOutcome.REFUSED),
    ],
)
def test_limit_outcomes(error: DeviceError | None, outcome: LimitOutcome) -> None:
    assert limit_outcome(error) is outcome
