"""MQTT state publishing and Home Assistant discovery (bridge/mqtt_state.py) against a real mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiomqtt
import pytest
from ocpp.v16 import call

import bridge.mqtt_state as mqtt_state
from bridge import __version__
from bridge.api.server import charge_point_status
from bridge.clock import iso
from bridge.config import Config, ConfigError, MqttStateConfig, parse_config
from bridge.core.connector import Status
from bridge.core.firmware import FirmwareState
from bridge.daemon import Daemon
from bridge.mqtt_discovery import discovery_payloads, object_id, topic_level
from bridge.mqtt_state import RECONNECT_MIN_S, TIMEOUT_S, StatePublisher, start_mqtt_state, state_payloads
from bridge.runtime.coordinator import FLOWING_READ_S
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.helpers.flow import ready
from tests.processes import dead_port

PASSWORD = "S3cret-PW_for_mqtt"
AVAILABILITY = "ocpp-bridge/bridge/availability"
CHARGE_POINT = """\
charge_points:
  - id: CP-1
    csms_url: ws://127.0.0.1:9000/ocpp
    connectors: [{id: 1, charger: {type: simulated}}]
"""


def mqtt_block(text: str) -> MqttStateConfig:
    config = parse_config(CHARGE_POINT + text, "test.yaml", env={})
    assert config.mqtt is not None
    return config.mqtt


def with_mqtt(config: Config, broker_url: str, **fields: Any) -> Config:
    """`config` with an `mqtt:` block, read by the real loader."""
    items = ", ".join(f"{k}: {json.dumps(v)}" for k, v in {"broker": broker_url, **fields}.items())
    return dataclasses.replace(config, mqtt=mqtt_block(f"mqtt: {{{items}}}\n"))


async def until(predicate: Callable[[], Any], timeout_s: float = 10.0, what: str = "") -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not (result := predicate()):
        assert loop.time() < deadline, f"not met in {timeout_s} s: {what}"
        await asyncio.sleep(0.02)
    return result


class Seen:
    """Every message a test subscriber received: (topic, payload, retained)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str, bool]] = []

    def last(self, topic: str) -> str | None:
        return next((p for t, p, _ in reversed(self.messages) if t == topic), None)

    def payloads(self, topic: str) -> list[str]:
        return [p for t, p, _ in self.messages if t == topic]


@contextlib.asynccontextmanager
async def watching(port: int, topic_filter: str = "#") -> AsyncIterator[Seen]:
    seen = Seen()
    async with aiomqtt.Client("127.0.0.1", port) as client:
        await client.subscribe(topic_filter, qos=1)

        async def collect() -> None:
            async for m in client.messages:
                payload = m.payload.decode() if isinstance(m.payload, bytes) else str(m.payload or "")
                seen.messages.append((m.topic.value, payload, m.retain))

        task = asyncio.create_task(collect())
        try:
            yield seen
        finally:
            task.cancel()
            await asyncio.wait([task])


async def retained(port: int, topic_filter: str) -> Seen:
    """What the broker keeps for `topic_filter`: a fresh subscriber gets it at once."""
    async with watching(port, topic_filter) as seen:
        await asyncio.sleep(0.3)
    return seen


async def stop(task: asyncio.Task[None]) -> None:
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=0.5)


@contextlib.asynccontextmanager
async def without_its_publisher(config: Config) -> AsyncIterator[Daemon]:
    """The daemon without the publisher it would start itself: the test runs one it can watch
    (two with the same client id would push each other off the broker)."""
    async with running(dataclasses.replace(config, mqtt=None)) as daemon:
        daemon.config = config
        yield daemon


@contextlib.asynccontextmanager
async def publishing(daemon: Daemon, poll_s: float = 0.05) -> AsyncIterator[StatePublisher]:
    assert daemon.config.mqtt is not None
    publisher = StatePublisher(daemon.config.mqtt, daemon.charge_points, poll_s=poll_s)
    task = asyncio.create_task(publisher.run())
    try:
        yield publisher
    finally:
        await stop(task)


