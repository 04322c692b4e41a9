"""Who may charge: the local list, the authorization cache, the offline rules, and Authorize.

The decision table is pure (`bridge.core.authorization`); this shell keeps the local authorization
list (`bridge.core.local_list`: restored at start, changed only by SendLocalList, each accepted update
on disk before it is answered) and the cache (persisted: it survives a restart), reads the rules
from the configuration keys, and asks the central system when the table says ASK. A tag in the list
is decided by its list entry and never enters the cache (§3.5.2). An answer that is no answer (a
timeout, a lost link) leaves the tag to the offline rules; an answer that is unusable (a CALLERROR,
a schema-breaking payload) refuses it (docs/protocol.md, "Authorization and transactions").

LocalListConflict (§3.5.2): an answer of the central system (Authorize, StartTransaction or
StopTransaction idTagInfo) that contradicts a tag's entry in the list in use (one says valid, Accepted
or ConcurrentTx, the other not) is told once through `on_conflict`, which the status reporter sends
on connector 0. Once per tag, list version and answered status: the same answer again is not news.
The list itself is left as it is: only SendLocalList changes it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from ocpp.v16 import call

from bridge.clock import Clock, iso, parse_iso
from bridge.core import authorization, local_list
from bridge.core.config_keys import Configuration
from bridge.ocpp.errors import CallFailed, CallTimeout, NotConnected
from bridge.ocpp.session import Session
from bridge.runtime.effects import Spawn
from bridge.store import Store
from bridge.store.local_list import StoredList
from bridge.store.startup import CacheRow

log = logging.getLogger("bridge.chargepoint")

AUTH_CACHE_CAPACITY = 1000  # tags; beyond it not-valid entries go first, then the oldest

# What the list and an answer may say of a tag and both count as valid (the list's own rule, §3.5.2).
LISTED_VALID = frozenset({"Accepted", "ConcurrentTx"})

# (accepted, how it was decided, the tag's parentIdTag): what the connector is told.
Conclusion = Callable[[bool, str, str | None], None]


class Authorizer:
    def __init__(
        self, cp_id: str, configuration: Configuration, clock: Clock, store: Store, session: Session
    ) -> None:
        self._cp_id = cp_id
        self._configuration = configuration
        self._clock = clock
        self._store = store
        self._session = session
        self.cache = authorization.AuthCache(AUTH_CACHE_CAPACITY)
        self.local_list = local_list.LocalList()
        self._updating = asyncio.Lock()  # one SendLocalList from its plan to its apply
        # LocalListConflict: told with the StatusNotification's info (the status reporter sends it).
        self.on_conflict: Callable[[str], None] = lambda info: None
        self._conflicts_told: set[tuple[str, int, str]] = set()  # (tag, list version, answered status)

    async def restore(
        self, entries: list[CacheRow] | None = None, stored_list: StoredList | None = None
    ) -> None:
        """The cache and the local list as the last run left them (`entries`, `stored_list`: their
        rows, read already with the other parts'; when `entries` is None both are read now)."""
        if entries is None:
            entries = await self._store.run(self._store.cache_entries, self._cp_id)
            stored_list = await self._store.run(self._store.local_list, self._cp_id)
        if stored_list is not None:
            version, rows = stored_list
            self.local_list = local_list.LocalList(version, _list_entries(rows))
        for id_tag, status, expiry, parent, updated in entries:
            info = authorization.IdTagInfo.from_wire(
                {"status": status, "expiryDate": expiry, "parentIdTag": parent}
            )
            self.cache.put(id_tag, info, datetime.fromisoformat(updated.replace("Z", "+00:00")))

    def _rules(self) -> authorization.Rules:
        c = self._configuration
        return authorization.Rules(
            cache_enabled=c.get_bool("AuthorizationCacheEnabled"),
            local_pre_authorize=c.get_bool("LocalPreAuthorize"),
            local_authorize_offline=c.get_bool("LocalAuthorizeOffline"),
            allow_offline_unknown=c.get_bool("AllowOfflineTxForUnknownId"),
            list_enabled=c.get_bool("LocalAuthListEnabled"),
        )

    def _listed(self, id_tag: str) -> authorization.IdTagInfo | None:
        return self.local_list.get(id_tag) if len(self.local_list) else None

    def known_parent(self, id_tag: str, now: datetime) -> str | None:
        """The group of a tag known locally as valid (for stops by a tag of the same group, and a
        reservation's parentIdTag): its list entry first, else its cache entry. Nothing from a store
        that is disabled (LocalAuthListEnabled, AuthorizationCacheEnabled false: not consulted)."""
        _, entry, info = authorization.lookup(id_tag, self.cache, self._rules(), now, self._listed(id_tag))
        if entry is not authorization.Entry.VALID or info is None:
            return None
        return info.parent_id_tag

    # -- the local list (SendLocalList, GetLocalListVersion) -------------------------------
    def local_list_version(self) -> int:
        """GetLocalListVersion: 0 for an empty list (the profile is supported, so never -1)."""
        return self.local_list.version

    async def send_local_list(
        self, list_version: int, update_type: str, entries: Iterable[Mapping[str, Any]] | None
    ) -> str:
        """SendLocalList: the answer's status; an accepted update is on disk before it is answered.
        ValueError names what is wrong with a request the schema let through."""
        update = local_list.Update.from_wire(list_version, update_type, entries)
        c = self._configuration
        limits = local_list.Limits(
            enabled=c.get_bool("LocalAuthListEnabled"),
            per_message=c.get_int("SendLocalListMaxLength"),
            total=c.get_int("LocalAuthListMaxLength"),
        )
        async with self._updating:
            planned = self.local_list.plan(update, limits)
            if isinstance(planned, local_list.UpdateStatus):
                log.info("%s: SendLocalList %s version %d with %d entries: %s", self._cp_id, update_type,
                         list_version, len(update.entries), planned)  # fmt: skip
                return planned.value
            try:
                await self._store.run(
                    self._store.save_local_list, self._cp_id, planned.version, planned.full,
                    local_list.rows(planned), planned.removed,
                )  # fmt: skip
            except Exception as exc:  # the store refused the write: the list stays as it was
                log.error(
                    "%s: SendLocalList version %d could not be saved: %s", self._cp_id, list_version, exc
                )
                return local_list.UpdateStatus.FAILED.value
            self.local_list.apply(planned)
            self._conflicts_told.clear()  # a new list: its conflicts are news again
        log.info("%s: SendLocalList %s version %d with %d entries: Accepted (%d in the list, version %d)",
                 self._cp_id, update_type, list_version, len(update.entries), len(self.local_list),
                 self.local_list.version)  # fmt: skip
        return local_list.UpdateStatus.ACCEPTED.value

    def remember(self, id_tag: str, id_tag_info: dict[str, Any]) -> None:
        """The central system's latest word on a tag goes into the authorization cache, unless the
        tag is in the local list (§3.5.2: the list has priority and its tags never enter the cache;
        an answer that contradicts its entry is reported as a LocalListConflict)."""
        info = authorization.IdTagInfo.from_wire(id_tag_info)
        now = self._clock.now()
        listed = self.local_list.get(id_tag)
        if listed is not None:
            self._conflict(id_tag, listed, info, now)
            return
        if not self._configuration.get_bool("AuthorizationCacheEnabled"):
            return
        evicted = self.cache.put(id_tag, info, now)
        expiry = iso(info.expiry) if info.expiry else None
        self._store.submit(
            self._store.cache_put, self._cp_id, id_tag, info.status, expiry, info.parent_id_tag, iso(now),
            evicted,
        )  # fmt: skip

    def _conflict(
        self, id_tag: str, listed: authorization.IdTagInfo, answer: authorization.IdTagInfo, now: datetime
    ) -> None:
        """Tell a contradiction between the list in use and the central system's answer, once."""
        if not self._configuration.get_bool("LocalAuthListEnabled"):
            return  # a list not in use contradicts nothing
        in_list, answered = listed.effective_status(now), answer.effective_status(now)
        if (in_list in LISTED_VALID) == (answered in LISTED_VALID):
            return
        told = (id_tag.casefold(), self.local_list.version, answered)
        if told in self._conflicts_told:
            return
        self._conflicts_told.add(told)
        log.warning("%s: the central system answered %s for idTag %s, which local list version %d has as "
                    "%s: LocalListConflict (the list stays as it is)", self._cp_id, answered, id_tag,
                    self.local_list.version, in_list)  # fmt: skip
        self.on_conflict(f"idTag {id_tag}: list {in_list}")  # at most 6 + 20 + 7 + 12 characters

    async def clear(self) -> None:
        """ClearCache: gone from memory, and from the disk before it is said."""
        self.cache.clear()
        await self._store.run(self._store.cache_clear, self._cp_id)
        log.info("%s: authorization cache cleared", self._cp_id)

    def authorize(self, name: str, id_tag: str, conclude: Conclusion, spawn: Spawn) -> None:
        """Decide locally where the rules allow it, else ask the central system (Authorize); `conclude`
        is called once, now or when the answer is in. `name` ("CP-1/1") is for the log."""
        now = self._clock.now()
        listed = self._listed(id_tag)
        rules = self._rules()
        decision = authorization.decide(id_tag, self._session.online, self.cache, rules, now, listed)
        if decision is not authorization.Decision.ASK:
            how = "local rules" if self._session.online else "offline"
            if rules.list_enabled and listed is not None:
                how = "local list" if self._session.online else "offline, local list"
            conclude(decision is authorization.Decision.START, how, self.known_parent(id_tag, now))
            return
        future = self._session.submit(
            lambda: call.Authorize(id_tag=id_tag), drop_when_offline=True, want_result=True
        )
        assert future is not None

        async def outcome() -> None:
            try:
                answer = await future
            except (CallTimeout, NotConnected) as exc:
                # The central system cannot be reached: decided as offline (cache,
                # AllowOfflineTxForUnknownId), as §3.5 and §4.1 have it for an unreachable one.
                log.warning("%s: Authorize %s got no answer (%s)", name, id_tag, exc)
                offline = authorization.decide(
                    id_tag, False, self.cache, self._rules(), self._clock.now(), self._listed(id_tag)
                )
                conclude(
                    offline is authorization.Decision.START,
                    "offline rules",
                    self.known_parent(id_tag, self._clock.now()),
                )
                return
            except CallFailed as exc:
                # A CALLERROR or an answer that breaks the schema: the central system was reached
                # and did not accept the tag. The offline rules must not let it charge.
                log.warning("%s: Authorize %s got an unusable answer, so the tag is refused: %s",
                            name, id_tag, exc)  # fmt: skip
                conclude(False, "unusable answer", None)
                return
            self.remember(id_tag, answer.id_tag_info)
            info = authorization.IdTagInfo.from_wire(answer.id_tag_info)
            conclude(info.status == "Accepted", "central system", info.parent_id_tag)

        spawn(outcome(), f"{name}: Authorize outcome")


def _list_entries(rows: list[tuple[str, str, str | None, str | None]]) -> Iterable[local_list.Entry]:
    """The stored rows as list entries (10,000 in a few ms: one parse per expiry that is set)."""
    info = authorization.IdTagInfo
    for id_tag, status, expiry, parent in rows:
        yield id_tag, info(status, parse_iso(expiry) if expiry else None, parent)
