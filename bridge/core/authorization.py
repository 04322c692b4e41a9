"""Authorization decisions without the central system (pure): the local list, the cache, the offline rules.

The local authorization list (OCPP 1.6 §3.5.2, `bridge.core.local_list`) is what the central system
sent with SendLocalList; it is used while LocalAuthListEnabled is true, and it comes before the
cache: a tag in the list is decided by its list entry alone, and never enters the cache.

The cache (OCPP 1.6 §3.5.3, `AuthorizationCacheEnabled`) keeps the latest
IdTagInfo the central system gave for a tag, from Authorize.conf,
StartTransaction.conf and StopTransaction.conf, valid or not. An entry past
its expiryDate counts as Expired. When the cache is full, not-valid entries
go first, then the oldest valid ones. Tags are compared case-insensitively.

What a presented tag leads to (`decide`, the table `TABLE`): where the tag is found first (the list,
else the cache, else nowhere), what its entry says there (valid: Accepted and not expired;
concurrent: ConcurrentTx; refused: Blocked, Expired, Invalid or past its expiryDate), and whether the
central system can be reached. The rule named in the row lets it start; without it the last column
holds.

| link    | found in | entry      | starts with rule       | else    |
|---------|----------|------------|------------------------|---------|
| online  | list     | valid      | LocalPreAuthorize      | ask (Authorize) |
| online  | list     | concurrent | -                      | ask     |
| online  | list     | refused    | -                      | refuse (locally, no Authorize) |
| offline | list     | valid      | LocalAuthorizeOffline  | refuse  |
| offline | list     | concurrent | -                      | refuse  |
| offline | list     | refused    | -                      | refuse (even with AllowOfflineTxForUnknownId) |
| online  | cache    | valid      | LocalPreAuthorize      | ask     |
| online  | cache    | not valid  | -                      | ask (re-authorized online) |
| offline | cache    | valid      | LocalAuthorizeOffline  | refuse  |
| offline | cache    | not valid  | -                      | refuse  |
| online  | nowhere  |            | -                      | ask     |
| offline | nowhere  |            | AllowOfflineTxForUnknownId | refuse |

An Authorize that gets no answer (timeout, dropped link) is decided by the
offline rules: the central system cannot be reached. One answered with a
CALLERROR or an invalid payload is a refusal, never an offline case (the shell
tells the two apart).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from bridge.clock import parse_iso

# Only Accepted starts a transaction: ConcurrentTx says the tag is charging elsewhere already.
VALID_STATUSES = frozenset({"Accepted"})


class Decision(StrEnum):
    START = "start"  # authorized locally
    ASK = "ask"  # send Authorize and wait
    REFUSE = "refuse"


@dataclass(frozen=True, slots=True)  # slots: 10,000 of them in a local list
class IdTagInfo:
    status: str
    expiry: datetime | None = None
    parent_id_tag: str | None = None

    @classmethod
    def from_wire(cls, info: dict[str, Any]) -> IdTagInfo:
        expiry = info.get("expiry_date") or info.get("expiryDate")
        parsed = parse_iso(expiry) if isinstance(expiry, str) else None
        parent = info.get("parent_id_tag") or info.get("parentIdTag")
        return cls(str(info.get("status")), parsed, parent)

    def effective_status(self, now: datetime) -> str:
        if self.expiry is not None and now >= self.expiry:
            return "Expired"
        return self.status

    def valid(self, now: datetime) -> bool:
        return self.effective_status(now) in VALID_STATUSES


@dataclass(frozen=True)
class CacheEntry:
    id_tag: str
    info: IdTagInfo
    updated_at: datetime


class AuthCache:
    def __init__(self, capacity: int = 1000) -> None:
        self.capacity = capacity
        self._entries: dict[str, CacheEntry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, id_tag: str) -> CacheEntry | None:
        return self._entries.get(id_tag.casefold())

    def put(self, id_tag: str, info: IdTagInfo, now: datetime) -> list[str]:
        """Store the latest answer for `id_tag`; returns the tags evicted to make room."""
        key = id_tag.casefold()
        evicted: list[str] = []
        if key not in self._entries:
            while len(self._entries) >= self.capacity:
                victim = self._victim(now)
                evicted.append(self._entries.pop(victim).id_tag)
        self._entries[key] = CacheEntry(id_tag, info, now)
        return evicted

    def _victim(self, now: datetime) -> str:
        """Not-valid entries first, then the oldest valid one."""
        ranked = sorted(self._entries.items(), key=lambda kv: (kv[1].info.valid(now), kv[1].updated_at))
        return ranked[0][0]

    def clear(self) -> None:
        self._entries.clear()


@dataclass(frozen=True)
class Rules:
    """The configuration keys that steer local authorization."""

    cache_enabled: bool
    local_pre_authorize: bool
    local_authorize_offline: bool
    allow_offline_unknown: bool
    list_enabled: bool = False  # LocalAuthListEnabled


class Found(StrEnum):
    LIST = "list"
    CACHE = "cache"
    NOWHERE = "nowhere"


class Entry(StrEnum):
    VALID = "valid"
    CONCURRENT = "concurrent"  # ConcurrentTx: known, but not started locally
    REFUSED = "refused"
    NONE = "none"


# (online, found in, entry) -> (the Rules field that lets the tag start, or None; the decision else).
# The module docstring shows the same table.
TABLE: dict[tuple[bool, Found, Entry], tuple[str | None, Decision]] = {
    (True, Found.LIST, Entry.VALID): ("local_pre_authorize", Decision.ASK),
    (True, Found.LIST, Entry.CONCURRENT): (None, Decision.ASK),
    (True, Found.LIST, Entry.REFUSED): (None, Decision.REFUSE),
    (False, Found.LIST, Entry.VALID): ("local_authorize_offline", Decision.REFUSE),
    (False, Found.LIST, Entry.CONCURRENT): (None, Decision.REFUSE),
    (False, Found.LIST, Entry.REFUSED): (None, Decision.REFUSE),
    (True, Found.CACHE, Entry.VALID): ("local_pre_authorize", Decision.ASK),
    (True, Found.CACHE, Entry.CONCURRENT): (None, Decision.ASK),
    (True, Found.CACHE, Entry.REFUSED): (None, Decision.ASK),
    (False, Found.CACHE, Entry.VALID): ("local_authorize_offline", Decision.REFUSE),
    (False, Found.CACHE, Entry.CONCURRENT): (None, Decision.REFUSE),
    (False, Found.CACHE, Entry.REFUSED): (None, Decision.REFUSE),
    (True, Found.NOWHERE, Entry.NONE): (None, Decision.ASK),
    (False, Found.NOWHERE, Entry.NONE): ("allow_offline_unknown", Decision.REFUSE),
}


def classify(info: IdTagInfo, now: datetime) -> Entry:
    status = info.effective_status(now)
    if status in VALID_STATUSES:
        return Entry.VALID
    return Entry.CONCURRENT if status == "ConcurrentTx" else Entry.REFUSED


def lookup(
    id_tag: str, cache: AuthCache, rules: Rules, now: datetime, listed: IdTagInfo | None = None
) -> tuple[Found, Entry, IdTagInfo | None]:
    """Where the tag is known (the list before the cache), what its entry says, and the entry.
    `listed`: the tag's local list entry, looked up by the caller (None: not in the list)."""
    if rules.list_enabled and listed is not None:
        return Found.LIST, classify(listed, now), listed
    cached = cache.get(id_tag) if rules.cache_enabled else None
    if cached is not None:
        return Found.CACHE, classify(cached.info, now), cached.info
    return Found.NOWHERE, Entry.NONE, None


def decide(
    id_tag: str, online: bool, cache: AuthCache, rules: Rules, now: datetime, listed: IdTagInfo | None = None
) -> Decision:
    found, entry, _ = lookup(id_tag, cache, rules, now, listed)
    rule, otherwise = TABLE[(online, found, entry)]
    return Decision.START if rule is not None and getattr(rules, rule) else otherwise
