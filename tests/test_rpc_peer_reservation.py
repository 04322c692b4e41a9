"""ReserveNow, CancelReservation and a StartTransaction with reservationId against the independent
strict peer (ocpp-rpc on Node.js, tests/peers): in strict mode it checks each request before sending it,
the bridge's CALLRESULT when it comes back, and the bridge's own CALLs (StartTransaction with its
reservationId) against its own bundled OCPP 1.6 schemas."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bridge.clock import iso
from tests.conftest import make_config, running
from tests.helpers.firmware import peer_booted, peer_saw, strict_failures
from tests.helpers.flow import sim_of
from tests.peers.rpc_peer import OcppRpcCallError, OcppRpcPeer


def reserve_now(connector: int, reservation_id: int, tag: str, **more: Any) -> dict[str, Any]:
    expiry = iso(datetime.now(UTC) + timedelta(hours=1))
    return {"connectorId": connector, "expiryDate": expiry, "idTag": tag, "reservationId": reservation_id,
            **more}  # fmt: skip


async def answered(cp: Any, timeout_s: float = 5.0) -> None:
    """Connector 1's transaction has the central system's id."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while cp.snapshot().connectors[0].transaction_id is None:
        assert loop.time() < deadline, "the StartTransaction was not answered"
        await asyncio.sleep(0.02)


async def test_the_peer_refuses_to_send_an_invalid_reserve_now(tmp_path: Path) -> None:
    """The check the test below relies on: the peer validates the request it sends (a charge point is
    connected, so the refusal is the schema's, not "not connected")."""
    async with OcppRpcPeer() as peer:
        async with running(make_config(peer.url, tmp_path)):
            await peer_booted(peer)
            no_tag = reserve_now(1, 1, "TAG-A")
            del no_tag["idTag"]
            with pytest.raises(OcppRpcCallError) as refused:
                await peer.call("CP-1", "ReserveNow", no_tag)
            with pytest.raises(OcppRpcCallError) as refused_cancel:
                await peer.call("CP-1", "CancelReservation", {"reservationId": "one"})
    for error in (refused.value, refused_cancel.value):
        assert error.code not in ("NotConnected", "TimeoutError"), error


async def test_reservations_and_their_start_transaction_pass_the_strict_peer(tmp_path: Path) -> None:
    async with OcppRpcPeer() as peer:
        async with running(make_config(peer.url, tmp_path)) as daemon:
            await peer_booted(peer)

            async def answer(method: str, params: dict[str, Any]) -> str:
                return str((await peer.call("CP-1", method, params))["result"]["status"])

            reserved = await answer("ReserveNow", reserve_now(1, 1, "TAG-A"))
            await peer_saw(peer, "StatusNotification", "Reserved")
            refused = [
                await answer("ReserveNow", reserve_now(1, 2, "TAG-B")),  # reserved under another id
                await answer("ReserveNow", reserve_now(9, 3, "TAG-B")),  # no connector 9
                await answer("CancelReservation", {"reservationId": 99}),  # unknown id
            ]
            cancelled = await answer("CancelReservation", {"reservationId": 1})
            await peer_saw(peer, "StatusNotification", "Available")
            again = await answer("ReserveNow", reserve_now(1, 4, "TAG-A", parentIdTag="FLEET"))
            sim = sim_of(daemon)
            sim.plug()
            sim.tap("TAG-A")  # the reserved tag, at the simulated charger
            start = await peer.wait_for(lambda e: e["event"] == "call" and e["method"] == "StartTransaction")
            await peer_saw(peer, "StatusNotification", "Charging")
            cp = daemon.charge_points["CP-1"]
            await answered(cp)  # the peer's StartTransaction.conf was handled
            while_charging = await answer("ReserveNow", reserve_now(1, 5, "TAG-B"))
            transaction_id = cp.snapshot().connectors[0].transaction_id
            reservations = cp.snapshot().reservations
        failures = strict_failures(peer)
    assert not failures, failures
    assert (reserved, refused, cancelled, again) == ("Accepted", ["Occupied", "Rejected", "Rejected"],
                                                     "Accepted", "Accepted")  # fmt: skip
    assert start["params"]["idTag"] == "TAG-A" and start["params"]["reservationId"] == 4
    assert transaction_id == 1  # the peer's first transactionId
    assert while_charging == "Occupied" and reservations == ()  # the start used the reservation up
