"""The connector core: derived status and transaction decisions, with time passed in."""

from datetime import UTC, datetime, timedelta

import pytest

from adapters.base import ChargerReading, DeviceFault
from bridge.core.connector import (
    Authorize,
    Connector,
    SetEnergy,
    StartTransaction,
    Status,
    StopReason,
    StopTransaction,
)

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def reading(
    plugged: bool = False,
    requesting: bool | None = None,
    energy: float = 1000.0,
    fault: DeviceFault | None = None,
) -> ChargerReading:
    return ChargerReading(
        plugged=plugged,
        ev_requesting=plugged if requesting is None else requesting,
        energy_allowed=False,
        energy_wh=energy,
        fault=fault,
    )


def charging_connector() -> Connector:
    c = Connector(1)
    c.on_reading(reading(plugged=True), T0, stop_on_ev_disconnect=True)
    assert c.on_tag("TAG", T0) == [Authorize("TAG")]
    c.on_authorized("TAG", True, T0, 60)
    return c


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (lambda c: None, Status.AVAILABLE),
        (lambda c: c.on_reading(reading(plugged=True), T0, True), Status.PREPARING),
        (lambda c: c.on_reading(reading(fault=DeviceFault("GroundFailure")), T0, True), Status.FAULTED),
        (lambda c: setattr(c, "operative", False), Status.UNAVAILABLE),
    ],
)
def test_status_without_transaction(setup, expected: Status) -> None:
    c = Connector(1)
    setup(c)
    assert c.status().status is expected


def test_plug_then_tap_starts_a_transaction_with_the_real_register() -> None:
    c = Connector(1)
    c.on_reading(reading(plugged=True, energy=12345.6), T0, True)
    assert c.on_tag("TAG", T0) == [Authorize("TAG")]
    effects = c.on_authorized("TAG", True, T0, 60)
    start = effects[0]
    assert isinstance(start, StartTransaction)
    assert start.transaction.meter_start_wh == 12345  # never rebased to zero
    assert effects[1] == SetEnergy(True)
    assert c.status().status is Status.CHARGING


def test_tap_then_plug_waits_for_the_plug_in_preparing() -> None:
    c = Connector(1)
    c.on_tag("TAG", T0)
    assert c.on_authorized("TAG", True, T0, 60) == []
    assert c.status().status is Status.PREPARING
    effects = c.on_reading(reading(plugged=True), T0 + timedelta(seconds=10), True)
    assert isinstance(effects[0], StartTransaction)


def test_an_authorized_tag_waits_only_connection_timeout() -> None:
    c = Connector(1)
    c.on_tag("TAG", T0)
    c.on_authorized("TAG", True, T0, 60)
    c.on_tick(T0 + timedelta(seconds=60), 60)
    assert c.status().status is Status.AVAILABLE
    assert c.on_reading(reading(plugged=True), T0 + timedelta(seconds=61), True) == []


def test_refused_tag_starts_nothing() -> None:
    c = Connector(1)
    c.on_reading(reading(plugged=True), T0, True)
    c.on_tag("BAD", T0)
    assert c.on_authorized("BAD", False, T0, 60) == []
    assert c.transaction is None
    assert c.status().status is Status.PREPARING


def test_same_tag_in_any_case_stops_without_authorize() -> None:
    c = charging_connector()
    effects = c.on_tag("tag", T0 + timedelta(minutes=5))
    assert effects[0] == SetEnergy(False, session_ends=True)
    stop = effects[1]
    assert isinstance(stop, StopTransaction)
    assert stop.reason is StopReason.LOCAL and stop.id_tag == "tag"
    assert c.status().status is Status.FINISHING


def test_a_different_tag_neither_stops_nor_authorizes() -> None:
    c = charging_connector()
    assert c.on_tag("OTHER", T0) == []
    assert c.transaction is not None


def test_ev_side_disconnect_stops_when_configured() -> None:
    c = charging_connector()
    effects = c.on_reading(reading(plugged=False), T0, stop_on_ev_disconnect=True)
    assert isinstance(effects[1], StopTransaction) and effects[1].reason is StopReason.EV_DISCONNECTED
    assert c.status().status is Status.AVAILABLE


def test_ev_side_disconnect_suspends_when_not_configured_to_stop() -> None:
    c = charging_connector()
    assert c.on_reading(reading(plugged=False), T0, stop_on_ev_disconnect=False) == []
    assert c.status().status is Status.SUSPENDED_EV
    assert c.status().info == "EV side disconnected"


def test_suspended_ev_and_evse() -> None:
    c = charging_connector()
    c.on_reading(reading(plugged=True, requesting=False), T0, True)
    assert c.status().status is Status.SUSPENDED_EV
    assert c.on_limit(True) == [SetEnergy(False)]  # energy no longer allowed
    assert c.status().status is Status.SUSPENDED_EVSE  # EVSE takes precedence


