"""How the bridge switches a `type: ocpp` charger's energy (docs/devices/ocpp.md, "How energy is
switched"), on the wire: the real daemon, the strict central system upstream (tests/csms.py), a charge
point on the `ocpp` library (tests/helpers/ocpp_charger.py) in the variants that matter:

- one that honours SmartCharging: a pause is a 0 A TxProfile, its transaction goes on, no RemoteStop;
- one that refuses RemoteStartTransaction and starts itself (free mode): its StartTransaction waits for
  the bridge's decision, Accepted once the session stands upstream, Invalid for a card refused there;
- one that takes only W: its limits in W;
- a Core-only one (GetConfiguration answered NotImplemented): RemoteStart and RemoteStop, as before.

In all of them the central system sees one transaction per session, with meterStart and meterStop from
the readings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ocpp.v16 import call

from adapters.chargers.ocpp_device import OcppDeviceCharger
from bridge.daemon import Daemon
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.helpers.generic import profile as charging_profile
from tests.helpers.ocpp_charger import FakeWallbox, ocpp_charger
from tests.processes import free_port

CP = "CP-1"
WALLBOX = "WB-1"
PASSWORD = "s3cret-for-the-wallbox"
SMART = "Core,RemoteTrigger,SmartCharging"


def config(csms: StrictCentralSystem, tmp_path: Path, port: int, **charger: Any) -> Any:
    block = {
        "type": "ocpp", "listen": f"127.0.0.1:{port}", "identity": WALLBOX, "password": PASSWORD,
        "card_wait_s": 3, "call_timeout_s": 3, **charger,
    }  # fmt: skip
    return make_config(csms.url, tmp_path, ocpp={"MeterValueSampleInterval": 60}, charger=block)


def driver_of(daemon: Daemon) -> OcppDeviceCharger:
    driver = daemon.charge_points[CP].connectors[1].charger
    assert isinstance(driver, OcppDeviceCharger)
    return driver


def profiles(wallbox: FakeWallbox, purpose: str) -> list[dict[str, Any]]:
    return [
        p
        for a, p in wallbox.received
        if a == "SetChargingProfile" and p["charging_profile_purpose"] == purpose
    ]


def statuses(csms: StrictCentralSystem, status: str) -> int:
    """How many times connector 1 was reported `status` upstream."""
    return len(
        [p for p in csms.calls(CP, "StatusNotification") if (p["connectorId"], p["status"]) == (1, status)]
    )


async def limit_upstream(csms: StrictCentralSystem, upstream_id: int, amps: float) -> None:
    profile = charging_profile(7, "TxProfile", amps, transactionId=upstream_id)
    answer = await csms.call(CP, call.SetChargingProfile(connector_id=1, cs_charging_profiles=profile))
    assert answer.status == "Accepted"


async def remote_session(csms: StrictCentralSystem, wallbox: FakeWallbox, driver: OcppDeviceCharger) -> int:
    """Plugged; the charger's answer to GetConfiguration taken; a remote start upstream; charging.
    The central system's transaction id."""
    await csms.wait_until(lambda: driver.support.asked)
    await wallbox.plug()
    await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Preparing", timeout=10)
    answer = await csms.call(CP, call.RemoteStartTransaction(id_tag="REMOTE-1", connector_id=1))
    assert answer.status == "Accepted"
    await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Charging", timeout=10)
    return csms.last_transaction_id


