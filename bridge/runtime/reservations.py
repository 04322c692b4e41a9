"""A charge point's reservations at run time: ReserveNow, CancelReservation, the expiry, the store.

Each reservation lives in the core of the connector that holds it (the data of RESERVED, one owner);
this part answers the central system's commands with the charge-point core's choice
(`bridge.core.charge_point.reserve_target`), keeps the rows in the store (written before an Accepted
is said), and lets reservations expire.

The expiry is one timer per charge point, not a loop per connector: a task that exists only while some
reservation is held, waiting for the earliest expiryDate in wall time (`wall_clock.wait_wall`: a moved
clock wakes it at once). The connector then goes back to Available, with its StatusNotification.

What ends a reservation without this part deciding it (a transaction that uses it up, a connector that
becomes Faulted or Unavailable) comes as the core's ReservationEnded effect: `ended` forgets it in the
store. At start, `restore` takes the stored ones up again; those that expired meanwhile end then.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

from bridge.clock import Clock, iso, parse_iso
from bridge.core import connector as core
from bridge.core.charge_point import ChargePointCore, ConnectorView, reserve_target
from bridge.core.config_keys import Configuration
from bridge.flag import Flag
from bridge.runtime.connector import ConnectorRuntime
from bridge.runtime.effects import Spawn
from bridge.runtime.wall_clock import wait_wall
from bridge.store import ReservationRow, Store

log = logging.getLogger("bridge.chargepoint")

Apply = Callable[[int, Iterable[core.Effect]], asyncio.Future[None]]


class Reservations:
    def __init__(
        self,
        cp_id: str,
        connectors: Mapping[int, ConnectorRuntime],
        whole: ChargePointCore,
        *,
        clock: Clock,
        configuration: Configuration,
        store: Store,
        apply: Apply,
        spawn: Spawn,
    ) -> None:
        self._cp_id = cp_id
        self._connectors = connectors
        self._whole = whole
        self._clock = clock
        self._configuration = configuration
        self._store = store
        self._apply = apply  # carries out effects and reports the status they lead to
        self._spawn = spawn
        self._wake = Flag()
        self._timing = False  # the expiry task runs

    # -- what the outside reads ----------------------------------------------------------
    def held(self) -> dict[int, core.Reservation]:
        """connector -> the reservation it holds."""
        return {cid: r for cid, rt in self._connectors.items() if (r := rt.core.reservation) is not None}

    def views(self) -> dict[int, ConnectorView]:
        return {
            cid: ConnectorView(rt.core.status().status, rt.core.transaction is not None, rt.core.reservation)
            for cid, rt in self._connectors.items()
        }

    # -- ReservationControl (bridge.ocpp.ports) ---------------------------------------------
    async def reserve(
        self, connector_id: int, reservation_id: int, id_tag: str, parent_id_tag: str | None, expiry: datetime
    ) -> str:
        """ReserveNow: Accepted (stored first), Occupied, Faulted, Unavailable or Rejected."""
        if expiry <= self._clock.now():
            log.info("%s: ReserveNow %d refused: expiryDate %s has passed", self._cp_id, reservation_id,
                     iso(expiry))  # fmt: skip
            return "Rejected"
        zero = self._configuration.get_bool("ReserveConnectorZeroSupported")
        answer, cid = reserve_target(
            connector_id, reservation_id, self.views(), operative=self._whole.operative, zero_supported=zero
        )
        if cid is not None:
            reservation = core.Reservation(reservation_id, id_tag, parent_id_tag, expiry, connector_id)
            await self._store.run(self._store.save_reservation, self._cp_id, _row(reservation))
            moved_from = next(
                (c for c, r in self.held().items() if r.reservation_id == reservation_id and c != cid), None
            )
            if moved_from is not None:  # the same id asked for another connector: it moves
                self._connectors[moved_from].core.cancel_reservation(reservation_id)
                self._apply(moved_from, [])
            if self._connectors[cid].core.reserve(reservation):
                self._arm()
            else:  # its tag waits for the cable holding it, or it changed while stored: as it was
                answer = "Occupied"
                await self._store.run(self._store.delete_reservation, self._cp_id, reservation_id)
        log.info("%s: ReserveNow %d on connector %d for %s until %s: %s%s", self._cp_id, reservation_id,
                 connector_id, id_tag, iso(expiry), answer, f" (connector {cid})" if cid else "")  # fmt: skip
        return answer

    async def cancel(self, reservation_id: int) -> str:
        """CancelReservation: Accepted (forgotten in the store first) or Rejected for an unknown id."""
        for cid, rt in self._connectors.items():
            held = rt.core.reservation
            if held is not None and held.reservation_id == reservation_id:
                await self._store.run(self._store.delete_reservation, self._cp_id, reservation_id)
                rt.core.cancel_reservation(reservation_id)
                log.info("%s/%d: reservation %d cancelled", self._cp_id, cid, reservation_id)
                return "Accepted"
        return "Rejected"

    def report_statuses(self) -> None:
        """After the answer: the statuses the command changed go out."""
        for cid in self._connectors:
            self._apply(cid, [])

    # -- the core's decisions -----------------------------------------------------------------
    async def ended(self, cid: int, effect: core.ReservationEnded) -> None:
        """The connector let the reservation go (used by a transaction, Faulted, Unavailable)."""
        r = effect.reservation
        log.info("%s/%d: reservation %d ended (%s)", self._cp_id, cid, r.reservation_id, effect.why)
        await self._store.run(self._store.delete_reservation, self._cp_id, r.reservation_id)

    # -- start ---------------------------------------------------------------------------------
    async def restore(self, rows: list[ReservationRow]) -> None:
        """The stored reservations, back on their connectors; those expired meanwhile, or whose
        connector is gone or cannot hold one now, end here."""
        now = self._clock.now()
        for row in rows:
            reservation = core.Reservation(
                row.reservation_id, row.id_tag, row.parent_id_tag, parse_iso(row.expiry), row.connector
            )
            why = "expired" if reservation.expiry <= now else None
            if why is None:
                answer, cid = reserve_target(
                    row.connector, row.reservation_id, self.views(), operative=self._whole.operative,
                    zero_supported=True,
                )  # fmt: skip
                if cid is None or not self._connectors[cid].core.reserve(reservation):
                    why = answer if answer != "Accepted" else "Occupied"
            if why is not None:
                log.info("%s: stored reservation %d ended at start (%s)", self._cp_id, row.reservation_id,
                         why)  # fmt: skip
                await self._store.run(self._store.delete_reservation, self._cp_id, row.reservation_id)
        self._arm()

    # -- the expiry: one timer per charge point --------------------------------------------------
    def _arm(self) -> None:
        """Look at the earliest expiry again (a reservation added or replaced)."""
        if self._timing:
            self._wake.set()
        elif self.held():
            self._timing = True
            self._spawn(self._expire(), "reservations")

    async def _expire(self) -> None:
        try:
            while True:
                self._wake.clear()
                now = self._clock.now()
                held = self.held()
                if not held:
                    return  # no reservation left: no timer either
                for cid, r in held.items():
                    if r.expiry <= now:
                        await self._expired(cid, r)
                earliest = min((r.expiry for r in self.held().values()), default=None)
                if earliest is None:
                    return
                left = (earliest - self._clock.now()).total_seconds()
                if left <= 0:
                    continue
                await wait_wall(self._clock, self._wake, left)
        finally:
            self._timing = False

    async def _expired(self, cid: int, r: core.Reservation) -> None:
        if self._connectors[cid].core.cancel_reservation(r.reservation_id) is None:
            return
        log.info("%s/%d: reservation %d expired", self._cp_id, cid, r.reservation_id)
        self._apply(cid, [])  # Available again, with its StatusNotification
        await self._store.run(self._store.delete_reservation, self._cp_id, r.reservation_id)


def _row(r: core.Reservation) -> ReservationRow:
    return ReservationRow(r.reservation_id, r.connector_id, r.id_tag, r.parent_id_tag, iso(r.expiry))
