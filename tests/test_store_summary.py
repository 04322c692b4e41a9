"""`Store.summary`: what a diagnostics archive says of the store, on a real SQLite file. Counts,
versions and times only: no id tag leaves the bridge in an archive."""

from __future__ import annotations

import json

from bridge.store import ReservationRow, Store


def held(store: Store, cp: str = "CP-1") -> tuple[int, int | None, int]:
    """(the list's entries, its stored version, the reservations) as the summary says them."""
    summary = store.summary(cp)
    return summary["local_list_entries"], summary["local_list_version"], summary["reservations"]


LISTED = [("card-1", "CARD-1", "Accepted", None, "FLEET-1"), ("card-2", "CARD-2", "Blocked", None, None)]


def test_a_charge_point_that_never_had_a_list_or_a_reservation(store: Store) -> None:
    assert held(store) == (0, None, 0)


def test_the_local_list_and_the_reservations_are_counted_without_their_tags(store: Store) -> None:
    store.save_local_list("CP-1", 4, True, LISTED, [])
    store.save_local_list("CP-2", 9, True, LISTED[:1], [])  # another charge point's: not counted
    store.save_reservation("CP-1", ReservationRow(41, 1, "CARD-1", "FLEET-1", "2026-11-22T12:00:00Z"))
    store.save_reservation("CP-1", ReservationRow(42, 0, "CARD-9", None, "2026-11-22T13:00:00Z"))
    store.save_reservation("CP-2", ReservationRow(43, 1, "CARD-8", None, "2026-11-22T13:00:00Z"))
    assert held(store) == (2, 4, 2)
    text = json.dumps(store.summary("CP-1"))
    assert not [tag for tag in ("CARD-", "card-", "FLEET") if tag in text]
    store.delete_reservation("CP-1", 41)
    store.save_local_list("CP-1", 5, False, [], ["card-2"])  # a Differential removing one entry
    assert held(store) == (1, 5, 1)
    # An empty Full list: no entry, and its version kept as stored (GetLocalListVersion answers 0).
    store.save_local_list("CP-1", 6, True, [], [])
    assert held(store) == (0, 6, 1)
