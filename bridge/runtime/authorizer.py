"""Who may charge: the authorization cache, the offline rules, and the central system's Authorize.

The decision table is pure (`bridge.core.authorization`); this shell keeps the cache (persisted: it
survives a restart), reads the rules from the configuration keys, and asks the central system when
the table says ASK. An answer that is no answer (a timeout, a lost link) leaves the tag to the
offline rules; an answer that is unusable (a CALLERROR, a schema-breaking payload) refuses it
(docs/protocol.md, "Authorization and transactions"). The local list joins here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

from ocpp.v16 import call

from bridge.clock import Clock, iso
from bridge.core import authorization
from bridge.core.config_keys import Configuration
from bridge.ocpp.errors import CallFailed, CallTimeout, NotConnected
from bridge.ocpp.session import Session
from bridge.store import Store
from bridge.store.startup import CacheRow

log = logging.getLogger("bridge.chargepoint")

AUTH_CACHE_CAPACITY = 1000  # tags; beyond it not-valid entries go first, then the oldest

# (accepted, how it was decided, the tag's parentIdTag): what the connector is told.
Conclusion = Callable[[bool, str, str | None], None]
Spawn = Callable[[Coroutine[Any, Any, None], str], object]


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

    async def restore(self, entries: list[CacheRow] | None = None) -> None:
        """The cache as the last run left it (`entries`: its rows, read already; else read now)."""
        if entries is None:
            entries = await self._store.run(self._store.cache_entries, self._cp_id)
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
        )

    def known_parent(self, id_tag: str, now: datetime) -> str | None:
        """The group of a tag known locally as valid (for stops by a tag of the same group); nothing
        while the cache is disabled (AuthorizationCacheEnabled false: it must not be consulted)."""
        if not self._configuration.get_bool("AuthorizationCacheEnabled"):
            return None
        entry = self.cache.get(id_tag)
        if entry is None or not entry.info.valid(now):
            return None
        return entry.info.parent_id_tag

    def remember(self, id_tag: str, id_tag_info: dict[str, Any]) -> None:
        """The central system's latest word on a tag goes into the authorization cache."""
        if not self._configuration.get_bool("AuthorizationCacheEnabled"):
            return
        info = authorization.IdTagInfo.from_wire(id_tag_info)
        now = self._clock.now()
        evicted = self.cache.put(id_tag, info, now)
        expiry = iso(info.expiry) if info.expiry else None
        self._store.submit(
            self._store.cache_put, self._cp_id, id_tag, info.status, expiry, info.parent_id_tag, iso(now),
            evicted,
        )  # fmt: skip

    async def clear(self) -> None:
        """ClearCache: gone from memory, and from the disk before it is said."""
        self.cache.clear()
        await self._store.run(self._store.cache_clear, self._cp_id)
        log.info("%s: authorization cache cleared", self._cp_id)

    def authorize(self, name: str, id_tag: str, conclude: Conclusion, spawn: Spawn) -> None:
        """Decide locally where the rules allow it, else ask the central system (Authorize); `conclude`
        is called once, now or when the answer is in. `name` ("CP-1/1") is for the log."""
        now = self._clock.now()
        decision = authorization.decide(id_tag, self._session.online, self.cache, self._rules(), now)
        if decision is not authorization.Decision.ASK:
            how = "local rules" if self._session.online else "offline"
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
                offline = authorization.decide(id_tag, False, self.cache, self._rules(), self._clock.now())
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
