"""OpenEVSE through the bridge: the real daemon, the strict central system (tests/csms.py) and the
OpenEVSE emulator over real sockets. A whole session, a charging profile's limit reaching the box as
a claim in whole amperes, an outage of the box carried through by one transaction, and `probe`.

OpenEVSE has no card reader the bridge can hear: sessions start by RemoteStartTransaction. It senses
the plug: after the stop the connector shows Finishing while the car stays plugged.
"""

from __future__ import annotations

import functools
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
from tests.helpers.device_outage import charging_again, faulted_while_silent
from tests.helpers.flow import ready

CP = "CP-1"
ENERGY = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"
OCPP = {"MeterValueSampleInterval": 1, "MeterValuesSampledData": [ENERGY, POWER]}
CONNECTOR = {"poll_interval_s": 0.2, "faulted_after_failed_polls": 2}
CLIENT = 0x0B1D0001  # the driver's default claim client id


@pytest.fixture
async def emu() -> AsyncIterator[OpenEvseEmulator]:
    box = OpenEvseEmulator(voltage=230.0)
    await box.start()
    yield box
    await box.close()


def config_for(csms: StrictCentralSystem, box: OpenEvseEmulator, tmp_path: Path, **ocpp: Any) -> Any:
    charger = {"type": "openevse", "url": box.url, "timeout_s": 0.5, "max_current_a": 16}
    return make_config(csms.url, tmp_path, ocpp={**OCPP, **ocpp}, charger=charger, connector_fields=CONNECTOR)


def claimed_states(box: OpenEvseEmulator) -> list[str]:
    """Every state the bridge claimed, in order (a claim repeated unchanged counted once)."""
    out: list[str] = []
    for method, path, body in box.requests:
        if method == "POST" and path == f"/claims/{CLIENT}":
            state = json.loads(body).get("state")
            if state is not None and out[-1:] != [state]:
                out.append(state)
    return out


def energy_of(payload: dict[str, Any]) -> float:
    (value,) = [v for mv in payload["meterValue"] for v in mv["sampledValue"] if v.get("measurand") == ENERGY]
    return float(value["value"])


def statuses(csms: StrictCentralSystem) -> list[str]:
    return [p["status"] for p in csms.calls(CP, "StatusNotification") if p["connectorId"] == 1]


async def begin(csms: StrictCentralSystem, box: OpenEvseEmulator, daemon: Daemon) -> dict[str, Any]:
    await ready(csms)
    await csms.wait_until(lambda: daemon.charge_points[CP].connectors[1].reading, what="a first reading")
    box.plug()
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


def check_samples(csms: StrictCentralSystem, box: OpenEvseEmulator, start: Any, stop: Any) -> None:
    """Each sampled energy and power is a value the box reported, in order, within the transaction."""
    energies = []
    for payload in csms.calls(CP, "MeterValues"):
        assert payload["transactionId"] == stop["transactionId"]
        wh = energy_of(payload)
        assert wh in box.reported_energy_wh, f"{wh} Wh was never reported by the box"
        (power,) = [
            float(v["value"])
            for mv in payload["meterValue"]
            for v in mv["sampledValue"]
            if v.get("measurand") == POWER
        ]
        assert power in box.reported_power_w
        energies.append(wh)
    assert energies and energies == sorted(energies)
    assert start["meterStart"] in box.reported_energy_wh and stop["meterStop"] in box.reported_energy_wh
    assert start["meterStart"] <= energies[0] and energies[-1] <= stop["meterStop"]
    assert stop["meterStop"] > start["meterStart"]


async def test_a_whole_session(csms: StrictCentralSystem, emu: OpenEvseEmulator, tmp_path: Path) -> None:
    async with running(config_for(csms, emu, tmp_path)) as daemon:
        start = await begin(csms, emu, daemon)
        assert emu.charging() and emu.amps() == 16.0  # max_current_a, without a profile
        await csms.wait_for_call(CP, "MeterValues", lambda p: energy_of(p) > start["meterStart"], timeout=10)
        stop = await end(csms, csms.last_transaction_id)
        assert not emu.charging() and emu.evse_state() == 254  # sleeping, the car still plugged
    assert (start["connectorId"], start["idTag"]) == (1, "REMOTE-1")
    assert start["meterStart"] == 1_234_567  # total_energy 1234.567 kWh, in Wh
    assert (stop["transactionId"], stop["reason"]) == (csms.last_transaction_id, "Remote")
    check_samples(csms, emu, start, stop)
    # Disabled when the bridge took the box over, active for the transaction, disabled at its end.
    assert claimed_states(emu) == ["disabled", "active", "disabled"]
    assert [s for s in statuses(csms) if s != "SuspendedEVSE"] == [
        "Available", "Preparing", "Charging", "Finishing",
    ]  # fmt: skip


