"""Report-only chargers (docs/protocol.md, "Report-only chargers"): the pure decisions, the generic
device without write.enable, and check. A report-only device decides when energy flows; the bridge
never asks it to switch, takes no remote start or stop and no charging profile for it, and offers no
SmartCharging when no connector can switch. The end-to-end behaviour is in tests/test_template_evcc_*.py.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from adapters.base import ChargerCapabilities, ChargerReading, NotSupportedByDevice
from adapters.chargers import CHARGER_TYPES
from adapters.chargers.simulated import SimulatedCharger
from adapters.generic.device import GenericCharger
from adapters.generic.options import GenericChargerOptions
from adapters.transports.pool import Transports
from bridge.config import ConfigError, parse_config
from bridge.core.charge_point import ConnectorView, remote_start_target, remote_stop_target
from bridge.core.charging_profiles import report_only_refusal
from bridge.core.config_keys import (
    SUPPORTED_PROFILES,
    Configuration,
    UnknownKey,
    implemented_features,
    supported_profiles,
)
from bridge.core.connector import (
    Authorize,
    Connector,
    SetEnergy,
    StartTransaction,
    Status,
    StopReason,
    StopTransaction,
)
from bridge.core.connector_states import State
from bridge.metrics import Metrics
from bridge.probe import describe_capabilities
from bridge.runtime.coordinator import UNWANTED_ENERGY_S, DeviceCoordinator
from tests.helpers.clock import ManualClock

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
TIMEOUT = 60


def reading(plugged: bool, allowed: bool = True, wh: float = 1000.0) -> ChargerReading:
    return ChargerReading(plugged=plugged, ev_requesting=plugged, energy_allowed=allowed, energy_wh=wh)


def started(switches: bool) -> tuple[Connector, list[object]]:
    """A connector whose car connected with the free-vend tag, accepted: its transaction runs."""
    c = Connector(1, free_tag="FREE", switches_energy=switches)
    effects: list[object] = list(c.on_reading(reading(True), T0, stop_on_ev_disconnect=True))
    effects += c.on_authorized("FREE", True, T0, TIMEOUT)
    return c, effects


# -- the connector's core ---------------------------------------------------------------------
def test_a_report_only_session_starts_at_plug_in_and_ends_at_unplug_without_switching() -> None:
    c, effects = started(switches=False)
    assert [type(e) for e in effects] == [type(effects[0]), StartTransaction]  # Authorize, then start
    assert not any(isinstance(e, SetEnergy) for e in effects)
    assert c.status().status is Status.CHARGING
    stop = c.on_reading(reading(False, wh=1500.0), T0 + timedelta(minutes=5), stop_on_ev_disconnect=True)
    assert [type(e) for e in stop] == [StopTransaction]
    assert isinstance(stop[0], StopTransaction) and stop[0].reason is StopReason.EV_DISCONNECTED
    assert stop[0].meter_stop_wh == 1500


def test_with_switching_the_same_session_switches_energy_on_and_off() -> None:
    c, effects = started(switches=True)
    assert SetEnergy(True) in effects
    stop = c.on_reading(reading(False), T0 + timedelta(minutes=5), stop_on_ev_disconnect=True)
    assert stop[0] == SetEnergy(False, session_ends=True) and isinstance(stop[1], StopTransaction)


def test_a_report_only_status_follows_what_the_device_allows() -> None:
    c, _ = started(switches=False)
    c.on_reading(reading(True, allowed=False), T0, stop_on_ev_disconnect=True)  # evcc in mode off
    assert c.status().status is Status.SUSPENDED_EVSE
    c.on_reading(reading(True, allowed=True), T0, stop_on_ev_disconnect=True)
    assert c.status().status is Status.CHARGING
    assert c.on_limit(paused=True) == []  # a limit never pauses it: it could not


def test_a_deauthorized_report_only_transaction_ends_without_switching() -> None:
    c, _ = started(switches=False)
    tx = c.transaction
    assert tx is not None
    (stop,) = c.on_start_rejected(tx.local_id, T0, stop_on_invalid_id=True, max_energy_wh=0)
    assert isinstance(stop, StopTransaction) and stop.reason is StopReason.DE_AUTHORIZED
    assert c.transaction is None
    # StopTransactionOnInvalidId false: the transaction goes on, its energy is the device's.
    c, _ = started(switches=False)
    tx = c.transaction
    assert tx is not None
    assert c.on_start_rejected(tx.local_id, T0, stop_on_invalid_id=False, max_energy_wh=0) == []
    assert c.transaction is not None and c.transaction.deauthorized


def test_a_resumed_report_only_transaction_asks_nothing_of_the_device() -> None:
    c, _ = started(switches=False)
    tx = c.transaction
    assert tx is not None
    again = Connector(1, switches_energy=False)
    assert again.resume(tx) == [] and again.energy() == []
    assert Connector(1).resume(tx) == [SetEnergy(True)]


# -- a transaction the bridge ended while the device charges on ------------------------------------
def charging(wh: float) -> ChargerReading:
    """The car draws 11 kW: what the report-only device gives after the bridge's stop."""
    return ChargerReading(plugged=True, ev_requesting=True, energy_allowed=True, energy_wh=wh, power_w=11e3)


