"""DataTransfer from the central system: vendor hooks, and the bridge's own DeviceStatus."""

from __future__ import annotations

import json
from typing import Any

from ocpp.v16 import call

from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.helpers.flow import ready, sim_of


async def test_unknown_vendor_unknown_message_and_device_status(
    csms: StrictCentralSystem, tmp_path: Any
) -> None:
    async with running(make_config(csms.url, tmp_path, connectors=2)) as daemon:
        await ready(csms)
        unknown_vendor = await csms.call("CP-1", call.DataTransfer(vendor_id="com.example", message_id="X"))
        unknown_message = await csms.call("CP-1", call.DataTransfer(vendor_id="ocpp-bridge", message_id="X"))
        sim_of(daemon, connector=2).silence()
        await csms.wait_until(lambda: daemon.charge_points["CP-1"].connectors[2].failed_reads > 0)
        status = await csms.call(
            "CP-1", call.DataTransfer(vendor_id="ocpp-bridge", message_id="DeviceStatus")
        )
    assert unknown_vendor.status == "UnknownVendorId"
    assert unknown_message.status == "UnknownMessageId"
    assert status.status == "Accepted"
    report = json.loads(status.data)
    assert [c["connector"] for c in report] == [1, 2]
    assert report[0]["device"] == "simulated charger" and report[0]["plugged"] is False
    assert report[1]["failed_reads"] >= 1


async def test_a_vendor_handler_answers_its_messages(csms: StrictCentralSystem, tmp_path: Any) -> None:
    async with running(make_config(csms.url, tmp_path)) as daemon:
        await ready(csms)
        seen: list[tuple[str | None, str | None]] = []

        def acme(message_id: str | None, data: str | None) -> tuple[str, str | None]:
            seen.append((message_id, data))
            return ("Accepted", "pong") if message_id == "Ping" else ("Rejected", None)

        daemon.charge_points["CP-1"].data_transfer.register("com.acme", acme)
        ping = await csms.call("CP-1", call.DataTransfer(vendor_id="com.acme", message_id="Ping", data="1"))
        other = await csms.call("CP-1", call.DataTransfer(vendor_id="com.acme", message_id="Other"))
    assert (ping.status, ping.data) == ("Accepted", "pong")
    assert other.status == "Rejected"
    assert seen == [("Ping", "1"), ("Other", None)]
