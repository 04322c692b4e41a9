"""The authorization cache, the local list in the decision, and the local decision rules (pure), table by
table; every combination of list entry, cache entry, link and the three keys against a plain reading."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from bridge.core.authorization import (
    TABLE,
    AuthCache,
    Decision,
    Entry,
    Found,
    IdTagInfo,
    Rules,
    decide,
    lookup,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ACCEPTED = IdTagInfo("Accepted")


def rules(**kw: bool) -> Rules:
    base = {"cache_enabled": True, "local_pre_authorize": False, "local_authorize_offline": True,
            "allow_offline_unknown": False}  # fmt: skip
    return Rules(**{**base, **kw})


def test_entries_expire_at_their_expiry_date() -> None:
    info = IdTagInfo("Accepted", expiry=T0 + timedelta(hours=1))
    assert info.valid(T0) and info.effective_status(T0) == "Accepted"
    assert (
        not info.valid(T0 + timedelta(hours=1))
        and info.effective_status(T0 + timedelta(hours=2)) == "Expired"
    )


def test_wire_form_is_read_with_either_key_style() -> None:
    snake = IdTagInfo.from_wire(
        {"status": "Blocked", "expiry_date": "2026-01-01T01:00:00Z", "parent_id_tag": "P"}
    )
    camel = IdTagInfo.from_wire(
        {"status": "Blocked", "expiryDate": "2026-01-01T01:00:00Z", "parentIdTag": "P"}
    )
    assert snake == camel == IdTagInfo("Blocked", T0 + timedelta(hours=1), "P")


def test_tags_are_case_insensitive_and_updates_replace() -> None:
    cache = AuthCache()
    cache.put("Tag-A", ACCEPTED, T0)
    cache.put("TAG-a", IdTagInfo("Blocked"), T0)
    assert len(cache) == 1
    entry = cache.get("tag-a")
    assert entry is not None and entry.info.status == "Blocked"


def test_a_full_cache_evicts_not_valid_entries_first_then_the_oldest() -> None:
    cache = AuthCache(capacity=3)
    cache.put("OLD", ACCEPTED, T0)
    cache.put("BLOCKED", IdTagInfo("Blocked"), T0 + timedelta(minutes=5))
    cache.put("NEW", ACCEPTED, T0 + timedelta(minutes=10))
    assert cache.put("ONE-MORE", ACCEPTED, T0 + timedelta(minutes=20)) == ["BLOCKED"]
    assert cache.put("AND-ANOTHER", ACCEPTED, T0 + timedelta(minutes=30)) == ["OLD"]
    expired = AuthCache(capacity=2)
    expired.put("STALE", IdTagInfo("Accepted", expiry=T0), T0 - timedelta(days=1))
    expired.put("FRESH", ACCEPTED, T0 - timedelta(days=2))
    assert expired.put("X", ACCEPTED, T0) == ["STALE"]  # expired counts as not valid


@pytest.mark.parametrize(
    ("online", "entry", "kw", "expected"),
    [
        (True, None, {}, Decision.ASK),
        (True, ACCEPTED, {}, Decision.ASK),  # cached, but LocalPreAuthorize is off
        (True, ACCEPTED, {"local_pre_authorize": True}, Decision.START),
        (True, IdTagInfo("Blocked"), {"local_pre_authorize": True}, Decision.ASK),  # re-authorized online
        (False, ACCEPTED, {}, Decision.START),  # LocalAuthorizeOffline
        (False, ACCEPTED, {"local_authorize_offline": False}, Decision.REFUSE),
        (False, IdTagInfo("Blocked"), {"allow_offline_unknown": True}, Decision.REFUSE),  # known, not valid
        (False, IdTagInfo("Accepted", expiry=T0), {"allow_offline_unknown": True}, Decision.REFUSE),
        (False, IdTagInfo("ConcurrentTx"), {}, Decision.REFUSE),
        (False, None, {"allow_offline_unknown": True}, Decision.START),
        (False, None, {}, Decision.REFUSE),
        (False, ACCEPTED, {"cache_enabled": False}, Decision.REFUSE),  # the cache is not used
        (False, ACCEPTED, {"cache_enabled": False, "allow_offline_unknown": True}, Decision.START),
    ],
)
def test_decisions(online: bool, entry: IdTagInfo | None, kw: dict[str, bool], expected: Decision) -> None:
    cache = AuthCache()
    if entry is not None:
        cache.put("TAG", entry, T0 - timedelta(days=1))
    assert decide("tag", online, cache, rules(**kw), T0) is expected


def test_an_expiry_date_without_an_offset_is_read_as_utc() -> None:
    """Regression: a central system that leaves out the Z gave a naive date, and every later decision
    on that tag raised TypeError (naive against aware)."""
    info = IdTagInfo.from_wire({"status": "Accepted", "expiryDate": "2026-01-01T12:00:00"})
    assert info.valid(T0 + timedelta(hours=11, minutes=59))
    assert not info.valid(T0 + timedelta(hours=12))


# -- the local list in the decision: every combination -------------------------------------------------
# A list entry or a cache entry as it reads at T0 (EXPIRED: Accepted, but past its expiryDate).
EXPIRED = IdTagInfo("Accepted", expiry=T0 - timedelta(seconds=1))
LIST_ENTRIES: dict[str, IdTagInfo | None] = {
    "none": None, "Accepted": ACCEPTED, "ConcurrentTx": IdTagInfo("ConcurrentTx"),
    "Blocked": IdTagInfo("Blocked"), "Expired": IdTagInfo("Expired"), "Invalid": IdTagInfo("Invalid"),
    "past expiryDate": EXPIRED,
}  # fmt: skip
CACHE_ENTRIES: dict[str, IdTagInfo | None] = {
    "none": None,
    "Accepted": ACCEPTED,
    "Blocked": IdTagInfo("Blocked"),
}


def oracle(
    listed: IdTagInfo | None,
    cached: IdTagInfo | None,
    online: bool,
    pre: bool,
    offline_ok: bool,
    unknown: bool,
) -> Decision:
    """OCPP 1.6 §3.5 and §4.1 read plainly, apart from the table in the code: the list before the
    cache; a list entry Blocked, Expired, Invalid or past its date is refused locally; only Accepted
    starts locally (LocalPreAuthorize online, LocalAuthorizeOffline offline); online, anything else is
    asked; offline, a known tag not valid is refused and an unknown one starts only with
    AllowOfflineTxForUnknownId."""
    known = listed if listed is not None else cached
    accepted = (
        known is not None and known.status == "Accepted" and (known.expiry is None or known.expiry > T0)
    )
    if listed is not None and not accepted and listed.status != "ConcurrentTx":
        return Decision.REFUSE
    if online:
        return Decision.START if pre and accepted else Decision.ASK
    if known is None:
        return Decision.START if unknown else Decision.REFUSE
    return Decision.START if offline_ok and accepted else Decision.REFUSE


COMBINATIONS = list(
    itertools.product(LIST_ENTRIES, CACHE_ENTRIES, (True, False), (True, False), (True, False), (True, False))
)


@pytest.mark.parametrize(("listed", "cached", "online", "pre", "offline_ok", "unknown"), COMBINATIONS)
def test_every_combination_of_list_cache_link_and_the_three_keys(
    listed: str, cached: str, online: bool, pre: bool, offline_ok: bool, unknown: bool
) -> None:
    cache = AuthCache()
    if CACHE_ENTRIES[cached] is not None:
        cache.put("TAG", CACHE_ENTRIES[cached], T0 - timedelta(days=1))  # type: ignore[arg-type]
    keys = rules(local_pre_authorize=pre, local_authorize_offline=offline_ok, allow_offline_unknown=unknown,
                 list_enabled=True)  # fmt: skip
    got = decide("tag", online, cache, keys, T0, LIST_ENTRIES[listed])
    assert got is oracle(LIST_ENTRIES[listed], CACHE_ENTRIES[cached], online, pre, offline_ok, unknown)


def test_the_combinations_cover_every_row_of_the_table() -> None:
    """The table in the code has no row the combinations above never reach."""
    reached = set()
    for listed, cached, online, *_ in COMBINATIONS:
        cache = AuthCache()
        if CACHE_ENTRIES[cached] is not None:
            cache.put("TAG", CACHE_ENTRIES[cached], T0)  # type: ignore[arg-type]
        found, entry, _ = lookup("TAG", cache, rules(list_enabled=True), T0, LIST_ENTRIES[listed])
        reached.add((online, found, entry))
    assert reached == set(TABLE) - {(o, Found.CACHE, Entry.CONCURRENT) for o in (True, False)}


@pytest.mark.parametrize(
    ("online", "listed", "cached", "kw", "expected"),
    [
        # The list comes first: its Accepted beats a Blocked cache entry, and its Blocked an Accepted one.
        (False, ACCEPTED, IdTagInfo("Blocked"), {}, Decision.START),
        (False, IdTagInfo("Blocked"), ACCEPTED, {}, Decision.REFUSE),
        # Refused locally online too, without an Authorize (LocalPreAuthorize or not).
        (True, IdTagInfo("Blocked"), None, {}, Decision.REFUSE),
        (True, EXPIRED, ACCEPTED, {"local_pre_authorize": True}, Decision.REFUSE),
        # AllowOfflineTxForUnknownId never lets a listed tag that is not valid through.
        (False, IdTagInfo("Invalid"), None, {"allow_offline_unknown": True}, Decision.REFUSE),
        # A tag in the list is not unknown: without LocalAuthorizeOffline it does not start offline.
        (
            False,
            ACCEPTED,
            None,
            {"local_authorize_offline": False, "allow_offline_unknown": True},
            Decision.REFUSE,
        ),
        # LocalAuthListEnabled false: the list is not consulted, the cache decides.
        (False, IdTagInfo("Blocked"), ACCEPTED, {"list_enabled": False}, Decision.START),
        (True, ACCEPTED, None, {"list_enabled": False, "local_pre_authorize": True}, Decision.ASK),
        # The list is used with the cache disabled.
        (False, ACCEPTED, None, {"cache_enabled": False}, Decision.START),
        (True, ACCEPTED, None, {"cache_enabled": False, "local_pre_authorize": True}, Decision.START),
    ],
)
def test_the_list_before_the_cache(
    online: bool, listed: IdTagInfo, cached: IdTagInfo | None, kw: dict[str, bool], expected: Decision
) -> None:
    cache = AuthCache()
    if cached is not None:
        cache.put("TAG", cached, T0)
    assert decide("tag", online, cache, rules(**{"list_enabled": True, **kw}), T0, listed) is expected
