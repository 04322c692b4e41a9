"""The table of every standard key (`KEYS`), the features the bridge implements, and lookup by name.

One table, kept whole so that a new key is one row beside its profile's others (hence over 250 lines).
"""

from __future__ import annotations

import difflib

from bridge.core.config_keys.key_types import (
    CHARGING_RATE_UNITS,
    FEATURE_PROFILES,
    FILE_TRANSFER_PROTOCOLS,
    MEASURAND_ITEMS,
    PHASE_ROTATION_ITEMS,
    KeySpec,
)


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
        feature="local_list", default="10000", derived=True,
        description="Maximum number of idTags in one SendLocalList request: the whole list fits one.",
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

# The feature profiles this charge point implements, in the order SupportedFeatureProfiles lists them.
# All six of OCPP 1.6 are built; a profile's keys come with it (PROFILE_FEATURES).
SUPPORTED_PROFILES: tuple[str, ...] = FEATURE_PROFILES
PROFILE_FEATURES: dict[str, frozenset[str]] = {
    "FirmwareManagement": frozenset({"firmware"}),
    "LocalAuthListManagement": frozenset({"local_list"}),
    "Reservation": frozenset({"reservation_connector_zero"}),
    "SmartCharging": frozenset({"smart_charging"}),
}
# Features the bridge implements so far (keys that exist only with them); grows as features land.
IMPLEMENTED_FEATURES: frozenset[str] = frozenset(
    {
        "auth_cache",
        "offline_unknown_id",
        "max_energy_invalid_id",
        "stop_txn_max_meter_values",
        "min_status_duration",
        "phase_switching",  # the key says whether a charger can (false when none can)
        "security",  # the security white paper's keys (bridge/charge_point_security.py)
    }
).union(*(PROFILE_FEATURES.get(profile, frozenset()) for profile in SUPPORTED_PROFILES))


def supported_profiles(any_switches_energy: bool) -> tuple[str, ...]:
    """SupportedFeatureProfiles of one charge point: without SmartCharging when no connector's device
    can switch energy (all report only), since it could follow no limit."""
    if any_switches_energy:
        return SUPPORTED_PROFILES
    return tuple(p for p in SUPPORTED_PROFILES if p != "SmartCharging")


def implemented_features(profiles: tuple[str, ...]) -> frozenset[str]:
    """The features of a charge point offering `profiles`: a profile's keys come only with it."""
    dropped = set(SUPPORTED_PROFILES) - set(profiles)
    return IMPLEMENTED_FEATURES.difference(*(PROFILE_FEATURES.get(p, frozenset()) for p in dropped))


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