def test_after_a_reset_the_energy_the_device_gives_on_goes_into_a_new_free_vend_transaction() -> None:
    c, _ = started(switches=False)
    c.restarting = True  # Commands.reset, until the link has been dropped
    (stop,) = c.stop(StopReason.SOFT_RESET, T0 + timedelta(minutes=1), None)
    assert isinstance(stop, StopTransaction) and stop.reason is StopReason.SOFT_RESET
    assert c.on_reading(charging(2000.0), T0 + timedelta(minutes=2), stop_on_ev_disconnect=True) == []
    c.restarting = False  # the session starts again: the next reading that shows energy starts one
    later = T0 + timedelta(minutes=3)
    assert c.on_reading(charging(2500.0), later, stop_on_ev_disconnect=True) == [Authorize("FREE")]
    assert c.on_reading(charging(2600.0), later, stop_on_ev_disconnect=True) == []  # one Authorize
    (start,) = c.on_authorized("FREE", True, later, TIMEOUT)
    assert isinstance(start, StartTransaction)
    assert (start.transaction.id_tag, start.transaction.meter_start_wh) == ("FREE", 2600)
    assert c.status().status is Status.CHARGING
    # It ends as any report-only transaction: at the unplug, with all the energy since the reset.
    (end,) = c.on_reading(reading(False, wh=4000.0), later, stop_on_ev_disconnect=True)
    assert isinstance(end, StopTransaction) and end.meter_stop_wh == 4000


def test_a_card_tapped_to_stop_while_the_device_charges_on_gives_way_to_the_free_vend_tag() -> None:
    c = Connector(1, free_tag="FREE", switches_energy=False)
    assert c.on_tag("CARD", T0) == [Authorize("CARD")]
    c.on_authorized("CARD", True, T0, TIMEOUT)
    (start,) = c.on_reading(charging(1000.0), T0, stop_on_ev_disconnect=True)
    assert isinstance(start, StartTransaction) and start.transaction.id_tag == "CARD"
    (stop,) = c.on_tag("CARD", T0 + timedelta(minutes=1))  # the same card: a local stop, no switching
    assert isinstance(stop, StopTransaction) and stop.reason is StopReason.LOCAL
    assert c.on_reading(charging(1500.0), T0, stop_on_ev_disconnect=True) == [Authorize("FREE")]
    # Refused: Finishing until the unplug, and the free-vend tag is not presented again.
    assert c.on_authorized("FREE", False, T0, TIMEOUT) == []
    assert c.on_reading(charging(1600.0), T0, stop_on_ev_disconnect=True) == []
    assert c.state is State.FINISHING
    assert c.on_reading(reading(False), T0, stop_on_ev_disconnect=True) == []
    assert c.state is State.IDLE


