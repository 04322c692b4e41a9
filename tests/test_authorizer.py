"""The authorizer (bridge.runtime.authorizer): the cache and its persistence, the rules, Authorize.

Real: the authorizer, the store (SQLite in tmp_path, closed and opened again for a restart), the
configuration keys and the pure decision table (bridge.core.authorization, tested table by table in
test_authorization). Stand-in: the link (`Link` of tests/helpers/parts.py) keeps the Authorize the
authorizer submits; the test answers it, or fails it as the session would (CallTimeout,
NotConnected, a CALLERROR). The real link is exercised in test_authorize_answers and test_offline.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call, call_result

from bridge.clock import iso
from bridge.core.authorization import AuthCache
from bridge.core.config_keys import Configuration
from bridge.ocpp.errors import CallErrorReceived, CallTimeout, NotConnected
from bridge.runtime.authorizer import Authorizer
from bridge.store import Store
from tests.helpers.clock import ManualClock
from tests.helpers.parts import CP_ID, Link, Tasks, configuration, until

Conclusion = tuple[bool, str, str | None]


class Asked:
    """One authorizer with its link, and what it concluded, in order."""

    def __init__(self, store: Store, cfg: Configuration, clock: ManualClock, online: bool = True) -> None:
        self.link = Link(online=online)
        self.authorizer = Authorizer(CP_ID, cfg, clock, store, self.link)
        self.concluded: list[Conclusion] = []
        self.tasks = Tasks()

    def authorize(self, id_tag: str) -> None:
        def conclude(accepted: bool, how: str, parent: str | None) -> None:
            self.concluded.append((accepted, how, parent))

        self.authorizer.authorize(f"{CP_ID}/1", id_tag, conclude, self.tasks)

    def asked(self) -> list[str]:
        """The tags of the Authorize messages submitted (built as the session would send them)."""
        built = [item.build() for item in self.link.pending]
        return [payload.id_tag for payload in built if isinstance(payload, call.Authorize)]

    def answer(self, result: Any) -> None:
        future = self.link.pending.pop(0).future
        assert future is not None
        if isinstance(result, Exception):
            future.set_exception(result)
        else:
            future.set_result(result)


async def cache_on_disk(store: Store) -> list[tuple[str, str, str | None, str | None, str]]:
    return await store.run(store.cache_entries, CP_ID)


async def test_the_cache_survives_a_restart(store: Store, state: Path) -> None:
    clock = ManualClock()
    cfg = configuration(LocalAuthorizeOffline=True)
    expiry = iso(clock.now() + timedelta(days=1))
    first = Asked(store, cfg, clock)
    first.authorizer.remember("Tag-1", {"status": "Accepted", "parentIdTag": "GROUP", "expiryDate": expiry})
    first.authorizer.remember("TAG-2", {"status": "Blocked"})
    assert len(await cache_on_disk(store)) == 2
    store.close()

    again = Store.open(state)
    try:
        second = Asked(again, cfg, clock, online=False)
        await second.authorizer.restore()
        assert second.authorizer.known_parent("tag-1", clock.now()) == "GROUP"  # any case
        entry = second.authorizer.cache.get("TAG-1")
        assert entry is not None and entry.info.expiry is not None and iso(entry.info.expiry) == expiry
        second.authorize("tag-1")
        second.authorize("tag-2")
        assert second.concluded == [(True, "offline", "GROUP"), (False, "offline", None)]
        assert second.asked() == []
    finally:
        again.close()


async def test_an_expiry_date_is_honoured(store: Store) -> None:
    clock = ManualClock()
    cfg = configuration(LocalAuthorizeOffline=True, LocalPreAuthorize=True)
    asked = Asked(store, cfg, clock)
    expiry = iso(clock.now() + timedelta(hours=1))
    asked.authorizer.remember("TAG", {"status": "Accepted", "expiryDate": expiry, "parentIdTag": "G"})
    asked.authorize("TAG")  # online, LocalPreAuthorize and valid: no Authorize
    assert asked.concluded == [(True, "local rules", "G")] and asked.asked() == []
    clock.advance(3600)  # at the expiry date it is Expired
    assert asked.authorizer.known_parent("TAG", clock.now()) is None
    asked.authorize("TAG")
    assert asked.asked() == ["TAG"]  # asked again
    asked.link.drop()
    await until(lambda: len(asked.concluded) == 2, "the Authorize to fail")
    asked.authorize("TAG")  # offline: known and no longer valid is refused, whatever the other rules
    assert asked.concluded[1:] == [(False, "offline rules", None), (False, "offline", None)]
    await asked.tasks.close()


async def test_clear_cache_empties_memory_and_disk(store: Store, state: Path) -> None:
    clock = ManualClock()
    cfg = configuration(LocalAuthorizeOffline=True)
    asked = Asked(store, cfg, clock)
    for tag in ("A", "B", "C"):
        asked.authorizer.remember(tag, {"status": "Accepted"})
    await asked.authorizer.clear()
    # Said (the coroutine returned): gone from memory and already from the disk.
    assert len(asked.authorizer.cache) == 0
    assert await cache_on_disk(store) == []
    asked.link.online = False
    asked.authorize("A")
    assert asked.concluded == [(False, "offline", None)]  # no longer known


@pytest.mark.parametrize(
    ("cached", "local_authorize_offline", "allow_unknown", "accepted"),
    [
        ("Accepted", True, False, True),  # LocalAuthorizeOffline: a valid entry starts
        ("Accepted", False, False, False),  # ... but only with it
        ("Accepted", False, True, False),  # an unknown tag's rule does not apply to a known one
        ("Blocked", True, True, False),  # known and not valid: never offline
        ("Expired", True, True, False),
        (None, True, True, True),  # AllowOfflineTxForUnknownId
        (None, True, False, False),
    ],
)
async def test_the_offline_rules_are_applied_when_offline(
    store: Store, cached: str | None, local_authorize_offline: bool, allow_unknown: bool, accepted: bool
) -> None:
    clock = ManualClock()
    cfg = configuration(
        LocalAuthorizeOffline=local_authorize_offline, AllowOfflineTxForUnknownId=allow_unknown
    )
    asked = Asked(store, cfg, clock, online=False)
    if cached is not None:
        asked.authorizer.remember("TAG", {"status": cached})
    asked.authorize("TAG")
    assert asked.concluded == [(accepted, "offline", None)]
    assert asked.asked() == []  # offline: nothing is sent


async def test_online_the_central_system_is_asked_and_its_answer_remembered(store: Store) -> None:
    clock = ManualClock()
    asked = Asked(store, configuration(), clock)
    asked.authorize("TAG")
    assert asked.asked() == ["TAG"] and asked.concluded == []
    asked.answer(call_result.Authorize(id_tag_info={"status": "Accepted", "parentIdTag": "G"}))
    await until(lambda: bool(asked.concluded), "the conclusion")
    assert asked.concluded == [(True, "central system", "G")]
    assert asked.authorizer.known_parent("TAG", clock.now()) == "G"
    assert [(tag, status, parent) for tag, status, _, parent, _ in await cache_on_disk(store)] == [
        ("TAG", "Accepted", "G")
    ]
    await asked.tasks.close()


@pytest.mark.parametrize(
    ("failure", "accepted", "how"),
    [
        (CallTimeout("no answer"), True, "offline rules"),  # unreachable: AllowOfflineTxForUnknownId
        (NotConnected("dropped"), True, "offline rules"),
        (CallErrorReceived("Authorize", "InternalError", "boom", {}), False, "unusable answer"),
    ],
)
async def test_no_answer_is_decided_offline_and_an_unusable_one_refuses(
    store: Store, failure: Exception, accepted: bool, how: str
) -> None:
    clock = ManualClock()
    asked = Asked(store, configuration(AllowOfflineTxForUnknownId=True), clock)
    asked.authorize("TAG")
    asked.answer(failure)
    await until(lambda: bool(asked.concluded), "the conclusion")
    assert asked.concluded == [(accepted, how, None)]
    assert len(asked.authorizer.cache) == 0  # no answer, nothing learnt
    await asked.tasks.close()


async def test_remember_respects_AuthorizationCacheEnabled(store: Store) -> None:
    clock = ManualClock()
    cfg = configuration(AuthorizationCacheEnabled=False, LocalAuthorizeOffline=True)
    asked = Asked(store, cfg, clock)
    asked.authorizer.remember("TAG", {"status": "Accepted"})
    assert len(asked.authorizer.cache) == 0 and await cache_on_disk(store) == []
    asked.authorize("TAG")
    asked.answer(call_result.Authorize(id_tag_info={"status": "Accepted"}))
    await until(lambda: bool(asked.concluded), "the conclusion")
    assert len(asked.authorizer.cache) == 0 and await cache_on_disk(store) == []
    await asked.tasks.close()


async def test_a_disabled_cache_is_not_consulted(store: Store) -> None:
    clock = ManualClock()
    cfg = configuration(LocalAuthorizeOffline=True)
    asked = Asked(store, cfg, clock, online=False)
    asked.authorizer.remember("TAG", {"status": "Blocked"})
    assert cfg.change("AuthorizationCacheEnabled", "false").status == "Accepted"
    cfg.change("AllowOfflineTxForUnknownId", "true")
    asked.authorize("TAG")  # the Blocked entry is not looked at: an unknown tag, allowed offline
    assert asked.concluded == [(True, "offline", None)]


async def test_a_disabled_cache_gives_no_group(store: Store) -> None:
    clock = ManualClock()
    cfg = configuration()
    asked = Asked(store, cfg, clock)
    asked.authorizer.remember("OTHER", {"status": "Accepted", "parentIdTag": "G"})
    cfg.change("AuthorizationCacheEnabled", "false")
    assert asked.authorizer.known_parent("OTHER", clock.now()) is None


async def test_the_disk_follows_the_evictions_of_a_full_cache(store: Store) -> None:
    clock = ManualClock()
    asked = Asked(store, configuration(), clock)
    asked.authorizer.cache = AuthCache(capacity=2)
    asked.authorizer.remember("OLD", {"status": "Accepted"})
    clock.advance(1)
    asked.authorizer.remember("BLOCKED", {"status": "Blocked"})
    clock.advance(1)
    asked.authorizer.remember("NEW", {"status": "Accepted"})  # the not-valid entry goes first
    assert sorted(tag for tag, *_ in await cache_on_disk(store)) == ["NEW", "OLD"]
    clock.advance(1)
    asked.authorizer.remember("NEWER", {"status": "Accepted"})  # then the oldest
    assert sorted(tag for tag, *_ in await cache_on_disk(store)) == ["NEW", "NEWER"]
