"""The one mapping of device errors to OCPP (bridge.core.device_errors), row by row."""

from __future__ import annotations

import pytest

from adapters.base import (
    DeviceError,
    DeviceFault,
    DeviceRefused,
    DeviceUnreachable,
    Fault,
    FaultKind,
    NotSupportedByDevice,
)
from bridge.core.device_errors import (
    ERROR_CODES,
    LimitOutcome,
    limit_outcome,
    ocpp_fault,
    silent_fault,
    unlock_status,
)

# Each kind of fault a device reports, and the ChargePointErrorCode it is on the wire (OCPP 1.6, 7.6).
KINDS: list[tuple[FaultKind, str]] = [
    (FaultKind.GROUND_FAULT, "GroundFailure"),
    (FaultKind.RESIDUAL_CURRENT, "GroundFailure"),
    (FaultKind.OVER_CURRENT, "OverCurrentFailure"),
    (FaultKind.OVER_VOLTAGE, "OverVoltage"),
    (FaultKind.UNDER_VOLTAGE, "UnderVoltage"),
    (FaultKind.OVER_TEMPERATURE, "HighTemperature"),
    (FaultKind.POWER_SWITCH, "PowerSwitchFailure"),
    (FaultKind.CABLE_LOCK, "ConnectorLockFailure"),
    (FaultKind.EV_COMMUNICATION, "EVCommunicationError"),
    (FaultKind.POWER_METER, "PowerMeterFailure"),
    (FaultKind.CARD_READER, "ReaderFailure"),
    (FaultKind.INTERNAL, "InternalError"),
    (FaultKind.PHASE, "OtherError"),
    (FaultKind.OTHER, "OtherError"),
]


@pytest.mark.parametrize(("kind", "error_code"), KINDS)
def test_each_kind_of_fault_is_its_error_code(kind: FaultKind, error_code: str) -> None:
    assert ocpp_fault(Fault(kind, "what the device says", "E7")) == DeviceFault(
        error_code, "what the device says", "E7"
    )


def test_every_kind_has_one_row_and_only_ocpp_1_6_codes() -> None:
    assert [kind for kind, _ in KINDS] == list(FaultKind) and set(ERROR_CODES) == set(FaultKind)
    codes_1_6 = {
        "ConnectorLockFailure", "EVCommunicationError", "GroundFailure", "HighTemperature",
        "InternalError", "LocalListConflict", "NoError", "OtherError", "OverCurrentFailure", "OverVoltage",
        "PowerMeterFailure", "PowerSwitchFailure", "ReaderFailure", "ResetFailure", "UnderVoltage",
        "WeakSignal",
    }  # fmt: skip
    assert set(ERROR_CODES.values()) <= codes_1_6 - {"NoError", "LocalListConflict"}


def test_info_and_vendor_code_are_cut_to_50_characters_and_none_stays_none() -> None:
    fault = ocpp_fault(Fault(FaultKind.OTHER, "i" * 80, "v" * 80))
    assert (fault.info, fault.vendor_error_code) == ("i" * 50, "v" * 50)
    assert ocpp_fault(Fault(FaultKind.INTERNAL)) == DeviceFault("InternalError", None, None)


def test_a_fault_already_in_ocpp_words_stays_as_it_is() -> None:
    """The simulated box's: its operator names the errorCode."""
    told = DeviceFault("WeakSignal", "as told", "SIM")
    assert ocpp_fault(told) is told


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