def test_without_a_free_vend_tag_the_next_tag_presented_reports_the_energy() -> None:
    c = Connector(1, switches_energy=False)
    c.on_tag("CARD", T0)
    c.on_authorized("CARD", True, T0, TIMEOUT)
    c.on_reading(charging(1000.0), T0, stop_on_ev_disconnect=True)
    c.on_tag("CARD", T0)  # stopped
    assert c.on_reading(charging(1500.0), T0, stop_on_ev_disconnect=True) == []  # nothing to present
    assert c.on_tag("OTHER", T0) == [Authorize("OTHER")]  # the device's (or a reader's) next tag
    (start,) = c.on_authorized("OTHER", True, T0, TIMEOUT)
    assert isinstance(start, StartTransaction) and start.transaction.meter_start_wh == 1500


def test_a_device_that_stops_with_the_transaction_or_can_be_switched_starts_nothing_new() -> None:
    c, _ = started(switches=False)
    c.on_tag("FREE", T0)  # the same tag stops it; the device stopped too
    assert c.on_reading(reading(True, allowed=False), T0, stop_on_ev_disconnect=True) == []
    c, _ = started(switches=True)  # the bridge switched the energy off with the stop
    c.stop(StopReason.SOFT_RESET, T0, None)
    assert c.on_reading(charging(1500.0), T0, stop_on_ev_disconnect=True) == []
    assert c.on_tag("CARD", T0) == []  # a tag while Finishing asks nothing (as before)


# -- across connectors ----------------------------------------------------------------------
FREE = ConnectorView(Status.AVAILABLE, False)
WAITING_REPORT_ONLY = ConnectorView(Status.PREPARING, False, switches_energy=False)


@pytest.mark.parametrize(
    ("connector_id", "views", "target"),
    [
        (1, {1: WAITING_REPORT_ONLY}, None),  # named: Rejected
        (None, {1: WAITING_REPORT_ONLY}, None),  # none can switch: Rejected
        (None, {1: WAITING_REPORT_ONLY, 2: FREE}, 2),  # only one that can switch is picked
        (2, {1: WAITING_REPORT_ONLY, 2: FREE}, 2),
    ],
)
def test_a_remote_start_never_goes_to_a_report_only_connector(
    connector_id: int | None, views: dict[int, ConnectorView], target: int | None
) -> None:
    assert remote_start_target(connector_id, views, "TAG") == target


def test_a_remote_stop_of_a_report_only_transaction_is_rejected() -> None:
    charging = ConnectorView(Status.CHARGING, True)
    report_only = ConnectorView(Status.CHARGING, True, switches_energy=False)
    assert remote_stop_target(1, {1: charging, 2: report_only}) == 1
    assert remote_stop_target(2, {1: charging, 2: report_only}) is None
    assert remote_stop_target(None, {1: charging}) is None  # no such transaction


def test_charging_profiles_are_refused_where_no_device_could_follow_them() -> None:
    mixed = {1: True, 2: False}
    assert report_only_refusal(1, mixed) is None and report_only_refusal(0, mixed) is None
    assert "connector 2 is report only" in (report_only_refusal(2, mixed) or "")
    assert "every connector is report only" in (report_only_refusal(0, {1: False}) or "")


def test_supported_feature_profiles_leave_out_smart_charging_when_no_connector_can_switch() -> None:
    assert supported_profiles(True) == SUPPORTED_PROFILES
    profiles = supported_profiles(False)
    assert "SmartCharging" not in profiles and set(profiles) == set(SUPPORTED_PROFILES) - {"SmartCharging"}
    fixed = {"NumberOfConnectors": "1", "SupportedFeatureProfiles": ",".join(profiles)}
    configuration = Configuration(implemented_features(profiles), fixed=fixed)
    assert "SmartCharging" not in configuration.get_list("SupportedFeatureProfiles")
    with pytest.raises(UnknownKey):  # the profile's keys go with it
        configuration.get_int("ChargeProfileMaxStackLevel")
    full = Configuration(
        implemented_features(SUPPORTED_PROFILES), fixed={**fixed, "SupportedFeatureProfiles": "Core"}
    )
    assert full.get_int("ChargeProfileMaxStackLevel") > 0


