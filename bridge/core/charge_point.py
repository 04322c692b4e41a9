"""Choices that span connectors (pure): where a remote start goes, connector 0, and reservations.

Connector 0 stands for the charge point as a whole. Its availability is its own state: Inoperative on
connector 0 makes every connector Unavailable (each when its transaction ends: Scheduled), and the
charge point's own status is Available or Unavailable.

Reservations (§5.13): a ReserveNow is answered here from what each connector shows, and names the
connector that takes it. A reservation on connector 0 (ReserveConnectorZeroSupported) takes one free
connector, the first Available in connector order: that connector is kept for the tag, so at least
one stays free for it, and the others serve anyone. A reserved connector takes a remote start only
for a tag the reservation admits; without a connectorId such a tag goes to its reserved connector
first.

A connector whose device cannot switch energy (report only) takes no remote start and no remote stop:
the charge point could carry out neither (docs/protocol.md, "Report-only chargers").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bridge.core.connector import Reservation, Status, StatusReport, admits

# A connector a remote start may take: one where a car waits (Preparing) or a free one.
FREE_FOR_REMOTE_START = (Status.AVAILABLE, Status.PREPARING)


@dataclass(frozen=True)
class ConnectorView:
    """What a cross-connector choice needs to know of one connector."""

    status: Status
    in_transaction: bool
    reservation: Reservation | None = None  # the reservation it holds
    switches_energy: bool = True  # False: report only, the device decides when energy flows


def remote_start_target(
    connector_id: int | None,
    connectors: Mapping[int, ConnectorView],
    id_tag: str | None = None,
    parent_id_tag: str | None = None,
) -> int | None:
    """The connector a RemoteStartTransaction for `id_tag` goes to, or None when it must be Rejected.

    With a connectorId: that connector, if it exists, has no transaction and is free, or is reserved
    for the tag (or its group, `parent_id_tag` when known). Without one: the connector reserved for
    the tag, else the one where a car waits, else the first free one (in connector order). A tag a
    reservation does not admit never gets a reserved connector. A report-only connector is never one.
    """
    connectors = {cid: view for cid, view in connectors.items() if view.switches_energy}

    def reserved_for_tag(view: ConnectorView) -> bool:
        held = view.reservation
        return held is not None and id_tag is not None and admits(held, id_tag, parent_id_tag)

    if connector_id is not None:
        view = connectors.get(connector_id)
        if view is None or view.in_transaction:
            return None
        if view.reservation is not None:
            return connector_id if reserved_for_tag(view) else None
        return connector_id if view.status in FREE_FOR_REMOTE_START else None
    for cid, view in connectors.items():
        if view.status is Status.RESERVED and reserved_for_tag(view):
            return cid
    for wanted in (Status.PREPARING, Status.AVAILABLE):
        for cid, view in connectors.items():
            if view.status is wanted and view.reservation is None:
                return cid
    return None


def remote_stop_target(connector_id: int | None, connectors: Mapping[int, ConnectorView]) -> int | None:
    """The connector a RemoteStopTransaction stops, given the one its transaction runs on (None: no
    such transaction); None when it must be Rejected: unknown, or on a report-only connector, which
    cannot stop (§5.12: Accepted says the transaction "will be stopped")."""
    view = connectors.get(connector_id) if connector_id is not None else None
    return connector_id if view is not None and view.switches_energy else None


def reserve_target(
    connector_id: int,
    reservation_id: int,
    connectors: Mapping[int, ConnectorView],
    *,
    operative: bool,
    zero_supported: bool,
) -> tuple[str, int | None]:
    """A ReserveNow's answer and the connector that takes the reservation (None unless Accepted).

    The same reservationId replaces the reservation: on its connector, or (asked for another one)
    moved there if that one could take a new one. Connector 0: Rejected unless
    ReserveConnectorZeroSupported, Unavailable while the charge point is Inoperative (OCTT TC_050_3).
    """
    holder = next((c for c, v in connectors.items() if _holds(v, reservation_id)), None)
    if connector_id == 0:
        if not zero_supported:
            return "Rejected", None
        if not operative:
            return "Unavailable", None
        if holder is not None:
            return "Accepted", holder
        free = [cid for cid, view in connectors.items() if _answer(view, reservation_id) == "Accepted"]
        if free:
            return "Accepted", free[0]
        answers = {_answer(view, reservation_id) for view in connectors.values()}
        for unusable in ("Faulted", "Unavailable"):
            if answers == {unusable}:
                return unusable, None  # every connector is so
        return "Occupied", None
    view = connectors.get(connector_id)
    if view is None:
        return "Rejected", None  # no such connector
    answer = _answer(view, reservation_id)
    return answer, (connector_id if answer == "Accepted" else None)


def _holds(view: ConnectorView, reservation_id: int) -> bool:
    return view.reservation is not None and view.reservation.reservation_id == reservation_id


def _answer(view: ConnectorView, reservation_id: int) -> str:
    """What one connector answers a ReserveNow (§5.13, 7.40)."""
    if view.status is Status.FAULTED:
        return "Faulted"
    if view.status is Status.UNAVAILABLE:
        return "Unavailable"
    if _holds(view, reservation_id):
        return "Accepted"  # replaced
    if view.reservation is not None or view.in_transaction or view.status is not Status.AVAILABLE:
        return "Occupied"  # a session, a cable or a waiting tag, or reserved under another id
    return "Accepted"


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
