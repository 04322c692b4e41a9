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
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

Kind = Literal["bool", "int", "csl", "str"]
Access = Literal["R", "RW", "W"]
Profile = Literal[
    "Core", "LocalAuthListManagement", "Reservation", "SmartCharging", "FirmwareManagement", "Security"
]
ChangeStatus = Literal["Accepted", "Rejected", "RebootRequired", "NotSupported"]

# ChangeConfiguration.req carries the value as CiString500.
MAX_VALUE_LENGTH = 500
# Integers without their own bounds still have to fit the 32-bit integers other implementations use.
INT_MIN = -(2**31)
INT_MAX = 2**31 - 1
# Handed to on_change instead of a write-only value, so a listener that logs cannot leak it.
REDACTED = "<redacted>"


class KeyValueError(ValueError):
    """A value a key cannot take; the message says what is allowed."""


class UnknownKey(KeyError):
    """The key is not a standard key, or this charge point does not implement its feature."""


class WriteOnlyKey(KeyError):
    """The key is write-only; its value is read with `Configuration.secret()` only."""


@dataclass(frozen=True)
class ItemRule:
    """How the items of a comma-separated list are checked."""

    allowed: str  # what is allowed, in words, for error messages and the docs
    canonical: Callable[[str], str | None]  # the canonical spelling of an item, or None if not allowed


@dataclass(frozen=True, kw_only=True)
class KeySpec:
    name: str  # canonical spelling
    kind: Kind
    access: Access
    profile: Profile
    feature: str | None = None  # the key exists only when the charge point implements this
    default: str | None = None  # wire form; None: no value unless `fixed` gives one
    minimum: int | None = None
    maximum: int | None = None
    csl_values: tuple[str, ...] | None = None  # the items a list may hold ...
    csl_item_check: ItemRule | None = None  # ... or the rule its items follow
    max_items_key: str | None = None  # the <Key>MaxLength key bounding the list
    reboot_required: bool = False
    derived: bool = False  # computed by the bridge; never set from the file or the central system
    description: str = ""


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


# -- list items ----------------------------------------------------------

MEASURANDS: tuple[str, ...] = (
    "Energy.Active.Export.Register",
    "Energy.Active.Import.Register",
    "Energy.Reactive.Export.Register",
    "Energy.Reactive.Import.Register",
    "Energy.Active.Export.Interval",
    "Energy.Active.Import.Interval",
    "Energy.Reactive.Export.Interval",
    "Energy.Reactive.Import.Interval",
    "Power.Active.Export",
    "Power.Active.Import",
    "Power.Offered",
    "Power.Reactive.Export",
    "Power.Reactive.Import",
    "Power.Factor",
    "Current.Import",
    "Current.Export",
    "Current.Offered",
    "Voltage",
    "Frequency",
    "Temperature",
    "SoC",
    "RPM",
)
PHASES: tuple[str, ...] = ("L1", "L2", "L3", "N", "L1-N", "L2-N", "L3-N", "L1-L2", "L2-L3", "L3-L1")
PHASE_ROTATIONS: tuple[str, ...] = ("NotApplicable", "Unknown", "RST", "RTS", "SRT", "STR", "TRS", "TSR")
FEATURE_PROFILES: tuple[str, ...] = (
    "Core",
    "FirmwareManagement",
    "LocalAuthListManagement",
    "Reservation",
    "SmartCharging",
    "RemoteTrigger",
)
FILE_TRANSFER_PROTOCOLS: tuple[str, ...] = ("FTP", "FTPS", "HTTP", "HTTPS")
CHARGING_RATE_UNITS: tuple[str, ...] = ("Current", "Power")

# Every measurand with and without a phase suffix, by lower case: lists are accepted in any case.
_MEASURAND_ITEMS: dict[str, str] = {m.lower(): m for m in MEASURANDS} | {
    f"{m}.{p}".lower(): f"{m}.{p}" for m in MEASURANDS for p in PHASES
}
_ROTATION_ITEM = re.compile(r"(?:([0-9]{1,3})\.)?([A-Za-z]+)")
_ROTATIONS_BY_LOWER = {r.lower(): r for r in PHASE_ROTATIONS}


