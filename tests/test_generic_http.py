"""A go-e Charger described generically (HTTP API v2, tests/helpers/generic.py's goe_block) passes the
scenarios of a built-in driver through the whole bridge against the strict central system: a whole
session, a charging profile's limit reaching the box in whole amperes, an outage (Faulted, recovery,
one transaction) and the box's own errors; and the driver's own refusals against the emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from adapters.base import DeviceRefused, DeviceUnreachable, TagPresented
from adapters.generic.device import GenericCharger, GenericMeter
from adapters.transports.http import MAX_ANSWER, request
from adapters.transports.pool import Transports
from tests.conftest import running
from tests.csms import StrictCentralSystem
from tests.emulators.goe import GoeEmulator
from tests.helpers.generic import (
    CP,
    ENERGY,
    bridge_config,
    check_energy,
    first_reading,
    goe_block,
    options,
    profile,
    remote_start,
    remote_stop,
    sampled,
    set_profile,
    statuses,
)
from tests.processes import free_port


@pytest.fixture
async def emu() -> AsyncIterator[GoeEmulator]:
    box = GoeEmulator()
    await box.start_http()
    yield box
    box.silent = False
    await box.close()


def frc_writes(emu: GoeEmulator) -> list[str]:
    return [raw for key, raw in emu.received if key == "frc"]


async def test_a_whole_session(emu: GoeEmulator, csms: StrictCentralSystem, tmp_path: Path) -> None:
    async with running(bridge_config(csms, tmp_path, goe_block(emu.url))) as daemon:
        await first_reading(csms, daemon)
        emu.plug()
        await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Preparing")
        await csms.wait_until(lambda: not emu.charging(), what="the box held until a transaction")
        start = await remote_start(csms)
        assert emu.charging()
        await csms.wait_for_call(
            CP, "MeterValues", lambda p: sampled(p, ENERGY) > start["meterStart"], timeout=10
        )
        stop = await remote_stop(csms)
        assert not emu.charging()
    assert (stop["transactionId"], stop["reason"]) == (csms.last_transaction_id, "Remote")
    check_energy([float(wh) for wh in emu.reported_energy_wh], csms, start, stop)
    assert frc_writes(emu)[-2:] == ["2", "1"]  # energy on for the transaction, off at its end
    assert statuses(csms) == ["Available", "Preparing", "Charging", "Finishing"]


async def test_a_charging_profiles_limit_reaches_the_box_in_whole_amperes(
    emu: GoeEmulator, csms: StrictCentralSystem, tmp_path: Path
) -> None:
    async with running(bridge_config(csms, tmp_path, goe_block(emu.url))) as daemon:
        await first_reading(csms, daemon)
        await set_profile(csms, 0, profile(1, "TxDefaultProfile", 10))
        emu.plug()
        await remote_start(csms)
        await csms.wait_until(lambda: emu.keys["amp"] == 10, what="10 A at the box", timeout=10)
        await set_profile(csms, 1, profile(2, "TxProfile", 7.5, transactionId=csms.last_transaction_id))
        await csms.wait_until(lambda: emu.keys["amp"] == 7, what="7 A at the box (whole amperes)", timeout=10)
        assert emu.charging() and emu.amps() == 7
        await remote_stop(csms)
    amp_writes = [raw for key, raw in emu.received if key == "amp"]
    # 7 A while the TxProfile held; back to the default's 10 A when its transaction ended
    assert set(amp_writes) <= {"16", "10", "7"} and amp_writes.index("7") > amp_writes.index("10")


async def test_an_outage_of_the_box_faults_and_recovers_in_one_transaction(
    emu: GoeEmulator, csms: StrictCentralSystem, tmp_path: Path
) -> None:
    async with running(bridge_config(csms, tmp_path, goe_block(emu.url))) as daemon:
        await first_reading(csms, daemon)
        emu.plug()
        start = await remote_start(csms)
        await csms.wait_for_call(CP, "MeterValues")
        emu.silent = True
        faulted = await csms.wait_for_call(
            CP, "StatusNotification", lambda p: p["status"] == "Faulted", timeout=10
        )
        emu.silent = False
        await csms.wait_for_call(
            CP, "StatusNotification", lambda p: p["status"] == "Charging", count=2, timeout=10
        )
        assert emu.charging()
        stop = await remote_stop(csms)
    assert (faulted["errorCode"], faulted["vendorErrorCode"]) == ("OtherError", "DeviceUnreachable")
    assert faulted["info"].startswith("go-e (generic)")
    assert len(csms.calls(CP, "StartTransaction")) == 1 and stop["transactionId"] == csms.last_transaction_id
    check_energy([float(wh) for wh in emu.reported_energy_wh], csms, start, stop)
    assert statuses(csms) == ["Available", "Preparing", "Charging", "Faulted", "Charging", "Finishing"]


async def test_the_boxs_own_error_is_a_fault_with_its_code(
    emu: GoeEmulator, csms: StrictCentralSystem, tmp_path: Path
) -> None:
    async with running(bridge_config(csms, tmp_path, goe_block(emu.url))) as daemon:
        await first_reading(csms, daemon)
        emu.plug()
        await remote_start(csms)
        emu.set_error(8)  # GndInvalid: car shows 5 (F), err 8
        faulted = await csms.wait_for_call(
            CP, "StatusNotification", lambda p: p["status"] == "Faulted", timeout=10
        )
        emu.set_error(0)
        await csms.wait_for_call(
            CP, "StatusNotification", lambda p: p["status"] == "Charging", count=2, timeout=10
        )
        await remote_stop(csms)
    assert faulted["vendorErrorCode"] == "error 8" and "reports error 8" in faulted["info"]
    assert len(csms.calls(CP, "StartTransaction")) == 1


async def test_refusals_name_the_url_and_the_boxs_answer(
    emu: GoeEmulator, transports: Transports, tmp_path: Path
) -> None:
    driver = GenericCharger(options(tmp_path, charger=goe_block(emu.url)), transports)
    await driver.start()
    before = len(emu.requests)
    reading = await driver.read()  # twelve values from one request
    assert len(emu.requests) == before + 1 and reading.voltage_v == (230, 231, 229)
    emu.keys["ama"] = 10  # the box's own limit: amp=16 is out of its range, answered with status 200
    with pytest.raises(
        DeviceRefused, match=r"GET http://127\.0\.0\.1:\d+/api/set\?amp=16 answered .*out of range"
    ):
        await driver.set_current(16)
    block = goe_block(emu.url)
    block["write"]["enable"]["http"]["url"] = f"{emu.url}/api/set?car={{{{ value }}}}"  # read-only: HTTP 500
    with pytest.raises(DeviceRefused, match=r"answered HTTP 500: .*without setter"):
        await GenericCharger(options(tmp_path, charger=block), transports).set_enabled(True)
    block["read"]["status"]["http"]["url"] = f"{emu.url}/api/nothing?token=s3cret"
    with pytest.raises(DeviceRefused, match=r"/api/nothing\?token=\*\*\* answered HTTP 404") as refused:
        await GenericCharger(options(tmp_path, charger=block), transports).read()
    assert "s3cret" not in str(refused.value)
    emu.silent = True
    with pytest.raises(DeviceUnreachable, match=r"no answer from GET http://127\.0\.0\.1"):
        await driver.read()


async def test_a_new_card_value_is_a_card_presented(
    emu: GoeEmulator, transports: Transports, tmp_path: Path
) -> None:
    block = goe_block(emu.url)
    block["read"]["id_tag"] = {"http": {"url": f"{emu.url}/api/status?filter=trx"}, "jmespath": "trx"}
    driver = GenericCharger(options(tmp_path, charger=block), transports)
    events: list[object] = []
    driver.set_listener(events.append)
    await driver.start()  # trx null: no card; learnt
    assert driver.capabilities.has_rfid
    emu.tap(2)
    await driver.read()
    await driver.read()  # the same value: no second tap
    emu.unplug()  # go-e ends its transaction: trx null again
    await driver.read()
    emu.tap(2)
    await driver.read()
    assert events == [TagPresented("2"), TagPresented("2")]


@pytest.fixture
async def answers() -> AsyncIterator[tuple[str, dict[str, str]]]:
    """A device that answers GET /<name> with the text set for it: (its URL, name -> text)."""
    bodies: dict[str, str] = {}

    async def answer(req: web.Request) -> web.Response:
        return web.Response(text=bodies[req.match_info["name"]], content_type="application/json")

    app = web.Application()
    app.router.add_get("/{name}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}", bodies
    await runner.cleanup()


def meter_of(url: str, tmp_path: Path, transports: Transports, **energy: Any) -> GenericMeter:
    block = {"type": "generic", "read": {"energy_wh": {"http": {"url": f"{url}/e"}, **energy}}}
    return GenericMeter(options(tmp_path, meter=block), transports)


@pytest.mark.parametrize(
    ("body", "energy", "words"),
    [
        ('{"a": 5}', {"jmespath": "length(a)"}, "jmespath 'length\\(a\\)' fails"),
        ('{"e": 1' + "0" * 400 + "}", {"jmespath": "e"}, "is not a finite number"),
        ("[" * 100_000, {"jmespath": "e"}, "expected JSON for jmespath"),
        ("[" * 100_000, {}, "expected a number"),
        ('{"e": NaN}', {"jmespath": "e"}, "'nan' is not a finite number"),
        ('{"e": Infinity}', {"jmespath": "e", "unit": "kWh"}, "'inf' is not a finite number"),
        ('{"e": 1e400}', {"jmespath": "e"}, "'inf' is not a finite number"),
        ('{"e": ' + "7" * (MAX_ANSWER + 1) + "}", {"jmespath": "e"}, "answer larger than 1 MiB"),
    ],
)
async def test_device_data_that_breaks_the_pipeline_is_a_refusal_naming_it(
    answers: tuple[str, dict[str, str]], transports: Transports, tmp_path: Path, body: str, energy: Any,
    words: str,
) -> None:  # fmt: skip
    url, bodies = answers
    bodies["e"] = body
    with pytest.raises(DeviceRefused, match=words) as refused:
        await meter_of(url, tmp_path, transports, **energy).read()
    assert len(str(refused.value)) < 400  # the value named, not the whole body
    bodies["e"] = '{"e": 1234.5}'
    assert (await meter_of(url, tmp_path, transports, jmespath="e").read()).energy_wh == 1234.5


async def test_the_shared_request_reads_no_more_than_its_limit_and_takes_deep_json_as_text(
    answers: tuple[str, dict[str, str]], transports: Transports
) -> None:
    """go-e, OpenEVSE and the generic device share adapters/transports/http.py's request."""
    url, bodies = answers
    bodies["exact"] = "x" * MAX_ANSWER  # the limit itself is read whole
    assert await request(transports.http(), "GET", f"{url}/exact", where="box", timeout_s=2) == (
        200, "x" * MAX_ANSWER
    )  # fmt: skip
    bodies["big"] = "x" * (10 * MAX_ANSWER)
    with pytest.raises(DeviceRefused, match=r"^GET box: answer larger than 1 MiB$"):
        await request(transports.http(), "GET", f"{url}/big", where="GET box", timeout_s=2)
    bodies["deep"] = "[" * 100_000
    assert await request(transports.http(), "GET", f"{url}/deep", where="box", timeout_s=2) == (
        200, "[" * 100_000
    )  # fmt: skip


