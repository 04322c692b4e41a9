"""A charge point with a report-only connector beside one the bridge controls, through the real daemon
and the strict central system (docs/protocol.md, "Report-only chargers"): SmartCharging is still
offered, a connector-less RemoteStart goes to the connector that can switch, a profile for the
report-only connector is Rejected, and connector 0's profile is kept and applied only where it can be.
After a Reset, a report-only device that charges on is reported in a new transaction, sent after the boot.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml
from ocpp.v16 import call

from bridge.config import Config, parse_config
from tests.conftest import FAST_OCPP, running
from tests.csms import StrictCentralSystem
from tests.helpers.flow import ready

CP = "CP-1"
# Connector 1 reports only (constants: no device to reach); connector 2 is a simulated box.
REPORT_ONLY = {
    "type": "generic",
    "read": {"plugged": {"const": False}, "energy_wh": {"const": 1000}},
}
PROFILE = {
    "chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
    "chargingProfileKind": "Relative",
    "chargingSchedule": {"chargingRateUnit": "A",
                         "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 10}]},
}  # fmt: skip


def config(csms: StrictCentralSystem, tmp_path: Path) -> Config:
    doc = {
        "state_dir": str(tmp_path / "state"),
        "api": {"listen": None},
        "charge_points": [{
            "id": CP, "csms_url": csms.url, "reconnect": {"initial_s": 0.2, "max_s": 1.0},
            "ocpp": FAST_OCPP,
            "connectors": [
                {"id": 1, "charger": REPORT_ONLY, "free_vend_id_tag": "FREE", "poll_interval_s": 0.2},
                {"id": 2, "charger": {"type": "simulated"}},
            ],
        }],
    }  # fmt: skip
    return parse_config(yaml.safe_dump(doc), "test.yaml")


async def test_a_report_only_connector_beside_a_controlled_one(
    csms: StrictCentralSystem, tmp_path: Path
) -> None:
    async with running(config(csms, tmp_path)) as daemon:
        await ready(csms, connectors=2)
        cp = daemon.charge_points[CP]
        answer = await csms.call(CP, call.GetConfiguration(key=["SupportedFeatureProfiles"]))
        (profiles,) = answer.configuration_key
        for_one = await csms.call(CP, call.SetChargingProfile(connector_id=1, cs_charging_profiles=PROFILE))
        for_all = await csms.call(CP, call.SetChargingProfile(connector_id=0, cs_charging_profiles=PROFILE))
        await csms.wait_until(lambda: cp.smart.current_limit_a(2) == 10.0, what="10 A at connector 2")
        named = await csms.call(CP, call.RemoteStartTransaction(id_tag="REMOTE-1", connector_id=1))
        anywhere = await csms.call(CP, call.RemoteStartTransaction(id_tag="REMOTE-1"))
        waiting = await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Preparing")
    assert "SmartCharging" in profiles["value"].split(",")  # one connector can follow a limit
    assert (for_one.status, for_all.status) == ("Rejected", "Accepted")
    assert cp.smart.current_limit_a(1) is None  # connector 0's profile is not applied to it
    assert (named.status, anywhere.status) == ("Rejected", "Accepted")
    assert waiting["connectorId"] == 2  # the connector-less start went past the report-only one


# A report-only device whose car charges whatever the bridge does (evcc in its own mode).
BOOT, START = "BootNotification", "StartTransaction"
CHARGING_ON = {
    "type": "generic",
    "read": {
        "plugged": {"const": True}, "charging": {"const": True}, "enabled": {"const": True},
        "energy_wh": {"const": 1000},
    },
}  # fmt: skip


async def test_after_a_reset_the_report_only_device_charging_on_is_reported_in_a_new_transaction(
    csms: StrictCentralSystem, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Plugged before the first boot: the free-vend tag starts offline (AllowOfflineTxForUnknownId).
    doc = {
        "state_dir": str(tmp_path / "state"), "api": {"listen": None},
        "charge_points": [{
            "id": CP, "csms_url": csms.url, "reconnect": {"initial_s": 0.2, "max_s": 1.0},
            "ocpp": {**FAST_OCPP, "AllowOfflineTxForUnknownId": True},
            "connectors": [
                {"id": 1, "charger": CHARGING_ON, "free_vend_id_tag": "FREE", "poll_interval_s": 0.2},
            ],
        }],
    }  # fmt: skip
    async with running(parse_config(yaml.safe_dump(doc), "test.yaml")) as daemon:
        await csms.wait_for_call(CP, "StartTransaction")
        cp = daemon.charge_points[CP]
        restart = cp.session.restart

        async def restart_after_a_reading() -> None:
            """A reading while the Reset is under way (the device charges on), time for what it would
            send on the old link, then the restart."""
            await cp.refresh(1)
            await asyncio.sleep(0.5)
            await restart()

        monkeypatch.setattr(cp.session, "restart", restart_after_a_reading)
        answer = await csms.call(CP, call.Reset(type="Soft"))
        stop = await csms.wait_for_call(CP, "StopTransaction")
        again = await csms.wait_for_call(CP, "StartTransaction", count=2)
        boots = len(csms.calls(CP, "BootNotification"))
        order = [a for a in csms.actions(CP) if a in (BOOT, "StopTransaction", START)]
    assert answer.status == "Accepted"
    assert stop["reason"] == "SoftReset"
    assert again["idTag"] == "FREE" and again["meterStart"] == 1000
    # The new transaction went out after the boot that followed the Reset, not before the link dropped.
    assert boots == 2
    assert order == [BOOT, START, "StopTransaction", BOOT, START]