def _measurand_item(item: str) -> str | None:
    return _MEASURAND_ITEMS.get(item.lower())


def _phase_rotation_item(item: str) -> str | None:
    match = _ROTATION_ITEM.fullmatch(item)
    if match is None:
        return None
    rotation = _ROTATIONS_BY_LOWER.get(match[2].lower())
    if rotation is None:
        return None
    return rotation if match[1] is None else f"{int(match[1])}.{rotation}"


MEASURAND_ITEMS = ItemRule(
    allowed="OCPP 1.6 measurands, each optionally with a phase suffix (e.g. Voltage.L1, Current.Import.L2)",
    canonical=_measurand_item,
)
PHASE_ROTATION_ITEMS = ItemRule(
    allowed=f"phase rotations ({', '.join(PHASE_ROTATIONS)}), optionally per connector as <id>.<rotation>",
    canonical=_phase_rotation_item,
)


# -- the keys --------------------------------------------------------------


def _measurand_list(name: str, default: str, description: str) -> tuple[KeySpec, KeySpec]:
    """A measurand list and the MaxLength key that bounds it."""
    return (
        KeySpec(
            name=name,
            kind="csl",
            access="RW",
            profile="Core",
            default=default,
            csl_item_check=MEASURAND_ITEMS,
            max_items_key=f"{name}MaxLength",
            description=description,
        ),
        KeySpec(
            name=f"{name}MaxLength",
            kind="int",
            access="R",
            profile="Core",
            default="20",
            derived=True,
            description=f"Maximum number of items in {name}.",
        ),
    )


