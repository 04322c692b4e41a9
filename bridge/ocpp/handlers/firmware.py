"""The FirmwareManagement profile: GetDiagnostics (OCPP 1.6 §5.9). UpdateFirmware is still answered
NotSupported (no handler): its parts are built (bridge/core/firmware.py, bridge/transfer/) but not yet
wired, and the profile is not advertised in SupportedFeatureProfiles until it is."""

from __future__ import annotations

from typing import Any

from ocpp.routing import on
from ocpp.v16 import call_result
from ocpp.v16.enums import Action

from bridge.clock import parse_iso
from bridge.ocpp.errors import ErrorCode, OcppError
from bridge.ocpp.ports import DiagnosticsControl


class FirmwareHandlers:
    def __init__(self, diagnostics: DiagnosticsControl) -> None:
        self._diagnostics = diagnostics

    @on(Action.get_diagnostics)
    def get_diagnostics(
        self, location: str, retries: int | None = None, retry_interval: int | None = None,
        start_time: str | None = None, stop_time: str | None = None, **_: Any,
    ) -> call_result.GetDiagnostics:  # fmt: skip
        """The fileName at once; the archive is built and uploaded after the answer (D6)."""
        try:
            name = self._diagnostics.request(
                location,
                retries,
                retry_interval,
                _epoch(start_time, "startTime"),
                _epoch(stop_time, "stopTime"),
            )
        except ValueError as exc:
            raise OcppError(ErrorCode.PROPERTY_CONSTRAINT_VIOLATION, str(exc)) from None
        return call_result.GetDiagnostics(file_name=name)


def _epoch(value: str | None, name: str) -> float | None:
    """An OCPP dateTime as epoch seconds."""
    if value is None:
        return None
    try:
        return parse_iso(value).timestamp()
    except ValueError:
        raise ValueError(f"{name} is not a date and time: {value!r}") from None