@pytest.fixture(autouse=True)
def fast_reconnect(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mqtt_state, "RECONNECT_MIN_S", 0.1)
    monkeypatch.setattr(mqtt_state, "RECONNECT_MAX_S", 0.3)


class Proxy:
    """A TCP relay to the broker whose connections can be cut without an MQTT DISCONNECT."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> Proxy:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        self.cut()
        await self.server.wait_closed()

    def cut(self) -> None:
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers += [writer, up_writer]

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.transport.abort()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))


# -- configuration ----------------------------------------------------------------------------------


def test_the_block_with_its_defaults_and_no_password_in_its_repr() -> None:
    mqtt = mqtt_block(f"mqtt: {{broker: 'mqtt://bridge:{PASSWORD}@127.0.0.1:1884'}}\n")
    assert (mqtt.topic_prefix, mqtt.discovery, mqtt.discovery_prefix, mqtt.interval_s, mqtt.retain) == (
        "ocpp-bridge", True, "homeassistant", 60.0, True,
    )  # fmt: skip
    assert PASSWORD not in repr(mqtt)
    assert parse_config(CHARGE_POINT, "test.yaml", env={}).mqtt is None
    full = mqtt_block(
        "mqtt: {broker: 'mqtts://h', topic_prefix: home/ev, discovery: false, discovery_prefix: ha,"
        " interval_s: 10, retain: false}\n"
    )
    assert (full.topic_prefix, full.discovery, full.discovery_prefix, full.interval_s, full.retain) == (
        "home/ev", False, "ha", 10.0, False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("block", "path", "says"),
    [
        ("{broker: 'http://bridge:{pw}@h'}", "mqtt.broker", "expected mqtt://"),
        ("{broker: 'mqtt://bridge:{pw}@h:99999'}", "mqtt.broker", "not a number from 1 to 65535"),
        ("{broker: 'mqtt://bridge:{pw}@h:0'}", "mqtt.broker", "not a number from 1 to 65535"),
        ("{broker: 'mqtt://bridge:{pw}@h:x1'}", "mqtt.broker", "not a number from 1 to 65535"),
        ("{broker: 'mqtt://bridge:a/{pw}@h'}", "mqtt.broker", "percent-encode"),
        ("{broker: 'mqtt://bridge:{pw}@h/path'}", "mqtt.broker", "without a path"),
        ("{broker: 'bridge:{pw}@h'}", "mqtt.broker", "expected mqtt://"),
        ("'mqtt://bridge:{pw}@h'", "mqtt", "write the URL as `broker:`"),
        ("{broker: 42}", "mqtt.broker", "expected mqtt://"),
        ("{topic_prefix: x}", "mqtt.broker", "required"),
        ("{broker: 'mqtt://h', topic_prefix: 'a/#'}", "mqtt.topic_prefix", "wildcards"),
        ("{broker: 'mqtt://h', topic_prefix: '/a'}", "mqtt.topic_prefix", "must not start or end with '/'"),
        ("{broker: 'mqtt://h', discovery_prefix: ''}", "mqtt.discovery_prefix", "must not be empty"),
        (
            "{broker: 'mqtt://h', discovery_prefix: '$SYS'}",
            "mqtt.discovery_prefix",
            "must not start with '$'",
        ),
        ("{broker: 'mqtt://h', interval_s: 0}", "mqtt.interval_s", "from 1 to 86400"),
        ("{broker: 'mqtt://h', retain: 'yes please'}", "mqtt.retain", "true or false"),
        ("{broker: 'mqtt://h', retian: true}", "mqtt.retian", "did you mean 'retain'"),
    ],
)
def test_problems_name_the_field_and_never_the_password(block: str, path: str, says: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(CHARGE_POINT + "mqtt: " + block.replace("{pw}", PASSWORD) + "\n", "t.yaml", env={})
    assert [(p.path, p.line) for p in info.value.problems] == [(path, 5)]
    assert says in info.value.problems[0].message
    assert PASSWORD not in str(info.value)


def test_charge_point_ids_become_valid_topic_levels_and_unique_ids() -> None:
    assert topic_level("CP-1") == "CP-1" and object_id("CP-1") == "CP-1"
    assert topic_level("DE*ABC*E1") == "DE*ABC*E1"  # legal in a topic, not in a unique id
    assert object_id("DE*ABC*E1").startswith("DE_ABC_E1_")
    assert topic_level("CP+1").startswith("CP_1_") and "+" not in topic_level("CP+1")
    assert object_id("CP.1") != object_id("CP_1") and object_id("CP.1") != object_id("CP:1")


# -- against a broker ---------------------------------------------------------------------------------


async def test_discovery_configs_field_by_field(
    csms: StrictCentralSystem, broker: Any, tmp_path: Any
) -> None:
    # Everything published again each second: an empty state (no transaction) published before the
    # watcher below subscribed is not retained, and would come only with the next full publication.
    config = with_mqtt(
        make_config(csms.url, tmp_path, connectors=2, model="Retrofit-1"), broker.url, interval_s=1
    )
    async with without_its_publisher(config) as daemon, publishing(daemon):
        await ready(csms, connectors=2)
        await until(lambda: daemon.charge_points["CP-1"].session.online, what="accepted")
        async with watching(broker.port, "ocpp-bridge/#") as state:
            await until(lambda: state.last("ocpp-bridge/CP-1/2/status") == "Available", what="state")
            await until(lambda: state.last("ocpp-bridge/CP-1/accepted") == "true", what="accepted")
            configs = await retained(broker.port, "homeassistant/#")
            # The states come one message each, in no promised order: all of them before judging.
            topics = [json.loads(payload)["state_topic"] for _, payload, _ in configs.messages]
            await until(lambda: all(state.last(t) is not None for t in topics), what="every state")
        kept = await retained(broker.port, "ocpp-bridge/#")

    assert len(configs.messages) == 6 + 2 * 5, [t for t, _, _ in configs.messages]
    by_key: dict[str, dict[str, Any]] = {}
    for topic, payload, was_retained in configs.messages:
        assert was_retained, topic
        entity = json.loads(payload)
        component, unique_id, last = topic.split("/")[1:]
        assert topic == f"homeassistant/{component}/{unique_id}/config" and last == "config"
        assert component in ("sensor", "binary_sensor")
        assert entity["unique_id"] == unique_id
        assert {"unique_id", "name", "state_topic", "availability_topic", "device"} <= entity.keys()
        assert entity["availability_topic"] == AVAILABILITY
        assert (entity["payload_available"], entity["payload_not_available"]) == ("online", "offline")
        assert entity["device"] == {
            "identifiers": ["ocpp-bridge_CP-1"], "name": "CP-1", "manufacturer": "ocpp-bridge",
            "model": "Retrofit-1", "sw_version": __version__,
        }  # fmt: skip
        # Every state topic is one the bridge publishes, retained (retain: true by default) unless
        # empty: an empty retained message deletes what the broker kept ("not known").
        published = state.last(entity["state_topic"])
        assert published is not None, entity["state_topic"]
        assert kept.last(entity["state_topic"]) == (published or None)
        by_key[entity["state_topic"].removeprefix("ocpp-bridge/CP-1/")] = {"component": component, **entity}
    assert len({e["unique_id"] for e in by_key.values()}) == len(by_key) == 16
    assert kept.last(AVAILABILITY) == "online" and all(r for _, _, r in kept.messages)
    assert state.last("ocpp-bridge/CP-1/1/transaction") == ""  # no transaction

    assert {k: (e["device_class"], e["unit_of_measurement"], e["state_class"]) for k, e in by_key.items()
            if k.endswith(("power_w", "energy_wh", "current_limit_a"))} == {
        f"{n}/{key}": spec
        for n in (1, 2)
        for key, spec in {
            "power_w": ("power", "W", "measurement"),
            "energy_wh": ("energy", "Wh", "total_increasing"),
            "current_limit_a": ("current", "A", "measurement"),
        }.items()
    }  # fmt: skip
    status = by_key["1/status"]
    assert (status["component"], status["device_class"]) == ("sensor", "enum")
    assert status["options"] == [str(s) for s in Status] and "Available" in status["options"]
    for key in ("connected", "accepted"):
        entity = by_key[key]
        assert (entity["component"], entity["device_class"]) == ("binary_sensor", "connectivity")
        assert (entity["payload_on"], entity["payload_off"]) == ("true", "false")
        assert kept.last(entity["state_topic"]) == "true"
    assert by_key["1/transaction"]["component"] == "sensor"
    assert "device_class" not in by_key["1/transaction"]
    assert by_key["2/energy_wh"]["name"] == "Connector 2 energy"
    for key, name, options in (
        ("firmware", "Firmware update", [str(s) for s in FirmwareState]),
        ("diagnostics", "Diagnostics upload", ["Idle", "Uploading"]),
    ):
        entity = by_key[key]
        assert (entity["component"], entity["device_class"], entity["name"]) == ("sensor", "enum", name)
        assert entity["options"] == options and entity["entity_category"] == "diagnostic"
        assert entity["json_attributes_topic"] == f"ocpp-bridge/CP-1/{key}/attributes"
        assert kept.last(entity["state_topic"]) == "Idle"
        assert json.loads(kept.last(entity["json_attributes_topic"]) or "")["last"] is None
    lists, reservations = by_key["local_list"], by_key["reservations"]
    assert (lists["name"], lists["unit_of_measurement"], lists["entity_category"]) == (
        "Local authorization list", "entries", "diagnostic",
    )  # fmt: skip
    assert (reservations["name"], reservations["state_class"]) == ("Reservations", "measurement")
    assert "entity_category" not in reservations  # shown with the sensors, not among the diagnostics
    for entity, attributes in ((lists, {"version": 0, "entries": 0}), (reservations, {"reservations": []})):
        assert entity["json_attributes_topic"] == entity["state_topic"] + "/attributes"
        assert kept.last(entity["state_topic"]) == "0"
        assert json.loads(kept.last(entity["json_attributes_topic"]) or "") == attributes


async def test_state_follows_a_session_as_the_local_api_reports_it(
    csms: StrictCentralSystem, broker: Any, tmp_path: Any
) -> None:
    config = with_mqtt(make_config(csms.url, tmp_path), broker.url, interval_s=1)
    async with watching(broker.port, "ocpp-bridge/#") as seen:
        async with running(config) as daemon:  # the daemon starts the publisher itself (1 s poll)
            await ready(csms)
            topic = "ocpp-bridge/CP-1/1/"
            await until(lambda: seen.last(topic + "status") == "Available", what="Available")
            # The round's other topics follow the status within it (seen one message at a time).
            await until(lambda: seen.last(topic + "transaction") == "", what="no transaction")
            cp = daemon.charge_points["CP-1"]
            cp.connectors[1].charger.plug()  # type: ignore[attr-defined]
            cp.connectors[1].charger.tap("TAG")  # type: ignore[attr-defined]
            await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Charging")
            await until(lambda: seen.last(topic + "status") == "Charging", what="Charging")
            tx_id = cp.snapshot().connectors[0].transaction_id
            assert tx_id is not None
            await until(lambda: seen.last(topic + "transaction") == str(tx_id), what="tx id")
            await until(lambda: float(seen.last(topic + "power_w") or 0) > 0, what="power")
            first = float(seen.last(topic + "energy_wh") or 0)
            # A simulated box's register is read every FLOWING_READ_S while energy flows.
            await until(
                lambda: float(seen.last(topic + "energy_wh") or 0) > first, FLOWING_READ_S + 5, "energy grows"
            )
            # The same values as GET /api/v1/status (power and energy move on all the time).
            assert daemon.config.mqtt is not None
            local = state_payloads(daemon.config.mqtt, charge_point_status(cp))
            assert local[topic + "current_limit_a"] != ""  # the limit the charger was set to
            for key in ("status", "transaction", "current_limit_a"):
                assert seen.last(topic + key) == local[topic + key], key
            for key in ("connected", "accepted"):
                assert seen.last(f"ocpp-bridge/CP-1/{key}") == local[f"ocpp-bridge/CP-1/{key}"] == "true"
            assert abs(float(seen.last(topic + "energy_wh") or 0) - float(local[topic + "energy_wh"])) < 50
            # Changes go out within the poll; the full refresh repeats unchanged values every interval_s.
            await until(lambda: len(seen.payloads("ocpp-bridge/CP-1/connected")) >= 2, 5, "refreshes")
    assert seen.last(AVAILABILITY) == "offline"  # a stop says so itself (a clean DISCONNECT has no Will)


async def test_a_failed_update_a_pending_one_and_a_failed_upload_as_the_local_api_reports_them(
    csms: StrictCentralSystem, broker: Any, tmp_path: Any
) -> None:
    config = with_mqtt(make_config(csms.url, tmp_path), broker.url)
    nowhere = f"ftp://cp:s3cret-pw@127.0.0.1:{dead_port()}/"  # nothing listens there
    async with without_its_publisher(config) as daemon, publishing(daemon):
        await ready(csms)
        async with watching(broker.port, "ocpp-bridge/CP-1/#") as seen:
            await until(lambda: seen.last("ocpp-bridge/CP-1/firmware") == "Idle", what="Idle")
            now = datetime.now(UTC)
            await csms.call(
                "CP-1", call.UpdateFirmware(location=nowhere + "a.bin", retrieve_date=iso(now), retries=0)
            )
            await csms.wait_for_call(
                "CP-1", "FirmwareStatusNotification", lambda p: p["status"] == "DownloadFailed"
            )
            later = iso(now + timedelta(hours=2))
            await csms.call("CP-1", call.UpdateFirmware(location=nowhere + "b.bin", retrieve_date=later))
            await until(lambda: seen.last("ocpp-bridge/CP-1/firmware") == "Scheduled", what="pending")
            await csms.call("CP-1", call.GetDiagnostics(location=nowhere, retries=0))
            await csms.wait_for_call(
                "CP-1", "DiagnosticsStatusNotification", lambda p: p["status"] == "UploadFailed"
            )

            def attributes(key: str) -> dict[str, Any]:
                return dict(json.loads(seen.last(f"ocpp-bridge/CP-1/{key}/attributes") or "{}"))

            await until(lambda: (attributes("diagnostics").get("last") or {}).get("status") == "UploadFailed")
            local = charge_point_status(daemon.charge_points["CP-1"])
    firmware, diagnostics = attributes("firmware"), attributes("diagnostics")
    assert firmware == local["firmware"] and diagnostics == local["diagnostics"]  # what the API says
    assert (
        firmware["location"].endswith("/b.bin")
        and firmware["retrieve_date"] == local["firmware"]["retrieve_date"]
    )
    assert (
        firmware["last"]["status"] == "DownloadFailed"
        and firmware["last"]["reason"]
        and firmware["last"]["at"]
    )
    assert seen.last("ocpp-bridge/CP-1/diagnostics") == "Idle" and diagnostics["last"]["reason"]
    assert diagnostics["last"]["file_name"].startswith("diagnostics-CP-1-") and diagnostics["last"]["at"]
    assert not any("s3cret-pw" in payload for _, payload, _ in seen.messages)


async def test_the_local_list_and_a_reservation_as_the_local_api_reports_them(
    csms: StrictCentralSystem, broker: Any, tmp_path: Any
) -> None:
    config = with_mqtt(make_config(csms.url, tmp_path, connectors=2), broker.url)
    async with without_its_publisher(config) as daemon, publishing(daemon):
        await ready(csms, connectors=2)
        async with watching(broker.port, "ocpp-bridge/CP-1/#") as seen:
            await until(lambda: seen.last("ocpp-bridge/CP-1/reservations") == "0", what="none held")
            tags = [{"id_tag": f"CARD-{n}", "id_tag_info": {"status": "Accepted"}} for n in range(3)]
            update = call.SendLocalList(list_version=9, update_type="Full", local_authorization_list=tags)
            assert (await csms.call("CP-1", update)).status == "Accepted"
            await until(lambda: seen.last("ocpp-bridge/CP-1/local_list") == "3", what="the list")
            expiry = iso(datetime.now(UTC) + timedelta(hours=1))
            reserve = call.ReserveNow(
                connector_id=2, expiry_date=expiry, id_tag="CARD-1", reservation_id=5, parent_id_tag="FLEET"
            )
            assert (await csms.call("CP-1", reserve)).status == "Accepted"
            await until(lambda: seen.last("ocpp-bridge/CP-1/reservations") == "1", what="reserved")
            await until(lambda: seen.last("ocpp-bridge/CP-1/2/status") == "Reserved", what="Reserved")

            def attributes(key: str) -> dict[str, Any]:
                return dict(json.loads(seen.last(f"ocpp-bridge/CP-1/{key}/attributes") or "{}"))

            local = charge_point_status(daemon.charge_points["CP-1"])
            held = attributes("reservations")
            assert (await csms.call("CP-1", call.CancelReservation(reservation_id=5))).status == "Accepted"
            await until(lambda: seen.last("ocpp-bridge/CP-1/reservations") == "0", what="cancelled")
            after = attributes("reservations")
    assert attributes("local_list") == local["local_list"] == {"version": 9, "entries": 3}
    assert held == {"reservations": local["reservations"]}  # what the API says
    assert held["reservations"] == [{
        "id": 5, "connector": 2, "requested_connector": 2, "id_tag": "CARD-1", "parent_id_tag": "FLEET",
        "expiry": expiry,
    }]  # fmt: skip
    assert after == {"reservations": []}


async def test_last_will_when_the_connection_dies_then_online_again(
    csms: StrictCentralSystem, broker: Any, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bridge.mqtt_state")
    async with Proxy(broker.port) as proxy, watching(broker.port, AVAILABILITY) as seen:
        config = with_mqtt(make_config(csms.url, tmp_path), f"mqtt://127.0.0.1:{proxy.port}")
        async with without_its_publisher(config) as daemon, publishing(daemon) as publisher:
            await until(lambda: seen.last(AVAILABILITY) == "online", what="online")
            proxy.cut()  # no DISCONNECT: the broker publishes the Will
            await until(lambda: seen.last(AVAILABILITY) == "offline", what="the Will")
            assert seen.messages[-1][1:] == ("offline", False)
            # A publish in flight when the link died waits out its acknowledgement (TIMEOUT_S) before
            # the publisher retries (after RECONNECT_MIN_S).
            await until(
                lambda: seen.last(AVAILABILITY) == "online",
                TIMEOUT_S + RECONNECT_MIN_S + 5,
                "online after reconnecting",
            )
            # "online" goes first; connected once everything is published again on the connection.
            await until(lambda: publisher.connected, what="everything published again")
    kept = await retained(broker.port, AVAILABILITY)
    assert kept.messages == [(AVAILABILITY, "offline", True)]  # the stop's own, retained
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith(f"MQTT state: broker mqtt://127.0.0.1:{proxy.port}")
    assert any("connected again" in r.getMessage() for r in caplog.records)


async def test_charging_goes_on_while_the_broker_is_down_and_the_password_is_never_logged(
    csms: StrictCentralSystem, broker: Any, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger
    caplog.set_level(logging.DEBUG, logger="mqtt")  # aiomqtt's and paho's (aiomqtt sets it to WARNING)
    url = f"mqtt://bridge:{PASSWORD}@127.0.0.1:{broker.port}"  # the test broker takes any credentials
    config = with_mqtt(make_config(csms.url, tmp_path), url)
    async with without_its_publisher(config) as daemon, publishing(daemon) as publisher:
        await ready(csms)
        await until(lambda: publisher.connected, what="connected")
        await broker.stop()
        await until(lambda: publisher.last_error is not None, what="the outage noticed")
        sim = daemon.charge_points["CP-1"].connectors[1].charger
        sim.plug()  # type: ignore[attr-defined]
        sim.tap("TAG")  # type: ignore[attr-defined]
        await csms.wait_for_call("CP-1", "StatusNotification", lambda p: p["status"] == "Charging")
        rt = daemon.charge_points["CP-1"].connectors[1]
        energy = rt.reading.energy_wh if rt.reading else 0
        await asyncio.sleep(1.0)  # several reconnect attempts meanwhile
        # Energy flows on, as the bridge reads it (a simulated box's register every FLOWING_READ_S).
        await until(lambda: rt.reading is not None and (rt.reading.energy_wh or 0) > (energy or 0),
                    timeout_s=FLOWING_READ_S + 2, what="energy flows on")  # fmt: skip
        assert not publisher.connected
        await broker.restart()
        await until(lambda: publisher.connected, what="connected again")
        async with watching(broker.port, "ocpp-bridge/#") as seen:  # the restarted broker kept nothing
            await until(lambda: seen.last("ocpp-bridge/CP-1/1/status") == "Charging", what="published again")
        assert publisher.last_error is None and PASSWORD not in repr(publisher.config)
    warnings = [r for r in caplog.records if r.name == "bridge.mqtt_state" and r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]  # one outage, one warning
    assert any(r.name == "mqtt" and "CONNECT" in r.getMessage() for r in caplog.records)  # paho's lines
    assert PASSWORD not in caplog.text
    assert csms.calls("CP-1", "StartTransaction")


async def test_without_an_mqtt_block_nothing_starts(csms: StrictCentralSystem, tmp_path: Any) -> None:
    async with running(make_config(csms.url, tmp_path)) as daemon:
        assert start_mqtt_state(daemon.config.mqtt, daemon.charge_points) is None


async def test_the_daemon_publishes_when_its_file_has_an_mqtt_block(
    csms: StrictCentralSystem, broker: Any, tmp_path: Any
) -> None:
    """Wired in the daemon itself: online while it runs, the connector's status, offline after a stop."""
    config = with_mqtt(make_config(csms.url, tmp_path), f"mqtt://127.0.0.1:{broker.port}")
    async with watching(broker.port) as seen:
        async with running(config):
            await ready(csms)
            await until(lambda: seen.last("ocpp-bridge/bridge/availability") == "online", what="online")
            await until(lambda: seen.last("ocpp-bridge/CP-1/1/status") == "Available", what="status")
        await until(lambda: seen.last("ocpp-bridge/bridge/availability") == "offline", what="offline")


def test_two_bridges_with_the_same_charge_point_id_stay_two_devices() -> None:
    """The prefix is part of the ids: `garage` and `carport`, both with CP-1, never overwrite each other."""
    from types import SimpleNamespace

    snapshot = SimpleNamespace(id="CP-1", model="ocpp-bridge", connectors=(SimpleNamespace(id=1),))
    cp: Any = SimpleNamespace(snapshot=lambda: snapshot)
    garage = discovery_payloads(mqtt_block("mqtt: {broker: 'mqtt://h', topic_prefix: garage}\n"), cp)
    carport = discovery_payloads(mqtt_block("mqtt: {broker: 'mqtt://h', topic_prefix: carport}\n"), cp)
    assert not set(garage) & set(carport)  # no discovery topic in common
    ids = {p["unique_id"] for p in garage.values()} | {p["device"]["identifiers"][0] for p in garage.values()}
    assert not ids & (
        {p["unique_id"] for p in carport.values()} | {p["device"]["identifiers"][0] for p in carport.values()}
    )
    default = discovery_payloads(mqtt_block("mqtt: {broker: 'mqtt://h'}\n"), cp)
    assert "homeassistant/sensor/ocpp-bridge_CP-1_1_power_w/config" in default  # ids as before