async def test_a_profile_limit_reaches_the_box_as_a_claim_in_amperes(
    csms: StrictCentralSystem, emu: OpenEvseEmulator, tmp_path: Path
) -> None:
    async with running(config_for(csms, emu, tmp_path)) as daemon:
        await ready(csms)
        await csms.wait_until(lambda: emu.current_a() == 16, what="the maximum without a profile")
        body = {
            "chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Relative",
            "chargingSchedule": {"chargingRateUnit": "W", "chargingSchedulePeriod": [
                {"startPeriod": 0, "limit": 2300}]},
        }  # fmt: skip
        answer = await csms.call(CP, call.SetChargingProfile(connector_id=0, cs_charging_profiles=body))
        assert answer.status == "Accepted"
        # 2300 W on one phase at 230 V: 10 A, as charge_current and max_current of the bridge's claim.
        await csms.wait_until(lambda: emu.current_a() == 10, what="10 A claimed at the box")
        assert emu.claims[CLIENT][1]["charge_current"] == 10 and emu.claims[CLIENT][1]["max_current"] == 10
        await begin(csms, emu, daemon)
        assert emu.amps() == 10.0
        body["chargingSchedule"]["chargingSchedulePeriod"] = [{"startPeriod": 0, "limit": 1780}]
        answer = await csms.call(CP, call.SetChargingProfile(connector_id=0, cs_charging_profiles=body))
        assert answer.status == "Accepted"
        # 1780 W / 230 V = 7.74 A: whole amperes, rounded down, never more than the profile allows.
        await csms.wait_until(lambda: emu.amps() == 7.0, what="7 A at the box")
        await end(csms, csms.last_transaction_id)
    currents = [
        json.loads(body).get("charge_current")
        for method, path, body in emu.requests
        if method == "POST" and path.startswith("/claims/")
    ]
    assert 16 in currents and 10 in currents and 7 in currents
    assert all(isinstance(c, int) for c in currents if c is not None)  # whole amperes on the wire


async def test_the_box_falls_silent_mid_transaction(
    csms: StrictCentralSystem, emu: OpenEvseEmulator, tmp_path: Path
) -> None:
    async with running(config_for(csms, emu, tmp_path)) as daemon:
        start = await begin(csms, emu, daemon)
        silence = functools.partial(setattr, emu, "silent")
        faulted = await faulted_while_silent(csms, CP, silence)
        await charging_again(csms, CP, silence)
        assert emu.charging()  # the outage did not stop the energy
        transaction_id = csms.last_transaction_id
        stop = await end(csms, transaction_id)

    assert (faulted["errorCode"], faulted["vendorErrorCode"]) == ("OtherError", "DeviceUnreachable")
    assert faulted["info"].startswith("OpenEVSE at 127.0.0.1") and len(faulted["info"]) <= 50
    assert len(csms.calls(CP, "StartTransaction")) == 1 and len(csms.calls(CP, "StopTransaction")) == 1
    assert stop["transactionId"] == transaction_id
    check_samples(csms, emu, start, stop)
    assert claimed_states(emu) == ["disabled", "active", "disabled"]


async def test_a_fault_the_box_reports_reaches_the_central_system(
    csms: StrictCentralSystem, emu: OpenEvseEmulator, tmp_path: Path
) -> None:
    async with running(config_for(csms, emu, tmp_path)):
        await ready(csms)
        emu.set_fault(6)
        faulted = await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Faulted")
        emu.set_fault(0)
        await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Available", count=2)
    assert (faulted["errorCode"], faulted["vendorErrorCode"]) == ("GroundFailure", "state=6 GFCI fault")


async def test_probe_reads_the_box_and_switches_nothing(emu: OpenEvseEmulator, tmp_path: Path) -> None:
    emu.plug()
    doc = {
        "state_dir": str(tmp_path / "state"),
        "charge_points": [{
            "id": "CP-1", "csms_url": "ws://127.0.0.1:9/ocpp",
            "connectors": [{"id": 1, "charger": {"type": "openevse", "url": emu.url, "max_current_a": 16}}],
        }],
    }  # fmt: skip
    lines: list[str] = []
    code = await probe(parse_config(yaml.safe_dump(doc)), lines.append, timeout_s=5)
    assert code == 0
    assert lines == [
        "CP-1 connector 1: OpenEVSE at 127.0.0.1",
        "  plugged: yes; vehicle asks for energy: yes; energy allowed: yes",
        "  energy register: 1234567 Wh; power: 7360 W; current: 32 A; voltage: 230 V",
        "  can: plug sensing yes, unlock no, fixed cable yes, phase switching no, reset yes, meter yes, "
        "card reader no; 1 phase(s), current 6..16 A in steps of 1 A",
        "  OK",
        "1 of 1 device setups answer",
    ]
    assert [m for m, _, _ in emu.requests] == ["GET", "GET"] and emu.claims == {}  # read, never claimed
