"""One charge point's values of the keys (`Configuration`): GetConfiguration, ChangeConfiguration,
what the store persists and restores, and the outcomes the session answers with.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from bridge.core.config_keys.key_specs import KEYS, lookup
from bridge.core.config_keys.key_types import MEASURAND_ITEMS, PHASE_ROTATION_ITEMS, KeySpec, Kind
from bridge.core.config_keys.key_values import (
    KeyValueError,
    _check_count,
    _normalised,
    _rotation_connectors,
    _split,
)

ChangeStatus = Literal["Accepted", "Rejected", "RebootRequired", "NotSupported"]
# Handed to on_change instead of a write-only value, so a listener that logs cannot leak it.
REDACTED = "<redacted>"


class UnknownKey(KeyError):
    """The key is not a standard key, or this charge point does not implement its feature."""


class WriteOnlyKey(KeyError):
    """The key is write-only; its value is read with `Configuration.secret()` only."""


@dataclass(frozen=True)
class KeyEntry:
    """One entry of GetConfiguration.conf's configurationKey list."""

    key: str
    readonly: bool
    value: str | None


@dataclass(frozen=True)
class ChangeOutcome:
    status: ChangeStatus
    key: str  # canonical name; as the central system spelled it when unknown
    reason: str  # for the log; never holds a write-only value


_EMPTY: Mapping[str, str] = MappingProxyType({})


# Worked out once per key table and feature set, not per charge point (at 5,000 charge points that was
# a second of the start). Keyed by the table's identity; the table is kept so the identity stays its own.
_Table = tuple[Mapping[str, KeySpec], Mapping[str, str]]  # keys by lower-case name; normalised defaults
_TABLES: dict[tuple[frozenset[str], int], tuple[tuple[KeySpec, ...], _Table]] = {}


def _table(features: frozenset[str], keys: tuple[KeySpec, ...]) -> _Table:
    """The keys a charge point with these feature profiles has, and their defaults (shared, read only)."""
    cached = _TABLES.get((features, id(keys)))
    if cached is not None and cached[0] is keys:
        return cached[1]
    present = {spec.name.lower(): spec for spec in keys if spec.feature is None or spec.feature in features}
    defaults = {s.name: _normalised(s, s.default) for s in present.values() if s.default is not None}
    table = (MappingProxyType(present), MappingProxyType(defaults))
    _TABLES[(features, id(keys))] = (keys, table)
    return table


