"""The connector lifecycle's tables, row by row; the status projection as a table; the diagram in the docs.

The pure tests call `session_step` / `availability_step` with every combination of the guard facts.
The connector tests put a `Connector` in a row's from-state through its public inputs, with the row's
guard holding, feed it the input that fires the row's event and check the to-state and the effects.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from adapters.base import ChargerReading, DeviceFault
from bridge.core import connector_diagram
from bridge.core.connector import (
    Authorize,
    Connector,
    Effect,
    Reservation,
    ReservationEnded,
    SetEnergy,
    StartTransaction,
    Status,
    StatusReport,
    StopReason,
    StopTransaction,
    Transaction,
)
from bridge.core.connector_states import (
    AVAILABILITY_TABLE,
    GUARDS,
    INITIAL_AVAILABILITY,
    INITIAL_STATE,
    SESSION_TABLE,
    Availability,
    AvailabilityEvent,
    CableIn,
    CableOut,
    CancelReservation,
    ConnectionTimeout,
    Facts,
    Guard,
    MakeInoperative,
    MakeOperative,
    Reserve,
    Resume,
    Row,
    SessionEvent,
    State,
    Stop,
    TagAccepted,
    TagPresented,
    TransactionEnded,
    availability_step,
    session_step,
)
from bridge.core.connector_status import project

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
TX = Transaction(41, "STORED", 900, T0 - timedelta(hours=1))
RESERVATION = Reservation(7, "NEW", None, T0 + timedelta(hours=1), 1)  # for the tag ACT presents
ALL_FACTS = [Facts(*bits) for bits in itertools.product((False, True), repeat=4)]

SESSION_EVENTS: dict[type[SessionEvent], SessionEvent] = {
    CableIn: CableIn(T0),
    CableOut: CableOut(),
    TagPresented: TagPresented("TAG"),
    TagAccepted: TagAccepted("TAG", None, T0, T0 + timedelta(seconds=60)),
    ConnectionTimeout: ConnectionTimeout(),
    Stop: Stop(StopReason.REMOTE, None, T0),
    Resume: Resume(TX),
    Reserve: Reserve(RESERVATION),
    CancelReservation: CancelReservation(),
}
AVAILABILITY_EVENTS: dict[type[AvailabilityEvent], AvailabilityEvent] = {
    MakeOperative: MakeOperative(),
    MakeInoperative: MakeInoperative(),
    TransactionEnded: TransactionEnded(),
}


def holds(guard: Guard | None, facts: Facts) -> bool:
    return guard is None or GUARDS[guard](facts)


def row_id(row: Row[State, SessionEvent] | Row[Availability, AvailabilityEvent]) -> str:
    guard = f"[{row.guard}]" if row.guard is not None else ""
    return f"{row.source}-{row.event.__name__}{guard}-{row.target}"


# -- the tables are well formed ---------------------------------------------------------
@pytest.mark.parametrize("table", [SESSION_TABLE, AVAILABILITY_TABLE], ids=["session", "availability"])
def test_the_guards_of_one_state_and_event_never_hold_together(
    table: tuple[Row[State, SessionEvent], ...] | tuple[Row[Availability, AvailabilityEvent], ...],
) -> None:
    keys = {(row.source, row.event) for row in table}
    for key in keys:
        rows = [row for row in table if (row.source, row.event) == key]
        for facts in ALL_FACTS:
            assert sum(holds(row.guard, facts) for row in rows) <= 1, (key, facts)


def test_every_guard_can_hold_and_can_fail() -> None:
    for guard in Guard:
        assert {GUARDS[guard](facts) for facts in ALL_FACTS} == {True, False}, guard


def test_every_state_is_reachable_from_the_initial_one() -> None:
    for table, initial, states in (
        (SESSION_TABLE, INITIAL_STATE, set(State)),
        (AVAILABILITY_TABLE, INITIAL_AVAILABILITY, set(Availability)),
    ):
        reached, frontier = {initial}, [initial]
        while frontier:
            here = frontier.pop()
            for row in table:
                if row.source == here and row.target not in reached:
                    reached.add(row.target)
                    frontier.append(row.target)
        assert reached == states


# -- each row, pure -------------------------------------------------------------------------
@pytest.mark.parametrize("row", SESSION_TABLE, ids=row_id)
def test_a_session_row_leads_where_it_says_whenever_its_guard_holds(row: Row[State, SessionEvent]) -> None:
    event = SESSION_EVENTS[row.event]
    for facts in ALL_FACTS:
        if holds(row.guard, facts):
            assert session_step(row.source, event, facts) is row.target, facts


@pytest.mark.parametrize("row", AVAILABILITY_TABLE, ids=row_id)
def test_an_availability_row_leads_where_it_says_whenever_its_guard_holds(
    row: Row[Availability, AvailabilityEvent],
) -> None:
    event = AVAILABILITY_EVENTS[row.event]
    for facts in ALL_FACTS:
        if holds(row.guard, facts):
            assert availability_step(row.source, event, facts) is row.target, facts


def test_a_session_event_without_a_row_that_holds_is_ignored() -> None:
    for state, (kind, event) in itertools.product(State, SESSION_EVENTS.items()):
        rows = [r for r in SESSION_TABLE if (r.source, r.event) == (state, kind)]
        for facts in ALL_FACTS:
            if not any(holds(r.guard, facts) for r in rows):
                assert session_step(state, event, facts) is None, (state, kind, facts)


def test_an_availability_event_without_a_row_that_holds_is_ignored() -> None:
    for state, (kind, event) in itertools.product(Availability, AVAILABILITY_EVENTS.items()):
        rows = [r for r in AVAILABILITY_TABLE if (r.source, r.event) == (state, kind)]
        for facts in ALL_FACTS:
            if not any(holds(r.guard, facts) for r in rows):
                assert availability_step(state, event, facts) is None, (state, kind, facts)


# -- each row, through the connector's public inputs -----------------------------------------------
def reading(plugged: bool | None, energy: float = 1000.0, fault: DeviceFault | None = None) -> ChargerReading:
    return ChargerReading(
        plugged=plugged, ev_requesting=bool(plugged), energy_allowed=False, energy_wh=energy, fault=fault
    )


def idle(cable: bool = False) -> Connector:
    c = Connector(1)
    c.on_reading(reading(cable), T0, True)
    return c


def authorized() -> Connector:
    c = idle()
    c.on_authorized("WAITING", True, T0, 60)
    return c


def in_transaction(cable: bool = True, parent: str | None = None) -> Connector:
    c = idle(cable=True)
    c.on_authorized("TAG", True, T0, 60, parent_id_tag=parent)
    if not cable:
        c.on_reading(reading(False), T0, stop_on_ev_disconnect=False)
    return c


def finishing() -> Connector:
    c = idle(cable=True)
    c.on_tick(T0 + timedelta(seconds=60), 60)
    return c


def reserved(cable: bool = False, reservation: Reservation = RESERVATION) -> Connector:
    c = idle(cable)
    assert c.reserve(reservation)
    return c


def reserved_for_another() -> Connector:
    return reserved(reservation=Reservation(8, "SOMEONE", None, T0 + timedelta(hours=1), 1))


def unsensed(c: Connector) -> Connector:
    """The device can no longer tell the cable (a relay's reading)."""
    c.on_reading(reading(None), T0, True)
    return c


# (from-state, guard) -> a connector in that state where the guard holds
ARRANGE: dict[tuple[State, Guard | None], Callable[[], Connector]] = {
    (State.IDLE, None): idle,
    (State.IDLE, Guard.USABLE): idle,
    (State.IDLE, Guard.CAN_START): lambda: idle(cable=True),
    (State.IDLE, Guard.NEEDS_CABLE): idle,
    (State.AUTHORIZED, None): authorized,
    (State.AUTHORIZED, Guard.USABLE): authorized,
    (State.AUTHORIZED, Guard.CAN_START): lambda: unsensed(authorized()),
    (State.AUTHORIZED, Guard.NEEDS_CABLE): authorized,
    (State.TRANSACTION, None): lambda: in_transaction(parent="FLEET"),
    (State.TRANSACTION, Guard.CABLE_IN): in_transaction,
    (State.TRANSACTION, Guard.NO_CABLE): lambda: in_transaction(cable=False),
    (State.FINISHING, None): finishing,
    (State.FINISHING, Guard.CAN_START): finishing,
    (State.RESERVED, None): reserved,
    (State.RESERVED, Guard.USABLE): reserved,
    (State.RESERVED, Guard.CAN_START): lambda: reserved(cable=True),
    (State.RESERVED, Guard.NEEDS_CABLE): reserved,
}

# Where the input that fires the event needs more than the state: ConnectionTimeOut counts for a cable.
ARRANGE_FOR_EVENT: dict[tuple[State, type[SessionEvent]], Callable[[], Connector]] = {
    (State.IDLE, ConnectionTimeout): lambda: idle(cable=True),
}

# event -> the public input that fires it
ACT: dict[type[SessionEvent], Callable[[Connector], list[Effect]]] = {
    CableIn: lambda c: c.on_reading(reading(True), T0, True),
    CableOut: lambda c: c.on_reading(reading(False), T0, stop_on_ev_disconnect=False),
    TagPresented: lambda c: c.on_tag("NEW", T0),
    TagAccepted: lambda c: c.on_authorized("NEW", True, T0, 60),
    ConnectionTimeout: lambda c: c.on_tick(T0 + timedelta(hours=1), 60),
    Stop: lambda c: c.stop(StopReason.REMOTE, T0, None),
    Resume: lambda c: c.resume(TX),
    Reserve: lambda c: [SetEnergy(c.reserve(RESERVATION))],  # a bool, carried for the check below
    CancelReservation: lambda c: [SetEnergy(c.cancel_reservation() is not None)],
}


def facts_of(c: Connector) -> Facts:
    usable = c.operative and c.status().status is not Status.FAULTED
    return Facts(c.plugged, c.plug_sensed, usable, c.transaction is not None)


def expected_effects(row: Row[State, SessionEvent]) -> list[type]:
    if row.event in (Reserve, CancelReservation):
        return [SetEnergy]  # the True of reserve() / cancel_reservation()
    if row.source is State.RESERVED and row.target is State.TRANSACTION:
        return [StartTransaction, ReservationEnded, SetEnergy]  # the reservation used up
    if row.source is not State.TRANSACTION and row.target is State.TRANSACTION:
        return [SetEnergy] if row.event is Resume else [StartTransaction, SetEnergy]
    if row.source is State.TRANSACTION and row.target is not State.TRANSACTION:
        return [SetEnergy, StopTransaction]
    return [Authorize] if row.event is TagPresented else []


@pytest.mark.parametrize("row", SESSION_TABLE, ids=row_id)
def test_a_session_row_through_the_connector(row: Row[State, SessionEvent]) -> None:
    c = ARRANGE_FOR_EVENT.get((row.source, row.event), ARRANGE[row.source, row.guard])()
    assert c.state is row.source
    assert holds(row.guard, facts_of(c))
    effects = ACT[row.event](c)
    assert c.state is row.target
    assert [type(e) for e in effects] == expected_effects(row)
    if row.event in (Reserve, CancelReservation):
        assert effects == [SetEnergy(True)]


def test_a_waiting_tag_starts_with_its_group_when_the_cable_comes() -> None:
    c = idle()
    c.on_authorized("CARD", True, T0, 60, parent_id_tag="FLEET")
    assert c.waiting_tag == "CARD"
    [start, _] = c.on_reading(reading(True), T0, True)
    assert isinstance(start, StartTransaction)
    assert (start.transaction.id_tag, start.transaction.parent_id_tag) == ("CARD", "FLEET")
    assert c.waiting_tag is None


# -- what the table refuses, through the connector -----------------------------------------------
def faulted() -> Connector:
    c = Connector(1)
    c.on_reading(reading(False, fault=DeviceFault("GroundFailure")), T0, True)
    return c


def inoperative(cable: bool = False) -> Connector:
    c = idle(cable)
    assert c.change_availability(False) == "Accepted"
    return c


REFUSED: list[tuple[str, Callable[[], Connector], type[SessionEvent]]] = [
    ("a tag while Finishing", finishing, TagPresented),
    ("another tag while Reserved", reserved_for_another, TagPresented),
    ("another accepted tag while Reserved", reserved_for_another, TagAccepted),
    ("a reservation under another id while Reserved", reserved_for_another, Reserve),
    ("a tag while faulted", faulted, TagPresented),
    ("a tag while inoperative", inoperative, TagPresented),
    ("an accepted tag while inoperative", lambda: inoperative(cable=True), TagAccepted),
    ("an unplug without StopTransactionOnEVSideDisconnect", in_transaction, CableOut),
    ("a cable plugged again during the transaction", lambda: in_transaction(cable=False), CableIn),
    ("a stop without a transaction", idle, Stop),
    ("a stop while a tag waits", authorized, Stop),
    ("a resume during a transaction", in_transaction, Resume),
    ("a resume while Finishing", finishing, Resume),
    ("a reservation during a transaction", in_transaction, Reserve),
    ("a reservation while a tag waits", authorized, Reserve),
    ("a reservation while faulted", faulted, Reserve),
    ("a reservation while inoperative", inoperative, Reserve),
    ("a cancellation without a reservation", idle, CancelReservation),
    ("time during a transaction", in_transaction, ConnectionTimeout),
    ("time while Finishing", finishing, ConnectionTimeout),
    ("time while Reserved", lambda: reserved(cable=True), ConnectionTimeout),
]


@pytest.mark.parametrize(("arrange", "event"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_an_event_the_table_does_not_take_leaves_the_state_and_has_no_effect(
    arrange: Callable[[], Connector], event: type[SessionEvent]
) -> None:
    c = arrange()
    before = (c.state, c.availability, c.transaction, c.waiting_tag)
    effects = ACT[event](c)
    assert effects in ([], [SetEnergy(False)])  # reserve()/cancel_reservation(): False
    assert (c.state, c.availability, c.transaction, c.waiting_tag) == before


# -- availability, through the connector ---------------------------------------------------
def restored_inoperative() -> Connector:
    """Inoperative stored by a Scheduled ChangeAvailability, then the transaction resumed at start."""
    c = Connector(1)
    c.operative = False
    c.resume(TX)
    return c


def going_operative() -> Connector:
    c = restored_inoperative()
    assert c.change_availability(True) == "Scheduled"
    return c


def going_inoperative() -> Connector:
    c = in_transaction()
    assert c.change_availability(False) == "Scheduled"
    return c


AVAILABILITY_ARRANGE: dict[tuple[Availability, Guard | None], Callable[[], Connector]] = {
    (Availability.OPERATIVE, Guard.NO_TRANSACTION): idle,
    (Availability.OPERATIVE, Guard.IN_TRANSACTION): in_transaction,
    (Availability.INOPERATIVE, Guard.NO_TRANSACTION): inoperative,
    (Availability.INOPERATIVE, Guard.IN_TRANSACTION): restored_inoperative,
    (Availability.GOING_INOPERATIVE, None): going_inoperative,
    (Availability.GOING_OPERATIVE, None): going_operative,
}
AVAILABILITY_ACT: dict[type[AvailabilityEvent], Callable[[Connector], object]] = {
    MakeOperative: lambda c: c.change_availability(True),
    MakeInoperative: lambda c: c.change_availability(False),
    TransactionEnded: lambda c: c.stop(StopReason.LOCAL, T0, None),  # fired by the session's end
}


@pytest.mark.parametrize("row", AVAILABILITY_TABLE, ids=row_id)
def test_an_availability_row_through_the_connector(row: Row[Availability, AvailabilityEvent]) -> None:
    c = AVAILABILITY_ARRANGE[row.source, row.guard]()
    assert c.availability is row.source
    assert holds(row.guard, facts_of(c))
    answer = AVAILABILITY_ACT[row.event](c)
    assert c.availability is row.target
    if row.event is not TransactionEnded:
        scheduled = row.target in (Availability.GOING_INOPERATIVE, Availability.GOING_OPERATIVE)
        assert answer == ("Scheduled" if scheduled else "Accepted")


@pytest.mark.parametrize(
    ("arrange", "operative", "answer"),
    [
        (idle, True, "Accepted"),
        (inoperative, False, "Accepted"),
        (going_inoperative, False, "Scheduled"),  # still waiting for the end
        (going_operative, True, "Scheduled"),
    ],
)
def test_asking_for_what_is_already_so_changes_nothing(
    arrange: Callable[[], Connector], operative: bool, answer: str
) -> None:
    c = arrange()
    before = c.availability
    assert c.change_availability(operative) == answer
    assert c.availability is before


def test_finishing_survives_an_unavailable_spell() -> None:
    c = going_inoperative()
    c.stop(StopReason.REMOTE, T0, None)
    assert (c.state, c.availability, c.status().status) == (
        State.FINISHING,
        Availability.INOPERATIVE,
        Status.UNAVAILABLE,
    )
    assert c.change_availability(True) == "Accepted"
    assert c.status().status is Status.FINISHING
    assert c.on_tag("TAG", T0) == []  # a new session still needs a new plug-in


# -- Reserved ---------------------------------------------------------------------------------
def test_a_reservation_is_reported_reserved_and_a_cancellation_frees_it() -> None:
    c = reserved(cable=True)
    assert c.status() == StatusReport(Status.RESERVED)  # a cable in does not make it Preparing
    assert c.cancel_reservation(reservation_id=99) is None  # not its id
    assert c.cancel_reservation() == RESERVATION
    assert c.status().status is Status.PREPARING
    assert c.cancel_reservation() is None


def test_the_same_reservation_id_replaces_the_data() -> None:
    c = reserved()
    later = Reservation(7, "NEW", "FLEET", T0 + timedelta(hours=2), 1)
    assert c.reserve(later)
    assert c.reservation == later


def test_a_fault_ends_the_reservation() -> None:
    c = reserved()
    effects = c.on_device_silent(DeviceFault("OtherError", "no answer"))
    assert effects == [ReservationEnded(RESERVATION, "Faulted")]
    assert (c.state, c.reservation, c.status().status) == (State.IDLE, None, Status.FAULTED)
    c.on_reading(reading(False), T0, True)
    assert c.status().status is Status.AVAILABLE  # not Reserved again
    c = reserved()
    assert c.on_reading(reading(False, fault=DeviceFault("GroundFailure")), T0, True) == [
        ReservationEnded(RESERVATION, "Faulted")
    ]


def test_inoperative_ends_the_reservation() -> None:
    c = reserved()
    assert c.change_availability(False) == "Accepted"
    assert c.reservation_lost() == [ReservationEnded(RESERVATION, "Unavailable")]
    assert (c.state, c.status().status) == (State.IDLE, Status.UNAVAILABLE)
    assert c.reservation_lost() == []


def test_only_the_reserved_tag_or_its_group_gets_an_authorize() -> None:
    fleet = Reservation(9, "OWNER", "FLEET", T0 + timedelta(hours=1), 1)
    c = reserved(reservation=Reservation(9, "OWNER", None, T0 + timedelta(hours=1), 1))
    assert c.on_tag("STRANGER", T0) == []  # no group on the reservation: refused, no Authorize (TC_046_1)
    assert c.on_tag("owner", T0) == [Authorize("owner")]  # idTags compare case-insensitively
    c = reserved(reservation=fleet)
    assert c.on_tag("MEMBER", T0, known_parent="FLEET") == [Authorize("MEMBER")]
    assert c.on_tag("OUTSIDER", T0, known_parent="OTHERS") == []  # known to be of another group


def test_a_tag_of_unknown_group_is_authorized_then_refused_unless_its_group_matches() -> None:
    c = reserved(cable=True, reservation=Reservation(9, "OWNER", "FLEET", T0 + timedelta(hours=1), 1))
    assert c.on_tag("STRANGER", T0) == [Authorize("STRANGER")]  # its group is learnt from the answer
    assert c.on_authorized("STRANGER", True, T0, 60, parent_id_tag="OTHERS") == []
    assert c.state is State.RESERVED
    [start, ended, energy] = c.on_authorized("MEMBER", True, T0, 60, parent_id_tag="FLEET")
    assert isinstance(start, StartTransaction) and start.transaction.id_tag == "MEMBER"
    assert ended == ReservationEnded(c.used_reservation or RESERVATION, "used")
    assert c.used_reservation is not None and c.used_reservation.reservation_id == 9
    assert energy == SetEnergy(True)


def test_the_reserved_tag_waiting_for_the_cable_keeps_the_reservation() -> None:
    c = reserved()
    assert c.on_authorized("NEW", True, T0, 60) == []
    assert (c.state, c.reservation) == (State.AUTHORIZED, RESERVATION)
    assert c.on_authorized("SOMEONE", True, T0, 60) == []  # another tag cannot take its place
    assert c.waiting_tag == "NEW"
    # It lapses: Reserved again, for the rest of the reservation.
    assert c.on_tick(T0 + timedelta(seconds=61), 60) == []
    assert (c.state, c.reservation, c.status().status) == (State.RESERVED, RESERVATION, Status.RESERVED)
    c.on_authorized("NEW", True, T0, 60)
    [start, ended, _] = c.on_reading(reading(True), T0, True)
    assert isinstance(start, StartTransaction) and ended == ReservationEnded(RESERVATION, "used")
    assert c.used_reservation == RESERVATION
    c.stop(StopReason.LOCAL, T0, None)
    assert c.used_reservation is None


def test_a_cable_in_while_reserved_asks_for_no_time() -> None:
    c = reserved(cable=True)
    assert c.next_tick(60) is None  # not Finishing after ConnectionTimeOut: the tag may come later
    assert c.on_tick(T0 + timedelta(hours=2), 60) == []


# -- charging without a card: a plug-in nobody tapped for presents the configured tag -----------------
FREE = "FREE"


def free(cable: bool = False) -> Connector:
    c = Connector(1, free_tag=FREE)
    if cable:
        c.on_reading(reading(True), T0, True)
        c.on_authorized(FREE, True, T0, 60)  # the free-vend session runs
    return c


def plug(c: Connector) -> list[Effect]:
    return c.on_reading(reading(True), T0, True)


def unplugged(c: Connector) -> Connector:
    c.on_reading(reading(False), T0, stop_on_ev_disconnect=False)
    return c


def arranged(c: Connector, *steps: Callable[[Connector], object]) -> Connector:
    for step in steps:
        step(c)
    return c


FLEET_RESERVATION = Reservation(9, "OWNER", "FLEET", T0 + timedelta(hours=1), 1)
Act = Callable[[Connector], list[Effect]]
# (case, a connector with the free tag configured, the input, the effects' types, the state after)
FREE_VEND: list[tuple[str, Callable[[], Connector], Act, list[type], State]] = [
    ("plug-in, nothing waits: the tag is presented", free, plug, [Authorize], State.IDLE),
    ("no tag configured: Preparing, nothing asked", lambda: Connector(1), plug, [], State.IDLE),
    ("a tag tapped before the plug-in starts, not the free one",
     lambda: arranged(free(), lambda c: c.on_authorized("CARD", True, T0, 60)), plug,
     [StartTransaction, SetEnergy], State.TRANSACTION),
    ("a tapped card's Authorize in flight: the card decides alone",
     lambda: arranged(free(), lambda c: c.on_tag("CARD", T0)), plug, [], State.IDLE),
    ("plugged again during another tag's transaction: nothing presented",
     lambda: arranged(free(), lambda c: c.on_authorized("CARD", True, T0, 60), plug, unplugged), plug,
     [], State.TRANSACTION),
    ("plugged again during its own session: it does not stop itself",
     lambda: unplugged(free(cable=True)), plug, [], State.TRANSACTION),
    ("reserved for another tag without a group: refused without an Authorize",
     lambda: arranged(free(), lambda c: c.reserve(RESERVATION)), plug, [], State.RESERVED),
    ("reserved for the free tag: presented",
     lambda: arranged(free(), lambda c: c.reserve(replace(RESERVATION, id_tag=FREE))), plug, [Authorize],
     State.RESERVED),
    ("reserved for a group: an Authorize tells the free tag's group, as for a tap",
     lambda: arranged(free(), lambda c: c.reserve(FLEET_RESERVATION)), plug, [Authorize], State.RESERVED),
    ("inoperative: nothing", lambda: arranged(free(), lambda c: c.change_availability(False)), plug, [],
     State.IDLE),
    ("faulted: nothing", free, lambda c: c.on_reading(reading(True, fault=FAULT), T0, True), [], State.IDLE),
    ("a relay (the plug never sensed): nothing", free, lambda c: c.on_reading(reading(None), T0, True), [],
     State.IDLE),
]  # fmt: skip


@pytest.mark.parametrize(("arrange", "act", "effects", "state"), [r[1:] for r in FREE_VEND],
                         ids=[r[0] for r in FREE_VEND])  # fmt: skip
def test_charging_without_a_card(
    arrange: Callable[[], Connector],
    act: Callable[[Connector], list[Effect]],
    effects: list[type],
    state: State,
) -> None:
    c = arrange()
    tx = c.transaction
    got = act(c)
    assert [type(e) for e in got] == effects
    assert c.state is state
    if Authorize in effects:
        assert got == [Authorize(FREE)]
    if tx is not None:
        assert c.transaction == tx  # the session that ran goes on, untouched


def test_the_free_tag_accepted_starts_its_transaction_and_refused_leaves_preparing_then_finishing() -> None:
    c = free()
    plug(c)
    [start, energy] = c.on_authorized(FREE, True, T0, 60)
    assert isinstance(start, StartTransaction) and start.transaction.id_tag == FREE
    assert energy == SetEnergy(True)
    refused = free()
    plug(refused)
    assert refused.on_authorized(FREE, False, T0, 60) == []
    assert (refused.state, refused.status().status) == (State.IDLE, Status.PREPARING)
    assert refused.next_tick(60) == T0 + timedelta(seconds=60)  # the Authorize no longer holds time off
    refused.on_tick(T0 + timedelta(seconds=60), 60)
    assert refused.status().status is Status.FINISHING  # a new plug-in tries again


def test_a_free_tag_outside_the_reservations_group_leaves_it_reserved() -> None:
    c = arranged(free(), lambda c: c.reserve(FLEET_RESERVATION))
    plug(c)
    assert c.on_authorized(FREE, True, T0, 60, parent_id_tag="OTHER") == []
    assert (c.state, c.reservation) == (State.RESERVED, FLEET_RESERVATION)
    [start, ended, _] = c.on_authorized(FREE, True, T0, 60, parent_id_tag="FLEET")
    assert isinstance(start, StartTransaction) and ended == ReservationEnded(FLEET_RESERVATION, "used")


def test_a_real_card_stops_a_free_vend_session_only_as_a_tag_of_the_same_group() -> None:
    c = free()
    plug(c)
    c.on_authorized(FREE, True, T0, 60, parent_id_tag="HOME")
    assert c.on_tag("CARD", T0, known_parent="WORK") == []  # another group: ignored
    assert c.transaction is not None
    [off, stop] = c.on_tag("CARD", T0, known_parent="HOME")
    assert off == SetEnergy(False, session_ends=True)
    assert isinstance(stop, StopTransaction) and stop.id_tag == "CARD"
    ungrouped = free(cable=True)  # the free tag has no group: another card neither stops nor asks
    assert ungrouped.on_tag("CARD", T0) == [] and ungrouped.transaction is not None


# -- the projection to OCPP statuses, as a table -----------------------------------------------
FAULT = DeviceFault("GroundFailure", "RCD tripped", "E42")
FAULTED = StatusReport(Status.FAULTED, "GroundFailure", "RCD tripped", "E42")
UNPLUGGED = StatusReport(Status.SUSPENDED_EV, info="EV side disconnected")
A = Availability
PROJECTION: list[tuple[State, Availability, bool, bool, bool, DeviceFault | None, StatusReport]] = [
    # state, availability, plugged, requesting, energy allowed, fault -> report
    (State.IDLE, A.OPERATIVE, False, False, False, None, StatusReport(Status.AVAILABLE)),
    (State.IDLE, A.OPERATIVE, True, False, False, None, StatusReport(Status.PREPARING)),
    (State.IDLE, A.INOPERATIVE, True, True, False, None, StatusReport(Status.UNAVAILABLE)),
    (State.AUTHORIZED, A.OPERATIVE, False, False, False, None, StatusReport(Status.PREPARING)),
    (State.AUTHORIZED, A.INOPERATIVE, False, False, False, None, StatusReport(Status.UNAVAILABLE)),
    (State.FINISHING, A.OPERATIVE, True, False, False, None, StatusReport(Status.FINISHING)),
    (State.FINISHING, A.INOPERATIVE, True, False, False, None, StatusReport(Status.UNAVAILABLE)),
    (State.RESERVED, A.OPERATIVE, False, False, False, None, StatusReport(Status.RESERVED)),
    (State.RESERVED, A.OPERATIVE, True, False, False, None, StatusReport(Status.RESERVED)),
    (State.RESERVED, A.INOPERATIVE, False, False, False, None, StatusReport(Status.UNAVAILABLE)),
    (State.TRANSACTION, A.OPERATIVE, True, True, True, None, StatusReport(Status.CHARGING)),
    (State.TRANSACTION, A.OPERATIVE, True, False, True, None, StatusReport(Status.SUSPENDED_EV)),
    (State.TRANSACTION, A.OPERATIVE, True, True, False, None, StatusReport(Status.SUSPENDED_EVSE)),
    (State.TRANSACTION, A.OPERATIVE, True, False, False, None, StatusReport(Status.SUSPENDED_EVSE)),
    (State.TRANSACTION, A.OPERATIVE, False, False, False, None, UNPLUGGED),
    # Unavailable only without a transaction, whatever waits for its end.
    (State.TRANSACTION, A.GOING_INOPERATIVE, True, True, True, None, StatusReport(Status.CHARGING)),
    (State.TRANSACTION, A.GOING_OPERATIVE, True, True, True, None, StatusReport(Status.CHARGING)),
    (State.TRANSACTION, A.INOPERATIVE, True, True, False, None, StatusReport(Status.SUSPENDED_EVSE)),
    # Faulted beats everything and carries the device's codes.
    *[(state, A.OPERATIVE, True, True, True, FAULT, FAULTED) for state in State],
    (State.IDLE, A.INOPERATIVE, False, False, False, FAULT, FAULTED),
]


@pytest.mark.parametrize(
    ("state", "availability", "plugged", "requesting", "allowed", "fault", "expected"),
    PROJECTION,
    ids=[f"{r[0]}-{r[1]}-{'plug' if r[2] else 'free'}-{r[6].status}" for r in PROJECTION],
)
def test_the_status_projection(
    state: State,
    availability: Availability,
    plugged: bool,
    requesting: bool,
    allowed: bool,
    fault: DeviceFault | None,
    expected: StatusReport,
) -> None:
    report = project(
        state, availability, plugged=plugged, ev_requesting=requesting, energy_allowed=allowed, fault=fault
    )
    assert report == expected


def test_the_projection_table_covers_all_nine_statuses() -> None:
    assert {row[6].status for row in PROJECTION} == set(Status)


def test_every_combination_projects_to_a_status_and_faulted_exactly_when_faulty() -> None:
    for state, availability, *bits in itertools.product(State, Availability, *[(False, True)] * 4):
        plugged, requesting, allowed, faulty = bits
        report = project(
            state,
            availability,
            plugged=plugged,
            ev_requesting=requesting,
            energy_allowed=allowed,
            fault=FAULT if faulty else None,
        )
        assert (report.status is Status.FAULTED) == faulty


# -- the diagram in docs/protocol.md ----------------------------------------------------------
def test_the_diagram_in_the_docs_is_drawn_from_the_tables() -> None:
    doc = connector_diagram.DOC.read_text(encoding="utf-8")
    assert connector_diagram.block(doc) == connector_diagram.render(), (
        "docs/protocol.md's connector diagram differs from bridge/core/connector_states.py: "
        "run `.venv/bin/python -m bridge.core.connector_diagram --write`"
    )


def test_the_diagram_has_one_edge_per_row_and_labels_mermaid_can_read() -> None:
    text = connector_diagram.render()
    edges = [line for line in text.splitlines() if "-->" in line and "[*]" not in line]
    assert len(edges) == len(SESSION_TABLE) + len(AVAILABILITY_TABLE)
    assert all(line.count(":") == 1 for line in edges)  # a second colon breaks Mermaid's parser


def test_rewriting_puts_the_drawing_between_the_markers() -> None:
    doc = f"before\n{connector_diagram.BEGIN}\nstale\n{connector_diagram.END}\nafter\n"
    again = connector_diagram.rewrite(doc)
    assert connector_diagram.block(again) == connector_diagram.render()
    assert again.startswith("before\n") and again.endswith(f"{connector_diagram.END}\nafter\n")
    with pytest.raises(ValueError, match="markers"):
        connector_diagram.rewrite("no markers here")