# fmt: off
KEYS: tuple[KeySpec, ...] = (
    # Core (SPEC 9.1, ERRATA 3.83, 3.91)
    KeySpec(
        name="AllowOfflineTxForUnknownId", kind="bool", access="RW", profile="Core",
        feature="offline_unknown_id", default="false",
        description="Offline, start transactions for unknown idTags.",
    ),
    KeySpec(
        name="AuthorizationCacheEnabled", kind="bool", access="RW", profile="Core",
        feature="auth_cache", default="true",
        description="Use the authorization cache.",
    ),
    KeySpec(
        name="AuthorizeRemoteTxRequests", kind="bool", access="RW", profile="Core", default="false",
        description="Authorize the idTag of a RemoteStartTransaction like a local start first.",
    ),
    KeySpec(
        name="BlinkRepeat", kind="int", access="RW", profile="Core", feature="light", default="3",
        minimum=0, description="Times to blink the lights when signalling.",
    ),
    KeySpec(
        name="ClockAlignedDataInterval", kind="int", access="RW", profile="Core", default="0",
        minimum=0, maximum=86400,
        description="Seconds between clock-aligned meter values, counted from midnight; 0 = off.",
    ),
    KeySpec(
        name="ConnectionTimeOut", kind="int", access="RW", profile="Core", default="60", minimum=1,
        description=(
            "Seconds an authorized tag waits for the plug (then Available), and a plugged cable waits"
            " for a tag (then Finishing until unplugged)."
        ),
    ),
    KeySpec(
        name="ConnectorPhaseRotation", kind="csl", access="RW", profile="Core", default="Unknown",
        csl_item_check=PHASE_ROTATION_ITEMS, max_items_key="ConnectorPhaseRotationMaxLength",
        description="Phase rotation per connector, e.g. 0.RST,1.RST,2.RTS.",
    ),
    KeySpec(
        name="ConnectorPhaseRotationMaxLength", kind="int", access="R", profile="Core", default="10",
        derived=True, description="Maximum number of items in ConnectorPhaseRotation.",
    ),
    KeySpec(
        name="GetConfigurationMaxKeys", kind="int", access="R", profile="Core", default="100",
        derived=True, description="Maximum number of keys answered for one GetConfiguration request.",
    ),
    KeySpec(
        name="HeartbeatInterval", kind="int", access="RW", profile="Core", default="300",
        minimum=0, maximum=86400,
        description="Seconds of inactivity before a Heartbeat; 0 = no heartbeats.",
    ),
    KeySpec(
        name="LightIntensity", kind="int", access="RW", profile="Core", feature="light", default="100",
        minimum=0, maximum=100, description="Percentage of the maximum light intensity.",
    ),
    KeySpec(
        name="LocalAuthorizeOffline", kind="bool", access="RW", profile="Core", default="true",
        description="Offline, start transactions for idTags authorized locally (list or cache).",
    ),
    KeySpec(
        name="LocalPreAuthorize", kind="bool", access="RW", profile="Core", default="false",
        description="Online, start for locally authorized idTags without waiting for Authorize.conf.",
    ),
    KeySpec(
        name="MaxEnergyOnInvalidId", kind="int", access="RW", profile="Core",
        feature="max_energy_invalid_id", default="0", minimum=0,
        description="Wh delivered to a transaction whose idTag turned out invalid before it stops.",
    ),
    KeySpec(
        name="MessageTimeout", kind="int", access="RW", profile="Core", default="30",
        minimum=1, maximum=600,
        description="Seconds after which a request without an answer counts as timed out (ERRATA 3.83).",
    ),
    *_measurand_list(
        "MeterValuesAlignedData", "Energy.Active.Import.Register",
        "Measurands sent every ClockAlignedDataInterval.",
    ),
    *_measurand_list(
        "MeterValuesSampledData", "Energy.Active.Import.Register",
        "Measurands sent every MeterValueSampleInterval during a transaction.",
    ),
    KeySpec(
        name="MeterValueSampleInterval", kind="int", access="RW", profile="Core", default="60", minimum=0,
        description="Seconds between sampled meter values, counted from the transaction start; 0 = off.",
    ),
    KeySpec(
        name="MinimumStatusDuration", kind="int", access="RW", profile="Core",
        feature="min_status_duration", default="0", minimum=0,
        description="Seconds a status must last before a StatusNotification reports it.",
    ),
    KeySpec(
        name="NumberOfConnectors", kind="int", access="R", profile="Core", derived=True,
        description="Number of connectors of the charge point.",
    ),
    KeySpec(
        name="ResetRetries", kind="int", access="RW", profile="Core", default="1", minimum=0,
        description="Times to retry a failed reset.",
    ),
    KeySpec(
        name="StopTransactionMaxMeterValues", kind="int", access="R", profile="Core",
        feature="stop_txn_max_meter_values", default="100", derived=True,
        description="Maximum number of meter values in StopTransaction's transactionData (ERRATA 3.91).",
    ),
    KeySpec(
        name="StopTransactionOnEVSideDisconnect", kind="bool", access="RW", profile="Core", default="true",
        description="Stop the transaction when the cable is unplugged at the vehicle.",
    ),
    KeySpec(
        name="StopTransactionOnInvalidId", kind="bool", access="RW", profile="Core", default="true",
        description="Stop a transaction whose idTag the central system rejects in StartTransaction.conf.",
    ),
    *_measurand_list(
        "StopTxnAlignedData", "", "Clock-aligned measurands put in StopTransaction's transactionData.",
    ),
    *_measurand_list(
        "StopTxnSampledData", "", "Sampled measurands put in StopTransaction's transactionData.",
    ),
    KeySpec(
        name="SupportedFeatureProfiles", kind="csl", access="R", profile="Core", derived=True,
        csl_values=FEATURE_PROFILES, max_items_key="SupportedFeatureProfilesMaxLength",
        description="Feature profiles the charge point supports.",
    ),
    KeySpec(
        name="SupportedFeatureProfilesMaxLength", kind="int", access="R", profile="Core", default="6",
        derived=True, description="Maximum number of items in SupportedFeatureProfiles.",
    ),
    KeySpec(
        name="TransactionMessageAttempts", kind="int", access="RW", profile="Core", default="3", minimum=0,
        description="Times a transaction message the central system failed to process is sent.",
    ),
    KeySpec(
        name="TransactionMessageRetryInterval", kind="int", access="RW", profile="Core", default="60",
        minimum=0,
        description="Seconds to wait before resending a failed transaction message, times the attempts.",
    ),
    KeySpec(
        name="UnlockConnectorOnEVSideDisconnect", kind="bool", access="RW", profile="Core", default="true",
        description="Unlock the connector when the cable is unplugged at the vehicle.",
    ),
    KeySpec(
        name="WebSocketPingInterval", kind="int", access="RW", profile="Core", default="30", minimum=0,
        description="Seconds between websocket pings; 0 = no pings. Takes effect at once.",
    ),
    # LocalAuthListManagement (SPEC 9.2)
    KeySpec(
        name="LocalAuthListEnabled", kind="bool", access="RW", profile="LocalAuthListManagement",
        feature="local_list", default="true", description="Use the local authorization list.",
    ),
    KeySpec(
        name="LocalAuthListMaxLength", kind="int", access="R", profile="LocalAuthListManagement",
        feature="local_list", default="10000", derived=True,
        description="Maximum number of idTags in the local authorization list.",
    ),
    KeySpec(
        name="SendLocalListMaxLength", kind="int", access="R", profile="LocalAuthListManagement",
        feature="local_list", default="1000", derived=True,
        description="Maximum number of idTags in one SendLocalList request.",
    ),
    # Reservation (SPEC 9.3)
    KeySpec(
        name="ReserveConnectorZeroSupported", kind="bool", access="R", profile="Reservation",
        feature="reservation_connector_zero", default="true", derived=True,
        description="Reservations of connector 0 (any connector) are supported.",
    ),
    # SmartCharging (SPEC 9.4)
    KeySpec(
        name="ChargeProfileMaxStackLevel", kind="int", access="R", profile="SmartCharging",
        feature="smart_charging", default="10", derived=True,
        description="Highest stackLevel of a charging profile.",
    ),
    KeySpec(
        name="ChargingScheduleAllowedChargingRateUnit", kind="csl", access="R", profile="SmartCharging",
        feature="smart_charging", default="Current,Power", csl_values=CHARGING_RATE_UNITS, derived=True,
        description="Units a charging schedule may use: Current (A), Power (W).",
    ),
    KeySpec(
        name="ChargingScheduleMaxPeriods", kind="int", access="R", profile="SmartCharging",
        feature="smart_charging", default="96", derived=True,
        description="Maximum number of periods in one charging schedule.",
    ),
    KeySpec(
        name="ConnectorSwitch3to1PhaseSupported", kind="bool", access="R", profile="SmartCharging",
        feature="phase_switching", default="true", derived=True,
        description="The charge point can switch between 3 and 1 phase during a transaction.",
    ),
    KeySpec(
        name="MaxChargingProfilesInstalled", kind="int", access="R", profile="SmartCharging",
        feature="smart_charging", default="20", derived=True,
        description="Maximum number of charging profiles installed at a time.",
    ),
    # FirmwareManagement (ERRATA 3.90)
    KeySpec(
        name="SupportedFileTransferProtocols", kind="csl", access="R", profile="FirmwareManagement",
        feature="firmware", default="FTP,FTPS,HTTP,HTTPS", csl_values=FILE_TRANSFER_PROTOCOLS,
        derived=True, description="Protocols for firmware downloads and diagnostics uploads.",
    ),
    # Security white paper, edition 3, chapter 7
    KeySpec(
        name="AdditionalRootCertificateCheck", kind="bool", access="R", profile="Security",
        feature="security", default="false",
        description="A new central-system root certificate must be signed by the old one.",
    ),
    KeySpec(
        name="AuthorizationKey", kind="str", access="W", profile="Security", feature="security",
        description="Basic-auth password, 16 to 20 bytes written as 32 to 40 hex characters; never shown.",
    ),
    KeySpec(
        name="CertificateSignedMaxChainSize", kind="int", access="R", profile="Security",
        feature="security", default="10000", minimum=1, maximum=10000, derived=True,
        description="Maximum size in bytes of the certificate chain in CertificateSigned.",
    ),
    KeySpec(
        name="CertificateStoreMaxLength", kind="int", access="R", profile="Security", feature="security",
        default="10", derived=True, description="Maximum number of root and CA certificates stored.",
    ),
    KeySpec(
        name="CpoName", kind="str", access="RW", profile="Security", feature="security", default="",
        description="The operator's name, put in the O= field of certificate signing requests.",
    ),
    KeySpec(
        name="SecurityProfile", kind="int", access="RW", profile="Security", feature="security",
        default="0", minimum=0, maximum=3,
        description="Security profile in use (0 to 3); may only be increased.",
    ),
)
# fmt: on