class Configuration:
    """The configuration keys of one charge point: values, GetConfiguration, ChangeConfiguration.

    `features`: what this charge point implements (keys of other features do not exist).
    `fixed`: read-only values the daemon derives; required for derived keys without a default
    (NumberOfConnectors, SupportedFeatureProfiles); they beat `initial`.
    `initial`: the file's values (canonical names or any case); invalid ones raise KeyValueError.
    `measurand_supported`: whether the device can measure a measurand (e.g. "Voltage.L1"); lists
    naming one it cannot are rejected.
    """

    def __init__(
        self,
        features: Iterable[str],
        fixed: Mapping[str, str] = _EMPTY,
        initial: Mapping[str, str] = _EMPTY,
        measurand_supported: Callable[[str], bool] | None = None,
        *,
        keys: tuple[KeySpec, ...] = KEYS,
    ) -> None:
        self.features = frozenset(features)
        self.on_change: Callable[[str, str], None] | None = None  # after an Accepted change
        # Keys whose change the runtime carries out itself (SecurityProfile: tried before it is
        # kept): given the checked value, the handler returns why it is Rejected, or None; the value
        # becomes effective (and persisted) only when the runtime calls `settle`.
        self.carried_out: dict[str, Callable[[str], str | None]] = {}
        self._measurand_supported = measurand_supported
        self._present, defaults = _table(self.features, keys)
        self._fixed: dict[str, str] = {}
        self._values: dict[str, str] = {}  # effective values; write-only ones included
        self._changed: dict[str, str] = {}  # set by the central system (or restored), incl. pending
        self._pending: dict[str, str] = {}  # RebootRequired changes, not effective yet
        for name, value in fixed.items():
            spec = self._require(name, "fixed")
            if spec.access == "W":
                raise ValueError(f"fixed: {spec.name} is write-only and cannot be fixed")
            self._fixed[spec.name] = self._values[spec.name] = _normalised(spec, value)
        # Defaults skip the device check: the device may lack a meter, and nobody asked for them.
        for spec in self._present.values():
            if spec.name in self._values:
                continue
            if spec.default is not None:
                self._values[spec.name] = defaults[spec.name]
            elif spec.derived:
                raise ValueError(f"fixed must give a value for {spec.name}")
        for name, value in initial.items():
            spec = self._require(name, "initial")
            if spec.derived:
                raise ValueError(f"initial: {spec.name} is computed by the bridge; use fixed")
            if spec.name not in self._fixed:  # the device's facts beat the file
                self._values[spec.name] = self._checked(spec, value)

    def refix(self, name: str, value: str) -> None:
        """A fixed value learnt later (a device's probe found it can switch phases)."""
        spec = self._require(name, "refix")
        if spec.name not in self._fixed:
            raise ValueError(f"refix: {spec.name} was not fixed")
        self._fixed[spec.name] = self._values[spec.name] = _normalised(spec, value)

    def _require(self, name: str, where: str) -> KeySpec:
        spec = self.lookup(name)
        if spec is None:
            raise ValueError(f"{where}: {name!r} is not a key of this charge point")
        return spec

    # -- reading ------------------------------------------------------------
    def lookup(self, name: str) -> KeySpec | None:
        """The key as it exists on this charge point (any case), or None."""
        return self._present.get(name.lower())

    def exists(self, name: str) -> bool:
        return self.lookup(name) is not None

    def _readable(self, name: str) -> KeySpec:
        spec = self.lookup(name)
        if spec is None:
            raise UnknownKey(name)
        if spec.access == "W":
            raise WriteOnlyKey(f"{spec.name} is write-only; use secret()")
        return spec

    def get(self, name: str) -> str:
        """The effective value in wire form; UnknownKey or WriteOnlyKey otherwise."""
        return self._values[self._readable(name).name]

    def _typed(self, name: str, kind: Kind) -> str:
        spec = self._readable(name)
        if spec.kind != kind:
            raise TypeError(f"{spec.name} is a {spec.kind} key, not {kind}")
        return self._values[spec.name]

    def get_int(self, name: str) -> int:
        return int(self._typed(name, "int"))

    def get_bool(self, name: str) -> bool:
        return self._typed(name, "bool") == "true"

    def get_list(self, name: str) -> list[str]:
        return _split(self._typed(name, "csl"))

    def secret(self, name: str) -> str | None:
        """The value of a write-only key (None until one is set); the only way to read it."""
        spec = self.lookup(name)
        if spec is None or spec.access != "W":
            raise UnknownKey(f"{name} is not a write-only key of this charge point")
        return self._values.get(spec.name)

    def _entry(self, spec: KeySpec) -> KeyEntry:
        readonly = spec.access == "R" or spec.derived or spec.name in self._fixed
        value = None if spec.access == "W" else self._values[spec.name]
        return KeyEntry(spec.name, readonly, value)

    def get_configuration(self, keys: list[str] | None = None) -> tuple[list[KeyEntry], list[str]]:
        """GetConfiguration: (configurationKey, unknownKey).

        No keys: every key of this charge point, sorted by name, uncapped. Listed keys: in the order
        asked, each once; unknown ones (and those of absent features) as spelled; the known ones are
        truncated to GetConfigurationMaxKeys.
        """
        if not keys:
            specs = sorted(self._present.values(), key=lambda s: s.name.lower())
            return [self._entry(spec) for spec in specs], []
        known: list[KeyEntry] = []
        unknown: list[str] = []
        seen: set[str] = set()
        for key in keys:
            if key.lower() in seen:
                continue
            seen.add(key.lower())
            spec = self.lookup(key)
            if spec is None:
                unknown.append(key)
            else:
                known.append(self._entry(spec))
        return known[: self.get_int("GetConfigurationMaxKeys")], unknown

    # -- writing ------------------------------------------------------------
    def _checked(self, spec: KeySpec, value: str) -> str:
        """The wire form of a value for this charge point, or KeyValueError."""
        wire = _normalised(spec, value)
        if spec.kind != "csl":
            return wire
        if spec.max_items_key is not None and self.exists(spec.max_items_key):
            _check_count(spec, wire, self.get_int(spec.max_items_key))
        if spec.csl_item_check is MEASURAND_ITEMS and self._measurand_supported is not None:
            missing = [m for m in _split(wire) if not self._measurand_supported(m)]
            if missing:
                raise KeyValueError(f"{spec.name}: this charge point cannot measure {', '.join(missing)}")
        if spec.csl_item_check is PHASE_ROTATION_ITEMS:
            last = self.get_int("NumberOfConnectors")
            beyond = [c for c in _rotation_connectors(_split(wire)) if c > last]
            if beyond:
                raise KeyValueError(f"ConnectorPhaseRotation: there is no connector {max(beyond)}")
        return wire

    def _refusal(self, spec: KeySpec, wire: str) -> str | None:
        """Why a well-formed value is still refused, or None."""
        if spec.name == "SecurityProfile" and int(wire) <= int(self._values["SecurityProfile"]):
            return f"SecurityProfile may only increase (now {self._values['SecurityProfile']})"
        return None

    def change(self, key: str, value: str) -> ChangeOutcome:
        """ChangeConfiguration: check, store, and say what the central system is told."""
        spec = self.lookup(key)
        if spec is None:
            why = "unknown key" if lookup(key) is None else "not implemented by this charge point"
            return ChangeOutcome("NotSupported", key, why)
        if spec.access == "R" or spec.derived or spec.name in self._fixed:
            return ChangeOutcome("Rejected", spec.name, "read-only")
        try:
            wire = self._checked(spec, value)
        except KeyValueError as error:
            return ChangeOutcome("Rejected", spec.name, str(error))
        refusal = self._refusal(spec, wire)
        if refusal is not None:
            return ChangeOutcome("Rejected", spec.name, refusal)
        shown = REDACTED if spec.access == "W" else wire
        carry_out = self.carried_out.get(spec.name)
        if carry_out is not None:
            refusal = carry_out(wire)
            if refusal is not None:
                return ChangeOutcome("Rejected", spec.name, refusal)
            return ChangeOutcome("Accepted", spec.name, f"{shown} being tried")
        self._changed[spec.name] = wire
        if spec.reboot_required:
            self._pending[spec.name] = wire
            return ChangeOutcome("RebootRequired", spec.name, f"set to {shown}, effective after a restart")
        self._pending.pop(spec.name, None)
        self._values[spec.name] = wire
        if self.on_change is not None:
            self.on_change(spec.name, shown)
        return ChangeOutcome("Accepted", spec.name, f"set to {shown}")

    def settle(self, name: str, wire: str) -> None:
        """A change the runtime carried out (`carried_out`) is in force: effective and persisted."""
        self._values[name] = self._changed[name] = wire
        if self.on_change is not None:
            self.on_change(name, wire)

    def apply_pending(self) -> list[str]:
        """Make RebootRequired changes effective (at restart); returns the keys applied."""
        applied = list(self._pending)
        self._values.update(self._pending)
        self._pending.clear()
        return applied

    def changed_values(self) -> dict[str, str]:
        """What the central system set (pending ones included): what the store persists.

        Holds write-only values too: the store must treat AuthorizationKey as a secret.
        """
        return dict(self._changed)

    def restore(self, values: Mapping[str, str]) -> list[str]:
        """Load values the store kept, effective at once; returns the keys ignored.

        Ignored: unknown keys, keys of absent features, read-only or fixed keys, invalid values
        (the device may have changed since), and a SecurityProfile below the current one.
        """
        ignored: list[str] = []
        for name, value in values.items():
            spec = self.lookup(name)
            if spec is None or spec.access == "R" or spec.derived or spec.name in self._fixed:
                ignored.append(name)
                continue
            try:
                wire = self._checked(spec, value)
            except KeyValueError:
                ignored.append(name)
                continue
            # Restoring the same profile is fine; only a downgrade is refused.
            if spec.name == "SecurityProfile" and int(wire) < int(self._values["SecurityProfile"]):
                ignored.append(name)
                continue
            self._values[spec.name] = self._changed[spec.name] = wire
            self._pending.pop(spec.name, None)
        return ignored