async def test_a_setter_too_deep_to_evaluate_is_a_refusal(
    answers: tuple[str, dict[str, str]], transports: Transports, tmp_path: Path
) -> None:
    import inspect
    import sys

    url, bodies = answers
    bodies["e"] = '{"e": 1}'
    block = {
        "type": "generic", "max_current_a": 16,
        "read": {"enabled": {"http": {"url": f"{url}/e"}, "jmespath": "e"}},
        "write": {
            "enable": {"http": {"url": f"{url}/e"}},
            "current": {"http": {"url": f"{url}/set?amp={{{{ {'-' * 300}value }}}}"}},
        },
    }  # fmt: skip
    driver = GenericCharger(options(tmp_path, charger=block), transports)
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack(0)) + 200)  # the evaluation's 300 levels go beyond
    try:
        with pytest.raises(DeviceRefused, match="nested too deeply"):
            await driver.set_current(16)
    finally:
        sys.setrecursionlimit(before)


async def test_a_password_in_the_devices_own_name_is_masked(transports: Transports, tmp_path: Path) -> None:
    block = {**goe_block("http://127.0.0.1:9"), "name": "box via mqtt://me:s3cret@10.0.0.2:1883"}
    driver = GenericCharger(options(tmp_path, charger=block), transports)
    assert driver.description == "box via mqtt://me:***@10.0.0.2:1883"