# Features the bridge implements so far; the daemon grows this as features land.
IMPLEMENTED_FEATURES: frozenset[str] = frozenset(
    {
        "auth_cache",
        "offline_unknown_id",
        "max_energy_invalid_id",
        "stop_txn_max_meter_values",
        "min_status_duration",
        "smart_charging",
        "phase_switching",  # the key says whether a charger can (false when none can)
    }
)
# Every feature name a key can carry.
FEATURES: frozenset[str] = frozenset(spec.feature for spec in KEYS if spec.feature is not None)

_BY_LOWER: dict[str, KeySpec] = {spec.name.lower(): spec for spec in KEYS}


def lookup(name: str) -> KeySpec | None:
    """The key of that name in any case (OCPP keys are case-insensitive), or None."""
    return _BY_LOWER.get(name.lower())


def suggest(name: str) -> str | None:
    """The known key closest to a misspelt one, for error messages."""
    close = difflib.get_close_matches(name.lower(), _BY_LOWER, n=1, cutoff=0.6)
    return _BY_LOWER[close[0]].name if close else None


# -- values ---------------------------------------------------------------

_INT = re.compile(r"[+-]?[0-9]+")
_HEX = re.compile(r"[0-9A-Fa-f]+")


def _range_text(spec: KeySpec) -> str:
    low = INT_MIN if spec.minimum is None else spec.minimum
    high = INT_MAX if spec.maximum is None else spec.maximum
    if spec.maximum is None:
        return f"a whole number of at least {low}" if spec.minimum is not None else "a whole number"
    return f"a whole number from {low} to {high}"


