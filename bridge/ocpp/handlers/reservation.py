"""The Reservation profile: ReserveNow (OCPP 1.6 §5.13) and CancelReservation (§5.1).

Both are decided and stored before the answer; the StatusNotification they lead to (Reserved, or
Available again) follows the answer on the wire.
"""

from __future__ import annotations

import logging
from typing import Any

from ocpp.routing import on
from ocpp.v16 import call_result
from ocpp.v16.enums import Action

from bridge.clock import parse_iso
from bridge.ocpp.errors import ErrorCode, OcppError
from bridge.ocpp.ports import Replies, ReservationControl

log = logging.getLogger("bridge.handlers")


class ReservationHandlers:
    def __init__(self, name: str, link: Replies, reservations: ReservationControl) -> None:
        self._name = name  # the charge point id, in logs
        self._link = link
        self._reservations = reservations

    @on(Action.reserve_now)
    async def reserve_now(
        self, connector_id: int, expiry_date: str, id_tag: str, reservation_id: int,
        parent_id_tag: str | None = None, **_: Any,
    ) -> call_result.ReserveNow:  # fmt: skip
        try:
            expiry = parse_iso(expiry_date)
        except ValueError:
            raise OcppError(
                ErrorCode.PROPERTY_CONSTRAINT_VIOLATION, f"expiryDate is not a date and time: {expiry_date!r}"
            ) from None
        if connector_id < 0:
            return call_result.ReserveNow(status="Rejected")
        status = await self._reservations.reserve(connector_id, reservation_id, id_tag, parent_id_tag, expiry)
        if status == "Accepted":
            self._link.after_reply(self._reservations.report_statuses)
        return call_result.ReserveNow(status=status)

    @on(Action.cancel_reservation)
    async def cancel_reservation(self, reservation_id: int, **_: Any) -> call_result.CancelReservation:
        status = await self._reservations.cancel(reservation_id)
        log.info("%s: CancelReservation %d: %s", self._name, reservation_id, status)
        if status == "Accepted":
            self._link.after_reply(self._reservations.report_statuses)
        return call_result.CancelReservation(status=status)
