"""The pure parts of `type: ocpp`: its options' checks, the endpoint's listen address, one identity per
endpoint; connectors of one charger: `check`'s rules and one registration shared by their drivers (the
wire behaviour is in test_ocpp_device*.py)."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml
from websockets.asyncio.server import ServerConnection

from adapters.base import DeviceRefused
from adapters.chargers.ocpp_device import OcppDeviceCharger
from adapters.chargers.ocpp_device_options import OcppDeviceOptions
from adapters.transports.ocpp_server import OcppServer, parse_listen
from adapters.transports.pool import Transports
from bridge.config import ConfigError, parse_config
from tests.processes import free_port

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


def dual_doc(tmp_path: Path, second: dict[str, Any], *, two_charge_points: bool = False) -> dict[str, Any]:
    """Two connectors of the bridge naming charger WB-1; `second` changes the second one's block."""
    block = {"type": "ocpp", "listen": "127.0.0.1:9100", "identity": "WB-1", "password": "pw-of-wb-1"}
    chargers = [{**block, "connector_id": 1}, {**block, "connector_id": 2, **second}]
    if two_charge_points:
        cps = [
            {"id": f"CP-{n}", "csms_url": "ws://127.0.0.1:9/ocpp", "connectors": [{"id": 1, "charger": c}]}
            for n, c in enumerate(chargers, 1)
        ]
    else:
        connectors = [{"id": n, "charger": c} for n, c in enumerate(chargers, 1)]
        cps = [{"id": "CP-1", "csms_url": "ws://127.0.0.1:9/ocpp", "connectors": connectors}]
    return {"state_dir": str(tmp_path / "state"), "charge_points": cps}


def check_problems(doc: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as error:
        parse_config(yaml.safe_dump(doc), "test.yaml")
    return str(error.value)


def test_check_takes_two_connectors_of_one_charger(tmp_path: Path) -> None:
    config = parse_config(yaml.safe_dump(dual_doc(tmp_path, {})), "test.yaml")
    assert [c.charger.options.connector_id for c in config.charge_points[0].connectors] == [1, 2]
    parse_config(yaml.safe_dump(dual_doc(tmp_path, {}, two_charge_points=True)), "test.yaml")


def test_check_names_what_two_connectors_of_one_charger_disagree_on(tmp_path: Path) -> None:
    text = check_problems(dual_doc(tmp_path, {"password": "another-secret", "card_wait_s": 3}))
    assert (
        "charge_points[0].connectors[1].charger.password: charge_points[0].connectors[0].charger names "
        "the charger 'WB-1' on 127.0.0.1:9100 with another password" in text
    )
    assert "connectors[1].charger.card_wait_s:" in text and "give them the same card_wait_s" in text
    assert "another-secret" not in text and "pw-of-wb-1" not in text  # never a password
    text = check_problems(dual_doc(tmp_path, {"connector_id": 1}, two_charge_points=True))
    assert (
        "charge_points[1].connectors[0].charger.connector_id: connector 1 of the charger 'WB-1' on "
        "127.0.0.1:9100 is already driven by charge_points[0].connectors[0].charger" in text
    )
    # Another identity, or the same on another listen, is another charger: nothing to agree on.
    parse_config(yaml.safe_dump(dual_doc(tmp_path, {"identity": "WB-2", "password": "x"})), "test.yaml")
    parse_config(
        yaml.safe_dump(dual_doc(tmp_path, {"listen": "127.0.0.1:9101", "connector_id": 1})), "t.yaml"
    )


async def test_drivers_of_one_charger_share_one_registration() -> None:
    """The first start registers the identity, the last close drops it; a driver whose connection
    options or connector differ is refused at start, naming both connectors."""
    pool = Transports()
    listen = f"127.0.0.1:{free_port()}"
    one = OcppDeviceCharger(dataclasses.replace(GOOD, listen=listen), pool)
    two = OcppDeviceCharger(dataclasses.replace(GOOD, listen=listen, connector_id=2), pool)
    other = OcppDeviceCharger(dataclasses.replace(GOOD, listen=listen, connector_id=3, password="x"), pool)
    again = OcppDeviceCharger(dataclasses.replace(GOOD, listen=listen), pool)
    try:
        await one.start()
        await two.start()
        with pytest.raises(DeviceRefused, match=r"connector_id 3 and connector_id 1 .* differ in password"):
            await other.start()
        with pytest.raises(DeviceRefused, match="connector 1 of OCPP charger 'WB-1' is already driven"):
            await again.start()
        server = pool.ocpp_server(listen)
        await one.close()
        with pytest.raises(ValueError, match="already uses identity"):  # still the charger's
            server.register("WB-1", "pw", lambda connection: asyncio.sleep(0))
        await two.close()
        server.register("WB-1", "pw", lambda connection: asyncio.sleep(0))  # free again
    finally:
        for driver in (one, two, other, again):
            await driver.close()
        await pool.close()


def test_check_names_chargers_on_one_listen_with_another_path(tmp_path: Path) -> None:
    text = check_problems(dual_doc(tmp_path, {"identity": "WB-2", "path": "/other/"}))
    assert (
        "charge_points[0].connectors[1].charger.path: charge_points[0].connectors[0].charger shares listen "
        "127.0.0.1:9100 with path 'ocpp', this one names 'other'" in text
    )
    parse_config(yaml.safe_dump(dual_doc(tmp_path, {"identity": "WB-2", "path": "/ocpp/"})), "t.yaml")


async def test_start_refuses_a_charger_with_another_path_on_the_listen() -> None:
    pool = Transports()
    listen = f"127.0.0.1:{free_port()}"
    one = OcppDeviceCharger(dataclasses.replace(GOOD, listen=listen), pool)
    two = OcppDeviceCharger(dataclasses.replace(GOOD, listen=listen, identity="WB-2", path="other"), pool)
    try:
        await one.start()
        with pytest.raises(DeviceRefused, match=r"serves path 'ocpp'; this charger asks for 'other'"):
            await two.start()
    finally:
        for driver in (one, two):
            await driver.close()
        await pool.close()
