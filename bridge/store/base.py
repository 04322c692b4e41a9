"""The store's one connection and its one thread, which commits what is queued together.

sqlite3 on a slow SD card must not block the event loop: the connection is used from one dedicated
thread, and the async methods hop to it in order, so writes reach the disk in the order they were
asked for. The per-table operations (outbox.py, transactions.py, settings.py) are synchronous
methods run on that thread through `run`, `job` or `submit`; they write with `_write` (or inside
`_transaction`).

Group commit. A commit with `synchronous=FULL` costs an fsync, the same for one row as for a
thousand. So the thread takes every job queued when it looks (up to GROUP_MAX) and runs them in one
SQLite transaction: each write of a job is a SAVEPOINT in it (a failing write is undone alone and
its job fails, as it would on its own), and one COMMIT ends the group. Only then are the group's
jobs answered, in order: a caller told "done" is on disk exactly as before. When nothing else is
queued a group is one job, so a quiet daemon commits as it did; under load (5,000 connectors
sending MeterValues, or all of them suspending their transactions at a stop) it makes one fsync of
what was one each. A group opens its transaction at its first write with that write's durability;
a durable write that finds a `synchronous=NORMAL` group open commits that part first (SQLite cannot
change the level inside a transaction), so no durable write is ever committed without the fsync.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

log = logging.getLogger("bridge.store")

T = TypeVar("T")

# The PRAGMAs `pragma()` reads: the name is put into the SQL, so only these.
_READABLE_PRAGMAS = frozenset({"journal_mode", "synchronous", "user_version"})

GROUP_MAX = 1000  # jobs in one commit at most: bounds how long the first of them waits for its answer


def _retrieved(job: asyncio.Future[Any]) -> None:
    """Marks a shielded job's failure as seen: its caller (if not cancelled meanwhile) gets it too."""
    if not job.cancelled() and job.exception() is not None:
        log.debug("a store job failed: %r", job.exception())


@dataclass(slots=True)
class _Job:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    future: asyncio.Future[Any] | None  # None: submitted without waiting (a failure is logged)
    loop: asyncio.AbstractEventLoop | None
    ok: bool = True
    outcome: Any = None


@dataclass
class _Group:
    """The jobs being committed together, and the part of them whose writes the open transaction holds."""

    jobs: list[_Job]
    current: int = 0  # the job running
    since: int = 0  # the first job with writes in the open transaction
    open: bool = False
    durable: bool = False
    failed: list[int] = field(default_factory=list)

    def lose(self, until: int, exc: BaseException) -> None:
        """The open transaction is gone (rolled back): the jobs that wrote in it failed with `exc`."""
        for job in self.jobs[self.since : until]:
            if job.ok:
                job.ok, job.outcome = False, exc
        self.open = False
        self.since = until


