"""The strict third-party central system (tests/peers) works and is strict.

A tiny charge point written with the Python ``ocpp`` library drives ``OcppRpcPeer`` (ocpp-rpc on
Node.js); the daemon is not involved here.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from ocpp.exceptions import FormationViolationError
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from tests.peers.rpc_peer import OcppRpcCallError, OcppRpcPeer

IDENTITY = "CP-T"
OCPP16 = [Subprotocol("ocpp1.6")]
CONFIGURATION = [{"key": "HeartbeatInterval", "readonly": False, "value": "300"}]


class TinyChargePoint(ChargePoint):  # type: ignore[misc]
    """Answers GetConfiguration; every other central-system call gets NotImplemented from the library."""

    @on(Action.get_configuration)  # type: ignore[untyped-decorator]
    def on_get_configuration(self, **kwargs: Any) -> call_result.GetConfiguration:
        return call_result.GetConfiguration(configuration_key=CONFIGURATION)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@contextlib.asynccontextmanager
async def charge_point(peer: OcppRpcPeer, **connect_kwargs: Any) -> AsyncIterator[TinyChargePoint]:
    async with connect(f"{peer.url}/{IDENTITY}", subprotocols=OCPP16, open_timeout=5, **connect_kwargs) as ws:
        cp = TinyChargePoint(IDENTITY, ws, response_timeout=5)
        task = asyncio.create_task(cp.start())
        try:
            yield cp
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await task


async def boot(cp: TinyChargePoint) -> call_result.BootNotification:
    return await cp.call(call.BootNotification(charge_point_vendor="Acme", charge_point_model="Tiny"))


async def test_boot_and_start_transaction_are_answered_and_logged() -> None:
    async with OcppRpcPeer(invalid_tags=("BAD-TAG",)) as peer:
        async with charge_point(peer) as cp:
            booted = await boot(cp)
            started = await cp.call(
                call.StartTransaction(connector_id=1, id_tag="TAG-1", meter_start=0, timestamp=now())
            )
            refused = await cp.call(
                call.StartTransaction(connector_id=1, id_tag="BAD-TAG", meter_start=5, timestamp=now())
            )

        assert booted.status == "Accepted" and booted.interval == 300
        assert started.transaction_id == 1 and started.id_tag_info == {"status": "Accepted"}
        assert refused.transaction_id == 2 and refused.id_tag_info == {"status": "Invalid"}

        connected = await peer.wait_for(lambda e: e["event"] == "connect")
        assert connected == {"event": "connect", "identity": IDENTITY, "protocol": "ocpp1.6"}
        [boot_call] = peer.calls("BootNotification", IDENTITY)
        assert boot_call["params"] == {"chargePointVendor": "Acme", "chargePointModel": "Tiny"}
        assert [c["params"]["idTag"] for c in peer.calls("StartTransaction")] == ["TAG-1", "BAD-TAG"]
        assert peer.calls(identity="CP-other") == []
        await peer.wait_for(lambda e: e["event"] == "close" and e["identity"] == IDENTITY)
        assert not [e for e in peer.events if e["event"] == "strictValidationFailure"]
    assert peer.returncode is not None


async def test_too_long_vendor_is_refused_in_strict_mode() -> None:
    async with OcppRpcPeer() as peer, charge_point(peer) as cp:
        with pytest.raises(FormationViolationError):  # maxLength 20 -> ocpp-rpc's 1.6 spelling
            await cp.call(
                call.BootNotification(charge_point_vendor="V" * 25, charge_point_model="Tiny"),
                suppress=False,
                skip_schema_validation=True,
            )
        failure = await peer.wait_for(lambda e: e["event"] == "strictValidationFailure")
        assert failure["identity"] == IDENTITY and failure["method"] == "BootNotification"
        assert failure["outbound"] is False and failure["isCall"] is True
        assert "chargePointVendor" in failure["error"]
        # The refusal is per message: the connection stays up and a valid boot is accepted.
        assert (await boot(cp)).status == "Accepted"


async def test_central_system_calls_reach_the_charge_point() -> None:
    async with OcppRpcPeer() as peer, charge_point(peer) as cp:
        await boot(cp)
        answer = await peer.call(IDENTITY, "GetConfiguration", {})
        assert answer["event"] == "result"
        assert answer["result"] == {"configurationKey": CONFIGURATION}

        with pytest.raises(OcppRpcCallError) as not_implemented:  # the ocpp library's CALLERROR
            await peer.call(IDENTITY, "Reset", {"type": "Soft"})
        assert not_implemented.value.code == "NotImplemented"
        with pytest.raises(OcppRpcCallError) as invalid:  # ocpp-rpc refuses to send it at all
            await peer.call(IDENTITY, "Reset", {"type": "Sideways"})
        assert invalid.value.code == "FormatViolation"
        with pytest.raises(OcppRpcCallError) as absent:
            await peer.call("CP-nobody", "GetConfiguration", {})
        assert absent.value.code == "NotConnected"


async def test_password_is_required_when_configured() -> None:
    password = "secret-password-1"
    async with OcppRpcPeer(password=password) as peer:
        for headers in ({}, {"Authorization": "Basic " + base64.b64encode(b"CP-T:wrong").decode()}):
            with pytest.raises(InvalidStatus) as refused:
                async with charge_point(peer, additional_headers=headers):
                    pass
            assert refused.value.response.status_code == 401
        rejections = [e for e in peer.events if e["event"] == "auth_rejected"]
        assert [(e["identity"], e["status"]) for e in rejections] == [(IDENTITY, 401)] * 2

        token = base64.b64encode(f"{IDENTITY}:{password}".encode()).decode()
        async with charge_point(peer, additional_headers={"Authorization": "Basic " + token}) as cp:
            assert (await boot(cp)).status == "Accepted"


async def raw_call(ws: ClientConnection, action: str, payload: dict[str, Any]) -> list[Any]:
    await ws.send(json.dumps([2, "raw-1", action, payload]))
    return list(json.loads(await asyncio.wait_for(ws.recv(), 5)))


async def test_unknown_actions_and_missing_subprotocol_are_refused() -> None:
    async with OcppRpcPeer() as peer:
        async with connect(f"{peer.url}/{IDENTITY}", subprotocols=OCPP16, open_timeout=5) as ws:
            assert (await raw_call(ws, "Foo", {}))[:3] == [4, "raw-1", "NotImplemented"]
            # A 1.6 action the central system does not handle is NotImplemented too.
            reply = await raw_call(ws, "DiagnosticsStatusNotification", {"status": "Idle"})
            assert reply[:3] == [4, "raw-1", "NotImplemented"]
            reply = await raw_call(ws, "DataTransfer", {"vendorId": "acme"})
            assert reply == [3, "raw-1", {"status": "UnknownVendorId"}]
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"{peer.url}/{IDENTITY}", open_timeout=5):
                pass
        assert refused.value.response.status_code == 400
        assert [m["method"] for m in peer.calls()] == ["Foo", "DiagnosticsStatusNotification", "DataTransfer"]