# -- the generic device and check --------------------------------------------------------------
HEAD = """\
charge_points:
  - id: CP-1
    csms_url: ws://127.0.0.1:9000/ocpp
    connectors:
      - id: 1
"""
REPORT_ONLY = """\
        charger:
          type: generic
          read:
            plugged: {const: true}
"""


def options_of(text: str) -> GenericChargerOptions:
    options = parse_config(text, "test.yaml").charge_points[0].connectors[0].charger.options
    assert isinstance(options, GenericChargerOptions)
    return options


async def test_a_generic_charger_without_write_enable_is_report_only() -> None:
    charger = GenericCharger(
        options_of(HEAD + "        free_vend_id_tag: FREE\n" + REPORT_ONLY), Transports()
    )
    assert not charger.capabilities.can_switch_energy and charger.capabilities.can_sense_plug
    with pytest.raises(NotSupportedByDevice, match="report only"):
        await charger.set_enabled(False)
    # what `ocpp-bridge probe` shows of it
    assert describe_capabilities(charger.capabilities).endswith(
        "; report only: the device decides when energy flows"
    )


def test_check_refuses_a_report_only_connector_that_could_never_start_a_transaction() -> None:
    text = HEAD + REPORT_ONLY
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "test.yaml")
    (problem,) = caught.value.problems
    assert problem.path == "charge_points[0].connectors[0].charger"
    assert "report only" in problem.message and "set free_vend_id_tag" in problem.message
    assert problem.line == 7  # the charger block (a mapping's line: its first key)
    # A free-vend tag, or a tag the device presents, makes it whole.
    options_of(HEAD + "        free_vend_id_tag: FREE\n" + REPORT_ONLY)
    assert options_of(text + "            id_tag: {const: ''}\n").reads_tags


class WatchOnly(SimulatedCharger):
    """A built-in driver report only by its nature (not by a generic option), with no card reader."""

    @property
    def capabilities(self) -> ChargerCapabilities:
        return replace(super().capabilities, can_switch_energy=False, has_rfid=False)


def test_check_asks_the_driver_whether_it_is_report_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """`check` takes the run's decision (the driver's capabilities), so any report-only driver is checked."""
    monkeypatch.setitem(CHARGER_TYPES, "watch-only", f"{__name__}:WatchOnly")
    text = HEAD + "        charger: {type: watch-only}\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "test.yaml")
    (problem,) = caught.value.problems
    assert problem.path == "charge_points[0].connectors[0].charger" and "report only" in problem.message
    parse_config(text + "        free_vend_id_tag: FREE\n", "test.yaml")  # a tag to start with: whole
    parse_config(HEAD + "        charger: {type: simulated}\n", "test.yaml")  # it can switch: fine


async def test_the_unwanted_energy_guard_and_set_energy_leave_a_report_only_device_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Energy flowing without a transaction is the device's own decision: never switched off, and no
    refusal logged at every reading."""
    text = HEAD + "        free_vend_id_tag: FREE\n" + REPORT_ONLY + "            enabled: {const: true}\n"
    clock = ManualClock()
    device = DeviceCoordinator(
        GenericCharger(options_of(text), Transports()), name="CP-1/1", clock=clock, poll_interval_s=1.0,
        faulted_after=3, metrics=Metrics(), labels={},
    )  # fmt: skip
    flowing = reading(True, allowed=True)
    assert device.first_read and not device.energy_unwanted(flowing, allowed=False)
    clock.advance(UNWANTED_ENERGY_S + 1)
    assert not device.energy_unwanted(flowing, allowed=False)
    await device.set_energy(False)  # asks nothing of the device: no "refused to" line
    assert [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")] == []
