"""The evcc emulator against the published API (../shared/reference/devices.md §10), over a real broker
and real HTTP: what the templates are tested against must itself say what evcc says."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import aiomqtt
import pytest

from tests.emulators.evcc import EvccEmulator, Loadpoint, encode


def test_payloads_are_plain_text_as_evcc_writes_them() -> None:
    assert [encode(v) for v in (True, False, 16.0, 7.36, 0.0, 1234.5678, 3, None)] == [
        "true", "false", "16", "7.36", "0", "1234.568", "3", "",
    ]  # fmt: skip


@pytest.fixture
async def evcc(broker: Any) -> AsyncIterator[EvccEmulator]:
    async with EvccEmulator([Loadpoint(mode="now")], broker_url=broker.url, interval_s=0.1) as emu:
        yield emu


class Watcher:
    """An MQTT client that keeps the last payload of every topic under evcc/."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.last: dict[str, str] = {}
        self.changed = asyncio.Event()

    async def run(self) -> None:
        async for message in self.client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else b""
            self.last[message.topic.value] = payload.decode()
            self.changed.set()

    async def until(self, topic: str, payload: str, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while self.last.get(topic) != payload:
                self.changed.clear()
                await self.changed.wait()


@contextlib.asynccontextmanager
async def watching(broker: Any) -> AsyncIterator[Watcher]:
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        await client.subscribe("evcc/#")
        watcher = Watcher(client)
        task = asyncio.create_task(watcher.run())
        try:
            yield watcher
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_mqtt_retained_topics_a_session_and_the_setters(evcc: EvccEmulator, broker: Any) -> None:
    async with watching(broker) as w:
        await w.until("evcc/status", "online")
        await w.until("evcc/loadpoints", "1")
        await w.until("evcc/loadpoints/1/connected", "false")
        await w.until("evcc/loadpoints/1/chargeTotalImport", "1234.5")
        evcc.loadpoints[0].plug()
        await w.until("evcc/loadpoints/1/charging", "true")
        await w.until("evcc/loadpoints/1/chargeCurrents/l1", "16")
        await w.until("evcc/loadpoints/1/chargeCurrents", "48")  # the sum of l1..l3
        await w.until("evcc/loadpoints/1/chargePower", "11040")
        await w.until("evcc/loadpoints/1/enabled", "true")
        # A setter is obeyed, then its topic cleared with an empty retained payload.
        await w.client.publish("evcc/loadpoints/1/maxCurrent/set", "10")
        await w.until("evcc/loadpoints/1/maxCurrent", "10")
        await w.until("evcc/loadpoints/1/chargeCurrents/l2", "10")
        await w.until("evcc/loadpoints/1/maxCurrent/set", "")
        await w.client.publish("evcc/loadpoints/1/mode/set", "off")
        await w.until("evcc/loadpoints/1/mode", "off")
        await w.until("evcc/loadpoints/1/enabled", "false")
        await w.until("evcc/loadpoints/1/charging", "false")
        # No setter for enabled: evcc does not listen, nothing changes, nothing is cleared.
        await w.client.publish("evcc/loadpoints/1/enabled/set", "true")
        await asyncio.sleep(0.4)
        assert w.last["evcc/loadpoints/1/enabled"] == "false"
        assert w.last["evcc/loadpoints/1/enabled/set"] == "true"
        # A bad value is ignored (evcc logs it) and the set topic still cleared.
        await w.client.publish("evcc/loadpoints/1/maxCurrent/set", "lots")
        await w.until("evcc/loadpoints/1/maxCurrent/set", "")
        assert evcc.loadpoints[0].max_current == 10.0
    assert evcc.loadpoints[0].total_import_kwh > 1234.5


async def test_mqtt_last_will_and_clean_stop(evcc: EvccEmulator, broker: Any) -> None:
    async with watching(broker) as w:
        await w.until("evcc/loadpoints/1/mode", "now")
        await evcc.power_cut()
        await w.until("evcc/status", "offline")
        assert w.last["evcc/loadpoints/1/mode"] == "now"  # retained values stay after a crash
        await evcc.restore()
        await w.until("evcc/status", "online")
        await evcc.stop_mqtt()
        await w.until("evcc/status", "offline")
        await w.until("evcc/loadpoints/1/mode", "")  # Cleanup deleted the retained values


async def test_run_by_hand_evcc_has_no_status_topic_and_no_last_will(broker: Any) -> None:
    """devices.md §10.1: `evcc/status` only when evcc runs as a service; `evcc/updated` always."""
    emulator = EvccEmulator([Loadpoint(mode="now")], broker_url=broker.url, service=False)
    async with emulator, watching(broker) as w:
        await w.until("evcc/loadpoints/1/mode", "now")
        times: set[str] = set()
        async with asyncio.timeout(3):  # alive: the unix time, once per cycle (a new one each second)
            while len(times) < 2:
                times.add(w.last.get("evcc/updated", ""))
                times.discard("")
                w.changed.clear()
                await w.changed.wait()
        await emulator.power_cut()
        await w.until("evcc/loadpoints/1/mode", "now")  # what was retained stays
        await asyncio.sleep(0.3)  # long enough for a last will to arrive, had there been one
        await emulator.restore()
        await w.until("evcc/loadpoints/1/mode", "now")
    assert "evcc/status" not in w.last


async def test_no_total_without_a_meter_total(broker: Any) -> None:
    lp = Loadpoint(mode="now", has_total_import=False)
    async with EvccEmulator([lp], broker_url=broker.url) as emu, watching(broker) as w:
        await w.until("evcc/loadpoints/1/mode", "now")
        assert "evcc/loadpoints/1/chargeTotalImport" not in w.last
        async with aiohttp.ClientSession() as http, http.get(f"{emu.url}/api/state") as r:
            assert "chargeTotalImport" not in (await r.json())["loadpoints"][0]


async def test_rest_state_setters_and_errors() -> None:
    async with EvccEmulator([Loadpoint(), Loadpoint(title="Carport", phases=1)]) as emu:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{emu.url}/api/state") as r:
                state = await r.json()
            assert [lp["title"] for lp in state["loadpoints"]] == ["Garage", "Carport"]  # 0-based
            async with http.get(f"{emu.url}/api/state", params={"jq": ".loadpoints[1].mode"}) as r:
                assert await r.json() == "pv"
            emu.loadpoints[1].plug()
            async with http.get(f"{emu.url}/api/state", params={"jq": ".loadpoints[2].mode"}) as r:
                assert (r.status, await r.json()) == (200, None)  # past the end: null, as in jq
            async with http.get(f"{emu.url}/api/state", params={"jq": "loadpoints | first"}) as r:
                assert r.status == 400 and "error" in await r.json()  # beyond this emulator's paths
            async with http.post(f"{emu.url}/api/loadpoints/2/mode/now") as r:  # 1-based
                assert (r.status, await r.json()) == (200, "now")
            async with http.post(f"{emu.url}/api/loadpoints/2/maxcurrent/13") as r:
                assert (r.status, await r.json()) == (200, 13)
            async with http.get(f"{emu.url}/api/state", params={"jq": ".loadpoints[2-1]"}) as r:
                lp = await r.json()
            assert (lp["charging"], lp["chargeCurrents"], lp["chargePower"]) == (True, [13, 0, 0], 2990)
            async with http.post(f"{emu.url}/api/loadpoints/2/mode/fast") as r:
                assert r.status == 400 and "fast" in (await r.json())["error"]
            async with http.post(f"{emu.url}/api/loadpoints/1/maxcurrent/x") as r:
                assert r.status == 400 and "error" in await r.json()
            async with http.post(f"{emu.url}/api/loadpoints/1/maxcurrent/5") as r:  # below minCurrent 6
                assert (r.status, await r.json()) == (
                    400, {"error": "max current must be greater or equal than min current"},
                )  # fmt: skip
            assert emu.loadpoints[0].max_current == 16.0
            async with http.post(f"{emu.url}/api/loadpoints/3/mode/now") as r:
                assert r.status == 404
            await emu.power_cut()
            with pytest.raises(aiohttp.ClientConnectionError):
                async with http.get(f"{emu.url}/api/state"):
                    pass
            await emu.restore()
            async with http.get(f"{emu.url}/api/state") as r:
                assert r.status == 200
