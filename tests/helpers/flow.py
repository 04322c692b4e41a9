"""Steps of a charging session driven through the simulated charger and watched on the wire."""

from __future__ import annotations

from typing import Any

from tests.csms import StrictCentralSystem


def sim_of(daemon: Any, cp: str = "CP-1", connector: int = 1) -> Any:
    """The simulated charger of a connector of the in-process daemon."""
    return daemon.charge_points[cp].connectors[connector].charger


def statuses(cs: StrictCentralSystem, connector: int = 1) -> list[str]:
    """The statuses CP-1 reported for `connector`, in order."""
    return [s["status"] for s in cs.calls("CP-1", "StatusNotification") if s["connectorId"] == connector]


async def ready(cs: StrictCentralSystem, connectors: int = 1) -> None:
    """CP-1 has reported the status of its last connector (of `connectors`): it is booted and serving."""
    await cs.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == connectors)


async def charging(
    cs: StrictCentralSystem, daemon: Any, tag: str = "TAG", answered: bool = True
) -> dict[str, Any]:
    """Plug and tap on CP-1's connector 1: the StartTransaction sent, and (when `answered`) its answer
    handled. Returns the StartTransaction's payload."""
    await cs.wait_for_call("CP-1", "StatusNotification", lambda p: p["connectorId"] == 1)
    sim = sim_of(daemon)
    sim.plug()
    sim.tap(tag)
    start = await cs.wait_for_call("CP-1", "StartTransaction", lambda p: p["idTag"] == tag)
    cp = daemon.charge_points["CP-1"]
    connector = cp.connectors[1].core
    if answered:
        tx = connector.transaction
        await cs.wait_until(lambda: tx is None or connector.transaction is None or
                            cp.snapshot().connectors[0].transaction_id is not None,
                            what="the StartTransaction answer to arrive")  # fmt: skip
    return start
