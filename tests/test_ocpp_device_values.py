"""The values a `type: ocpp` charger reports (adapters/chargers/ocpp_device_values.py), passed in: only
finite, plausible numbers in a known unit are taken; the bridge's register never goes down, also for a
charger whose meter counts per session."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.chargers.ocpp_device_register import Counting
from adapters.chargers.ocpp_device_state import ChargerState
from adapters.chargers.ocpp_device_values import sampled, take, take_start, take_stop


def value(text: Any, measurand: str = "Energy.Active.Import.Register", **more: Any) -> dict[str, Any]:
    return {"value": text, "measurand": measurand, **more}


def test_a_full_sample_is_taken_in_the_bridges_units() -> None:
    got = sampled([
        value("1.5", unit="kWh"),
        value("7.4", "Power.Active.Import", unit="kW"),
        *[value("16", "Current.Import", unit="A", phase=p) for p in ("L1", "L2", "L3")],
        *[value(v, "Voltage", unit="V", phase=p) for v, p in (("230", "L1-N"), ("231", "L2-N"), ("232", "L3"))],  # noqa: E501
        value("50", "Frequency"),  # not read: no deviation
    ])  # fmt: skip
    assert (got.energy_wh, got.power_w) == (1500.0, 7400.0)
    assert got.current_a == (16.0, 16.0, 16.0) and got.voltage_v == (230.0, 231.0, 232.0)
    assert got.deviations == ()


def test_no_unit_is_the_measurands_own_and_no_measurand_the_register() -> None:
    got = sampled([{"value": "1200"}, value("11000", "Power.Active.Import"), value("230", "Voltage")])
    assert (got.energy_wh, got.power_w, got.voltage_v) == (1200.0, 11000.0, (230.0,))


@pytest.mark.parametrize(
    "text", ["NaN", "nan", "inf", "-Infinity", "1e308", "1e12", "-5000", "12 kWh", "", None, True]
)
def test_an_impossible_register_is_a_deviation_and_not_taken(text: Any) -> None:
    got = sampled([value(text, unit="Wh"), value("7400", "Power.Active.Import", unit="W")])
    assert got.energy_wh is None and got.power_w == 7400.0  # the rest of the sample stands
    assert got.deviations == (f"MeterValues with an impossible Energy.Active.Import.Register: {text!r}",)


@pytest.mark.parametrize(
    ("measurand", "text", "unit"),
    [
        ("Power.Active.Import", "inf", "W"),
        ("Power.Active.Import", "2000", "kW"),  # 2 MW
        ("Current.Import", "NaN", "A"),
        ("Current.Import", "5000", "A"),
        ("Voltage", "-230", "V"),
        ("Voltage", "1e5", "V"),
    ],
)
def test_impossible_power_current_and_voltage_are_deviations(measurand: str, text: str, unit: str) -> None:
    got = sampled([value(text, measurand, unit=unit)])
    assert (got.power_w, got.current_a, got.voltage_v) == (None, None, None)
    assert got.deviations == (f"MeterValues with an impossible {measurand}: {text!r}",)


def test_an_unknown_unit_is_a_deviation_not_a_guess() -> None:
    got = sampled([value("1.5", unit="MWh"), value("16000", "Current.Import", unit="mA")])
    assert (got.energy_wh, got.current_a) == (None, None)
    assert got.deviations == (
        "MeterValues with a unit it cannot be in: Energy.Active.Import.Register in 'MWh'",
        "MeterValues with a unit it cannot be in: Current.Import in 'mA'",
    )


def test_line_to_line_voltages_and_per_phase_registers_are_ignored() -> None:
    got = sampled([
        value("400", "Voltage", unit="V", phase="L1-L2"),
        value("230", "Voltage", unit="V", phase="L2-N"),
        value("500", unit="Wh", phase="L1"),  # a phase's register, not the total
        value("3", "Current.Import", unit="A", phase="N"),
    ])  # fmt: skip
    assert got.voltage_v == (230.0,) and got.energy_wh is None and got.current_a is None
    assert got.deviations == ()


def test_a_refused_value_keeps_the_old_one_on_the_state() -> None:
    state = ChargerState(connector_id=1)
    take(state, [value("1000", unit="Wh"), value("230", "Voltage", unit="V")])
    take(state, [value("NaN", unit="Wh"), value("nan", "Voltage", unit="V")])
    assert state.energy_wh == 1000.0 and state.voltage_v == (230.0,)
    assert len(state.deviations) == 2
    assert state.deviations[0].endswith("MeterValues with an impossible Energy.Active.Import.Register: 'NaN'")


def test_a_lifetime_register_is_taken_as_it_is() -> None:
    state = ChargerState(connector_id=1)
    take(state, [value("1000")])
    take_start(state, 1000)
    take(state, [value("1100")])
    take_stop(state, 1200)
    assert state.energy_wh == 1200.0 and list(state.deviations) == []


def test_a_per_session_meter_start_and_stop_never_lower_the_register() -> None:
    """meterStart 0 and meterStop of the session's energy, MeterValues of its lifetime register."""
    state = ChargerState(connector_id=1)
    take(state, [value("1000")])
    take_start(state, 0)
    assert state.energy_wh == 1000.0
    take(state, [value("1050")])
    take_stop(state, 100)  # 100 Wh in the session: 1000 + 100
    assert state.energy_wh == 1100.0
    assert [d.split(" ", 1)[1] for d in state.deviations] == [
        "meterStart 0 Wh below the register known, 1000 Wh: kept"
    ]


def test_a_register_that_restarts_at_each_session_counts_on_from_the_known_one() -> None:
    state = ChargerState(connector_id=1)
    readings = []
    take(state, [value("1000")])
    for _ in range(2):
        take_start(state, 0)
        for raw in ("100", "200"):
            take(state, [value(raw)])
            readings.append(state.energy_wh)
        take_stop(state, 250)
        readings.append(state.energy_wh)
    assert readings == [1100, 1200, 1250, 1350, 1450, 1500]


def test_counting_alone_by_the_numbers() -> None:
    counting = Counting()
    assert counting.started(None, 500) == (500, None)  # the first register: its meterStart
    assert counting.sample(500, 400)[0] == 500  # no meterStart below it: on from the known one
    assert counting.offset_wh == 100
    assert counting.sample(500, 450) == (550, None)
    assert counting.stopped(550, 600) == (600, None)  # 500 + (600 - 500) counted in the transaction
    assert counting.stopped(600, float("nan"))[0] == 600  # no transaction, an impossible number: kept
    kept, text = counting.started(600, 1e13)
    assert kept == 600 and text is not None and "impossible meterStart" in text
