"""Authorization decisions without the central system (pure): the cache and the offline rules.

The cache (OCPP 1.6 §3.5.3, `AuthorizationCacheEnabled`) keeps the latest
IdTagInfo the central system gave for a tag, from Authorize.conf,
StartTransaction.conf and StopTransaction.conf, valid or not. An entry past
its expiryDate counts as Expired. When the cache is full, not-valid entries
go first, then the oldest valid ones. Tags are compared case-insensitively.

What a presented tag leads to (`decide`):

| link    | rule                                   | cache entry          | decision |
|---------|----------------------------------------|----------------------|----------|
| online  | LocalPreAuthorize                      | Accepted, not expired| start now, no Authorize |
| online  | otherwise                              |                      | ask (Authorize) |
| offline | LocalAuthorizeOffline                  | Accepted, not expired| start |
| offline | any                                    | known, not valid     | refuse |
| offline | AllowOfflineTxForUnknownId             | none                 | start |
| offline | otherwise                              |                      | refuse |

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


@dataclass(frozen=True)
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


def decide(id_tag: str, online: bool, cache: AuthCache, rules: Rules, now: datetime) -> Decision:
    entry = cache.get(id_tag) if rules.cache_enabled else None
    if online:
        if rules.local_pre_authorize and entry is not None and entry.info.valid(now):
            return Decision.START
        return Decision.ASK
    if entry is not None:
        if not entry.info.valid(now):
            return Decision.REFUSE  # known and not valid: never started offline
        if rules.local_authorize_offline:
            return Decision.START
    elif rules.allow_offline_unknown:
        return Decision.START
    return Decision.REFUSE
