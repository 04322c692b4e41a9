"""What an OCPP charger honours and how its energy is switched (adapters/chargers/ocpp_device_support.py,
pure): answers to GetConfiguration passed in, the choices read back. The wire is in
test_ocpp_device_switching.py."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from adapters.chargers.ocpp_device_options import OcppDeviceOptions
from adapters.chargers.ocpp_device_profiles import DEFAULT_ID, PAUSE_ID, default_profile, pause_profile
from adapters.chargers.ocpp_device_support import (
    Off,
    Support,
    assumed_core,
    energy_off,
    from_configuration,
    limit,
    lines,
    phases_drawing,
)


def keys(**values: str) -> list[dict[str, Any]]:
    return [{"key": k, "readonly": True, "value": v} for k, v in values.items()]


def test_what_a_smart_charging_charger_says() -> None:
    said = from_configuration(
        keys(
            SupportedFeatureProfiles="Core,FirmwareManagement, SmartCharging,RemoteTrigger",
            ChargingScheduleAllowedChargingRateUnit="Current,Power",
            AuthorizeRemoteTxRequests="TRUE",
            ChargeProfileMaxStackLevel="8",
        )
    )
    assert said == Support(
        smart_charging=True, rate_units=("A", "W"), authorize_remote_tx=True, max_stack_level=8
    )
    assert said.rate_unit == "A"  # A where it takes both
    assert lines("auto", said) == [
        "charger says: SmartCharging: yes; rate unit: A/W; AuthorizeRemoteTxRequests: true; "
        "ChargeProfileMaxStackLevel: 8",
        "energy switched on by RemoteStartTransaction; off by a 0 profile while the vehicle is plugged, "
        "else RemoteStopTransaction (energy_switch: auto)",
    ]


def test_units_in_either_spelling_and_what_is_not_said() -> None:
    power = from_configuration(
        keys(SupportedFeatureProfiles="Core,SmartCharging", ChargingScheduleAllowedChargingRateUnit="W")
    )
    assert power.rate_unit == "W" and power.authorize_remote_tx is None and power.max_stack_level is None
    assert (
        from_configuration(
            keys(
                SupportedFeatureProfiles="Core,SmartCharging", ChargingScheduleAllowedChargingRateUnit="Power"
            )
        ).rate_unit
        == "W"
    )
    # A unit it cannot name, or none: A, which every SmartCharging charger takes.
    odd = from_configuration(
        keys(
            SupportedFeatureProfiles="SmartCharging",
            ChargingScheduleAllowedChargingRateUnit="Watts?",
            ChargeProfileMaxStackLevel="x",
        )
    )
    assert odd.rate_units == ("A",) and odd.max_stack_level is None
    core = from_configuration(keys(SupportedFeatureProfiles="Core,RemoteTrigger"))
    assert not core.smart_charging and core.core_only is None  # it said so: no assumption
    assert "SmartCharging: no" in lines("auto", core)[0]
    assert lines("auto", core)[1].startswith(
        "energy switched on by RemoteStartTransaction; off by RemoteStopTransaction"
    )


def test_a_charger_that_does_not_say_is_core_only_and_the_note_says_why() -> None:
    silent = from_configuration(keys(ChargeProfileMaxStackLevel="3"))
    assert silent.core_only == "GetConfiguration did not name its SupportedFeatureProfiles"
    assert not silent.smart_charging
    refused = assumed_core("GetConfiguration answered CALLERROR NotImplemented")
    assert (
        lines("auto", refused)[0]
        == "charger says: Core only assumed: GetConfiguration answered CALLERROR NotImplemented"
    )
    assert from_configuration([{"nonsense": 1}, "x"]).core_only is not None  # type: ignore[list-item]


def test_how_energy_is_switched_off() -> None:
    smart = Support(smart_charging=True)
    core = Support()
    on = {"in_transaction": True, "plugged": True}
    assert energy_off("auto", smart, **on) is Off.PAUSE
    assert energy_off("auto", core, **on) is Off.REMOTE_STOP
    assert energy_off("remote", smart, **on) is Off.REMOTE_STOP  # the option says: transactions only
    assert energy_off("profile", core, **on) is Off.PAUSE  # the option says: it honours profiles
    # Unplugged: its transaction ends (the charger ends it on its own at unplug; one left over is stopped).
    assert energy_off("auto", smart, in_transaction=True, plugged=False) is Off.REMOTE_STOP
    assert energy_off("auto", smart, in_transaction=False, plugged=True) is Off.NOTHING
    assert energy_off("profile", smart, **on, session_ends=True) is Off.REMOTE_STOP  # the bridge's ended
    failed = replace(smart, pause_refused="energy still flowed at 0")
    assert energy_off("auto", failed, **on) is Off.REMOTE_STOP
    assert "a 0 A pause failed: energy still flowed at 0" in lines("auto", failed)[1]


def test_a_refused_remote_start_is_said() -> None:
    refused = replace(Support(), remote_start_refused="Rejected")
    assert lines("auto", refused)[1].startswith(
        "energy switched on by its own StartTransaction (RemoteStartTransaction refused: Rejected)"
    )


def test_limits_in_a_or_w() -> None:
    assert limit(10.04, "A", 3, None) == 10.0
    assert limit(16, "W", 3, None) == 11040.0  # 16 A x 3 x 230 V nominal
    assert limit(16, "W", 1, (240.0,)) == 3840.0  # the voltage it reports
    assert limit(10, "W", 3, (228.0, 232.0, 230.0)) == 6900.0
    assert limit(10, "W", 3, (0.0, 0.0, 0.0)) == 6900.0  # not a phase voltage: nominal
    assert limit(0, "W", 3, None) == 0.0


def test_the_profiles() -> None:
    setpoint = default_profile(11040.0, "W")
    assert (
        setpoint["chargingProfileId"] == DEFAULT_ID
        and setpoint["chargingProfilePurpose"] == "TxDefaultProfile"
    )
    assert setpoint["chargingSchedule"]["chargingRateUnit"] == "W"
    assert setpoint["chargingSchedule"]["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 11040.0}]
    pause = pause_profile(77, "A")
    assert pause["chargingProfileId"] == PAUSE_ID != DEFAULT_ID
    assert (pause["chargingProfilePurpose"], pause["transactionId"], pause["stackLevel"]) == (
        "TxProfile",
        77,
        0,
    )
    assert pause["chargingSchedule"]["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 0.0}]


def test_the_energy_switch_option_names_its_choices() -> None:
    good = OcppDeviceOptions(identity="WB-1", password="pw")
    assert good.energy_switch == "auto" and good.validate() == []
    for mode in ("remote", "profile"):
        assert replace(good, energy_switch=mode).validate() == []
    assert replace(good, energy_switch="Auto").validate() == [
        ("energy_switch", "must be one of auto, remote, profile")
    ]


def test_the_phases_drawing_count_above_1_a() -> None:
    assert phases_drawing((6.2, 0.4, 0.9)) == 1  # a single-phase vehicle; the others are noise
    assert phases_drawing((6.0, 6.1, 5.9)) == 3
    assert phases_drawing((0.0, 0.0, 0.0)) == 0 and phases_drawing(None) == 0
