"""The shared MQTT connection (adapters/transports/mqtt.py) against a real mosquitto broker."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from adapters.base import DeviceUnreachable
from adapters.transports.mqtt import BrokerAddress
from adapters.transports.pool import Transports
from tests.conftest import make_config


async def _until(predicate: Any, timeout_s: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_one_connection_per_broker_subscribed_again_after_the_broker_comes_back(broker: Any) -> None:
    transports = Transports()
    try:
        conn = transports.mqtt(broker.url)
        assert transports.mqtt(broker.url + "/") is conn  # same broker, same connection
        got: list[tuple[str, bytes]] = []
        await conn.subscribe("x/+/y", lambda topic, payload: got.append((topic, payload)))
        assert await conn.wait_connected(5)
        await conn.publish("x/1/y", "42")
        await _until(lambda: got == [("x/1/y", b"42")])

        await broker.stop()
        await _until(lambda: not conn.connected)
        with pytest.raises(DeviceUnreachable, match="not connected"):
            await conn.publish("x/1/y", "lost")  # refused at once, not queued for later

        await broker.restart()
        await _until(lambda: conn.connected, 20)
        await conn.publish("x/2/y", "43")
        await _until(lambda: got[-1:] == [("x/2/y", b"43")])  # the filter was subscribed again
    finally:
        await transports.close()


def test_broker_urls_are_checked_and_never_print_the_password() -> None:
    a = BrokerAddress.parse("mqtt://bridge:s3cret@10.0.0.2")
    assert (a.host, a.port, a.username, a.password, a.tls) == ("10.0.0.2", 1883, "bridge", "s3cret", False)
    assert str(a) == "mqtt://10.0.0.2:1883"
    assert BrokerAddress.parse("mqtts://h").port == 8883
    with pytest.raises(ValueError, match="expected mqtt://"):
        BrokerAddress.parse("http://h")


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("mqtt://user:s3cret-pw@host:99999", "the port in 'mqtt://user:***@host:99999' is not a number"),
        ("mqtt://user:s3cret-pw@host:0", "the port in 'mqtt://user:***@host:0' is not a number"),
        ("mqtt://user:s3cret/pw@host", "percent-encode"),
        ("http://user:s3cret-pw@host", "got 'http://user:***@host'"),
        ("mqtt://user:s3cret-pw@host/topic", "without a path"),
    ],
)
def test_broker_address_problems_never_show_the_password(url: str, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)) as caught:
        BrokerAddress.parse(url)
    assert "s3cret" not in str(caught.value)


def test_broker_address_repr_hides_the_password() -> None:
    address = BrokerAddress.parse("mqtts://bridge:s3cret-pw@broker.local")
    assert (address.port, address.tls, address.password) == (8883, True, "s3cret-pw")
    assert "s3cret" not in repr(address) and "s3cret" not in str(address)


async def test_a_driver_config_with_a_bad_broker_never_shows_the_password(tmp_path: Any) -> None:
    from bridge.config import ConfigError

    for charger in (
        {"type": "tasmota", "broker": "mqtt://u:s3cret-pw@h:99999", "topic": "plug"},
        {"type": "goe", "transport": "mqtt", "broker": "mqtt://u:s3cret-pw@h:99999", "serial": "012345"},
    ):
        with pytest.raises(ConfigError) as caught:
            make_config("ws://127.0.0.1:9/ocpp", tmp_path, charger=charger)
        assert "broker" in str(caught.value) and "s3cret" not in str(caught.value)
