"""A device that falls silent in the middle of a transaction, seen from the strict central system: the
steps every driver's end-to-end outage test shares (each asserts what its device does besides)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.csms import StrictCentralSystem

Silence = Callable[[bool], None]  # True: the emulated device stops answering; False: it answers again


async def faulted_while_silent(csms: StrictCentralSystem, cp: str, silence: Silence) -> dict[str, Any]:
    """Silences the device once a meter value came; returns the Faulted StatusNotification it causes."""
    await csms.wait_for_call(cp, "MeterValues")
    silence(True)
    faulted: dict[str, Any] = await csms.wait_for_call(
        cp, "StatusNotification", lambda p: p["status"] == "Faulted", timeout=10
    )
    return faulted


async def charging_again(csms: StrictCentralSystem, cp: str, silence: Silence) -> None:
    """Lets the device answer again: Charging again, and the sampling goes on."""
    before = len(csms.calls(cp, "MeterValues"))
    silence(False)
    await csms.wait_for_call(
        cp, "StatusNotification", lambda p: p["status"] == "Charging", count=2, timeout=10
    )
    await csms.wait_for_call(cp, "MeterValues", count=before + 1, timeout=5)
