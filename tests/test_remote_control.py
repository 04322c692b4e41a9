"""UnlockConnector, ChangeAvailability and TriggerMessage, checked on the wire."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from ocpp.v16 import call

from adapters.base import DeviceRefused
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.helpers.flow import ready


def sim_of(daemon: Any, connector: int = 1) -> Any:
    return daemon.charge_points["CP-1"].connectors[connector].charger


async def charging(cs: StrictCentralSystem, daemon: Any, connector: int = 1) -> None:
    sim = sim_of(daemon, connector)
    sim.plug()
    sim.tap("TAG")
    await cs.wait_for_call(
        "CP-1", "StatusNotification", lambda p: (p["connectorId"], p["status"]) == (connector, "Charging")
    )


def frame_index(
    cs: StrictCentralSystem, direction: str, kind: int, action: str, status: str | None = None
) -> int:
    """The first frame of `action` (a CALL, kind 2, with `status` when given; or its answer, kind 3)."""
    frames = [f for link in cs.links for f in link.frames if f.message]
    return next(i for i, f in enumerate(frames) if f.direction == direction and f.message[0] == kind
                and (f.message[2] == action and (status is None or f.message[3].get("status") == status)
                     if kind == 2 else f.action == action))  # fmt: skip


# -- UnlockConnector ---------------------------------------------------------------------------
async def test_unlock_without_a_transaction(csms: StrictCentralSystem, tmp_path: Any) -> None:
    async with running(make_config(csms.url, tmp_path)) as daemon:
        await ready(csms)
        assert (await csms.call("CP-1", call.UnlockConnector(connector_id=1))).status == "Unlocked"
        assert sim_of(daemon).unlock_count == 1


async def test_unlock_stops_the_transaction_first(csms: StrictCentralSystem, tmp_path: Any) -> None:
    """OCTT TC_018_1: StopTransaction UnlockCommand, Finishing, then Available after unplug."""
    async with running(make_config(csms.url, tmp_path)) as daemon:
        await ready(csms)
        await charging(csms, daemon)
        assert (await csms.call("CP-1", call.UnlockConnector(connector_id=1))).status == "Unlocked"
        stop = await csms.wait_for_call("CP-1", "StopTransaction")
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Finishing")
    assert stop["reason"] == "UnlockCommand"


@pytest.mark.parametrize(
    ("charger", "connector"), [({"fixed_cable": True}, 1), ({}, 2), ({"has_lock": False}, 1)]
)
async def test_unlock_not_supported(
    csms: StrictCentralSystem, tmp_path: Any, charger: dict[str, Any], connector: int
) -> None:
    """A fixed cable, an unknown connector, no lock: NotSupported (ERRATA 3.87, OCTT TC_017_2)."""
    async with running(make_config(csms.url, tmp_path, charger=charger)):
        await ready(csms)
        assert (
            await csms.call("CP-1", call.UnlockConnector(connector_id=connector))
        ).status == "NotSupported"


# -- ChangeAvailability ----------------------------------------------------------------------------
async def test_an_idle_connector_becomes_unavailable_and_refuses_taps(
    csms: StrictCentralSystem, tmp_path: Any
) -> None:
    async with running(make_config(csms.url, tmp_path)) as daemon:
        await ready(csms)
        answer = await csms.call("CP-1", call.ChangeAvailability(connector_id=1, type="Inoperative"))
        assert answer.status == "Accepted"
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Unavailable")
        sim_of(daemon).plug()
        sim_of(daemon).tap("TAG")
        await asyncio.sleep(0.5)
        assert not csms.calls("CP-1", "Authorize")
        remote = await csms.call("CP-1", call.RemoteStartTransaction(id_tag="X", connector_id=1))
        assert remote.status == "Rejected"
        again = await csms.call("CP-1", call.ChangeAvailability(connector_id=1, type="Inoperative"))
        assert again.status == "Accepted"  # already so
        await csms.call("CP-1", call.ChangeAvailability(connector_id=1, type="Operative"))
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Preparing")
    # The answer first, then the status it led to.
    answered = frame_index(csms, "in", 3, "ChangeAvailability")
    assert answered < frame_index(csms, "in", 2, "StatusNotification", "Unavailable")


async def test_during_a_transaction_it_is_scheduled_and_applied_when_it_ends(
    csms: StrictCentralSystem, tmp_path: Any
) -> None:
    async with running(make_config(csms.url, tmp_path)) as daemon:
        await ready(csms)
        await charging(csms, daemon)
        answer = await csms.call("CP-1", call.ChangeAvailability(connector_id=0, type="Inoperative"))
        assert answer.status == "Scheduled"
        await csms.wait_for_call(
            "CP-1", "StatusNotification", lambda p: (p["connectorId"], p["status"]) == (0, "Unavailable")
        )
        assert daemon.charge_points["CP-1"].connectors[1].core.transaction is not None  # not stopped
        sim_of(daemon).tap("TAG")
        await csms.wait_for_call("CP-1", "StopTransaction")
        await csms.wait_for_call(
            "CP-1", "StatusNotification", lambda p: (p["connectorId"], p["status"]) == (1, "Unavailable")
        )


async def test_unavailable_survives_a_restart(csms: StrictCentralSystem, tmp_path: Any) -> None:
    """OCTT TC_013: Unavailable set by ChangeAvailability persists across a reboot."""
    config = make_config(csms.url, tmp_path, connectors=2)
    async with running(config):
        await ready(csms, 2)
        await csms.call("CP-1", call.ChangeAvailability(connector_id=2, type="Inoperative"))
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Unavailable")
    async with running(config):
        boot_statuses = await csms.wait_for_call(
            "CP-1", "StatusNotification", lambda p: p["connectorId"] == 2, count=3
        )
    assert boot_statuses["status"] == "Unavailable"
    after_restart = [s for s in csms.calls("CP-1", "StatusNotification")][-3:]
    assert [(s["connectorId"], s["status"]) for s in after_restart] == [
        (0, "Available"),
        (1, "Available"),
        (2, "Unavailable"),
    ]


async def test_an_unknown_connector_is_rejected(csms: StrictCentralSystem, tmp_path: Any) -> None:
    async with running(make_config(csms.url, tmp_path)):
        await ready(csms)
        assert (
            await csms.call("CP-1", call.ChangeAvailability(connector_id=5, type="Inoperative"))
        ).status == "Rejected"


# -- TriggerMessage ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("requested", "connector", "expected_action", "check"),
    [
        ("Heartbeat", None, "Heartbeat", lambda p: p == {}),
        ("StatusNotification", 1, "StatusNotification", lambda p: p["connectorId"] == 1),
        (
            "DiagnosticsStatusNotification",
            None,
            "DiagnosticsStatusNotification",
            lambda p: p["status"] == "Idle",
        ),
        ("FirmwareStatusNotification", None, "FirmwareStatusNotification", lambda p: p["status"] == "Idle"),
    ],
)
async def test_trigger_answers_first_then_sends(
    csms: StrictCentralSystem,
    tmp_path: Any,
    requested: str,
    connector: int | None,
    expected_action: str,
    check: Any,
) -> None:
    async with running(make_config(csms.url, tmp_path)):
        await ready(csms)
        before = len(csms.calls("CP-1", expected_action))
        answer = await csms.call(
            "CP-1", call.TriggerMessage(requested_message=requested, connector_id=connector)
        )
        assert answer.status == "Accepted"
        payload = await csms.wait_for_call("CP-1", expected_action, count=before + 1)
        assert check(payload)
    frames = [f for link in csms.links for f in link.frames if f.message]
    answered = max(
        i
        for i, f in enumerate(frames)
        if f.direction == "in" and f.message[0] == 3 and f.action == "TriggerMessage"
    )
    sent = max(
        i
        for i, f in enumerate(frames)
        if f.direction == "in" and f.message[0] == 2 and f.message[2] == expected_action
    )
    assert answered < sent  # the conf precedes the triggered message (OCTT TC_054)


async def test_trigger_status_without_connector_reports_every_connector(
    csms: StrictCentralSystem, tmp_path: Any
) -> None:
    async with running(make_config(csms.url, tmp_path, connectors=2)):
        await ready(csms, 2)
        await csms.call("CP-1", call.TriggerMessage(requested_message="StatusNotification"))
        await csms.wait_for_call("CP-1", "StatusNotification", count=6)
    assert [s["connectorId"] for s in csms.calls("CP-1", "StatusNotification")][3:] == [0, 1, 2]


async def test_trigger_meter_values_carries_the_latest_values_in_context_trigger(
    csms: StrictCentralSystem, tmp_path: Any
) -> None:
    config = make_config(
        csms.url, tmp_path, ocpp={"MeterValuesSampledData": "Energy.Active.Import.Register,Voltage"}
    )
    async with running(config) as daemon:
        await ready(csms)
        await charging(csms, daemon)
        await csms.call("CP-1", call.TriggerMessage(requested_message="MeterValues", connector_id=1))
        mv = await csms.wait_for_call(
            "CP-1", "MeterValues", lambda p: p["meterValue"][0]["sampledValue"][0]["context"] == "Trigger"
        )
    sampled = mv["meterValue"][0]["sampledValue"]
    assert mv["transactionId"] == csms.last_transaction_id
    assert [s["measurand"] for s in sampled] == [
        "Energy.Active.Import.Register",
        "Voltage",
        "Voltage",
        "Voltage",
    ]
    assert {s.get("phase") for s in sampled[1:]} == {"L1-N", "L2-N", "L3-N"}


async def test_trigger_rejections(csms: StrictCentralSystem, tmp_path: Any) -> None:
    async with running(make_config(csms.url, tmp_path)):
        await ready(csms)
        boot = await csms.call("CP-1", call.TriggerMessage(requested_message="BootNotification"))
        assert boot.status == "Rejected"  # once accepted (ERRATA 3.35)
        beyond = await csms.call(
            "CP-1", call.TriggerMessage(requested_message="StatusNotification", connector_id=2)
        )
        assert beyond.status == "Rejected"  # NumberOfConnectors + 1 (OCTT TC_055)
        # Start/StopTransaction cannot be triggered: not in the schema's enum, so a CALLERROR.
        await csms.send_raw("CP-1", '[2,"t1","TriggerMessage",{"requestedMessage":"StartTransaction"}]')
        reply = await csms.answer_of("CP-1", "t1")
    assert reply[2] == "PropertyConstraintViolation"


async def test_trigger_boot_while_pending_boots_at_once(tmp_path: Any) -> None:
    async with StrictCentralSystem(boot=[("Pending", 60), ("Accepted", 300)]) as cs:
        async with running(make_config(cs.url, tmp_path)):
            await cs.wait_for_call("CP-1", "BootNotification")
            answer = await cs.call("CP-1", call.TriggerMessage(requested_message="BootNotification"))
            assert answer.status == "Accepted"
            await cs.wait_for_call("CP-1", "BootNotification", count=2, timeout=3)  # not after 60 s
        cs.assert_clean()


async def test_supported_feature_profiles_says_remote_trigger(
    csms: StrictCentralSystem, tmp_path: Any
) -> None:
    async with running(make_config(csms.url, tmp_path)):
        await ready(csms)
        result = await csms.call("CP-1", call.GetConfiguration(key=["SupportedFeatureProfiles"]))
    assert result.configuration_key[0]["value"] == (
        "Core,FirmwareManagement,LocalAuthListManagement,Reservation,SmartCharging,RemoteTrigger"
    )


# -- Reset -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["Soft", "Hard"])
async def test_reset_stops_transactions_then_boots_again(
    csms: StrictCentralSystem, tmp_path: Any, kind: str
) -> None:
    """OCTT TC_015 and the soft variant: StopTransaction with the reset's reason, then a new boot and
    every status again."""
    async with running(make_config(csms.url, tmp_path)) as daemon:
        await ready(csms)
        await charging(csms, daemon)
        assert (await csms.call("CP-1", call.Reset(type=kind))).status == "Accepted"
        stop = await csms.wait_for_call("CP-1", "StopTransaction")
        await csms.wait_for_call("CP-1", "BootNotification", count=2, timeout=5)

        def status_on_new_link() -> list[Any]:
            link = csms.links[-1]
            calls = [f for f in link.frames if f.message and f.message[0] == 2]
            return [
                f for f in calls if f.message[2] == "StatusNotification" and f.message[3]["connectorId"] == 1
            ]

        (after,) = await csms.wait_until(status_on_new_link, what="connector 1's status after the boot")
        assert after.message[3]["status"] == "Finishing"  # still plugged, the transaction is over
        assert sim_of(daemon).reset_count == (1 if kind == "Hard" else 0)
    assert stop["reason"] == f"{kind}Reset" and stop["transactionId"] == csms.last_transaction_id
    assert len(csms.links) == 2  # a new connection, as after a reboot
    actions = csms.actions("CP-1")
    assert actions.index("StopTransaction") < len(actions) - 1 - actions[::-1].index("BootNotification")


async def test_reset_without_transaction(csms: StrictCentralSystem, tmp_path: Any) -> None:
    async with running(make_config(csms.url, tmp_path)):
        await ready(csms)
        assert (await csms.call("CP-1", call.Reset(type="Soft"))).status == "Accepted"
        await csms.wait_for_call("CP-1", "BootNotification", count=2, timeout=5)
    assert not csms.calls("CP-1", "StopTransaction")


async def test_a_failed_device_reset_is_retried_reset_retries_times(
    csms: StrictCentralSystem, tmp_path: Any
) -> None:
    async with running(make_config(csms.url, tmp_path, ocpp={"ResetRetries": 2})) as daemon:
        await ready(csms)
        sim = sim_of(daemon)
        attempts: list[bool] = []

        async def failing_reset(hard: bool) -> None:
            attempts.append(hard)
            raise DeviceRefused("busy")

        sim.reset = failing_reset
        assert (await csms.call("CP-1", call.Reset(type="Hard"))).status == "Accepted"
        await csms.wait_for_call("CP-1", "BootNotification", count=2, timeout=5)
    assert attempts == [True, True, True]  # the first try and two retries
