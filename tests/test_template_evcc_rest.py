"""The evcc loadpoint templates over evcc's REST API (adapters/templates/evcc-loadpoint-rest*.yaml)
through the bridge: the real daemon, the strict central system and the evcc emulator over HTTP.

Report only (evcc-loadpoint-rest): a car connecting at a loadpoint evcc charges in mode `now` is a whole
session in OCPP (free vend) and evcc gets no POST; RemoteStart/Stop are Rejected (the bridge could not
carry them out), SmartCharging is not offered and its messages are NotSupported, and the transaction goes
on until the unplug. With control
(evcc-loadpoint-rest-control): the mode and a charging profile's limit reach evcc as POSTs to its
setters. evcc not answering (connection refused) is Faulted, and back, within one transaction.
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


@pytest.fixture
async def evcc() -> AsyncIterator[EvccEmulator]:
    # The second loadpoint is the one bridged: its index in /api/state is 1, its number 2.
    loadpoints = [Loadpoint(title="Carport", mode="off"), Loadpoint(mode="now", time_scale=20.0)]
    async with EvccEmulator(loadpoints) as emulator:
        yield emulator


def config_for(
    csms: StrictCentralSystem, evcc: EvccEmulator, tmp_path: Path, template: str, **fields: Any
) -> Any:
    charger = {"type": "generic", "template": template, "params": {"url": evcc.url, "loadpoint": 2}}
    return make_config(
        csms.url, tmp_path, ocpp=OCPP, charger=charger, connector_fields={**CONNECTOR, **fields}
    )


def energy_of(payload: dict[str, Any]) -> float:
    (value,) = [v for mv in payload["meterValue"] for v in mv["sampledValue"] if v.get("measurand") == ENERGY]
    return float(value["value"])


def posts(evcc: EvccEmulator) -> list[str]:
    return [path for method, path in evcc.requests if method == "POST"]


async def test_report_only_a_whole_session_and_no_post(
    csms: StrictCentralSystem, evcc: EvccEmulator, tmp_path: Path
) -> None:
    lp = evcc.loadpoints[1]
    config = config_for(csms, evcc, tmp_path, "evcc-loadpoint-rest", free_vend_id_tag="EVCC-CARPORT")
    async with running(config):
        await ready(csms)
        lp.plug()
        start = await csms.wait_for_call(CP, "StartTransaction")
        await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Charging")
        rising = await csms.wait_for_call(
            CP, "MeterValues", lambda p: energy_of(p) > start["meterStart"], timeout=10
        )
        lp.unplug()
        stop = await csms.wait_for_call(CP, "StopTransaction")
    assert start["idTag"] == "EVCC-CARPORT" and 1_234_500 <= start["meterStart"] < energy_of(rising)
    assert (stop["transactionId"], stop["reason"]) == (rising["transactionId"], "EVDisconnected")
    assert posts(evcc) == [] and lp.mode == "now"
    # Every reading is one GET of the bridged loadpoint's state, filtered by evcc (0-based: [2-1]).
    gets = {path for method, path in evcc.requests if method == "GET"}
    assert gets and all("jq=.loadpoints%5B2-1%5D" in p or "jq=.loadpoints[2-1]" in p for p in gets)


async def test_report_only_remote_stop_start_and_profiles_are_rejected_and_evcc_charges_on(
    csms: StrictCentralSystem, evcc: EvccEmulator, tmp_path: Path
) -> None:
    lp = evcc.loadpoints[1]
    config = config_for(csms, evcc, tmp_path, "evcc-loadpoint-rest", free_vend_id_tag="EVCC-CARPORT")
    async with running(config) as daemon:
        await ready(csms)
        lp.plug()
        await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Charging")
        snapshot = daemon.charge_points[CP].snapshot
        await csms.wait_until(lambda: snapshot().connectors[0].transaction_id is not None, what="the id")
        transaction_id = csms.last_transaction_id
        stop_answer = await csms.call(CP, call.RemoteStopTransaction(transaction_id=transaction_id))
        start_answer = await csms.call(CP, call.RemoteStartTransaction(id_tag="REMOTE-1"))
        profile = {
            "chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Relative",
            "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [
                {"startPeriod": 0, "limit": 8}]},
        }  # fmt: skip
        # SmartCharging is not advertised (no connector can switch): NotSupported, as an action without
        # a handler, where a charge point offering it would answer Rejected for this connector.
        with pytest.raises(NotSupportedError):
            await csms.call(CP, call.SetChargingProfile(connector_id=1, cs_charging_profiles=profile))
        with pytest.raises(NotSupportedError):
            await csms.call(CP, call.GetCompositeSchedule(connector_id=1, duration=60))
        configuration = await csms.call(CP, call.GetConfiguration(key=["SupportedFeatureProfiles"]))
        await csms.wait_for_call(
            CP, "MeterValues", lambda p: p.get("transactionId") == transaction_id, count=2, timeout=10
        )
        assert lp.charging and csms.calls(CP, "StopTransaction") == []
        lp.unplug()
        stop = await csms.wait_for_call(CP, "StopTransaction")
    assert (stop_answer.status, start_answer.status) == ("Rejected",) * 2
    (profiles,) = configuration.configuration_key
    assert "SmartCharging" not in profiles["value"].split(",")
    assert (stop["transactionId"], stop["reason"]) == (transaction_id, "EVDisconnected")
    assert posts(evcc) == [] and lp.mode == "now"


async def test_with_control_the_mode_and_a_profile_limit_reach_evcc(
    csms: StrictCentralSystem, evcc: EvccEmulator, tmp_path: Path
) -> None:
    lp = evcc.loadpoints[1]
    lp.mode = "pv"  # evcc's own mode, until the bridge takes over
    async with running(config_for(csms, evcc, tmp_path, "evcc-loadpoint-rest-control")):
        await ready(csms)
        lp.plug()
        await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Preparing")
        answer = await csms.call(CP, call.RemoteStartTransaction(id_tag="REMOTE-1", connector_id=1))
        assert answer.status == "Accepted"
        await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Charging")
        profile = {
            "chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Relative",
            "chargingSchedule": {"chargingRateUnit": "W", "chargingSchedulePeriod": [
                {"startPeriod": 0, "limit": 8280}]},
        }  # fmt: skip
        answer = await csms.call(CP, call.SetChargingProfile(connector_id=0, cs_charging_profiles=profile))
        assert answer.status == "Accepted"
        # 8280 W on 3 phases at 230 V: 12 A, as evcc's maxcurrent.
        await csms.wait_until(lambda: lp.max_current == 12.0, what="12 A as evcc's maxcurrent")
        transaction_id = csms.last_transaction_id
        answer = await csms.call(CP, call.RemoteStopTransaction(transaction_id=transaction_id))
        assert answer.status == "Accepted"
        stop = await csms.wait_for_call(CP, "StopTransaction")
        await csms.wait_until(lambda: lp.mode == "off", what="evcc off after the stop")
    assert stop["reason"] == "Remote"
    sent = posts(evcc)
    assert "/api/loadpoints/2/mode/now" in sent and "/api/loadpoints/2/mode/off" in sent
    assert "/api/loadpoints/2/maxcurrent/12" in sent
    assert all(p.startswith("/api/loadpoints/2/") for p in sent)  # the other loadpoint untouched
    assert evcc.loadpoints[0].mode == "off" and evcc.loadpoints[0].max_current == 16.0


async def test_evcc_gone_is_faulted_and_back_within_one_transaction(
    csms: StrictCentralSystem, evcc: EvccEmulator, tmp_path: Path
) -> None:
    lp = evcc.loadpoints[1]
    config = config_for(csms, evcc, tmp_path, "evcc-loadpoint-rest", free_vend_id_tag="EVCC-CARPORT")
    async with running(config):
        await ready(csms)
        lp.plug()
        start = await csms.wait_for_call(CP, "StartTransaction")
        await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Charging")
        await evcc.power_cut()
        faulted = await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Faulted")
        await evcc.restore()
        await csms.wait_for_call(
            CP, "StatusNotification", lambda p: p["status"] == "Charging", count=2, timeout=10
        )
        lp.unplug()
        stop = await csms.wait_for_call(CP, "StopTransaction")
    assert faulted["errorCode"] == "OtherError"
    assert len(csms.calls(CP, "StartTransaction")) == 1 and len(csms.calls(CP, "StopTransaction")) == 1
    assert stop["transactionId"] == csms.last_transaction_id and stop["meterStop"] > start["meterStart"]


async def test_probe_reads_the_loadpoint_and_posts_nothing(
    csms: StrictCentralSystem, evcc: EvccEmulator, tmp_path: Path
) -> None:
    evcc.loadpoints[1].plug()
    lines: list[str] = []
    assert await probe(config_for(csms, evcc, tmp_path, "evcc-loadpoint-rest-control"), lines.append) == 0
    assert lines[1] == "  plugged: yes; vehicle asks for energy: yes; energy allowed: yes"
    assert "power: 11040 W" in lines[2]
    assert posts(evcc) == []


async def test_a_limit_evcc_refuses_pauses_the_charge(
    csms: StrictCentralSystem, evcc: EvccEmulator, tmp_path: Path
) -> None:
    """evcc refuses a maximum below its loadpoint's minimum (400 {"error"}): the bridge, unable to keep
    the car under the limit, switches the energy off rather than let it exceed the limit."""
    lp = evcc.loadpoints[1]
    lp.mode, lp.min_current = "pv", 8.0  # evcc's minCurrent above the template's min_current_a 6
    async with running(config_for(csms, evcc, tmp_path, "evcc-loadpoint-rest-control")):
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
        assert lp.mode == "off" and not lp.charging and lp.max_current == 16.0
    assert posts(evcc)[-2:] == ["/api/loadpoints/2/maxcurrent/7", "/api/loadpoints/2/mode/off"]
