"""The pure parts of `type: ocpp`: its options' checks, the endpoint's listen address, one identity per
endpoint (the wire behaviour is in test_ocpp_device*.py)."""

from __future__ import annotations

import dataclasses

import pytest
from websockets.asyncio.server import ServerConnection

from adapters.chargers.ocpp_device_options import OcppDeviceOptions
from adapters.transports.ocpp_server import OcppServer, parse_listen

GOOD = OcppDeviceOptions(identity="WB-1", password="pw")


def test_listen_addresses() -> None:
    assert parse_listen("0.0.0.0:9100") == ("0.0.0.0", 9100)
    assert parse_listen("[::]:9100") == ("::", 9100)
    for bad in ("9100", "host:", ":9100", "host:port", "host:70000"):
        with pytest.raises(ValueError, match="host:port"):
            parse_listen(bad)


def test_the_options_name_each_problem() -> None:
    assert GOOD.validate() == []
    cases = {
        "listen": {"listen": "9100"},
        "identity": {"identity": "a/b"},
        "password": {"password": ""},
        "connector_id": {"connector_id": 0},
        "id_tag": {"id_tag": "x" * 21},
        "card_wait_s": {"card_wait_s": 30},
        "phases": {"phases": 2},
        "min_current_a": {"min_current_a": 20, "max_current_a": 16},
    }
    for field, change in cases.items():
        problems = dataclasses.replace(GOOD, **change).validate()
        assert [name for name, _ in problems] == [field], (change, problems)


async def test_one_identity_per_endpoint() -> None:
    server = OcppServer("127.0.0.1:0")

    async def first(connection: ServerConnection) -> None: ...
    async def second(connection: ServerConnection) -> None: ...

    server.register("WB-1", "a", first)
    server.register("WB-1", "a", first)  # the same driver again (its start retried)
    with pytest.raises(ValueError, match="another connector already uses identity 'WB-1'"):
        server.register("WB-1", "b", second)
    server.unregister("WB-1", second)  # not its registration: kept
    with pytest.raises(ValueError):
        server.register("WB-1", "b", second)
    server.unregister("WB-1", first)
    server.register("WB-1", "b", second)
    await server.close()
