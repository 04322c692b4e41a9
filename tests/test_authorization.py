"""The authorization cache and the local decision rules (pure), table by table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bridge.core.authorization import AuthCache, Decision, IdTagInfo, Rules, decide

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
