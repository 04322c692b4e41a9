"""The store: what must survive a crash or a power cut, in one SQLite file.

Theory. One database per daemon (`<state_dir>/ocpp-bridge.sqlite3`), WAL mode,
one connection used from one dedicated thread (sqlite3 on a slow SD card must
not block the event loop); the async methods hop to that thread in order, so
writes reach the disk in the order they were asked for.

Durability is chosen per write:
- a transaction start (with its StartTransaction in the outbox), every meter
  reading taken (with its MeterValues), a transaction end (with its
  StopTransaction), the central system's transaction id, and configuration
  values are committed with `synchronous=FULL`: on disk before the call
  returns, so a power cut right after loses none of them;
- removing answered messages other than StartTransaction and StopTransaction
  (MeterValues, and durable messages of no transaction) is grouped: a batch
  of answered seqs goes in one commit with `synchronous=NORMAL` (or with the
  next durable outbox write, whichever comes first). A crash or power cut
  before that commit can at worst bring back messages the central system
  already has, which are sent again with their original message ids.

Writes asked for while the store thread is busy are committed together: one
transaction of a SAVEPOINT per write, one COMMIT (one fsync) for all, and each
caller answered only after it (`base`). A durable write never shares a commit
made at `synchronous=NORMAL`.

The modules: `schema` (the migrations, the PRAGMAs, the check of a file),
`base` (the connection and its thread, group commits), one module per
group of tables (`outbox`, `transactions`, `settings`, `local_list`), `startup` (every
charge point's rows at start, read in one job), and `database` (`Store`:
opening the file, moving a damaged one aside, all of them composed).
"""

from bridge.store.database import FILENAME, Store
from bridge.store.outbox import OutboxRow, Queued, Terms
from bridge.store.reservations import ReservationRow
from bridge.store.schema import MIGRATIONS, StoreError
from bridge.store.startup import Stored
from bridge.store.transactions import TransactionRow

__all__ = [
    "FILENAME", "MIGRATIONS", "OutboxRow", "Queued", "ReservationRow", "Store", "StoreError", "Stored",
    "Terms", "TransactionRow",
]  # fmt: skip