def _split(value: str) -> list[str]:
    return [] if value.strip() == "" else [item.strip() for item in value.split(",")]


def _normalised(spec: KeySpec, value: str) -> str:
    """The wire form of `value` for `spec`; raises KeyValueError saying what is allowed."""
    if len(value) > MAX_VALUE_LENGTH:
        raise KeyValueError(f"{spec.name} takes at most {MAX_VALUE_LENGTH} characters")
    if spec.kind == "bool":
        if value.lower() not in ("true", "false"):
            raise KeyValueError(f"{spec.name} must be true or false, not {value!r}")
        return value.lower()
    if spec.kind == "int":
        if not _INT.fullmatch(value):
            raise KeyValueError(f"{spec.name} must be {_range_text(spec)}, not {value!r}")
        number = int(value)
        low = INT_MIN if spec.minimum is None else spec.minimum
        high = INT_MAX if spec.maximum is None else spec.maximum
        if not low <= number <= high:
            raise KeyValueError(f"{spec.name} must be {_range_text(spec)}, not {number}")
        return str(number)
    if spec.kind == "csl":
        items = _list_items(spec, value)
        if spec.csl_item_check is PHASE_ROTATION_ITEMS:
            _rotation_connectors(items)
        return ",".join(items)
    if spec.name == "AuthorizationKey" and not (
        _HEX.fullmatch(value) and 32 <= len(value) <= 40 and len(value) % 2 == 0
    ):
        # Not echoed: the value is a secret even when it is a wrong one.
        raise KeyValueError("AuthorizationKey must be 16 to 20 bytes written as 32 to 40 hex characters")
    return value


