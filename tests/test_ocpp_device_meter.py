"""A `type: ocpp` charger's meter on the wire: one with a per-session meter (meterStart 0 after a
register of 1000, its MeterValues register restarting at 0) that also sends a register of NaN. The
strict central system upstream (tests/csms.py) sees a register that never goes back and a
StopTransaction with the energy the session delivered (docs/devices/ocpp.md, "What the charger gets
wrong")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ocpp.v16 import call

from adapters.chargers.ocpp_device import OcppDeviceCharger
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.helpers.ocpp_charger import iso, ocpp_charger
from tests.processes import free_port

CP, WALLBOX, PASSWORD = "CP-1", "WB-1", "meter-test-secret"
REGISTER = "Energy.Active.Import.Register"


def register_upstream(csms: StrictCentralSystem) -> list[float]:
    """Every register the central system was sent in MeterValues, in order (Wh)."""
    found = []
    for payload in csms.calls(CP, "MeterValues"):
        for sample in payload["meterValue"]:
            for v in sample["sampledValue"]:
                if v.get("measurand", REGISTER) == REGISTER and "phase" not in v:
                    found.append(float(v["value"]) * (1000 if v.get("unit") == "kWh" else 1))
    return found


async def test_a_per_session_meter_and_a_nan_register_keep_the_upstream_register_sane(
    csms: StrictCentralSystem, tmp_path: Path
) -> None:
    port = free_port()
    block = {
        "type": "ocpp", "listen": f"127.0.0.1:{port}", "identity": WALLBOX, "password": PASSWORD,
        "card_wait_s": 3, "call_timeout_s": 3,
    }  # fmt: skip
    config = make_config(csms.url, tmp_path, ocpp={"MeterValueSampleInterval": 1}, charger=block)
    async with running(config) as daemon:
        driver = daemon.charge_points[CP].connectors[1].charger
        assert isinstance(driver, OcppDeviceCharger)

        async def upstream(register_wh: float) -> None:
            """The driver's register reaches `register_wh`, then a sampled MeterValues upstream says so."""
            await csms.wait_until(lambda: driver.state.energy_wh == register_wh, what=f"{register_wh} Wh")
            await csms.wait_until(
                lambda: register_upstream(csms)[-1:] == [register_wh],
                timeout=5,
                what=f"{register_wh} upstream",
            )

        url = f"ws://127.0.0.1:{port}/ocpp"
        async with ocpp_charger(
            url, WALLBOX, PASSWORD, features="Core,RemoteTrigger,SmartCharging"
        ) as wallbox:
            await csms.wait_until(lambda: driver.support.asked)
            await csms.wait_until(lambda: driver.state.energy_wh == 1000, what="its register")
            await wallbox.plug()
            await csms.wait_for_call(
                CP, "StatusNotification", lambda p: p["status"] == "Preparing", timeout=10
            )
            wallbox.registers[1] = 0  # a per-session meter: its StartTransaction says 0
            answer = await csms.call(CP, call.RemoteStartTransaction(id_tag="REMOTE-1", connector_id=1))
            assert answer.status == "Accepted"
            await csms.wait_for_call(
                CP, "StatusNotification", lambda p: p["status"] == "Charging", timeout=10
            )
            upstream_id = csms.last_transaction_id

            await wallbox.meter(7400)  # its register: 100 Wh, the session's
            await upstream(1100)
            nan: list[dict[str, Any]] = [{"value": "NaN", "measurand": REGISTER, "unit": "Wh"}]
            mv = call.MeterValues(
                connector_id=1,
                transaction_id=wallbox.transaction_id,
                meter_value=[{"timestamp": iso(), "sampledValue": nan}],
            )
            await wallbox.send(mv)
            await csms.wait_until(lambda: any("'NaN'" in d for d in driver.deviations), what="NaN noted")
            assert driver.state.energy_wh == 1100
            await wallbox.meter(7400)  # 200 Wh
            await upstream(1200)

            await csms.call(CP, call.RemoteStopTransaction(transaction_id=upstream_id))
            stop = await csms.wait_for_call(CP, "StopTransaction", timeout=10)
            deviations = [d.split(" ", 1)[1] for d in driver.deviations]
    [start] = csms.calls(CP, "StartTransaction")
    assert (start["meterStart"], stop["meterStop"]) == (1000, 1200)
    registers = register_upstream(csms)
    assert 1100 in registers and registers == sorted(registers) and registers[-1] == 1200
    assert "meterStart 0 Wh below the register known, 1000 Wh: kept" in deviations
    assert "MeterValues with an impossible Energy.Active.Import.Register: 'NaN'" in deviations