async def test_a_pause_is_a_0_a_profile_and_its_transaction_goes_on(
    csms: StrictCentralSystem, tmp_path: Path
) -> None:
    port = free_port()
    async with running(config(csms, tmp_path, port)) as daemon:
        driver = driver_of(daemon)
        async with ocpp_charger(f"ws://127.0.0.1:{port}/ocpp", WALLBOX, PASSWORD, features=SMART) as wallbox:
            upstream_id = await remote_session(csms, wallbox, driver)
            local = wallbox.transaction_id
            assert local is not None
            await wallbox.meter(7400)

            # The central system limits to 0: a pause. The charger gets 0 for its transaction and goes on.
            await limit_upstream(csms, upstream_id, 0)
            await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "SuspendedEVSE")
            [pause] = profiles(wallbox, "TxProfile")
            assert pause["transaction_id"] == local and pause["charging_profile_id"] == 2
            assert pause["charging_schedule"]["charging_schedule_period"][0]["limit"] == 0
            assert pause["charging_schedule"]["charging_rate_unit"] == "A"
            assert wallbox.transaction_id == local

            # 10 A again: the pause is cleared, the set-point (the TxDefaultProfile) holds.
            await limit_upstream(csms, upstream_id, 10)
            await csms.wait_until(lambda: statuses(csms, "Charging") == 2, what="Charging again upstream")
            assert ("ClearChargingProfile", {"id": 2}) in wallbox.received
            assert (
                profiles(wallbox, "TxDefaultProfile")[-1]["charging_schedule"]["charging_schedule_period"][0][
                    "limit"
                ]
                == 10
            )
            await wallbox.meter(7400)

            # Paused again, then the session ends upstream with the vehicle plugged: the charger's
            # transaction ends with the bridge's (a RemoteStop, paused or not), no pause outlives it.
            await limit_upstream(csms, upstream_id, 0)
            await csms.wait_until(lambda: statuses(csms, "SuspendedEVSE") == 2, what="paused again")
            assert len(profiles(wallbox, "TxProfile")) == 2
            assert "RemoteStopTransaction" not in wallbox.actions()
            answer = await csms.call(CP, call.RemoteStopTransaction(transaction_id=upstream_id))
            assert answer.status == "Accepted"
            stop = await csms.wait_for_call(CP, "StopTransaction", timeout=10)
            await csms.wait_until(lambda: wallbox.transaction_id is None, what="its transaction ended")
            assert wallbox.actions().count("RemoteStopTransaction") == 1
            assert len(profiles(wallbox, "TxProfile")) == 2  # no pause at the end
            assert wallbox.actions().count("RemoteStartTransaction") == 1
            assert [a.id_tag_info["status"] for a in wallbox.started] == ["Accepted"]  # one at the charger
            lines = driver.probe_lines()
        assert driver.deviations == []
    [start] = csms.calls(CP, "StartTransaction")  # one upstream
    # Upstream, meterStart and meterStop are the readings: the register before, and after two samples.
    assert (start["meterStart"], stop["meterStop"], stop["transactionId"]) == (1000, 1200, upstream_id)
    assert lines[1].startswith("charger says: SmartCharging: yes; rate unit: A;")
    assert "off by a 0 profile while the vehicle is plugged" in lines[2]


async def test_a_charger_that_refuses_remote_start_starts_its_own_sessions(
    csms: StrictCentralSystem, tmp_path: Path
) -> None:
    """Free mode: it starts at plug-in; its StartTransaction is answered once the bridge's session stands
    upstream. A RemoteStart it refuses is asked once per connection. A card refused upstream: Invalid."""
    csms.invalid_tags = {"bad-card"}
    port = free_port()
    async with running(config(csms, tmp_path, port, card_wait_s=1.5)) as daemon:
        driver = driver_of(daemon)
        async with ocpp_charger(
            f"ws://127.0.0.1:{port}/ocpp",
            WALLBOX,
            PASSWORD,
            free_mode="FREE-1",
            refuses_remote_start="Rejected",
        ) as wallbox:
            await csms.wait_until(lambda: driver.support.asked)
            answer = await wallbox.plug()
            assert answer.id_tag_info["status"] == "Accepted"
            [start] = csms.calls(CP, "StartTransaction")  # before the charger's answer
            assert start["idTag"] == "FREE-1" and start["meterStart"] == 1000
            upstream_id = csms.last_transaction_id
            await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Charging")
            assert "RemoteStartTransaction" not in wallbox.actions()

            # Core only: the end upstream is a RemoteStop at the charger.
            answer = await csms.call(CP, call.RemoteStopTransaction(transaction_id=upstream_id))
            assert answer.status == "Accepted"
            await csms.wait_for_call(CP, "StopTransaction", timeout=10)
            await csms.wait_until(lambda: driver.state.status == "Finishing", what="its transaction stopped")

            # A remote start upstream, then the plug: the charger refuses to start, and is not asked again.
            wallbox.free_mode = None
            for n in (2, 3):
                before = statuses(csms, "Available")
                await wallbox.status("Available")
                await csms.wait_until(
                    lambda b=before: statuses(csms, "Available") > b, what="Available upstream"
                )
                answer = await csms.call(CP, call.RemoteStartTransaction(id_tag="REMOTE-1", connector_id=1))
                assert answer.status == "Accepted"
                await wallbox.plug()
                await csms.wait_until(lambda n=n: csms.last_transaction_id == n, what="a session upstream")
                upstream_id = n
                await csms.wait_until(
                    lambda: any("RemoteStartTransaction refused: Rejected" in x for x in driver.probe_lines())
                )
                # Its own start (a card at its reader) is accepted at once: the bridge lets energy flow.
                own = await wallbox.begin("CARD-2")
                assert own.id_tag_info["status"] == "Accepted"
                answer = await csms.call(CP, call.RemoteStopTransaction(transaction_id=upstream_id))
                await csms.wait_until(
                    lambda: driver.state.status == "Finishing", what="its transaction stopped"
                )
            assert wallbox.actions().count("RemoteStartTransaction") == 1

            # Unplugged; plugged again, its free mode under a card the central system refuses.
            await wallbox.status("Available")
            wallbox.free_mode = "bad-card"
            refused = await wallbox.plug()
            assert refused.id_tag_info["status"] == "Invalid"
            assert [p["idTag"] for p in csms.calls(CP, "Authorize")][-1] == "bad-card"
        assert driver.deviations == []
    assert len(csms.calls(CP, "StartTransaction")) == 3  # no session for the refused card


