"""bridge.core.config_keys: the key table, ChangeConfiguration answers, GetConfiguration, persistence."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from bridge.core import config_keys
from bridge.core.config_keys import (
    FEATURES,
    KEYS,
    MEASURANDS,
    PHASES,
    REDACTED,
    Configuration,
    KeyEntry,
    KeyValueError,
    UnknownKey,
    WriteOnlyKey,
    key_specs,
    lookup,
    suggest,
    validate_file_value,
)

FIXED = {"NumberOfConnectors": "2", "SupportedFeatureProfiles": "Core,SmartCharging"}
AUTH_KEY = "4F43415F4F4354545F61646D696E5F74657374"  # OCTT's: hex of "OCA_OCTT_admin_test"


def make(
    features: frozenset[str] = FEATURES,
    fixed: Mapping[str, str] | None = None,
    initial: Mapping[str, str] | None = None,
    measurand_supported: Callable[[str], bool] | None = None,
) -> Configuration:
    return Configuration(features, {**FIXED, **(fixed or {})}, initial or {}, measurand_supported)


# -- the table ---------------------------------------------------------------

# Sections 5.1 and 5.2 of the reference, with MessageTimeout and StopTransactionMaxMeterValues.
EXPECTED_KEYS = """
AllowOfflineTxForUnknownId AuthorizationCacheEnabled AuthorizeRemoteTxRequests BlinkRepeat
ClockAlignedDataInterval ConnectionTimeOut ConnectorPhaseRotation ConnectorPhaseRotationMaxLength
GetConfigurationMaxKeys HeartbeatInterval LightIntensity LocalAuthorizeOffline LocalPreAuthorize
MaxEnergyOnInvalidId MessageTimeout MeterValuesAlignedData MeterValuesAlignedDataMaxLength
MeterValuesSampledData MeterValuesSampledDataMaxLength MeterValueSampleInterval MinimumStatusDuration
NumberOfConnectors ResetRetries StopTransactionMaxMeterValues StopTransactionOnEVSideDisconnect
StopTransactionOnInvalidId StopTxnAlignedData StopTxnAlignedDataMaxLength StopTxnSampledData
StopTxnSampledDataMaxLength SupportedFeatureProfiles SupportedFeatureProfilesMaxLength
TransactionMessageAttempts TransactionMessageRetryInterval UnlockConnectorOnEVSideDisconnect
WebSocketPingInterval
LocalAuthListEnabled LocalAuthListMaxLength SendLocalListMaxLength ReserveConnectorZeroSupported
ChargeProfileMaxStackLevel ChargingScheduleAllowedChargingRateUnit ChargingScheduleMaxPeriods
ConnectorSwitch3to1PhaseSupported MaxChargingProfilesInstalled SupportedFileTransferProtocols
AdditionalRootCertificateCheck AuthorizationKey CertificateSignedMaxChainSize CertificateStoreMaxLength
CpoName SecurityProfile
""".split()


def test_every_standard_key_is_in_the_table_once() -> None:
    names = [spec.name for spec in KEYS]
    assert len(names) == len(set(names))
    assert sorted(names) == sorted(EXPECTED_KEYS)


@pytest.mark.parametrize(
    ("name", "default"),
    [
        ("HeartbeatInterval", "300"),
        ("MeterValueSampleInterval", "60"),
        ("ClockAlignedDataInterval", "0"),
        ("ConnectionTimeOut", "60"),
        ("MessageTimeout", "30"),
        ("WebSocketPingInterval", "30"),
        ("TransactionMessageAttempts", "3"),
        ("TransactionMessageRetryInterval", "60"),
        ("ResetRetries", "1"),
        ("LocalAuthorizeOffline", "true"),
        ("LocalPreAuthorize", "false"),
        ("AuthorizeRemoteTxRequests", "false"),
        ("StopTransactionOnEVSideDisconnect", "true"),
        ("StopTransactionOnInvalidId", "true"),
        ("UnlockConnectorOnEVSideDisconnect", "true"),
        ("MeterValuesSampledData", "Energy.Active.Import.Register"),
        ("MeterValuesAlignedData", "Energy.Active.Import.Register"),
        ("StopTxnSampledData", ""),
        ("StopTxnAlignedData", ""),
        ("ConnectorPhaseRotation", "Unknown"),
        ("GetConfigurationMaxKeys", "100"),
        ("MeterValuesSampledDataMaxLength", "20"),
        ("StopTxnAlignedDataMaxLength", "20"),
        ("AuthorizationCacheEnabled", "true"),
        ("AllowOfflineTxForUnknownId", "false"),
        ("MinimumStatusDuration", "0"),
        ("SecurityProfile", "0"),
    ],
)
def test_defaults(name: str, default: str) -> None:
    assert make().get(name) == default


def test_table_is_consistent() -> None:
    for spec in KEYS:
        if spec.kind == "csl":
            assert (spec.csl_values is None) != (spec.csl_item_check is None), spec.name
        if spec.max_items_key is not None:
            assert lookup(spec.max_items_key) is not None, spec.name
        if spec.access == "RW":
            assert spec.default is not None and not spec.derived, spec.name
        if spec.default is not None:  # every default is a value the key can take
            assert validate_file_value(spec.name, spec.default) == spec.default, spec.name
    assert lookup("AuthorizationKey") == next(s for s in KEYS if s.access == "W")
    assert config_keys.IMPLEMENTED_FEATURES <= FEATURES


def test_every_key_is_documented() -> None:
    """The key table of docs/configuration.md is written by hand; this keeps it true to KEYS."""
    docs = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text(encoding="utf-8")
    rows = {m[1]: m[0] for m in re.finditer(r"^\| `(\w+)` \|.*$", docs, flags=re.MULTILINE)}
    for spec in KEYS:
        assert spec.name in rows, f"{spec.name} is missing from the key table of docs/configuration.md"
        cells = [c.strip() for c in rows[spec.name].strip("|").split("|")]
        assert cells[1] == spec.access, spec.name
        default = {None: "(none)", "": "(empty)"}.get(spec.default, f"`{spec.default}`")
        assert cells[3] == default, spec.name
        assert ("*Computed" in cells[4]) == spec.derived, spec.name
        if spec.feature is None or spec.feature in config_keys.IMPLEMENTED_FEATURES:
            assert cells[5] == "yes", spec.name
        else:
            assert cells[5] == f"not yet (`{spec.feature}`)", spec.name


# -- ChangeConfiguration --------------------------------------------------------

CHANGE_CASES = [
    # ints: decimal, in range
    ("HeartbeatInterval", "60", "Accepted"),
    ("HeartbeatInterval", "0", "Accepted"),
    ("HeartbeatInterval", "86400", "Accepted"),
    ("HeartbeatInterval", "86401", "Rejected"),
    ("HeartbeatInterval", "-1", "Rejected"),
    ("HeartbeatInterval", "abc", "Rejected"),
    ("HeartbeatInterval", "1.5", "Rejected"),
    ("HeartbeatInterval", "0x10", "Rejected"),
    ("HeartbeatInterval", "", "Rejected"),
    ("MeterValueSampleInterval", "0", "Accepted"),
    ("ClockAlignedDataInterval", "900", "Accepted"),
    ("ConnectionTimeOut", "0", "Rejected"),
    ("ConnectionTimeOut", "1", "Accepted"),
    ("MessageTimeout", "0", "Rejected"),
    ("MessageTimeout", "600", "Accepted"),
    ("MessageTimeout", "601", "Rejected"),
    ("TransactionMessageAttempts", "99999999999", "Rejected"),  # beyond 32 bits
    ("WebSocketPingInterval", "-5", "Rejected"),
    ("WebSocketPingInterval", "0", "Accepted"),  # the keepalive reads it live
    ("SecurityProfile", "4", "Rejected"),
    ("SecurityProfile", "1", "Accepted"),
    # booleans: true/false in any case
    ("LocalPreAuthorize", "true", "Accepted"),
    ("LocalPreAuthorize", "FALSE", "Accepted"),
    ("LocalPreAuthorize", "yes", "Rejected"),
    ("LocalPreAuthorize", "1", "Rejected"),
    ("AuthorizeRemoteTxRequests", "true", "Accepted"),
    ("StopTransactionOnEVSideDisconnect", "false", "Accepted"),
    ("UnlockConnectorOnEVSideDisconnect", "false", "Accepted"),
    # lists
    ("MeterValuesSampledData", "Energy.Active.Import.Register,Voltage.L1", "Accepted"),
    ("MeterValuesSampledData", "", "Accepted"),
    ("MeterValuesSampledData", "Voltage.L4", "Rejected"),
    ("MeterValuesSampledData", "Volts", "Rejected"),
    ("MeterValuesSampledData", "Voltage,,Current.Import", "Rejected"),
    ("MeterValuesSampledData", "Voltage,Voltage", "Rejected"),
    ("StopTxnAlignedData", "Energy.Active.Import.Interval", "Accepted"),
    ("ConnectorPhaseRotation", "0.RST,1.RTS,2.SRT", "Accepted"),
    ("ConnectorPhaseRotation", "NotApplicable", "Accepted"),
    ("ConnectorPhaseRotation", "3.RST", "Rejected"),  # there are 2 connectors
    ("ConnectorPhaseRotation", "1.RST,1.TRS", "Rejected"),
    ("ConnectorPhaseRotation", "RSX", "Rejected"),
    # strings and the secret
    ("CpoName", "Example CPO", "Accepted"),
    ("CpoName", "x" * 501, "Rejected"),
    ("AuthorizationKey", AUTH_KEY, "Accepted"),
    ("AuthorizationKey", "00" * 16, "Accepted"),
    ("AuthorizationKey", "00" * 20, "Accepted"),
    ("AuthorizationKey", "0" * 31, "Rejected"),
    ("AuthorizationKey", "0" * 33, "Rejected"),
    ("AuthorizationKey", "00" * 21, "Rejected"),
    ("AuthorizationKey", "zz" * 16, "Rejected"),
    ("AuthorizationKey", "OCA_OCTT_admin_test", "Rejected"),
    # read-only and derived keys
    ("NumberOfConnectors", "3", "Rejected"),
    ("GetConfigurationMaxKeys", "10", "Rejected"),
    ("SupportedFeatureProfiles", "Core", "Rejected"),
    ("MeterValuesSampledDataMaxLength", "50", "Rejected"),
    ("AdditionalRootCertificateCheck", "true", "Rejected"),
    ("ChargingScheduleAllowedChargingRateUnit", "Current", "Rejected"),
    # unknown keys
    ("HeartBeatIntervall", "60", "NotSupported"),
    ("", "1", "NotSupported"),
]


@pytest.mark.parametrize(("key", "value", "status"), CHANGE_CASES)
def test_change_answers(key: str, value: str, status: str) -> None:
    config = make()
    before = config.get_configuration(None)
    outcome = config.change(key, value)
    assert outcome.status == status, outcome.reason
    assert outcome.reason
    if status in ("Rejected", "NotSupported"):
        assert config.get_configuration(None) == before  # nothing changed
        assert config.changed_values() == {}


def test_keys_of_absent_features_are_not_supported() -> None:
    config = make(features=frozenset())
    outcome = config.change("AuthorizationCacheEnabled", "false")
    assert (outcome.status, outcome.key) == ("NotSupported", "AuthorizationCacheEnabled")
    assert "not implemented" in outcome.reason
    assert not config.exists("AuthorizationCacheEnabled")
    with pytest.raises(UnknownKey):
        config.get("AuthorizationCacheEnabled")
    assert config.get_configuration(["AuthorizationCacheEnabled"]) == ([], ["AuthorizationCacheEnabled"])
    assert config.change("AuthorizationKey", AUTH_KEY).status == "NotSupported"


def test_fixed_values_are_read_only_and_beat_the_file() -> None:
    config = make(
        fixed={"UnlockConnectorOnEVSideDisconnect": "false"},
        initial={"UnlockConnectorOnEVSideDisconnect": "true"},
    )
    assert config.get_bool("UnlockConnectorOnEVSideDisconnect") is False
    assert config.change("UnlockConnectorOnEVSideDisconnect", "true").status == "Rejected"
    entries, _ = config.get_configuration(["UnlockConnectorOnEVSideDisconnect"])
    assert entries == [KeyEntry("UnlockConnectorOnEVSideDisconnect", True, "false")]
    ignored = config.restore({"UnlockConnectorOnEVSideDisconnect": "true"})
    assert ignored == ["UnlockConnectorOnEVSideDisconnect"]


def test_values_are_normalised() -> None:
    config = make()
    assert config.change("HeartbeatInterval", "+0090").status == "Accepted"
    assert config.get("HeartbeatInterval") == "90"
    config.change("LocalPreAuthorize", "True")
    assert config.get("LocalPreAuthorize") == "true"
    config.change("MeterValuesSampledData", " voltage.l1 , CURRENT.IMPORT.L2-L3 ")
    assert config.get("MeterValuesSampledData") == "Voltage.L1,Current.Import.L2-L3"
    config.change("ConnectorPhaseRotation", "0.rst,02.tsr")
    assert config.get_list("ConnectorPhaseRotation") == ["0.RST", "2.TSR"]


def test_reboot_required_is_stored_but_effective_only_after_apply_pending() -> None:
    # No standard key needs a reboot today; the mechanism is kept for those that will.
    keys = tuple(
        dataclasses.replace(spec, reboot_required=True) if spec.name == "WebSocketPingInterval" else spec
        for spec in key_specs.KEYS
    )
    config = Configuration(FEATURES, FIXED, {}, keys=keys)
    seen: list[tuple[str, str]] = []
    config.on_change = lambda key, value: seen.append((key, value))
    outcome = config.change("websocketpinginterval", "10")
    assert (outcome.status, outcome.key) == ("RebootRequired", "WebSocketPingInterval")
    assert config.get_int("WebSocketPingInterval") == 30
    assert config.changed_values() == {"WebSocketPingInterval": "10"}
    assert seen == []
    assert config.apply_pending() == ["WebSocketPingInterval"]
    assert config.get_int("WebSocketPingInterval") == 10
    assert config.apply_pending() == []


def test_on_change_hears_accepted_changes_only() -> None:
    config = make()
    seen: list[tuple[str, str]] = []
    config.on_change = lambda key, value: seen.append((key, value))
    config.change("heartbeatINTERVAL", "0120")
    config.change("HeartbeatInterval", "nope")
    config.change("NumberOfConnectors", "5")
    config.change("AuthorizationKey", AUTH_KEY)
    assert seen == [("HeartbeatInterval", "120"), ("AuthorizationKey", REDACTED)]


# -- reading -----------------------------------------------------------------------


def test_lookup_is_case_insensitive_and_reports_the_canonical_name() -> None:
    config = make()
    assert config.get("heartbeatinterval") == config.get("HEARTBEATINTERVAL") == "300"
    assert config.exists("metervaluessampleddata")
    spec = config.lookup("connectiontimeout")
    assert spec is not None and spec.name == "ConnectionTimeOut"
    assert config.change("connectiontimeout", "30").key == "ConnectionTimeOut"
    entries, unknown = config.get_configuration(["HEARTBEATINTERVAL"])
    assert entries == [KeyEntry("HeartbeatInterval", False, "300")] and unknown == []
    assert lookup("cponame") is not None and lookup("nope") is None


def test_typed_accessors() -> None:
    config = make()
    assert config.get_int("HeartbeatInterval") == 300
    assert config.get_bool("LocalAuthorizeOffline") is True
    assert config.get_list("MeterValuesSampledData") == ["Energy.Active.Import.Register"]
    assert config.get_list("StopTxnSampledData") == []
    assert config.get_list("SupportedFeatureProfiles") == ["Core", "SmartCharging"]
    with pytest.raises(TypeError):
        config.get_bool("HeartbeatInterval")
    with pytest.raises(UnknownKey):
        config.get_int("NoSuchKey")


def test_get_configuration_without_keys_lists_every_present_key_sorted() -> None:
    config = make(fixed={"UnlockConnectorOnEVSideDisconnect": "false"})
    entries, unknown = config.get_configuration(None)
    assert unknown == []
    assert [e.key for e in entries] == sorted((s.name for s in KEYS), key=str.lower)
    assert config.get_configuration([]) == (entries, [])
    by_key = {e.key: e for e in entries}
    assert by_key["HeartbeatInterval"] == KeyEntry("HeartbeatInterval", False, "300")
    assert by_key["NumberOfConnectors"] == KeyEntry("NumberOfConnectors", True, "2")
    assert by_key["AdditionalRootCertificateCheck"].readonly
    assert by_key["UnlockConnectorOnEVSideDisconnect"].readonly
    assert by_key["AuthorizationKey"] == KeyEntry("AuthorizationKey", False, None)


def test_get_configuration_of_a_core_only_charge_point() -> None:
    entries, _ = make(features=frozenset()).get_configuration(None)
    keys = {e.key for e in entries}
    assert keys == {s.name for s in KEYS if s.feature is None}
    assert "MessageTimeout" in keys and "AuthorizationCacheEnabled" not in keys


def test_get_configuration_with_keys_answers_in_order_once_with_unknown_ones() -> None:
    config = make(features=frozenset())
    entries, unknown = config.get_configuration(
        ["MessageTimeout", "Nope", "HeartbeatInterval", "messagetimeout", "LocalAuthListEnabled", "Nope"]
    )
    assert [e.key for e in entries] == ["MessageTimeout", "HeartbeatInterval"]
    assert unknown == ["Nope", "LocalAuthListEnabled"]


def test_get_configuration_truncates_known_keys_to_max_keys() -> None:
    config = make(fixed={"GetConfigurationMaxKeys": "2"})
    entries, unknown = config.get_configuration(["HeartbeatInterval", "X", "ResetRetries", "MessageTimeout"])
    assert [e.key for e in entries] == ["HeartbeatInterval", "ResetRetries"]
    assert unknown == ["X"]
    assert len(config.get_configuration(None)[0]) > 2  # "all keys" is not capped


def test_write_only_key_is_never_revealed() -> None:
    config = make()
    outcome = config.change("authorizationkey", AUTH_KEY)
    assert outcome.status == "Accepted" and AUTH_KEY not in outcome.reason
    with pytest.raises(WriteOnlyKey):
        config.get("AuthorizationKey")
    for listed in (None, ["AuthorizationKey"]):
        entries, _ = config.get_configuration(listed)
        assert all(AUTH_KEY not in (e.value or "") for e in entries)
        assert KeyEntry("AuthorizationKey", False, None) in entries
    assert config.secret("AUTHORIZATIONKEY") == AUTH_KEY
    bad = config.change("AuthorizationKey", "secret-but-not-hex")
    assert bad.status == "Rejected" and "secret-but-not-hex" not in bad.reason
    with pytest.raises(UnknownKey):
        config.secret("HeartbeatInterval")
    assert make().secret("AuthorizationKey") is None


# -- measurands -------------------------------------------------------------------


def test_every_measurand_with_and_without_phase_is_accepted() -> None:
    assert len(MEASURANDS) == 22 and len(PHASES) == 10
    config = make()
    for measurand in MEASURANDS:
        assert config.change("MeterValuesSampledData", measurand).status == "Accepted", measurand
        for phase in PHASES:
            value = f"{measurand}.{phase}"
            assert config.change("StopTxnSampledData", value).status == "Accepted", value
            assert config.get("StopTxnSampledData") == value


def test_the_device_hook_rejects_what_the_device_cannot_measure() -> None:
    asked: list[str] = []

    def supported(measurand: str) -> bool:
        asked.append(measurand)
        return not measurand.startswith(("SoC", "Temperature"))

    config = make(measurand_supported=supported)
    outcome = config.change("MeterValuesSampledData", "voltage.l1,SoC")
    assert outcome.status == "Rejected" and "SoC" in outcome.reason
    assert config.get("MeterValuesSampledData") == "Energy.Active.Import.Register"
    assert "Voltage.L1" in asked  # the hook sees canonical spellings
    assert config.change("MeterValuesAlignedData", "Voltage.L1,Power.Active.Import").status == "Accepted"
    with pytest.raises(KeyValueError, match="Temperature"):
        make(initial={"StopTxnSampledData": "Temperature"}, measurand_supported=supported)


def test_defaults_are_not_checked_against_the_device() -> None:
    config = make(measurand_supported=lambda m: False)  # a charger without a meter still starts
    assert config.get("MeterValuesSampledData") == "Energy.Active.Import.Register"


def test_lists_are_bounded_by_their_max_length_key() -> None:
    config = make()
    twenty_one = ",".join([*MEASURANDS[:20], "Voltage.L1"])
    outcome = config.change("MeterValuesSampledData", twenty_one)
    assert outcome.status == "Rejected" and "MeterValuesSampledDataMaxLength" in outcome.reason
    assert config.change("MeterValuesSampledData", ",".join(MEASURANDS[:20])).status == "Accepted"
    small = make(fixed={"StopTxnSampledDataMaxLength": "2"})
    assert small.change("StopTxnSampledData", "Voltage,Frequency,SoC").status == "Rejected"
    assert small.change("StopTxnSampledData", "Voltage,Frequency").status == "Accepted"


# -- persistence and SecurityProfile ---------------------------------------------


def test_changed_values_and_restore_round_trip() -> None:
    first = make(initial={"HeartbeatInterval": "600"})
    first.change("HeartbeatInterval", "120")
    first.change("MeterValuesSampledData", "Voltage.L1,Current.Import")
    first.change("WebSocketPingInterval", "15")  # pending until restart
    first.change("AuthorizationKey", AUTH_KEY)
    first.change("ResetRetries", "bad")
    saved = first.changed_values()
    assert saved == {
        "HeartbeatInterval": "120",
        "MeterValuesSampledData": "Voltage.L1,Current.Import",
        "WebSocketPingInterval": "15",
        "AuthorizationKey": AUTH_KEY,
    }
    second = make(initial={"HeartbeatInterval": "600"})  # the file did not change; the CS's value wins
    assert second.restore(saved) == []
    assert second.get("HeartbeatInterval") == "120"
    assert second.get("WebSocketPingInterval") == "15"
    assert second.secret("AuthorizationKey") == AUTH_KEY
    assert second.changed_values() == saved


def test_restore_ignores_what_no_longer_fits() -> None:
    config = make(features=frozenset({"auth_cache"}), measurand_supported=lambda m: m != "SoC")
    ignored = config.restore(
        {
            "NoSuchKey": "1",
            "LocalAuthListEnabled": "true",  # feature gone
            "NumberOfConnectors": "4",  # derived
            "HeartbeatInterval": "-3",  # invalid
            "MeterValuesSampledData": "SoC",  # the device cannot measure it any more
            "AuthorizationCacheEnabled": "false",
            "localpreauthorize": "TRUE",
        }
    )
    assert ignored == [
        "NoSuchKey",
        "LocalAuthListEnabled",
        "NumberOfConnectors",
        "HeartbeatInterval",
        "MeterValuesSampledData",
    ]
    assert config.get_bool("AuthorizationCacheEnabled") is False
    assert config.changed_values() == {"AuthorizationCacheEnabled": "false", "LocalPreAuthorize": "true"}


def test_security_profile_only_increases() -> None:
    config = make(initial={"SecurityProfile": "1"})
    assert config.change("SecurityProfile", "1").status == "Rejected"
    assert config.change("SecurityProfile", "0").status == "Rejected"
    outcome = config.change("SecurityProfile", "2")
    assert outcome.status == "Accepted"
    assert config.change("SecurityProfile", "2").status == "Rejected"
    assert config.get_int("SecurityProfile") == 2
    restarted = make(initial={"SecurityProfile": "3"})  # the file was raised since
    assert restarted.restore(config.changed_values()) == ["SecurityProfile"]
    assert restarted.get_int("SecurityProfile") == 3


# -- construction -------------------------------------------------------------------


def test_construction_errors_name_the_key() -> None:
    with pytest.raises(ValueError, match="NumberOfConnectors"):
        Configuration(FEATURES, {"SupportedFeatureProfiles": "Core"})
    with pytest.raises(ValueError, match="HeartBeet"):
        make(initial={"HeartBeet": "1"})
    with pytest.raises(ValueError, match="computed by the bridge"):
        make(initial={"GetConfigurationMaxKeys": "5"})
    with pytest.raises(KeyValueError, match="HeartbeatInterval"):
        make(initial={"HeartbeatInterval": "-1"})
    with pytest.raises(ValueError, match="write-only"):
        make(fixed={"AuthorizationKey": AUTH_KEY})
    with pytest.raises(ValueError, match="LocalAuthListEnabled"):
        make(features=frozenset(), initial={"LocalAuthListEnabled": "true"})


def test_initial_values_take_any_case_and_are_normalised() -> None:
    initial = {"heartbeatinterval": "0060", "StopTxnSampledData": "energy.active.import.REGISTER"}
    config = make(initial=initial)
    assert config.get("HeartbeatInterval") == "60"
    assert config.get("StopTxnSampledData") == "Energy.Active.Import.Register"
    assert config.changed_values() == {}  # the file's values are not the central system's


# -- file values and suggestions --------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "wire"),
    [
        ("HeartbeatInterval", 60, "60"),
        ("heartbeatinterval", "60", "60"),
        ("LocalPreAuthorize", True, "true"),
        ("LocalPreAuthorize", "False", "false"),
        ("MeterValuesSampledData", "Voltage.L1, Current.Import", "Voltage.L1,Current.Import"),
        ("StopTxnSampledData", "", ""),
        ("CpoName", 42, "42"),
        ("SecurityProfile", 0, "0"),
    ],
)
def test_validate_file_value_accepts(name: str, value: str | int | bool, wire: str) -> None:
    assert validate_file_value(name, value) == wire


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("HeartbeatInterval", True, "whole number from 0 to 86400"),
        ("HeartbeatInterval", 60.0, "whole number"),
        ("HeartbeatInterval", 90000, "from 0 to 86400"),
        ("HeartbeatInterval", "5m", "whole number"),
        ("LocalPreAuthorize", 1, "true or false"),
        ("LocalPreAuthorize", "on", "true or false"),
        ("MeterValuesSampledData", "Voltage.L9", "measurands"),
        ("MeterValuesSampledData", ",".join(MEASURANDS), "at most 20 items"),
        ("HeartbeatIntervall", 60, "did you mean HeartbeatInterval"),
        ("ConnectorPhaseRotation", "RST,RTS", "twice"),
    ],
)
def test_validate_file_value_says_what_is_allowed(name: str, value: str | int | bool, message: str) -> None:
    with pytest.raises(KeyValueError, match=message):
        validate_file_value(name, value)


def test_suggest() -> None:
    assert suggest("HeartbeatIntervall") == "HeartbeatInterval"
    assert suggest("metervaluesampleinterval") == "MeterValueSampleInterval"
    assert suggest("Completely different") is None