def test_fault_during_a_transaction_is_faulted_and_carries_the_code() -> None:
    c = charging_connector()
    c.on_reading(reading(plugged=True, fault=DeviceFault("OverCurrentFailure", "32 A seen")), T0, True)
    report = c.status()
    assert (report.status, report.error_code, report.info) == (
        Status.FAULTED,
        "OverCurrentFailure",
        "32 A seen",
    )
    assert c.transaction is not None  # a fault does not end the session by itself


def test_meter_stop_never_below_meter_start() -> None:
    c = charging_connector()
    c.energy_wh = 10.0  # a device that reset its register
    stop = c.stop(StopReason.REMOTE, T0, None)[1]
    assert isinstance(stop, StopTransaction)
    assert stop.meter_stop_wh == stop.transaction.meter_start_wh


def test_a_confirmation_of_another_transaction_changes_nothing() -> None:
    """(The central system's id itself is the outbox's to keep: tests/test_outbox.py.)"""
    c = charging_connector()
    assert c.transaction is not None
    before = c.transaction
    c.on_start_confirmed(before.local_id + 1, "FLEET")
    assert c.transaction == before


def test_unplug_after_finishing_makes_it_available() -> None:
    c = charging_connector()
    c.on_tag("TAG", T0)
    assert c.status().status is Status.FINISHING
    c.on_reading(reading(plugged=False), T0, True)
    assert c.status().status is Status.AVAILABLE


@pytest.mark.parametrize(
    ("now", "interval", "expected"),
    [
        (datetime(2026, 1, 1, 12, 7, 3, tzinfo=UTC), 900, datetime(2026, 1, 1, 12, 15, tzinfo=UTC)),
        (datetime(2026, 1, 1, 12, 15, 0, tzinfo=UTC), 900, datetime(2026, 1, 1, 12, 30, tzinfo=UTC)),
        (datetime(2026, 1, 1, 23, 59, 59, tzinfo=UTC), 900, datetime(2026, 1, 2, 0, 0, tzinfo=UTC)),
        (datetime(2026, 1, 1, 0, 0, 41, tzinfo=UTC), 20, datetime(2026, 1, 1, 0, 1, 0, tzinfo=UTC)),
        # An interval that does not divide a day still starts over at midnight.
        (datetime(2026, 1, 1, 23, 59, 0, tzinfo=UTC), 7 * 3600, datetime(2026, 1, 2, 0, 0, tzinfo=UTC)),
    ],
)
def test_clock_aligned_instants_count_from_midnight(now: datetime, interval: int, expected: datetime) -> None:
    from bridge.core.meter_values import next_aligned

    assert datetime.fromtimestamp(next_aligned(now.timestamp(), interval), UTC) == expected


# -- a device that stops answering ---------------------------------------------------
def test_a_silent_device_faults_the_connector_and_keeps_the_transaction() -> None:
    c = charging_connector()
    tx = c.transaction
    c.on_device_silent(DeviceFault("OtherError", "go-e at 10.0.0.7: timed out", "DeviceUnreachable"))
    report = c.status()
    assert (report.status, report.error_code, report.info) == (
        Status.FAULTED,
        "OtherError",
        "go-e at 10.0.0.7: timed out",
    )
    assert c.transaction == tx
    assert c.on_reading(reading(plugged=True, energy=1500), T0 + timedelta(seconds=30), True) == []
    assert c.status().status is Status.CHARGING  # its true status again


# -- B6: plugged, no tag within ConnectionTimeOut --------------------------------------
def test_a_cable_without_a_tag_goes_finishing_after_the_connection_timeout() -> None:
    c = Connector(1)
    c.on_reading(reading(plugged=True), T0, True)
    c.on_tick(T0 + timedelta(seconds=59), 60)
    assert c.status().status is Status.PREPARING
    c.on_tick(T0 + timedelta(seconds=60), 60)
    assert c.status().status is Status.FINISHING
    assert c.on_tag("TAG", T0 + timedelta(seconds=61)) == []  # a new session needs a new plug-in
    c.on_reading(reading(plugged=False), T0 + timedelta(seconds=70), True)
    assert c.status().status is Status.AVAILABLE


def test_an_authorization_in_flight_holds_off_the_connection_timeout() -> None:
    c = Connector(1)
    c.on_reading(reading(plugged=True), T0, True)
    c.on_tag("TAG", T0 + timedelta(seconds=50))
    c.on_tick(T0 + timedelta(seconds=65), 60)
    assert c.status().status is Status.PREPARING
    effects = c.on_authorized("TAG", True, T0 + timedelta(seconds=66), 60)
    assert [type(e) for e in effects] == [StartTransaction, SetEnergy]


# -- stops by a tag of the same group (parentIdTag) ---------------------------------------
def _grouped(parent: str | None = "FLEET") -> Connector:
    c = Connector(1)
    c.on_reading(reading(plugged=True), T0, True)
    c.on_tag("CARD-A", T0)
    c.on_authorized("CARD-A", True, T0, 60, parent_id_tag=parent)
    assert c.transaction is not None and c.transaction.parent_id_tag == parent
    return c