class StoreBase:
    """Synchronous core (methods named `_x`) run on the store thread; async wrappers for the loop."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self._db = db
        self.path = path
        self.recovered_from: Path | None = None  # where a damaged file was moved, if it was
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._closing = threading.Lock()  # a job is queued before the sentinel, or refused
        self._closed = False
        self._group: _Group | None = None  # store thread only: the group being run
        self._full = True  # store thread only: the connection is at synchronous=FULL (connect_checked)
        self.commits = 0  # commits made so far, and how many at synchronous=FULL (tests count them)
        self.full_commits = 0
        self._thread = threading.Thread(target=self._work, name="store", daemon=True)
        self._thread.start()
        # A store never closed still finishes what was queued when the interpreter exits (as the
        # executor this thread replaced did); a daemon thread, so that such a store cannot hang it.
        weakref.finalize(self, _finish, self._jobs, self._thread)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` on the store thread. A job once asked for is done even when the caller is
        cancelled meanwhile (a stop must not lose the write of an answer already received)."""
        return await asyncio.shield(self.job(fn, *args))

    def job(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """`fn(*args)` on the store thread, as a future of the running loop. Jobs run in the order
        they were asked for, and their futures complete (and call their done-callbacks) in that
        order too, after the commit of what they wrote. RuntimeError if the store is closed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        future.add_done_callback(_retrieved)
        self._queue(_Job(fn, args, future, loop))
        return future

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue `fn(*args)` on the store thread without waiting: it still runs after every write
        asked for before it (one thread, in order). A failure is logged."""
        self._queue(_Job(fn, args, None, None))

    def close(self) -> None:
        """Every job queued so far is done and committed; then the connection closes."""
        with self._closing:
            if self._closed:
                return
            self._closed = True
            self._jobs.put(None)
        self._thread.join()
        self._db.close()

    def pragma(self, name: Literal["journal_mode", "synchronous", "user_version"]) -> str | int:
        """One PRAGMA read on the store's own connection (synchronous is a setting of this connection:
        no other reader of the file sees it). Synchronous, like the per-table reads."""
        if name not in _READABLE_PRAGMAS:
            raise ValueError(f"not a PRAGMA the store reads: {name!r}")
        value: str | int = self._db.execute(f"PRAGMA {name}").fetchone()[0]
        return value

    # -- the thread ----------------------------------------------------------------
    def _queue(self, job: _Job) -> None:
        with self._closing:
            if self._closed:
                raise RuntimeError("the store is closed")
            self._jobs.put(job)

    def _work(self) -> None:
        while True:
            first = self._jobs.get()
            if first is None:
                return
            jobs, last = [first], False
            while len(jobs) < GROUP_MAX:
                try:
                    more = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    last = True
                    break
                jobs.append(more)
            self._run_group(jobs)
            if last:
                return

    def _run_group(self, jobs: list[_Job]) -> None:
        group = self._group = _Group(jobs)
        for group.current, job in enumerate(jobs):
            try:
                job.outcome = job.fn(*job.args)
            except Exception as exc:  # the job's own failure: the others go on
                job.ok, job.outcome = False, exc
        self._group = None
        try:
            if group.open:
                try:
                    self._commit(self._full)
                except sqlite3.Error as exc:
                    log.error("a commit of %d store jobs failed: %s", len(jobs) - group.since, exc)
                    group.lose(len(jobs), exc)
                    self._rolled_back()
            self._level(True)
        except sqlite3.Error:  # the connection itself fails: the next group finds out again
            log.exception("the store could not end a group of writes")
        finally:
            self._answer(jobs)

    def _level(self, full: bool) -> None:
        """The connection's synchronous level: FULL between groups, as every direct write expects."""
        if full != self._full:
            self._db.execute(f"PRAGMA synchronous={'FULL' if full else 'NORMAL'}")
            self._full = full

    def _commit(self, full: bool) -> None:
        self._db.execute("COMMIT")
        self.commits += 1
        self.full_commits += full

    def _rolled_back(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")
        self._forget_counts()

    def _forget_counts(self) -> None:
        """Sizes kept in memory for what a lost transaction wrote are counted again (OutboxTables)."""

    @staticmethod
    def _answer(jobs: list[_Job]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
        for job in jobs:
            if job.future is None:
                if not job.ok:
                    name = getattr(job.fn, "__name__", job.fn)
                    log.error("store write %s failed", name, exc_info=job.outcome)
            elif job.loop is not None:
                by_loop.setdefault(job.loop, []).append(job)
        for loop, answered in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve, answered)
            except RuntimeError:  # that loop is closed: nobody waits for these any more
                pass

    # -- helpers (store thread) ------------------------------------------------------
    @contextmanager
    def _transaction(self, durable: bool) -> Iterator[sqlite3.Connection]:
        """What is written inside commits as one: alone (BEGIN IMMEDIATE ... COMMIT, with
        synchronous=NORMAL when not `durable`), or as a SAVEPOINT of the group being run."""
        db = self._db
        group = self._group
        if group is not None and threading.current_thread() is self._thread:
            self._open(group, durable)
            db.execute("SAVEPOINT write")
            try:
                yield db
            except BaseException as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK TO write")
                    db.execute("RELEASE write")
                else:  # SQLite rolled the whole transaction back (e.g. disk full)
                    self._forget_counts()
                    group.lose(group.current, exc)
                raise
            db.execute("RELEASE write")
            return
        self._level(durable)
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                self._commit(durable)
            except BaseException:
                self._rolled_back()
                raise
        finally:
            self._level(True)

    def _open(self, group: _Group, durable: bool) -> None:
        """The group's transaction, open at the durability `durable` needs."""
        if group.open and (group.durable or not durable):
            return
        db = self._db
        if group.open:  # NORMAL so far, and a durable write comes: that part is committed first
            try:
                self._commit(self._full)
            except Exception as exc:
                self._rolled_back()
                group.lose(group.current, exc)
                raise
            group.open = False
        self._level(durable)
        db.execute("BEGIN IMMEDIATE")
        group.open, group.durable, group.since = True, durable, group.current

    def _write(self, durable: bool, statements: list[tuple[str, tuple[Any, ...]]]) -> list[int | None]:
        """Run statements in one transaction; returns each statement's lastrowid."""
        with self._transaction(durable) as db:
            return [db.execute(sql, params).lastrowid for sql, params in statements]


def _finish(jobs: queue.SimpleQueue[_Job | None], thread: threading.Thread) -> None:
    if thread.is_alive():
        jobs.put(None)
        thread.join()


def _resolve(jobs: list[_Job]) -> None:
    """On the loop: the group's futures, in the order the jobs were asked for."""
    for job in jobs:
        future = job.future
        if future is None or future.done():
            continue
        if job.ok:
            future.set_result(job.outcome)
        else:
            future.set_exception(job.outcome)
