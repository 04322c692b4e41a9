"""The store thread commits the jobs queued together in one transaction (bridge/store/base.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.store import FILENAME, Store

T0 = "2026-01-01T00:00:00.000Z"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(tmp_path)
    yield opened
    opened.close()


async def held(store: Store) -> threading.Event:
    """The store thread waits in a job until the returned event is set: what is queued meanwhile is
    one group."""
    entered, release = threading.Event(), threading.Event()

    def hold() -> None:
        entered.set()
        release.wait(10)

    store.job(hold)
    await asyncio.to_thread(entered.wait, 10)
    return release


def on_disk(tmp_path: Path, sql: str) -> list[tuple[object, ...]]:
    """What another reader of the file sees: only what was committed."""
    with contextlib.closing(sqlite3.connect(tmp_path / FILENAME)) as reader:
        return reader.execute(sql).fetchall()


async def test_writes_queued_together_are_one_commit_and_answered_in_order(
    store: Store, tmp_path: Path
) -> None:
    release = await held(store)
    before = store.commits
    answered: list[int] = []
    jobs = [
        store.job(store.begin_transaction, f"CP-{n}", n, 1, "TAG", 0, T0, "{}", f"start-{n}")
        for n in range(1, 51)
    ]
    for job in jobs:
        job.add_done_callback(lambda done: answered.append(done.result().seq))
    await asyncio.sleep(0.05)
    assert on_disk(tmp_path, "SELECT COUNT(*) FROM transactions") == [(0,)]  # nothing before the commit
    assert not any(job.done() for job in jobs)
    release.set()
    seqs = [(await job).seq for job in jobs]
    await asyncio.sleep(0)  # the done-callbacks scheduled with the last answers
    assert store.commits - before == 1  # fifty durable writes, one fsync
    assert answered == seqs == sorted(seqs)  # answered in the order asked for
    assert on_disk(tmp_path, "SELECT COUNT(*) FROM transactions") == [(50,)]
    assert on_disk(tmp_path, "SELECT COUNT(*) FROM outbox") == [(50,)]


async def test_a_failing_write_is_undone_alone_and_fails_only_its_job(store: Store, tmp_path: Path) -> None:
    release = await held(store)
    first = store.job(store.begin_transaction, "CP-1", 1, 1, "A", 0, T0, "{}", "start-1")
    # Transaction 1 again: its INSERT fails after nothing else of that write ran.
    again = store.job(store.begin_transaction, "CP-1", 1, 1, "B", 0, T0, "{}", "start-again")
    after = store.job(store.record_meter_values, "CP-1", 1, 5.0, T0, "{}", "mv-1")
    release.set()
    assert (await first).seq > 0
    with pytest.raises(sqlite3.IntegrityError):
        await again
    assert (await after).seq > 0
    assert on_disk(tmp_path, "SELECT unique_id FROM outbox ORDER BY seq") == [("start-1",), ("mv-1",)]
    assert on_disk(tmp_path, "SELECT id_tag, last_meter_wh FROM transactions") == [("A", 5.0)]
    assert store.outbox_count("CP-1") == 2


async def test_a_durable_write_is_never_committed_at_synchronous_normal(store: Store, tmp_path: Path) -> None:
    store.begin_transaction("CP-1", 1, 1, "A", 0, T0, "{}", "start-1")
    mvs = [store.record_meter_values("CP-1", 1, n, T0, "{}", f"mv-{n}").seq for n in range(2)]
    # Not durable first: that part is committed at NORMAL, and the durable write opens its own at FULL.
    release = await held(store)
    commits, full = store.commits, store.full_commits
    removal = store.job(store.remove_messages, "CP-1", (mvs[0],))
    stop = store.job(store.end_transaction, "CP-1", 1, 9, T0, "Local", "{}", "stop-1")
    release.set()
    await removal
    await stop
    assert (store.commits - commits, store.full_commits - full) == (2, 1)
    # Durable first: the removal joins it (stronger than it needs).
    store.begin_transaction("CP-1", 2, 1, "A", 0, T0, "{}", "start-2")
    release = await held(store)
    commits, full = store.commits, store.full_commits
    stop = store.job(store.end_transaction, "CP-1", 2, 9, T0, "Local", "{}", "stop-2")
    removal = store.job(store.remove_messages, "CP-1", (mvs[1],))
    release.set()
    await stop
    await removal
    assert (store.commits - commits, store.full_commits - full) == (1, 1)
    assert store.pragma("synchronous") == 2  # FULL again between groups
    assert on_disk(tmp_path, "SELECT unique_id FROM outbox ORDER BY seq") == [
        ("start-1",), ("stop-1",), ("start-2",), ("stop-2",)
    ]  # fmt: skip


async def test_a_failed_commit_fails_every_job_of_it_and_the_counts_are_taken_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A deferred foreign key is checked at COMMIT: a message queued as "doomed" makes its commit fail.
    with contextlib.closing(sqlite3.connect(tmp_path / FILENAME)) as setup:
        setup.executescript(
            "CREATE TABLE parent (id INTEGER PRIMARY KEY);"
            "CREATE TABLE child (p INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);"
        )
    store = Store.open(tmp_path)
    try:
        with contextlib.closing(sqlite3.connect(tmp_path / FILENAME)) as setup:
            setup.execute(
                "CREATE TRIGGER doomed AFTER INSERT ON outbox WHEN NEW.unique_id = 'doomed'"
                " BEGIN INSERT INTO child (p) VALUES (99); END"
            )
        store.begin_transaction("CP-1", 1, 1, "A", 0, T0, "{}", "start-1")
        assert store.outbox_count("CP-1") == 1
        release = await held(store)
        mv = store.job(store.record_meter_values, "CP-1", 1, 5.0, T0, "{}", "mv-1")
        doomed = store.job(store.queue_message, "CP-1", "SecurityEventNotification", "{}", "doomed", T0)
        caplog.set_level(logging.ERROR, logger="bridge.store")
        release.set()
        for job in (mv, doomed):
            with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
                await job
        assert "a commit of 2 store jobs failed" in caplog.text  # from the first that wrote
        assert on_disk(tmp_path, "SELECT unique_id FROM outbox") == [("start-1",)]
        assert store.outbox_count("CP-1") == 1  # counted again, not the 3 the lost writes had kept
        assert (await store.run(store.record_meter_values, "CP-1", 1, 6.0, T0, "{}", "mv-2")).seq > 0
        assert on_disk(tmp_path, "SELECT unique_id FROM outbox ORDER BY seq") == [("start-1",), ("mv-2",)]
    finally:
        store.close()


async def test_close_commits_every_job_queued_before_it_and_refuses_later_ones(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    release = await held(store)
    for n in range(1, 21):
        store.submit(store.begin_transaction, "CP-1", n, 1, "A", 0, T0, "{}", f"start-{n}")
    closing = asyncio.get_running_loop().run_in_executor(None, store.close)
    await asyncio.sleep(0.05)
    release.set()
    await closing
    assert on_disk(tmp_path, "SELECT COUNT(*) FROM outbox") == [(20,)]
    with pytest.raises(RuntimeError, match="closed"):
        store.submit(store.begin_transaction, "CP-1", 21, 1, "A", 0, T0, "{}", "start-21")


def test_writes_queued_by_a_process_that_exits_without_closing_the_store_are_committed(
    tmp_path: Path,
) -> None:
    script = (
        "import sys; from pathlib import Path; from bridge.store import Store\n"
        "store = Store.open(Path(sys.argv[1]))\n"
        "for n in range(1, 201):\n"
        f"    store.submit(store.begin_transaction, 'CP-1', n, 1, 'A', 0, '{T0}', '{{}}', f's{{n}}')\n"
    )  # and the interpreter exits, the store never closed
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True, cwd=ROOT, timeout=60)
    assert on_disk(tmp_path, "SELECT COUNT(*) FROM outbox") == [(200,)]
