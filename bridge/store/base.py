"""The store's one connection and its one thread.

sqlite3 on a slow SD card must not block the event loop: the connection is used from one dedicated
thread, and the async methods hop to it in order, so writes reach the disk in the order they were
asked for. The per-table operations (outbox.py, transactions.py, settings.py) are synchronous
methods run on that thread through `run`, `job` or `submit`; they write with `_write`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, TypeVar

log = logging.getLogger("bridge.store")

T = TypeVar("T")

# The PRAGMAs `pragma()` reads: the name is put into the SQL, so only these.
_READABLE_PRAGMAS = frozenset({"journal_mode", "synchronous", "user_version"})


def _retrieved(job: asyncio.Future[Any]) -> None:
    """Marks a shielded job's failure as seen: its caller (if not cancelled meanwhile) gets it too."""
    if not job.cancelled() and job.exception() is not None:
        log.debug("a store job failed: %r", job.exception())


class StoreBase:
    """Synchronous core (methods named `_x`) run on the store thread; async wrappers for the loop."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self._db = db
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self.recovered_from: Path | None = None  # where a damaged file was moved, if it was

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` on the store thread. A job once asked for is done even when the caller is
        cancelled meanwhile (a stop must not lose the write of an answer already received)."""
        return await asyncio.shield(self.job(fn, *args))

    def job(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """`fn(*args)` on the store thread, as a future of the running loop. Jobs run in the order
        they were asked for, and their futures complete (and call their done-callbacks) in that
        order too. RuntimeError if the store is closed."""
        job = asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        job.add_done_callback(_retrieved)
        return job

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue `fn(*args)` on the store thread without waiting: it still runs after every write
        asked for before it (one thread, in order). A failure is logged."""

        def logged(future: concurrent.futures.Future[Any]) -> None:
            if future.exception() is not None:
                log.error("store write %s failed", getattr(fn, "__name__", fn), exc_info=future.exception())

        self._executor.submit(fn, *args).add_done_callback(logged)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._db.close()

    def pragma(self, name: Literal["journal_mode", "synchronous", "user_version"]) -> str | int:
        """One PRAGMA read on the store's own connection (synchronous is a setting of this connection:
        no other reader of the file sees it). Synchronous, like the per-table reads."""
        if name not in _READABLE_PRAGMAS:
            raise ValueError(f"not a PRAGMA the store reads: {name!r}")
        value: str | int = self._db.execute(f"PRAGMA {name}").fetchone()[0]
        return value

    # -- helpers -----------------------------------------------------------------
    def _write(self, durable: bool, statements: list[tuple[str, tuple[Any, ...]]]) -> list[int | None]:
        """Run statements in one transaction; returns each statement's lastrowid."""
        db = self._db
        if not durable:
            db.execute("PRAGMA synchronous=NORMAL")
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                ids = [db.execute(sql, params).lastrowid for sql, params in statements]
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        finally:
            if not durable:
                db.execute("PRAGMA synchronous=FULL")
        return ids
