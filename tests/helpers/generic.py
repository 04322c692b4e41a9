"""What the generic device's tests share: its blocks built through the real configuration loader (so
the options a test drives are the ones `check` accepts), and the go-e, KEBA and Tasmota devices
described generically."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ocpp.v16 import call

from bridge.config import ConfigError
from bridge.daemon import Daemon
from tests.conftest import make_config
from tests.csms import StrictCentralSystem

NOWHERE = "ws://127.0.0.1:9/ocpp"


def options(
    tmp_path: Path, *, charger: dict[str, Any] | None = None, meter: dict[str, Any] | None = None
) -> Any:
    """The options of a `charger:` (or, with `meter`, a `meter:`) block, as the loader builds them."""
    config = make_config(NOWHERE, tmp_path, charger=charger, meter=meter)
    connector = config.charge_points[0].connectors[0]
    return connector.meter.options if meter is not None else connector.charger.options


def problems(tmp_path: Path, **blocks: Any) -> list[tuple[str, int | None, str]]:
    """(path, line, message) of every problem the loader finds with these blocks."""
    try:
        make_config(NOWHERE, tmp_path, **blocks)
    except ConfigError as error:
        return [(p.path, p.line, p.message) for p in error.problems]
    return []


def sdm630_block(url: str, unit: int) -> dict[str, Any]:
    return {"type": "generic", "template": "sdm630", "params": {"url": url, "unit": unit}}


# -- devices described generically ----------------------------------------------------------------


CAR = {
    "1": "A",
    "2": "C",
    "3": "B",
    "4": "B",
    "5": "F",
}  # go-e's car: idle, charging, waiting, complete, error


def goe_block(url: str) -> dict[str, Any]:
    """A go-e Charger over its HTTP API v2 (tests/emulators/goe.py): one status request per reading."""
    status = {"http": {"url": f"{url}/api/status?filter=car,alw,eto,nrg,err,amp", "timeout_s": 0.5}}
    nrg = [{**status, "jmespath": f"nrg[{i}]"} for i in range(7)]

    def setter(key: str, value: str) -> dict[str, Any]:
        http = {"url": f"{url}/api/set?{key}={value}", "timeout_s": 0.5, "expect": f'"{key}":\\s*true'}
        return {"http": http}

    return {
        "type": "generic", "name": "go-e (generic)", "phases": 3, "min_current_a": 6, "max_current_a": 16,
        "read": {
            "status": {**status, "jmespath": "car", "map": CAR},
            "enabled": {**status, "jmespath": "alw"},
            "energy_wh": {**status, "jmespath": "eto"},
            "power_w": {**status, "jmespath": "nrg[11]"},
            "voltages": nrg[0:3],
            "currents": nrg[4:7],
            "current_offered_a": {**status, "jmespath": "amp"},
            "error": {**status, "jmespath": "err"},
        },
        "write": {
            "enable": setter("frc", "{{ 2 if value else 1 }}"),
            "current": setter("amp", "{{ int(value) }}"),
        },
    }  # fmt: skip


def keba_block(url: str, unit: int = 255) -> dict[str, Any]:
    """A KEBA P30 over Modbus TCP (tests/emulators/keba_modbus.py): UINT32 reads, UINT16 writes."""

    def reg(register: int, **pipeline: Any) -> dict[str, Any]:
        modbus = {"url": url, "unit": unit, "register": register, "type": "uint32", "timeout_s": 0.5}
        return {"modbus": modbus, **pipeline}

    def out(register: int, **pipeline: Any) -> dict[str, Any]:
        return {"modbus": {"url": url, "unit": unit, "register": register, "timeout_s": 0.5}, **pipeline}

    return {
        "type": "generic", "name": "KEBA (generic)", "phases": 3, "min_current_a": 6, "max_current_a": 16,
        "current_step_a": 0.001,
        "read": {
            # cable 1004: bit 2 is "in the vehicle"; state 1000: 3 charging
            "plugged": reg(1004, map={"0": False, "1": False, "3": False, "5": True, "7": True}),
            "charging": reg(1000, map={str(state): state == 3 for state in range(6)}),
            "error": reg(1006),
            "energy_wh": reg(1036, scale=0.1),
            "power_w": reg(1020, unit="mW"),
            "currents": [reg(r, unit="mA") for r in (1008, 1010, 1012)],
            "voltages": [reg(r) for r in (1040, 1042, 1044)],
        },
        "write": {"enable": out(5014), "current": out(5004, unit="mA")},
    }  # fmt: skip


def tasmota_block(broker: str, topic: str) -> dict[str, Any]:
    """A wallbox behind a Tasmota metering relay (tests/emulators/tasmota.py): its telemetry and its
    POWER command; a switch that senses no plug and sets no current."""
    # PowerRetain 1: the relay's state is retained on stat/<topic>/POWER, and announced at each switch
    state = {"mqtt": {"broker": broker, "topic": f"stat/{topic}/POWER"}}
    sensor = {"mqtt": {"broker": broker, "topic": f"tele/{topic}/SENSOR", "max_age_s": 1.5}}
    command = {"broker": broker, "topic": f"cmnd/{topic}/POWER", "payload": "{{ 'ON' if value else 'OFF' }}"}
    return {
        "type": "generic", "name": "Tasmota (generic)", "phases": 1, "max_current_a": 16,
        "read": {
            "enabled": state,
            "energy_wh": {**sensor, "jmespath": "ENERGY.Total", "unit": "kWh"},
            "power_w": {**sensor, "jmespath": "ENERGY.Power"},
            "currents": [{**sensor, "jmespath": "ENERGY.Current"}],
            "voltages": [{**sensor, "jmespath": "ENERGY.Voltage"}],
        },
        "write": {"enable": {"mqtt": command}},
    }  # fmt: skip


# -- flows through the bridge (the strict central system, one charge point CP-1) -------------------

CP = "CP-1"
ENERGY = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"
OCPP = {"MeterValueSampleInterval": 1, "MeterValuesSampledData": [ENERGY, POWER]}
CONNECTOR = {"poll_interval_s": 0.2, "faulted_after_failed_polls": 2}


def bridge_config(csms: StrictCentralSystem, tmp_path: Path, charger: dict[str, Any]) -> Any:
    return make_config(csms.url, tmp_path, ocpp=OCPP, charger=charger, connector_fields=CONNECTOR)


def sampled(payload: dict[str, Any], measurand: str) -> float:
    (value,) = [
        v for mv in payload["meterValue"] for v in mv["sampledValue"] if v.get("measurand") == measurand
    ]
    return float(value["value"])


async def first_reading(csms: StrictCentralSystem, daemon: Daemon) -> None:
    await csms.wait_for_call(
        CP, "StatusNotification", lambda p: (p["connectorId"], p["status"]) == (1, "Available")
    )
    await csms.wait_until(lambda: daemon.charge_points[CP].connectors[1].reading, what="a first reading")


async def remote_start(csms: StrictCentralSystem) -> dict[str, Any]:
    answer = await csms.call(CP, call.RemoteStartTransaction(id_tag="REMOTE-1", connector_id=1))
    assert answer.status == "Accepted"
    start: dict[str, Any] = await csms.wait_for_call(CP, "StartTransaction", timeout=10)
    await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Charging", timeout=10)
    return start


async def remote_stop(csms: StrictCentralSystem, then: str = "Finishing") -> dict[str, Any]:
    """Stops the transaction and waits for the connector's status `then`."""

    def is_then(p: dict[str, Any]) -> bool:
        return bool((p["connectorId"], p["status"]) == (1, then))

    seen = len([p for p in csms.calls(CP, "StatusNotification") if is_then(p)])
    answer = await csms.call(CP, call.RemoteStopTransaction(transaction_id=csms.last_transaction_id))
    assert answer.status == "Accepted"
    stop: dict[str, Any] = await csms.wait_for_call(CP, "StopTransaction", timeout=10)
    await csms.wait_for_call(CP, "StatusNotification", is_then, count=seen + 1, timeout=10)
    return stop


