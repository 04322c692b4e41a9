"""The evcc loadpoint templates over evcc's MQTT API (adapters/templates/evcc-loadpoint-mqtt*.yaml)
through the bridge: the real daemon, the strict central system, a real mosquitto and the evcc emulator.

Report only (evcc-loadpoint-mqtt, the request of evcc issues #32989 and #30232): a car connecting at a
loadpoint evcc charges in mode `now` is a whole session in OCPP (free vend), and the bridge never sets
anything in evcc: it refuses the remote start and stop and the charging profiles it could not carry
out, and offers no SmartCharging. With control (evcc-loadpoint-mqtt-control): RemoteStart/Stop reach
evcc as its mode now/off, a charging profile's limit as its maxCurrent. evcc going offline (its last
will) is Faulted, and back, within one transaction.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from ocpp.exceptions import NotSupportedError
from ocpp.v16 import call

from bridge.probe import probe
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.emulators.evcc import EvccEmulator, Loadpoint
from tests.helpers.flow import ready

CP = "CP-1"
ENERGY = "Energy.Active.Import.Register"
OCPP = {"MeterValueSampleInterval": 1, "MeterValuesSampledData": [ENERGY]}
CONNECTOR = {"poll_interval_s": 0.2, "faulted_after_failed_polls": 2}
SECRET = "s3cret-pw"


@pytest.fixture
async def evcc(broker: Any) -> AsyncIterator[EvccEmulator]:
    lp = Loadpoint(mode="now", time_scale=20.0)
    async with EvccEmulator([lp], broker_url=broker.url, interval_s=0.2) as emulator:
        yield emulator


def with_password(broker: Any) -> str:
    """The broker's URL with a user and password (mosquitto without a password file takes any)."""
    return f"mqtt://evcc:{SECRET}@127.0.0.1:{broker.port}"


# evcc's pulse (evcc/updated) older than this: evcc is gone. The emulator's cycle is 0.2 s; evcc's
# default is 30 s, the templates' max_age_s 90 s.
MAX_AGE_S = 1.5


def config_for(
    csms: StrictCentralSystem,
    broker: Any,
    tmp_path: Path,
    template: str,
    url: str | None = None,
    **fields: Any,
) -> Any:
    params = {"broker": url or broker.url, "max_age_s": MAX_AGE_S}
    charger = {"type": "generic", "template": template, "params": params}
    return make_config(
        csms.url, tmp_path, ocpp=OCPP, charger=charger, connector_fields={**CONNECTOR, **fields}
    )


def energy_of(payload: dict[str, Any]) -> float:
    (value,) = [v for mv in payload["meterValue"] for v in mv["sampledValue"] if v.get("measurand") == ENERGY]
    return float(value["value"])


def statuses(csms: StrictCentralSystem) -> list[str]:
    return [p["status"] for p in csms.calls(CP, "StatusNotification") if p["connectorId"] == 1]


def set_topics(evcc: EvccEmulator) -> list[tuple[str, str]]:
    """(key, payload) of every set message evcc received, its prefix and loadpoint cut off."""
    return [(topic.split("/")[3], payload) for topic, payload in evcc.setters]


async def test_report_only_a_whole_session_and_nothing_set_in_evcc(
    csms: StrictCentralSystem, evcc: EvccEmulator, broker: Any, tmp_path: Path
) -> None:
    lp = evcc.loadpoints[0]
    config = config_for(csms, broker, tmp_path, "evcc-loadpoint-mqtt", free_vend_id_tag="EVCC-GARAGE")
    async with running(config):
        await ready(csms)
        lp.plug()  # evcc, in mode now, charges the car at once
        start = await csms.wait_for_call(CP, "StartTransaction")
        await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Charging")
        rising = await csms.wait_for_call(
            CP, "MeterValues", lambda p: energy_of(p) > start["meterStart"], timeout=10
        )
        lp.unplug()
        stop = await csms.wait_for_call(CP, "StopTransaction")
        await csms.wait_until(lambda: statuses(csms)[-1:] == ["Available"], what="Available")
    assert (start["idTag"], start["connectorId"]) == ("EVCC-GARAGE", 1)
    assert 1_234_500 <= start["meterStart"] < energy_of(rising) <= stop["meterStop"]  # 1234.5 kWh on
    assert (stop["transactionId"], stop["reason"]) == (rising["transactionId"], "EVDisconnected")
    assert stop["meterStop"] <= round(lp.total_import_kwh * 1000)  # evcc publishes whole Wh (kWh, 3 places)
    seen = statuses(csms)  # Preparing only when a reading shows the car before evcc charges it
    assert seen[0] == seen[-1] == "Available" and "Charging" in seen
    assert set(seen) <= {"Available", "Preparing", "Charging"}
    # Report only: evcc's mode and current were never touched; nothing was written at all.
    assert lp.mode == "now" and lp.max_current == 16.0
    assert set_topics(evcc) == []


