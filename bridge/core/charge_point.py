"""Choices that span connectors (pure): where a remote start goes, and connector 0.

Connector 0 stands for the charge point as a whole. Its availability is its own state: Inoperative on
connector 0 makes every connector Unavailable (each when its transaction ends: Scheduled), and the
charge point's own status is Available or Unavailable. Reservations on connector 0 will be decided
here too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bridge.core.connector import Status, StatusReport

# A connector a remote start may take: one where a car waits (Preparing) or a free one.
FREE_FOR_REMOTE_START = (Status.AVAILABLE, Status.PREPARING)


@dataclass(frozen=True)
class ConnectorView:
    """What a cross-connector choice needs to know of one connector."""

    status: Status
    in_transaction: bool


def remote_start_target(connector_id: int | None, connectors: Mapping[int, ConnectorView]) -> int | None:
    """The connector a RemoteStartTransaction goes to, or None when it must be Rejected.

    With a connectorId: that connector, if it exists, has no transaction and is free. Without one:
    the connector where a car waits, else the first free one (in connector order).
    """
    if connector_id is not None:
        view = connectors.get(connector_id)
        if view is None or view.in_transaction or view.status not in FREE_FOR_REMOTE_START:
            return None
        return connector_id
    for wanted in (Status.PREPARING, Status.AVAILABLE):
        for cid, view in connectors.items():
            if view.status is wanted:
                return cid
    return None


@dataclass
class ChargePointCore:
    """The charge point as a whole (connector 0)."""

    connector_ids: tuple[int, ...]
    operative: bool = True  # per ChangeAvailability on connector 0

    def status(self) -> StatusReport:
        return StatusReport(Status.AVAILABLE if self.operative else Status.UNAVAILABLE)

    def availability_targets(self, connector_id: int) -> tuple[int, ...] | None:
        """The connectors a ChangeAvailability applies to; None when it must be Rejected (unknown)."""
        if connector_id == 0:
            return self.connector_ids
        if connector_id in self.connector_ids:
            return (connector_id,)
        return None

    def change_availability(
        self, connector_id: int, operative: bool, answers: list[str]
    ) -> tuple[str, dict[int, bool]]:
        """The answer, given the targets' own answers, and what is to be stored (connector -> operative).

        Stored before it is said: the wanted state survives a reboot (OCTT TC_013).
        """
        targets = self.availability_targets(connector_id) or ()
        wanted = {cid: operative for cid in targets}
        if connector_id == 0:
            self.operative = operative
            wanted[0] = operative
        return ("Scheduled" if "Scheduled" in answers else "Accepted"), wanted
