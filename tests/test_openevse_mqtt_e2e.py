"""OpenEVSE over MQTT through the bridge: the real daemon, the strict central system (tests/csms.py), a
real mosquitto and the gateway's MQTT emulator. A whole session, a charging profile's limit reaching
the box as the MQTT claim in whole amperes, an outage of the gateway (its last will) carried through by
one transaction, and `probe`.

The driver reports its changes: no `poll_interval_s` here, so the bridge reads the box on its pushes,
every FLOWING_READ_S while energy flows, at the meter-value instants, and every second while it fails.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from ocpp.v16 import call

from bridge.config import parse_config
from bridge.daemon import Daemon
from bridge.probe import probe
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.emulators.openevse import OpenEvseEmulator
from tests.emulators.openevse_mqtt import MQTT_CLIENT, OpenEvseMqttEmulator
from tests.helpers.flow import ready
from tests.mosquitto import Broker

CP = "CP-1"
BASE = "openevse-55ad"
ENERGY = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"
OCPP = {"MeterValueSampleInterval": 1, "MeterValuesSampledData": [ENERGY, POWER]}
CONNECTOR = {"faulted_after_failed_polls": 2}


@pytest.fixture
async def emu(broker: Broker) -> AsyncIterator[OpenEvseMqttEmulator]:
    gateway = OpenEvseMqttEmulator(broker.url, BASE, box=OpenEvseEmulator(voltage=230.0))
    await gateway.start()
    yield gateway
    await gateway.stop()


def charger_of(broker: Broker) -> dict[str, Any]:
    return {
        "type": "openevse-mqtt",
        "broker": broker.url,
        "base_topic": BASE,
        "timeout_s": 1,
        "max_current_a": 16,
    }


def config_for(csms: StrictCentralSystem, broker: Broker, tmp_path: Path) -> Any:
    return make_config(csms.url, tmp_path, ocpp=OCPP, charger=charger_of(broker), connector_fields=CONNECTOR)


def claims(emu: OpenEvseMqttEmulator) -> list[dict[str, Any]]:
    return [json.loads(p) for name, p in emu.commands if name == "claim/set"]


def claimed_states(emu: OpenEvseMqttEmulator) -> list[str]:
    """Every state the bridge claimed, in order (a claim repeated unchanged counted once)."""
    out: list[str] = []
    for body in claims(emu):
        state = body.get("state")
        if state is not None and out[-1:] != [state]:
            out.append(state)
    return out


def energy_of(payload: dict[str, Any]) -> float:
    (value,) = [v for mv in payload["meterValue"] for v in mv["sampledValue"] if v.get("measurand") == ENERGY]
    return float(value["value"])


def statuses(csms: StrictCentralSystem) -> list[str]:
    return [p["status"] for p in csms.calls(CP, "StatusNotification") if p["connectorId"] == 1]


async def begin(csms: StrictCentralSystem, emu: OpenEvseMqttEmulator, daemon: Daemon) -> dict[str, Any]:
    await ready(csms)
    await csms.wait_until(lambda: daemon.charge_points[CP].connectors[1].reading, what="a first reading")
    emu.box.plug()
    await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Preparing")
    answer = await csms.call(CP, call.RemoteStartTransaction(id_tag="REMOTE-1", connector_id=1))
    assert answer.status == "Accepted"
    start = await csms.wait_for_call(CP, "StartTransaction")
    await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Charging")
    return start


async def end(csms: StrictCentralSystem, transaction_id: int) -> dict[str, Any]:
    answer = await csms.call(CP, call.RemoteStopTransaction(transaction_id=transaction_id))
    assert answer.status == "Accepted"
    stop = await csms.wait_for_call(CP, "StopTransaction")
    await csms.wait_until(lambda: statuses(csms)[-1:] == ["Finishing"], what="Finishing")
    return stop


def check_samples(csms: StrictCentralSystem, emu: OpenEvseMqttEmulator, start: Any, stop: Any) -> None:
    """Each sampled energy and power is a value the gateway published, in order, within the transaction."""
    energies = []
    for payload in csms.calls(CP, "MeterValues"):
        assert payload["transactionId"] == stop["transactionId"]
        wh = energy_of(payload)
        assert wh in emu.reported_energy_wh, f"{wh} Wh was never published by the gateway"
        (power,) = [
            float(v["value"])
            for mv in payload["meterValue"]
            for v in mv["sampledValue"]
            if v.get("measurand") == POWER
        ]
        assert power in emu.reported_power_w
        energies.append(wh)
    assert energies and energies == sorted(energies)
    assert start["meterStart"] in emu.reported_energy_wh and stop["meterStop"] in emu.reported_energy_wh
    assert start["meterStart"] <= energies[0] and energies[-1] <= stop["meterStop"]
    assert stop["meterStop"] > start["meterStart"]


async def test_a_whole_session(
    csms: StrictCentralSystem, broker: Broker, emu: OpenEvseMqttEmulator, tmp_path: Path
) -> None:
    async with running(config_for(csms, broker, tmp_path)) as daemon:
        start = await begin(csms, emu, daemon)
        assert emu.box.charging() and emu.box.amps() == 16.0  # max_current_a, without a profile
        await csms.wait_for_call(CP, "MeterValues", lambda p: energy_of(p) > start["meterStart"], timeout=10)
        stop = await end(csms, csms.last_transaction_id)
        assert not emu.box.charging() and emu.box.evse_state() == 254  # sleeping, the car still plugged
    assert (start["connectorId"], start["idTag"]) == (1, "REMOTE-1")
    assert start["meterStart"] == 1_234_567  # total_energy 1234.567 kWh, in Wh
    assert (stop["transactionId"], stop["reason"]) == (csms.last_transaction_id, "Remote")
    check_samples(csms, emu, start, stop)
    # Disabled when the bridge took the box over, active for the transaction, disabled at its end.
    assert claimed_states(emu) == ["disabled", "active", "disabled"]
    assert emu.box.claims[MQTT_CLIENT][0] == 500  # the MQTT service's claim
    assert [s for s in statuses(csms) if s != "SuspendedEVSE"] == [
        "Available", "Preparing", "Charging", "Finishing",
    ]  # fmt: skip


async def test_a_profile_limit_reaches_the_box_as_a_claim_in_amperes(
    csms: StrictCentralSystem, broker: Broker, emu: OpenEvseMqttEmulator, tmp_path: Path
) -> None:
    async with running(config_for(csms, broker, tmp_path)) as daemon:
        await ready(csms)
        await csms.wait_until(lambda: emu.box.current_a() == 16, what="the maximum without a profile")
        body = {
            "chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Relative",
            "chargingSchedule": {"chargingRateUnit": "W", "chargingSchedulePeriod": [
                {"startPeriod": 0, "limit": 2300}]},
        }  # fmt: skip
        answer = await csms.call(CP, call.SetChargingProfile(connector_id=0, cs_charging_profiles=body))
        assert answer.status == "Accepted"
        # 2300 W on one phase at 230 V: 10 A, as charge_current and max_current of the bridge's claim.
        await csms.wait_until(lambda: emu.box.current_a() == 10, what="10 A claimed at the box")
        assert emu.box.claims[MQTT_CLIENT][1]["charge_current"] == 10
        assert emu.box.claims[MQTT_CLIENT][1]["max_current"] == 10
        await begin(csms, emu, daemon)
        assert emu.box.amps() == 10.0
        body["chargingSchedule"]["chargingSchedulePeriod"] = [{"startPeriod": 0, "limit": 1780}]
        answer = await csms.call(CP, call.SetChargingProfile(connector_id=0, cs_charging_profiles=body))
        assert answer.status == "Accepted"
        # 1780 W / 230 V = 7.74 A: whole amperes, rounded down, never more than the profile allows.
        await csms.wait_until(lambda: emu.box.amps() == 7.0, what="7 A at the box")
        await end(csms, csms.last_transaction_id)
    currents = [c.get("charge_current") for c in claims(emu)]
    assert 16 in currents and 10 in currents and 7 in currents
    assert all(isinstance(c, int) for c in currents if c is not None)  # whole amperes on the wire


async def test_the_gateway_drops_off_mid_transaction(
    csms: StrictCentralSystem, broker: Broker, emu: OpenEvseMqttEmulator, tmp_path: Path
) -> None:
    async with running(config_for(csms, broker, tmp_path)) as daemon:
        start = await begin(csms, emu, daemon)
        await csms.wait_for_call(CP, "MeterValues")
        await emu.power_cut()  # its WiFi drops: the broker publishes the last will; the station charges on
        faulted = await csms.wait_for_call(
            CP, "StatusNotification", lambda p: p["status"] == "Faulted", timeout=10
        )
        before = len(csms.calls(CP, "MeterValues"))
        await emu.start()
        await csms.wait_for_call(
            CP, "StatusNotification", lambda p: p["status"] == "Charging", count=2, timeout=10
        )
        await csms.wait_for_call(CP, "MeterValues", count=before + 1, timeout=5)  # sampling goes on
        assert emu.box.charging()  # the outage did not stop the energy
        transaction_id = csms.last_transaction_id
        stop = await end(csms, transaction_id)

    assert (faulted["errorCode"], faulted["vendorErrorCode"]) == ("OtherError", "DeviceUnreachable")
    assert faulted["info"].startswith(f"OpenEVSE {BASE} via MQTT") and len(faulted["info"]) <= 50
    assert len(csms.calls(CP, "StartTransaction")) == 1 and len(csms.calls(CP, "StopTransaction")) == 1
    assert stop["transactionId"] == transaction_id
    check_samples(csms, emu, start, stop)
    assert claimed_states(emu) == ["disabled", "active", "disabled"]


async def test_probe_reads_the_box_and_switches_nothing(
    broker: Broker, emu: OpenEvseMqttEmulator, tmp_path: Path
) -> None:
    emu.box.plug()
    emu.box.ev_request(False)  # plugged and full: nothing flows, so the register stands still
    doc = {
        "state_dir": str(tmp_path / "state"),
        "charge_points": [{
            "id": "CP-1", "csms_url": "ws://127.0.0.1:9/ocpp",
            "connectors": [{"id": 1, "charger": charger_of(broker)}],
        }],
    }  # fmt: skip
    lines: list[str] = []
    code = await probe(parse_config(yaml.safe_dump(doc)), lines.append, timeout_s=5)
    assert code == 0
    assert lines == [
        f"CP-1 connector 1: OpenEVSE {BASE} via MQTT",
        "  plugged: yes; vehicle asks for energy: no; energy allowed: yes",
        "  energy register: 1234567 Wh; power: 0 W; current: 0 A; voltage: 230 V",
        "  can: plug sensing yes, unlock no, fixed cable yes, phase switching no, reset yes, meter yes, "
        "card reader no; 1 phase(s), current 6..16 A in steps of 1 A",
        "  OK",
        "1 of 1 device setups answer",
    ]
    assert emu.commands == [] and emu.box.claims == {}  # read, never claimed
