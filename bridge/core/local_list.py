"""The local authorization list (OCPP 1.6 §3.5.2, §5.10, §5.15): pure, no I/O.

The central system manages the list with SendLocalList and reads its version with
GetLocalListVersion. It is changed by nothing else (Authorize answers go to the cache, never here).

An update is checked whole before anything changes (`plan`), persisted by the shell, and only then
applied (`LocalList.apply`): a refused update leaves the list as it was, and an Accepted one is on
disk before it is said.

What an update is answered (the checks in this order):

| condition                                                       | answer          |
|-----------------------------------------------------------------|-----------------|
| LocalAuthListEnabled is false                                   | NotSupported    |
| more entries than SendLocalListMaxLength                        | Failed          |
| an idTag twice in the message (compared case-insensitively)     | Failed          |
| a Full entry without idTagInfo                                  | Failed          |
| listVersion below 0 (-1 means "no list support")                | Failed          |
| Differential with listVersion <= the current version            | VersionMismatch |
| the list afterwards longer than LocalAuthListMaxLength          | Failed          |
| otherwise (see `LocalList.apply`)                               | Accepted        |

Accepted: Full replaces the list (an empty one clears it); Differential adds or updates an entry
with idTagInfo and removes one without; the list takes listVersion.

The version. GetLocalListVersion answers 0 while the list holds no entry (§5.10: 0 is the empty
list; TC_042_2 clears it with a Full of listVersion 1 and expects 0), else the listVersion of the
last accepted update. A Differential is compared with that answered version, so a central system
that reads 0 may always send 1.

Lookups are by the case-folded idTag (idTags compare case-insensitively): one dict, O(1). An entry
is an `IdTagInfo` (status, expiry, parentIdTag); 10,000 entries take a few MiB.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bridge.core.authorization import IdTagInfo


class UpdateStatus(StrEnum):
    ACCEPTED = "Accepted"
    FAILED = "Failed"
    NOT_SUPPORTED = "NotSupported"
    VERSION_MISMATCH = "VersionMismatch"


@dataclass(frozen=True)
class Limits:
    """The keys that bound an update (LocalAuthListEnabled, SendLocalListMaxLength,
    LocalAuthListMaxLength)."""

    enabled: bool
    per_message: int
    total: int


@dataclass(frozen=True)
class Update:
    """One SendLocalList: `entries` as (idTag, its info or None: remove it) in the message's order."""

    version: int
    full: bool
    entries: tuple[tuple[str, IdTagInfo | None], ...]

    @classmethod
    def from_wire(
        cls, list_version: int, update_type: str, entries: Iterable[Mapping[str, Any]] | None
    ) -> Update:
        """From the request's fields (snake_case or camelCase keys); ValueError names what is wrong."""
        if update_type not in ("Full", "Differential"):
            raise ValueError(f"updateType must be Full or Differential, not {update_type!r}")
        parsed: list[tuple[str, IdTagInfo | None]] = []
        for n, entry in enumerate(entries or ()):
            id_tag = entry.get("id_tag", entry.get("idTag"))
            if not isinstance(id_tag, str):
                raise ValueError(f"localAuthorizationList[{n}] has no idTag")
            info = entry.get("id_tag_info", entry.get("idTagInfo"))
            parsed.append((id_tag, None if info is None else _info(info, n)))
        return cls(list_version, update_type == "Full", tuple(parsed))


def _info(info: Mapping[str, Any], n: int) -> IdTagInfo:
    try:
        return IdTagInfo.from_wire(dict(info))
    except ValueError as exc:
        raise ValueError(f"localAuthorizationList[{n}].idTagInfo: {exc}") from None


@dataclass(frozen=True)
class Change:
    """What an accepted update does: the entries to put (key -> (idTag, info)), the keys to remove,
    the version to take, and whether the list is replaced as a whole."""

    version: int
    full: bool
    put: dict[str, tuple[str, IdTagInfo]]
    removed: tuple[str, ...]


Entry = tuple[str, IdTagInfo]  # the idTag as the central system sent it, and its info


class LocalList:
    def __init__(self, version: int = 0, entries: Iterable[Entry] = ()) -> None:
        self._version = version
        self._entries: dict[str, Entry] = {tag.casefold(): (tag, info) for tag, info in entries}

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def version(self) -> int:
        """What GetLocalListVersion answers: 0 for an empty list."""
        return self._version if self._entries else 0

    def get(self, id_tag: str) -> IdTagInfo | None:
        entry = self._entries.get(id_tag.casefold())
        return None if entry is None else entry[1]

    def entries(self) -> list[Entry]:
        return list(self._entries.values())

    def plan(self, update: Update, limits: Limits) -> UpdateStatus | Change:
        """The answer to `update` when it is refused, else the change to persist and then apply."""
        if not limits.enabled:
            return UpdateStatus.NOT_SUPPORTED
        if len(update.entries) > limits.per_message:
            return UpdateStatus.FAILED
        keys = [tag.casefold() for tag, _ in update.entries]
        if len(set(keys)) != len(keys):
            return UpdateStatus.FAILED
        if update.full and any(info is None for _, info in update.entries):
            return UpdateStatus.FAILED
        if update.version < 0:
            return UpdateStatus.FAILED
        if not update.full and update.version <= self.version:
            return UpdateStatus.VERSION_MISMATCH
        put = {key: (tag, info) for key, (tag, info) in zip(keys, update.entries, strict=True) if info}
        removed = tuple(key for key, (_, info) in zip(keys, update.entries, strict=True) if info is None)
        if update.full:
            size = len(put)
        else:
            size = len(self._entries) + sum(k not in self._entries for k in put)
            size -= sum(k in self._entries for k in removed)
        if size > limits.total:
            return UpdateStatus.FAILED
        return Change(update.version, update.full, put, removed)

    def apply(self, change: Change) -> None:
        if change.full:
            self._entries = dict(change.put)
        else:
            self._entries.update(change.put)
            for key in change.removed:
                self._entries.pop(key, None)
        self._version = change.version


def rows(change: Change) -> Sequence[tuple[str, str, str, str | None, str | None]]:
    """The change's entries as store rows: (key, idTag, status, expiry ISO, parentIdTag)."""
    return [
        (key, tag, info.status, info.expiry.isoformat() if info.expiry else None, info.parent_id_tag)
        for key, (tag, info) in change.put.items()
    ]
