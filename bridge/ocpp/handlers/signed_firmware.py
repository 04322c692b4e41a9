"""The security extension's SignedUpdateFirmware (white paper L01): the signing certificate is checked
against the installed ManufacturerRootCertificates before the answer; the download, the signature's
verification and the install follow it, each step reported by a SignedFirmwareStatusNotification with
the requestId. Plain UpdateFirmware's refusal while a manufacturer root is installed is in
`firmware.py`."""

from __future__ import annotations

from typing import Any

from ocpp.routing import on
from ocpp.v16 import call_result
from ocpp.v16.enums import Action

from bridge.ocpp.errors import ErrorCode, OcppError
from bridge.ocpp.handlers.firmware import epoch
from bridge.ocpp.ports import SignedFirmwareControl


class SignedFirmwareHandlers:
    def __init__(self, firmware: SignedFirmwareControl) -> None:
        self._firmware = firmware

    @on(Action.signed_update_firmware)
    async def signed_update_firmware(
        self, request_id: int, firmware: dict[str, Any], retries: int | None = None,
        retry_interval: int | None = None, **_: Any,
    ) -> call_result.SignedUpdateFirmware:  # fmt: skip
        """Accepted, AcceptedCanceled (a running update cancelled) or InvalidCertificate; a request that
        cannot be carried out is a PropertyConstraintViolation."""
        try:
            retrieve = epoch(firmware["retrieve_date_time"], "retrieveDateTime")
            assert retrieve is not None
            status = await self._firmware.signed_request(
                request_id, firmware["location"], retrieve,
                epoch(firmware.get("install_date_time"), "installDateTime"),
                firmware["signing_certificate"], firmware["signature"], retries, retry_interval,
            )  # fmt: skip
        except ValueError as exc:
            raise OcppError(ErrorCode.PROPERTY_CONSTRAINT_VIOLATION, str(exc)) from None
        return call_result.SignedUpdateFirmware(status=status)