def test_a_tag_of_the_same_group_known_locally_stops_without_authorize() -> None:
    c = _grouped()
    effects = c.on_tag("CARD-B", T0 + timedelta(minutes=1), known_parent="fleet")
    stop = effects[-1]
    assert isinstance(stop, StopTransaction)
    assert (stop.reason, stop.id_tag) == (StopReason.LOCAL, "CARD-B")


def test_a_tag_of_another_group_does_not_stop() -> None:
    c = _grouped()
    assert c.on_tag("CARD-X", T0, known_parent="OTHER") == []
    assert c.transaction is not None


def test_an_unknown_tag_is_authorized_to_learn_its_group() -> None:
    c = _grouped()
    assert c.on_tag("CARD-B", T0) == [Authorize("CARD-B")]
    assert c.on_tag("CARD-B", T0) == []  # one Authorize in flight per tag
    effects = c.on_authorized("CARD-B", True, T0, 60, parent_id_tag="FLEET")
    assert isinstance(effects[-1], StopTransaction) and effects[-1].id_tag == "CARD-B"


def test_without_a_group_a_different_tag_is_not_even_authorized() -> None:
    c = _grouped(parent=None)
    assert c.on_tag("CARD-B", T0) == []


def test_the_group_named_in_start_transaction_conf_counts() -> None:
    c = charging_connector()
    assert c.transaction is not None
    c.on_start_confirmed(c.transaction.local_id, "FLEET")
    assert c.transaction.parent_id_tag == "FLEET"
    assert isinstance(c.on_tag("OTHER", T0, known_parent="FLEET")[-1], StopTransaction)


# -- an invalid id in StartTransaction.conf ---------------------------------------------------
def test_invalid_id_stops_with_deauthorized_by_default() -> None:
    c = charging_connector()
    assert c.transaction is not None
    effects = c.on_start_rejected(c.transaction.local_id, T0, stop_on_invalid_id=True, max_energy_wh=0)
    assert effects[0] == SetEnergy(False, session_ends=True)
    assert isinstance(effects[1], StopTransaction) and effects[1].reason is StopReason.DE_AUTHORIZED


def test_invalid_id_without_stop_suspends_energy_and_the_transaction_goes_on() -> None:
    c = charging_connector()
    assert c.transaction is not None
    effects = c.on_start_rejected(c.transaction.local_id, T0, stop_on_invalid_id=False, max_energy_wh=0)
    assert effects == [SetEnergy(False)]
    assert c.status().status is Status.SUSPENDED_EVSE
    assert c.on_reading(reading(plugged=True, energy=1200), T0, True, False) == []  # no second SetEnergy
    stop = c.on_tag("TAG", T0 + timedelta(minutes=1))[-1]  # the same tag still ends it
    assert isinstance(stop, StopTransaction) and stop.reason is StopReason.LOCAL


def test_max_energy_on_invalid_id_lets_that_much_flow_first() -> None:
    c = charging_connector()  # register at 1000 Wh
    assert c.transaction is not None
    assert c.on_start_rejected(c.transaction.local_id, T0, True, max_energy_wh=500) == []
    assert c.on_reading(reading(plugged=True, energy=1499), T0, True, True) == []
    effects = c.on_reading(reading(plugged=True, energy=1500), T0, True, True)
    assert isinstance(effects[-1], StopTransaction) and effects[-1].reason is StopReason.DE_AUTHORIZED
    assert effects[-1].meter_stop_wh == 1500


# -- a device that cannot sense the plug (a relay) --------------------------------------------
def test_without_plug_sensing_a_tag_starts_at_once_and_nothing_is_stopped_by_an_unseen_unplug() -> None:
    unknown = ChargerReading(plugged=None, ev_requesting=False, energy_allowed=False, energy_wh=500.0)
    c = Connector(1)
    c.on_reading(unknown, T0, True)
    assert c.status().status is Status.AVAILABLE
    assert c.on_tag("TAG", T0) == [Authorize("TAG")]
    effects = c.on_authorized("TAG", True, T0, 60)
    assert [type(e) for e in effects] == [StartTransaction, SetEnergy]
    assert c.status().status is Status.SUSPENDED_EV  # energy allowed, nothing drawn yet
    drawing = ChargerReading(plugged=True, ev_requesting=True, energy_allowed=True, energy_wh=600.0)
    c.on_reading(drawing, T0, True)
    assert c.status().status is Status.CHARGING
    assert c.on_reading(unknown, T0, stop_on_ev_disconnect=True) == []  # unknown again: no EVDisconnected
    assert c.transaction is not None
    stop = c.on_tag("TAG", T0)
    assert isinstance(stop[-1], StopTransaction)
    assert c.status().status is Status.AVAILABLE  # at once, not Preparing until the next reading
    c.on_reading(unknown, T0, True)
    assert c.status().status is Status.AVAILABLE  # not Finishing: no cable can be seen
    c.on_tick(T0 + timedelta(hours=1), 60)
    assert c.status().status is Status.AVAILABLE
