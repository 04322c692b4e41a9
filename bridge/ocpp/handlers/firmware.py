"""The FirmwareManagement profile: GetDiagnostics (OCPP 1.6 §5.9) and UpdateFirmware (§5.19). Both are
answered at once; the work (upload, download and install) follows the answer, each step reported by
its status notification."""

from __future__ import annotations

from typing import Any

from ocpp.routing import on
from ocpp.v16 import call_result
from ocpp.v16.enums import Action

from bridge.clock import parse_iso
from bridge.ocpp.errors import ErrorCode, OcppError
from bridge.ocpp.ports import DiagnosticsControl, FirmwareControl


class FirmwareHandlers:
    def __init__(self, diagnostics: DiagnosticsControl, firmware: FirmwareControl) -> None:
        self._diagnostics = diagnostics
        self._firmware = firmware

    @on(Action.update_firmware)
    async def update_firmware(
        self, location: str, retrieve_date: str, retries: int | None = None,
        retry_interval: int | None = None, **_: Any,
    ) -> call_result.UpdateFirmware:  # fmt: skip
        """An empty conf; the download starts at retrieveDate (D5), and replaces an update pending.
        NotSupported while a ManufacturerRootCertificate is installed: firmware must come signed then
        (SignedUpdateFirmware, security white paper L01.FR.20)."""
        refusal = await self._firmware.unsigned_refusal()
        if refusal is not None:
            raise OcppError(ErrorCode.NOT_SUPPORTED, refusal)
        try:
            when = epoch(retrieve_date, "retrieveDate")
            assert when is not None
            self._firmware.request(location, when, retries, retry_interval)
        except ValueError as exc:
            raise OcppError(ErrorCode.PROPERTY_CONSTRAINT_VIOLATION, str(exc)) from None
        return call_result.UpdateFirmware()

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
                epoch(start_time, "startTime"),
                epoch(stop_time, "stopTime"),
            )
        except ValueError as exc:
            raise OcppError(ErrorCode.PROPERTY_CONSTRAINT_VIOLATION, str(exc)) from None
        return call_result.GetDiagnostics(file_name=name)


def epoch(value: str | None, name: str) -> float | None:
    """An OCPP dateTime as epoch seconds (ValueError naming the field); the security extension's
    handlers read theirs with it too."""
    if value is None:
        return None
    try:
        return parse_iso(value).timestamp()
    except ValueError:
        raise ValueError(f"{name} is not a date and time: {value!r}") from None
