"""What the bridge claims of an OpenEVSE gateway, whichever transport carries the claim (HTTP in
openevse.py, MQTT in openevse_mqtt.py): the one claim the bridge holds, the take-over and the commands
that change the claim. A transport sends a claim (`_send_claim`) and reads; the rules are here.

Take-over: once the bridge operates the box (it set a listener; `ocpp-bridge probe` does not), the first
read claims state `disabled` unless a command came first, so the box's own default state (active) does
not charge a plugged car before a transaction allows it. Energy on and off is the claim's state; the
current is its `charge_current` in whole amperes (never more than asked): one document, changed under
one lock so that a read's take-over and a command never interleave.
"""

from __future__ import annotations

import abc
import asyncio

from adapters.base import Charger, Listener, NotSupportedByDevice
from adapters.chargers.openevse_api import STATUS_ACTIVE, STATUS_DISABLED, Claim


class OpenEvseClaims(Charger):
    def __init__(self) -> None:
        super().__init__()
        self._claim_lock = asyncio.Lock()  # the claim is one document: one change at a time
        self._claim = Claim()  # what the bridge has claimed so far
        self._commanded = False  # a command came before the take-over: it is the bridge's word
        self._take_over = False

    @abc.abstractmethod
    async def _send_claim(self, claim: Claim, *, strict: bool = True) -> None:
        """Claim `claim` and check that it holds; `strict`: a claim another client overrules is a
        DeviceRefused (the take-over and a reclaim are not strict: the reading says what the box does).
        The claim is the bridge's word from the moment it is sent. Called under the claim lock."""

    def set_listener(self, listener: Listener | None) -> None:
        # A listener means the bridge operates the box (a probe sets none): take over at the next read.
        super().set_listener(listener)
        self._take_over = listener is not None and not self._commanded

    async def _take_over_once(self) -> bool:
        """The take-over's claim, at the first read of an operated box; True when it was made now."""
        if not self._take_over:
            return False
        async with self._claim_lock:  # a set_enabled racing this read wins
            if not self._take_over:
                return False
            await self._send_claim(Claim(STATUS_DISABLED, self._claim.current_a), strict=False)
            self._take_over = False
            return True

    async def set_enabled(self, enabled: bool) -> None:
        async with self._claim_lock:
            self._commanded, self._take_over = True, False
            state = STATUS_ACTIVE if enabled else STATUS_DISABLED
            await self._send_claim(Claim(state, self._claim.current_a))

    async def set_current(self, amps: float) -> None:
        # No range check: the caller keeps to the capabilities' min_current_a..max_current_a.
        async with self._claim_lock:
            # The state as claimed; before the first read of an operated box, the take-over's disabled
            # (else the box's default, active).
            state = self._claim.state
            if state is None and self._take_over:
                state, self._take_over = STATUS_DISABLED, False
            await self._send_claim(Claim(state, int(amps)))

    async def set_phases(self, phases: int) -> None:
        raise NotSupportedByDevice("OpenEVSE switches phases only through RAPI, which bypasses its claims")

    async def unlock(self) -> None:
        raise NotSupportedByDevice("OpenEVSE has no command that unlocks the cable")