async def test_with_control_the_mode_and_a_profile_limit_reach_evcc(
    csms: StrictCentralSystem, evcc: EvccEmulator, broker: Any, tmp_path: Path
) -> None:
    lp = evcc.loadpoints[0]
    lp.mode = "pv"  # evcc's own mode, until the bridge takes over
    async with running(config_for(csms, broker, tmp_path, "evcc-loadpoint-mqtt-control")):
        await ready(csms)
        answer = await csms.call(CP, call.GetConfiguration(key=["SupportedFeatureProfiles"]))
        (profiles,) = answer.configuration_key
        lp.plug()
        await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Preparing")
        answer = await csms.call(CP, call.RemoteStartTransaction(id_tag="REMOTE-1", connector_id=1))
        assert answer.status == "Accepted"
        await csms.wait_for_call(CP, "StartTransaction")
        await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Charging")
        assert lp.mode == "now" and lp.charging
        await csms.wait_until(lambda: lp.max_current == 16.0, what="max_current_a without a profile")
        profile = {
            "chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Relative",
            "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [
                {"startPeriod": 0, "limit": 10.5}]},
        }  # fmt: skip
        answer = await csms.call(CP, call.SetChargingProfile(connector_id=0, cs_charging_profiles=profile))
        assert answer.status == "Accepted"
        await csms.wait_until(lambda: lp.max_current == 10.5, what="the limit as evcc's maxCurrent")
        await csms.wait_until(lambda: lp.currents == [10.5, 10.5, 10.5], what="the car at 10.5 A")
        transaction_id = csms.last_transaction_id
        answer = await csms.call(CP, call.RemoteStopTransaction(transaction_id=transaction_id))
        assert answer.status == "Accepted"
        stop = await csms.wait_for_call(CP, "StopTransaction")
        await csms.wait_until(lambda: lp.mode == "off" and not lp.charging, what="evcc off")
    assert (stop["transactionId"], stop["reason"]) == (transaction_id, "Remote")
    sent = set_topics(evcc)
    assert ("mode", "now") in sent and ("mode", "off") in sent
    assert ("maxCurrent", "16") in sent and ("maxCurrent", "10.5") in sent
    assert "enabled" not in {key for key, _ in sent}  # evcc has no setter for it
    assert "SmartCharging" in profiles["value"].split(",")  # with control, as before


@pytest.mark.parametrize(
    ("how", "vendor_code"),
    [
        ("power cut", "DeviceUnreachable"),  # evcc/updated stops: older than max_age_s
        # A clean stop first deletes the retained values (empty payloads, not values), then offline.
        ("clean stop", "DeviceRefused"),
    ],
)
async def test_evcc_offline_is_faulted_and_back_within_one_transaction(
    csms: StrictCentralSystem, evcc: EvccEmulator, broker: Any, tmp_path: Path, how: str, vendor_code: str
) -> None:
    lp = evcc.loadpoints[0]
    config = config_for(csms, broker, tmp_path, "evcc-loadpoint-mqtt", free_vend_id_tag="EVCC-GARAGE")
    async with running(config):
        await ready(csms)
        lp.plug()
        start = await csms.wait_for_call(CP, "StartTransaction")
        await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Charging")
        await (evcc.power_cut() if how == "power cut" else evcc.stop_mqtt())
        faulted = await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Faulted")
        await (evcc.restore() if how == "power cut" else evcc.start_mqtt())
        await csms.wait_for_call(
            CP, "StatusNotification", lambda p: p["status"] == "Charging", count=2, timeout=10
        )
        before = len(csms.calls(CP, "MeterValues"))
        # Sampling goes on. After a power cut the bridge may first read the restarted evcc's topics
        # empty for some seconds (Faulted again, then back; seen under load): not yet understood, so
        # the wait allows for it (the closing note of issue 18 lists it as not understood yet).
        await csms.wait_for_call(CP, "MeterValues", count=before + 1, timeout=15)
        lp.unplug()
        stop = await csms.wait_for_call(CP, "StopTransaction")
    assert (faulted["errorCode"], faulted["vendorErrorCode"]) == ("OtherError", vendor_code)
    assert len(csms.calls(CP, "StartTransaction")) == 1 and len(csms.calls(CP, "StopTransaction")) == 1
    assert stop["transactionId"] == csms.last_transaction_id and stop["meterStop"] > start["meterStart"]
    assert stop["reason"] == "EVDisconnected"