async def test_a_charger_that_takes_only_w_gets_its_limits_in_w(
    csms: StrictCentralSystem, tmp_path: Path
) -> None:
    port = free_port()
    async with running(config(csms, tmp_path, port)) as daemon:
        driver = driver_of(daemon)
        url = f"ws://127.0.0.1:{port}/ocpp"
        async with ocpp_charger(url, WALLBOX, PASSWORD, features=SMART, rate_unit="Power") as wallbox:
            upstream_id = await remote_session(csms, wallbox, driver)
            await limit_upstream(csms, upstream_id, 10)
            await csms.wait_until(lambda: 6900 in wallbox.limits(), what="10 A as 6900 W")
            await limit_upstream(csms, upstream_id, 0)
            await csms.wait_until(lambda: profiles(wallbox, "TxProfile"), what="a pause")
            defaults = profiles(wallbox, "TxDefaultProfile") + profiles(wallbox, "TxProfile")
            assert {p["charging_schedule"]["charging_rate_unit"] for p in defaults} == {"W"}
            assert (
                profiles(wallbox, "TxProfile")[0]["charging_schedule"]["charging_schedule_period"][0]["limit"]
                == 0
            )
        assert "rate unit: W" in driver.probe_lines()[1]


async def test_a_core_only_charger_is_switched_by_remote_start_and_stop(
    csms: StrictCentralSystem, tmp_path: Path
) -> None:
    """GetConfiguration answered NotImplemented: Core only, said in the notes; a pause ends its
    transaction and the end of the pause starts a new one; one transaction upstream."""
    port = free_port()
    async with running(config(csms, tmp_path, port)) as daemon:
        driver = driver_of(daemon)
        async with ocpp_charger(f"ws://127.0.0.1:{port}/ocpp", WALLBOX, PASSWORD) as wallbox:
            upstream_id = await remote_session(csms, wallbox, driver)
            first = wallbox.transaction_id
            await limit_upstream(csms, upstream_id, 0)
            await csms.wait_until(lambda: "RemoteStopTransaction" in wallbox.actions(), what="a RemoteStop")
            await csms.wait_until(lambda: driver.state.status == "Finishing", what="its transaction stopped")
            await limit_upstream(csms, upstream_id, 10)
            await csms.wait_until(lambda: wallbox.transaction_id not in (None, first), what="a new start")
            assert profiles(wallbox, "TxProfile") == [] and "ClearChargingProfile" not in wallbox.actions()
            lines = driver.probe_lines()
    assert len(csms.calls(CP, "StartTransaction")) == 1
    assert lines[1] == "charger says: Core only assumed: GetConfiguration answered CALLERROR NotImplemented"
    assert lines[2].startswith("energy switched on by RemoteStartTransaction; off by RemoteStopTransaction")


async def test_a_charger_that_reboots_mid_pause_and_goes_on_is_resumed(
    csms: StrictCentralSystem, tmp_path: Path
) -> None:
    """Paused, it reboots and goes on with its transaction, its 0 TxProfile kept (a deviation): the
    end of the pause clears it all the same, and it charges again."""
    port = free_port()
    url = f"ws://127.0.0.1:{port}/ocpp"
    async with running(config(csms, tmp_path, port)) as daemon:
        driver = driver_of(daemon)
        async with ocpp_charger(url, WALLBOX, PASSWORD, features=SMART) as wallbox:
            upstream_id = await remote_session(csms, wallbox, driver)
            await limit_upstream(csms, upstream_id, 0)
            await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "SuspendedEVSE")
            kept = dict(wallbox.transactions), dict(wallbox.pauses), dict(wallbox.registers)
        async with ocpp_charger(url, WALLBOX, PASSWORD, features=SMART) as wallbox:
            wallbox.transactions, wallbox.pauses, wallbox.registers = kept
            await wallbox.status("SuspendedEVSE")
            await csms.wait_until(lambda: driver.support.asked and driver.state.status == "SuspendedEVSE")
            await limit_upstream(csms, upstream_id, 10)
            await csms.wait_until(lambda: driver.state.status == "Charging", what="charging again")
            assert ("ClearChargingProfile", {"id": 2}) in wallbox.received
            assert "RemoteStartTransaction" not in wallbox.actions()  # its transaction went on
        assert any("resumed transaction" in d for d in driver.deviations)
