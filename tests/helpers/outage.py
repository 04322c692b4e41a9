"""A central system that goes away and comes back where the charge point looks for it."""

from __future__ import annotations

from tests.csms import StrictCentralSystem


async def on_port(port: int) -> StrictCentralSystem:
    """A strict central system listening on `port` (free_port(), kept across its restarts)."""
    cs = StrictCentralSystem()
    cs.port = port
    return await cs.start()