def profile(pid: int, purpose: str, limit_a: float, **extra: Any) -> dict[str, Any]:
    start = datetime.fromtimestamp(int(time.time()) - 1, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "chargingProfileId": pid, "stackLevel": 1 if purpose == "TxProfile" else 0,
        "chargingProfilePurpose": purpose, "chargingProfileKind": "Absolute",
        "chargingSchedule": {
            "chargingRateUnit": "A", "startSchedule": start,
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit_a}],
        },
        **extra,
    }  # fmt: skip


async def set_profile(csms: StrictCentralSystem, connector: int, body: dict[str, Any]) -> None:
    answer = await csms.call(CP, call.SetChargingProfile(connector_id=connector, cs_charging_profiles=body))
    assert answer.status == "Accepted"


def next_status(csms: StrictCentralSystem, status: str, timeout: float = 10) -> Awaitable[dict[str, Any]]:
    """The next StatusNotification of connector 1 with `status`: one sent after this call (await it
    later to catch what an action brings)."""

    def wanted(p: dict[str, Any]) -> bool:
        return bool((p["connectorId"], p["status"]) == (1, status))

    seen = len([p for p in csms.calls(CP, "StatusNotification") if wanted(p)])
    return csms.wait_for_call(CP, "StatusNotification", wanted, count=seen + 1, timeout=timeout)


def statuses(csms: StrictCentralSystem) -> list[str]:
    """Connector 1's statuses, SuspendedEV/SuspendedEVSE left out (a reading taken as energy was being
    allowed may show one in passing)."""
    return [
        p["status"]
        for p in csms.calls(CP, "StatusNotification")
        if p["connectorId"] == 1 and not p["status"].startswith("Suspended")
    ]


def check_energy(
    reported_wh: list[float], csms: StrictCentralSystem, start: dict[str, Any], stop: dict[str, Any]
) -> None:
    """Every sample is a value the device showed, in order, between meterStart and meterStop."""
    reported = {int(wh) for wh in reported_wh}  # the bridge sends whole Wh
    energies = [sampled(p, ENERGY) for p in csms.calls(CP, "MeterValues")]
    assert energies and all(int(wh) in reported for wh in energies) and energies == sorted(energies)
    assert start["meterStart"] in reported and stop["meterStop"] in reported
    assert start["meterStart"] <= energies[0] and energies[-1] <= stop["meterStop"]
    assert stop["meterStop"] > start["meterStart"]
