"""DataTransfer from the central system: vendor handlers by vendorId.

A handler gets (messageId, data) and answers (status, data): status one of
Accepted / Rejected / UnknownMessageId. A vendorId without a handler is
answered UnknownVendorId (OCPP 1.6 §4.3, the enum's spelling). Handlers
answer at once from state in memory: they run in the receive loop.

Built in: vendorId "ocpp-bridge", messageId "DeviceStatus": what each
connector's device reports (description, last reading, whether it answers),
for an operator who cannot reach the box otherwise. Nothing secret is in it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bridge.chargepoint import ChargePoint

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


def bridge_vendor(cp: ChargePoint) -> VendorHandler:
    def handle(message_id: str | None, data: str | None) -> Answer:
        if message_id != "DeviceStatus":
            return "UnknownMessageId", None
        report: list[dict[str, Any]] = []
        for cid, rt in cp.connectors.items():
            r = rt.reading
            report.append({
                "connector": cid,
                "device": rt.charger.description,
                "answering": rt.core.unreachable is None and rt.started,
                "failed_reads": rt.failed_reads,
                "plugged": r.plugged if r else None,
                "energy_wh": r.energy_wh if r else None,
                "power_w": r.power_w if r else None,
                "fault": r.fault.error_code if r and r.fault else None,
            })  # fmt: skip
        return "Accepted", json.dumps(report, separators=(",", ":"))

    return handle
