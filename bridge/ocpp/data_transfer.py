"""DataTransfer from the central system: vendor handlers by vendorId.

A handler gets (messageId, data) and answers (status, data): status one of
Accepted / Rejected / UnknownMessageId. A vendorId without a handler is
answered UnknownVendorId (OCPP 1.6 §4.3, the enum's spelling). Handlers
answer at once from state in memory: they run in the receive loop.

Built in (registered by the charge point, bridge/chargepoint.py): vendorId
"ocpp-bridge", messageId "DeviceStatus": what each connector's device reports
(bridge.runtime.snapshot.device_status_json).
"""

from __future__ import annotations

from collections.abc import Callable

Answer = tuple[str, str | None]
VendorHandler = Callable[[str | None, str | None], Answer]
BRIDGE_VENDOR_ID = "ocpp-bridge"


class DataTransferHandlers:
    def __init__(self) -> None:
        self._vendors: dict[str, VendorHandler] = {}

    def register(self, vendor_id: str, handler: VendorHandler) -> None:
        self._vendors[vendor_id] = handler

    def answer(self, vendor_id: str, message_id: str | None, data: str | None) -> Answer:
        handler = self._vendors.get(vendor_id)  # vendorId is a CiString: compared exactly, as sent
        if handler is None:
            return "UnknownVendorId", None
        return handler(message_id, data)
