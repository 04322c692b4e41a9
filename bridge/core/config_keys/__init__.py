"""The OCPP 1.6 standard configuration keys, and one charge point's values of them.

Theory
------
A charge point answers GetConfiguration and ChangeConfiguration from a table of keys (SPEC 9, the
errata, the security white paper). Each key has an access mode (R, RW, W), a type (boolean, integer,
comma-separated list, string) and a profile. For optional keys the *presence* of the key advertises a
capability (SPEC 9), so a key with a `feature` exists only on a charge point that implements that
feature: an absent key answers NotSupported to ChangeConfiguration and is "unknown" to GetConfiguration.

A key's value comes from the first of these that has one:

1. `fixed`: what the daemon derives from the device and from itself (NumberOfConnectors,
   SupportedFeatureProfiles, UnlockConnectorOnEVSideDisconnect = false for a fixed cable). Always read-only.
2. A value the central system set with ChangeConfiguration. `changed_values()` hands these to the store
   and `restore()` takes them back after a restart, so they win over the file: the central system
   spoke last.
3. `initial`: the `ocpp:` block of the configuration file.
4. The key's default in `KEYS`.

Values are kept in wire form (the strings GetConfiguration returns), normalised on the way in: booleans
become "true"/"false", integers lose leading zeros and "+", list items get their canonical spelling.
Everything that sets a value goes through one check (`_checked`), so a value that is stored is a value
the rest of the daemon can parse without looking again.

A change to a key marked `reboot_required` is answered RebootRequired: it is stored (and persisted)
at once but becomes effective only with `apply_pending()` or at the next start.

Pure: no I/O here. The store persists `changed_values()`; the session turns `ChangeOutcome` into the
ChangeConfiguration answer; listeners (`on_change`) re-arm timers.

Where things are
----------------
`key_types.py` what a key is and the items its lists may hold; `key_specs.py` the table of keys and
lookup by name; `key_values.py` parsing values to wire form; `configuration.py` the `Configuration`
of one charge point. Import the names below from `bridge.core.config_keys`.
"""

from __future__ import annotations

from bridge.core.config_keys.configuration import (
    REDACTED,
    ChangeOutcome,
    ChangeStatus,
    Configuration,
    KeyEntry,
    UnknownKey,
    WriteOnlyKey,
)
from bridge.core.config_keys.key_specs import (
    FEATURES,
    IMPLEMENTED_FEATURES,
    KEYS,
    SUPPORTED_PROFILES,
    implemented_features,
    lookup,
    suggest,
    supported_profiles,
)
from bridge.core.config_keys.key_types import (
    CHARGING_RATE_UNITS,
    FEATURE_PROFILES,
    FILE_TRANSFER_PROTOCOLS,
    MEASURAND_ITEMS,
    MEASURANDS,
    PHASE_ROTATION_ITEMS,
    PHASE_ROTATIONS,
    PHASES,
    Access,
    ItemRule,
    KeySpec,
    Kind,
    Profile,
)
from bridge.core.config_keys.key_values import (
    INT_MAX,
    INT_MIN,
    MAX_VALUE_LENGTH,
    KeyValueError,
    validate_file_value,
)

__all__ = [
    "CHARGING_RATE_UNITS",
    "FEATURES",
    "FEATURE_PROFILES",
    "FILE_TRANSFER_PROTOCOLS",
    "IMPLEMENTED_FEATURES",
    "INT_MAX",
    "INT_MIN",
    "KEYS",
    "MAX_VALUE_LENGTH",
    "MEASURANDS",
    "MEASURAND_ITEMS",
    "PHASES",
    "PHASE_ROTATIONS",
    "PHASE_ROTATION_ITEMS",
    "REDACTED",
    "SUPPORTED_PROFILES",
    "Access",
    "ChangeOutcome",
    "ChangeStatus",
    "Configuration",
    "ItemRule",
    "KeyEntry",
    "KeySpec",
    "KeyValueError",
    "Kind",
    "Profile",
    "UnknownKey",
    "WriteOnlyKey",
    "implemented_features",
    "lookup",
    "suggest",
    "supported_profiles",
    "validate_file_value",
]
