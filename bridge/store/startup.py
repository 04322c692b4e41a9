"""What a charge point takes up from the store at start, for many charge points in one job.

Each part of a charge point reads its own rows at start (configuration values, the authorization cache,
availability, transactions, the outbox's head, charging profiles, the records of long-running jobs):
round trips to the store thread per charge point, which at 5,000 charge points were six seconds of
thread hand-offs before the first connection. `Store.stored_states` reads them all on the thread in
one job; each part is handed its rows (and still reads them itself when it is not).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bridge.store.local_list import StoredList
from bridge.store.outbox import OutboxRow
from bridge.store.reservations import ReservationRow
from bridge.store.transactions import TransactionRow

CacheRow = tuple[str, str, str | None, str | None, str]  # id_tag, status, expiry, parent, updated_at


@dataclass(frozen=True)
class Stored:
    """One charge point's rows as the last run left them."""

    config_values: dict[str, str]
    cache_entries: list[CacheRow]
    availability: dict[int, bool]
    transactions: list[TransactionRow]
    outbox_state: tuple[int, int, list[OutboxRow]]  # count, last seq, the first page
    charging_profiles: list[tuple[int, str, int]]
    job_records: dict[str, str]  # job name -> its record (JSON): firmware update, diagnostics upload
    local_list: StoredList | None = None  # the version and entries; None: never had one
    reservations: list[ReservationRow] = field(default_factory=list)  # ReserveNow, as kept