async def test_report_only_refuses_what_it_cannot_carry_out_and_the_unplug_ends_the_transaction(
    csms: StrictCentralSystem, evcc: EvccEmulator, broker: Any, tmp_path: Path, caplog: Any
) -> None:
    """The bridge cannot stop evcc's charging: RemoteStop is Rejected (§5.12: Accepted says it "will be
    stopped") and the transaction goes on; RemoteStart is Rejected; SmartCharging is not offered, so
    SetChargingProfile is NotSupported; the unplug ends the transaction; the device is never asked to
    switch."""
    lp = evcc.loadpoints[0]
    config = config_for(csms, broker, tmp_path, "evcc-loadpoint-mqtt", free_vend_id_tag="EVCC-GARAGE")
    caplog.set_level("WARNING", logger="bridge")
    async with running(config) as daemon:
        await ready(csms)
        answer = await csms.call(CP, call.GetConfiguration(key=["SupportedFeatureProfiles"]))
        (profiles,) = answer.configuration_key
        lp.plug()
        await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Charging")
        snapshot = daemon.charge_points[CP].snapshot
        await csms.wait_until(lambda: snapshot().connectors[0].transaction_id is not None, what="the id")
        transaction_id = csms.last_transaction_id
        stop_answer = await csms.call(CP, call.RemoteStopTransaction(transaction_id=transaction_id))
        start_answer = await csms.call(CP, call.RemoteStartTransaction(id_tag="REMOTE-1", connector_id=1))
        anywhere = await csms.call(CP, call.RemoteStartTransaction(id_tag="REMOTE-1"))
        profile = {
            "chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Relative",
            "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [
                {"startPeriod": 0, "limit": 8}]},
        }  # fmt: skip
        for cid in (1, 0):  # a profile not advertised: CALLERROR NotSupported, as an action without handler
            with pytest.raises(NotSupportedError):
                await csms.call(CP, call.SetChargingProfile(connector_id=cid, cs_charging_profiles=profile))
        rising = await csms.wait_for_call(  # the transaction goes on, evcc charging
            CP, "MeterValues", lambda p: p.get("transactionId") == transaction_id, count=3, timeout=10
        )
        assert lp.mode == "now" and lp.charging and csms.calls(CP, "StopTransaction") == []
        lp.unplug()
        stop = await csms.wait_for_call(CP, "StopTransaction")
    assert "SmartCharging" not in profiles["value"].split(",") and "Core" in profiles["value"]
    assert (stop_answer.status, start_answer.status, anywhere.status) == ("Rejected",) * 3
    assert (stop["transactionId"], stop["reason"]) == (transaction_id, "EVDisconnected")
    assert stop["meterStop"] >= energy_of(rising) and len(csms.calls(CP, "StartTransaction")) == 1
    assert set_topics(evcc) == [] and lp.max_current == 16.0  # nothing was ever set in evcc
    said = [r.getMessage() for r in caplog.records]
    assert not [m for m in said if "refused to" in m or "has not allowed" in m], said
    assert any("RemoteStopTransaction" in m and "report only" in m for m in said)


async def test_without_a_meter_total_the_loadpoint_is_unreachable_and_no_password_is_shown(
    csms: StrictCentralSystem, broker: Any, tmp_path: Path, caplog: Any
) -> None:
    caplog.set_level("DEBUG")
    lp = Loadpoint(mode="now", has_total_import=False)
    async with EvccEmulator([lp], broker_url=broker.url, interval_s=0.2):
        url = with_password(broker)
        config = config_for(
            csms, broker, tmp_path, "evcc-loadpoint-mqtt", url, free_vend_id_tag="EVCC-GARAGE"
        )
        async with running(config):
            faulted = await csms.wait_for_call(
                CP, "StatusNotification", lambda p: p["status"] == "Faulted", timeout=10
            )
    assert (faulted["errorCode"], faulted["vendorErrorCode"]) == ("OtherError", "DeviceUnreachable")
    assert faulted["info"].startswith("evcc loadpoint 1 (evcc)")
    said = [r.getMessage() for r in caplog.records]
    assert any("evcc loadpoint 1 (evcc)" in m for m in said), said  # the name is in the log
    assert not [m for m in said if SECRET in m]
    assert not [c for c in csms.calls(CP, "StatusNotification") if SECRET in str(c)]


