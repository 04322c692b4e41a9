"""The LocalAuthListManagement profile: SendLocalList (OCPP 1.6 §5.15) and GetLocalListVersion (§5.10).

The schema layer has checked the request's shape (listVersion an integer, updateType Full or
Differential, idTag at most 20 characters, a known status, expiryDate a date and time) and answered a
bad one with its CALLERROR. What it leaves is decided by the list (`bridge.core.local_list`):
duplicates, a Full entry without idTagInfo, the lengths and the version are answered in the status
(Failed, VersionMismatch, NotSupported). A date the schema passed but Python cannot read is a
CALLERROR PropertyConstraintViolation naming the entry. An accepted update is on disk before it is
answered.
"""

from __future__ import annotations

from typing import Any

from ocpp.routing import on
from ocpp.v16 import call_result
from ocpp.v16.enums import Action

from bridge.ocpp.errors import ErrorCode, OcppError
from bridge.ocpp.ports import LocalListControl


class LocalListHandlers:
    def __init__(self, local_list: LocalListControl) -> None:
        self._list = local_list

    @on(Action.send_local_list)
    async def send_local_list(
        self, list_version: int, update_type: str,
        local_authorization_list: list[dict[str, Any]] | None = None, **_: Any,
    ) -> call_result.SendLocalList:  # fmt: skip
        try:
            status = await self._list.send_local_list(list_version, update_type, local_authorization_list)
        except ValueError as exc:
            raise OcppError(ErrorCode.PROPERTY_CONSTRAINT_VIOLATION, str(exc)) from None
        return call_result.SendLocalList(status=status)

    @on(Action.get_local_list_version)
    def get_local_list_version(self, **_: Any) -> call_result.GetLocalListVersion:
        return call_result.GetLocalListVersion(list_version=self._list.local_list_version())
