"""The shared MQTT connection (adapters/mqtt.py) against a real mosquitto broker."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from adapters.base import DeviceUnreachable
from adapters.mqtt import BrokerAddress
from adapters.transports import Transports


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
