"""The local authorization list: the pure list (bridge.core.local_list) row by row, and through the
authorizer with a real store (SQLite in a temporary directory): a random sequence of Full and
Differential updates against a plain dict model, with a restart (a new Store on the same file, the
list read back) at any step; a Full update that fails halfway, and a writer killed while it writes,
leave the old list or the new one, never a mix."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.clock import parse_iso
from bridge.core.authorization import IdTagInfo
from bridge.core.config_keys import IMPLEMENTED_FEATURES, Configuration
from bridge.core.local_list import Change, Limits, LocalList, Update, UpdateStatus
from bridge.runtime.authorizer import Authorizer
from bridge.store import FILENAME, Store
from tests.helpers.clock import ManualClock
from tests.helpers.parts import CP_ID, Link

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LIMITS = Limits(enabled=True, per_message=5, total=8)


def entry(tag: str, status: str | None = "Accepted") -> dict[str, Any]:
    return {"idTag": tag} if status is None else {"idTag": tag, "idTagInfo": {"status": status}}


def update(version: int, full: bool, *entries: dict[str, Any]) -> Update:
    return Update.from_wire(version, "Full" if full else "Differential", entries)


def applied(lst: LocalList, upd: Update, limits: Limits = LIMITS) -> UpdateStatus:
    planned = lst.plan(upd, limits)
    if isinstance(planned, Change):
        lst.apply(planned)
        return UpdateStatus.ACCEPTED
    return planned


# -- the pure list, row by row ------------------------------------------------------------------------
def test_full_replaces_and_an_empty_full_clears_with_version_0() -> None:
    lst = LocalList()
    assert lst.version == 0
    assert applied(lst, update(3, True, entry("A"), entry("B", "Blocked"))) is UpdateStatus.ACCEPTED
    assert (lst.version, len(lst)) == (3, 2)
    assert applied(lst, update(4, True, entry("C"))) is UpdateStatus.ACCEPTED
    assert lst.get("A") is None and lst.get("c") == IdTagInfo("Accepted") and lst.version == 4
    assert applied(lst, update(1, True)) is UpdateStatus.ACCEPTED  # TC_042_2: empty Full, version 1
    assert (lst.version, len(lst)) == (0, 0)


def test_differential_adds_updates_and_removes() -> None:
    lst = LocalList(2, [("A", IdTagInfo("Accepted")), ("B", IdTagInfo("Accepted"))])
    assert applied(lst, update(3, False, entry("a", "Blocked"), entry("B", None), entry("C"))) == "Accepted"
    assert sorted(tag for tag, _ in lst.entries()) == ["C", "a"]  # as last sent
    assert lst.get("A") == IdTagInfo("Blocked") and lst.version == 3
    assert applied(lst, update(4, False)) is UpdateStatus.ACCEPTED  # empty: no change, the version taken
    assert lst.version == 4 and len(lst) == 2
    assert applied(lst, update(5, False, entry("nobody", None))) is UpdateStatus.ACCEPTED  # not there


@pytest.mark.parametrize(
    ("upd", "limits", "expected"),
    [
        (update(9, True, entry("A")), Limits(False, 5, 8), UpdateStatus.NOT_SUPPORTED),
        (update(9, True, *(entry(f"T{n}") for n in range(6))), LIMITS, UpdateStatus.FAILED),  # > per message
        (update(9, False, entry("A"), entry("a", None)), LIMITS, UpdateStatus.FAILED),  # a tag twice
        (update(9, True, entry("A", None)), LIMITS, UpdateStatus.FAILED),  # Full without idTagInfo
        (update(-1, True, entry("A")), LIMITS, UpdateStatus.FAILED),
        (update(2, False, entry("Z")), LIMITS, UpdateStatus.VERSION_MISMATCH),  # = current
        (update(1, False, entry("Z")), LIMITS, UpdateStatus.VERSION_MISMATCH),  # < current
        (update(9, False, *(entry(f"N{n}") for n in range(3))), Limits(True, 5, 4), UpdateStatus.FAILED),
        (update(9, False, entry("N1"), entry("N2"), entry("A", None)), Limits(True, 5, 4), "Accepted"),
        (update(1, True, entry("N1")), LIMITS, UpdateStatus.ACCEPTED),  # Full: any version
    ],
)
def test_answers(upd: Update, limits: Limits, expected: str) -> None:
    lst = LocalList(2, [("A", IdTagInfo("Accepted")), ("B", IdTagInfo("Accepted"))])
    before = (lst.version, lst.entries())
    assert applied(lst, upd, limits) == expected
    if expected != "Accepted":
        assert (lst.version, lst.entries()) == before  # a refused update changes nothing


def test_a_request_the_schema_let_through_but_that_is_wrong_is_named() -> None:
    with pytest.raises(ValueError, match=r"localAuthorizationList\[1\].idTagInfo"):
        bad = {"idTag": "B", "idTagInfo": {"status": "Accepted", "expiryDate": "soon"}}
        Update.from_wire(1, "Full", [entry("A"), bad])
    with pytest.raises(ValueError, match="updateType"):
        Update.from_wire(1, "Partial", [])


# -- through the authorizer and a real store, with restarts -----------------------------------------
def configuration(enabled: bool = True, per_message: int = 5, total: int = 8) -> Configuration:
    return Configuration(
        features=IMPLEMENTED_FEATURES,
        fixed={
            "NumberOfConnectors": "1", "SupportedFeatureProfiles": "Core,LocalAuthListManagement",
            "ConnectorSwitch3to1PhaseSupported": "false", "SendLocalListMaxLength": str(per_message),
            "LocalAuthListMaxLength": str(total),
        },
        initial={"LocalAuthListEnabled": str(enabled).lower()},
    )  # fmt: skip


def authorizer(store: Store, cfg: Configuration) -> Authorizer:
    return Authorizer(CP_ID, cfg, ManualClock(), store, Link(online=True))  # type: ignore[arg-type]


class Model:
    """What the list should be, written plainly from §5.15 and §5.10 (a dict and an int)."""

    def __init__(self, per_message: int, total: int) -> None:
        self.entries: dict[
            str, tuple[str, str, datetime | None]
        ] = {}  # case-folded tag -> (tag, status, expiry)
        self.version = 0
        self.per_message, self.total = per_message, total

    def answered_version(self) -> int:
        return self.version if self.entries else 0

    def send(self, version: int, kind: str, sent: list[dict[str, Any]]) -> str:
        tags = [e["idTag"].lower() for e in sent]
        if len(sent) > self.per_message or len(set(tags)) < len(tags) or version < 0:
            return "Failed"
        if kind == "Full" and any("idTagInfo" not in e for e in sent):
            return "Failed"
        if kind == "Differential" and version <= self.answered_version():
            return "VersionMismatch"
        after = {} if kind == "Full" else dict(self.entries)
        for e in sent:
            if "idTagInfo" in e:
                info = e["idTagInfo"]
                expiry = info.get("expiryDate")
                after[e["idTag"].lower()] = (
                    e["idTag"],
                    info["status"],
                    parse_iso(expiry) if expiry else None,
                )
            else:
                after.pop(e["idTag"].lower(), None)
        if len(after) > self.total:
            return "Failed"
        self.entries, self.version = after, version
        return "Accepted"


def read_back(lst: LocalList) -> dict[str, tuple[str, str, datetime | None]]:
    return {tag.lower(): (tag, info.status, info.expiry) for tag, info in lst.entries()}


TAGS = st.sampled_from(["alpha", "ALPHA", "Beta", "gamma", "delta", "Eps", "zeta", "ETA", "theta", "iota"])
INFOS = st.one_of(
    st.none(),
    st.builds(
        lambda status, expiry: {"status": status, **({"expiryDate": expiry} if expiry else {})},
        st.sampled_from(["Accepted", "Blocked", "Expired", "Invalid", "ConcurrentTx"]),
        st.sampled_from([None, "2026-06-01T12:00:00Z", "2030-01-01T00:00:00.123Z"]),
    ),
)
ENTRIES = st.lists(st.builds(lambda tag, info: {"idTag": tag, **({"idTagInfo": info} if info else {})},
                             TAGS, INFOS), max_size=7)  # fmt: skip
STEPS = st.lists(
    st.tuples(st.sampled_from(["Full", "Differential"]), st.integers(-1, 12), ENTRIES, st.booleans()),
    min_size=1,
    max_size=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=STEPS)
def test_random_updates_agree_with_a_dict_and_survive_a_restart_at_any_step(
    steps: list[tuple[str, int, list[dict[str, Any]], bool]],
) -> None:
    async def scenario(state: Path) -> None:
        model = Model(per_message=5, total=8)
        cfg = configuration()
        store = Store.open(state)
        auth = authorizer(store, cfg)
        try:
            for kind, version, sent, restart in steps:
                answer = await auth.send_local_list(version, kind, sent)
                assert answer == model.send(version, kind, sent), (kind, version, sent)
                assert auth.local_list_version() == model.answered_version()
                assert read_back(auth.local_list) == model.entries
                if restart:  # a new store on the same file, the list read back as at a start
                    store.close()
                    store = Store.open(state)
                    auth = authorizer(store, cfg)
                    stored = (await store.run(store.stored_states, [CP_ID], 10))[CP_ID]
                    await auth.restore(stored.cache_entries, stored.local_list)
                    assert read_back(auth.local_list) == model.entries
                    assert auth.local_list_version() == model.answered_version()
        finally:
            store.close()

    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(scenario(Path(tmp) / "state"))


def full(n: int, prefix: str) -> list[dict[str, Any]]:
    return [entry(f"{prefix}{i:05d}") for i in range(n)]


async def test_a_full_update_that_fails_halfway_leaves_the_old_list(store: Store, state: Path) -> None:
    """The 600th row's insert fails (a trigger, as a full disk would): nothing of the new list stays,
    the answer is Failed, and the list in memory and on disk is the old one."""
    cfg = configuration(per_message=1000, total=10000)
    auth = authorizer(store, cfg)
    assert await auth.send_local_list(1, "Full", full(800, "OLD")) == "Accepted"
    db = sqlite3.connect(state / FILENAME)
    with db:
        db.execute("CREATE TRIGGER fail_600 BEFORE INSERT ON local_list WHEN NEW.id_tag = 'NEW00599'"
                   " BEGIN SELECT RAISE(ABORT, 'disk full'); END")  # fmt: skip
    db.close()
    assert await auth.send_local_list(2, "Full", full(800, "NEW")) == "Failed"
    assert auth.local_list_version() == 1 and auth.local_list.get("OLD00799") is not None
    stored = await store.run(store.local_list, CP_ID)
    assert stored is not None and stored[0] == 1
    assert sorted(row[0] for row in stored[1]) == [f"OLD{i:05d}" for i in range(800)]


async def read_list(state: Path) -> Any:
    reopened = Store.open(state)
    try:
        return await reopened.run(reopened.local_list, "CP-1")
    finally:
        reopened.close()


def test_a_writer_killed_in_the_middle_leaves_one_whole_list(state: Path) -> None:
    """A process writing Full lists of 5,000 entries in a loop (A at odd versions, B at even ones) is
    killed with SIGKILL at a random moment, as a power cut would stop it; the file, opened again, holds
    one whole list with its own version."""
    Store.open(state).close()
    script = textwrap.dedent(f"""
        import asyncio, sys
        from pathlib import Path
        from bridge.store import Store

        async def main() -> None:
            store = Store.open(Path({str(state)!r}))
            version = 1
            while True:
                p = "A" if version % 2 else "B"
                rows = [(f"{{p}}{{i:05d}}".casefold(), f"{{p}}{{i:05d}}", "Accepted", None, None)
                        for i in range(5000)]
                await store.run(store.save_local_list, "CP-1", version, True, rows, ())
                if version == 2:
                    print("writing", flush=True)
                version += 1

        asyncio.run(main())
    """)
    for delay in (0.05, 0.13, 0.31):
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, cwd=os.getcwd())
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == b"writing"
            time.sleep(delay)
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        stored = asyncio.run(read_list(state))
        assert stored is not None
        version, rows = stored
        prefix = "A" if version % 2 else "B"
        assert version >= 2 and sorted(r[0] for r in rows) == [f"{prefix}{i:05d}" for i in range(5000)]


async def test_the_group_of_a_listed_tag_comes_from_the_list_and_the_list_stays_out_of_the_cache(
    store: Store,
) -> None:
    auth = authorizer(store, configuration(per_message=10, total=10))
    listed = [
        {"idTag": "CARD-1", "idTagInfo": {"status": "Accepted", "parentIdTag": "FLEET"}},
        {"idTag": "CARD-2", "idTagInfo": {"status": "Blocked", "parentIdTag": "FLEET"}},
    ]
    assert await auth.send_local_list(1, "Full", listed) == "Accepted"
    auth.remember("card-1", {"status": "Accepted", "parentIdTag": "OTHER"})  # an answer for a listed tag
    now = datetime.now(UTC)
    assert auth.known_parent("card-1", now) == "FLEET"  # the list's group, not the answer's
    assert auth.known_parent("CARD-2", now) is None  # not valid: no group to stop by
    assert auth.cache.get("CARD-1") is None and len(auth.cache) == 0