def _list_items(spec: KeySpec, value: str) -> list[str]:
    items: list[str] = []
    for raw in _split(value):
        if raw == "":
            raise KeyValueError(f"{spec.name} has an empty item; separate items with single commas")
        item: str | None
        if spec.csl_values is not None:
            item = {v.lower(): v for v in spec.csl_values}.get(raw.lower())
            allowed = ", ".join(spec.csl_values)
        else:
            assert spec.csl_item_check is not None  # every list key has one or the other
            item = spec.csl_item_check.canonical(raw)
            allowed = spec.csl_item_check.allowed
        if item is None:
            raise KeyValueError(f"{spec.name}: {raw!r} is not allowed; allowed: {allowed}")
        if item in items:
            raise KeyValueError(f"{spec.name} lists {item} twice")
        items.append(item)
    return items


def _rotation_connectors(items: list[str]) -> list[int]:
    """The connector ids of phase-rotation items, each at most once ("RST" alone means all)."""
    seen: set[str] = set()
    for item in items:
        connector = item.partition(".")[0] if "." in item else "all"
        if connector in seen:
            which = "all connectors" if connector == "all" else f"connector {connector}"
            raise KeyValueError(f"ConnectorPhaseRotation gives {which} twice")
        seen.add(connector)
    return [int(c) for c in seen if c != "all"]


def validate_file_value(name: str, value: str | int | bool | float) -> str:
    """The wire form of a value from the configuration file (YAML scalars), or KeyValueError.

    Checks the value only; which keys a file may set at all is the loader's policy. A list is
    checked against the default of its MaxLength key, as the device is not known yet.
    """
    spec = lookup(name)
    if spec is None:
        hint = suggest(name)
        raise KeyValueError(f"unknown key {name!r}" + (f"; did you mean {hint}?" if hint else ""))
    # bool before int: YAML's true is also a Python int.
    if isinstance(value, bool):
        if spec.kind != "bool":
            raise KeyValueError(f"{spec.name} must be {_kind_text(spec)}, not a boolean")
        text = "true" if value else "false"
    elif isinstance(value, float) and spec.kind in ("int", "bool"):
        raise KeyValueError(f"{spec.name} must be {_kind_text(spec)}, not {value!r}")
    elif isinstance(value, int) and spec.kind == "bool":
        raise KeyValueError(f"{spec.name} must be true or false, not {value!r}")
    else:
        text = str(value)
    wire = _normalised(spec, text)
    if spec.kind == "csl" and spec.max_items_key is not None:
        bound = lookup(spec.max_items_key)
        if bound is not None and bound.default is not None:
            _check_count(spec, wire, int(bound.default))
    return wire


def _kind_text(spec: KeySpec) -> str:
    if spec.kind == "int":
        return _range_text(spec)
    return {"bool": "true or false", "csl": "a comma-separated list", "str": "a string"}[spec.kind]


def _check_count(spec: KeySpec, wire: str, bound: int) -> None:
    count = len(_split(wire))
    if count > bound:
        raise KeyValueError(f"{spec.name} takes at most {bound} items ({spec.max_items_key}), not {count}")


# -- one charge point's configuration ---------------------------------------

_EMPTY: Mapping[str, str] = MappingProxyType({})


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
    ) -> None:
        self.features = frozenset(features)
        self.on_change: Callable[[str, str], None] | None = None  # after an Accepted change
        self._measurand_supported = measurand_supported
        self._present = {
            lower: spec
            for lower, spec in _BY_LOWER.items()
            if spec.feature is None or spec.feature in self.features
        }
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
                self._values[spec.name] = _normalised(spec, spec.default)
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
        self._changed[spec.name] = wire
        if spec.reboot_required:
            self._pending[spec.name] = wire
            return ChangeOutcome("RebootRequired", spec.name, f"set to {shown}, effective after a restart")
        self._pending.pop(spec.name, None)
        self._values[spec.name] = wire
        if self.on_change is not None:
            self.on_change(spec.name, shown)
        return ChangeOutcome("Accepted", spec.name, f"set to {shown}")

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