async def test_probe_reads_the_loadpoint_and_sets_nothing(
    csms: StrictCentralSystem, evcc: EvccEmulator, broker: Any, tmp_path: Path
) -> None:
    evcc.loadpoints[0].plug()
    on = {f"evcc/loadpoints/1/{key}": "true" for key in ("connected", "charging", "enabled")}
    await csms.wait_until(lambda: on.items() <= evcc.published.items(), what="the car published")
    lines: list[str] = []
    config = config_for(csms, broker, tmp_path, "evcc-loadpoint-mqtt-control", with_password(broker))
    assert await probe(config, lines.append, timeout_s=5) == 0
    assert lines[0] == "CP-1 connector 1: evcc loadpoint 1 (evcc)"
    assert not [line for line in lines if SECRET in line]
    assert lines[1] == "  plugged: yes; vehicle asks for energy: yes; energy allowed: yes"
    assert lines[2].startswith("  energy register: 1234") and "power: 11040 W" in lines[2]
    assert evcc.setters == []  # read, never set, even with the control template


async def test_min_current_set_to_evccs_keeps_a_lower_limit_from_being_dropped(
    csms: StrictCentralSystem, evcc: EvccEmulator, broker: Any, tmp_path: Path
) -> None:
    """Over MQTT evcc drops a maxCurrent below its minCurrent without a word (it logs it), so the car
    would go on at the old current. With min_current_a set to evcc's minCurrent the bridge never asks
    for less: a lower limit switches the energy off (mode off) instead."""
    lp = evcc.loadpoints[0]
    lp.mode, lp.min_current = "pv", 8.0
    charger = {
        "type": "generic", "template": "evcc-loadpoint-mqtt-control", "params": {"broker": broker.url},
        "min_current_a": 8,
    }  # fmt: skip
    config = make_config(csms.url, tmp_path, ocpp=OCPP, charger=charger, connector_fields=CONNECTOR)
    async with running(config):
        await ready(csms)
        lp.plug()
        await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Preparing")
        answer = await csms.call(CP, call.RemoteStartTransaction(id_tag="REMOTE-1", connector_id=1))
        assert answer.status == "Accepted"
        await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Charging")
        profile = {
            "chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Relative",
            "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [
                {"startPeriod": 0, "limit": 7}]},
        }  # fmt: skip
        answer = await csms.call(CP, call.SetChargingProfile(connector_id=0, cs_charging_profiles=profile))
        assert answer.status == "Accepted"
        await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "SuspendedEVSE")
        assert lp.mode == "off" and not lp.charging
    assert ("maxCurrent", "7") not in set_topics(evcc)


async def test_the_template_reads_evcc_run_by_hand(
    csms: StrictCentralSystem, broker: Any, tmp_path: Path
) -> None:
    """evcc run by hand publishes no `evcc/status` (devices.md §10.1: only a service does): the template
    reads a whole session all the same, and evcc gone (no last will to say so) is Faulted once its
    pulse `evcc/updated` is older than max_age_s."""
    evcc = EvccEmulator([Loadpoint(mode="now")], broker_url=broker.url, service=False)
    config = config_for(csms, broker, tmp_path, "evcc-loadpoint-mqtt", free_vend_id_tag="EVCC-GARAGE")
    async with evcc, running(config):
        await ready(csms)
        evcc.loadpoints[0].plug()
        start = await csms.wait_for_call(CP, "StartTransaction")
        await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Charging", timeout=3)
        before = statuses(csms)
        await evcc.power_cut()
        faulted = await csms.wait_for_call(
            CP, "StatusNotification", lambda p: p["status"] == "Faulted", timeout=10
        )
    assert start["idTag"] == "EVCC-GARAGE" and "Faulted" not in before
    assert faulted["vendorErrorCode"] == "DeviceUnreachable"
