"""OpenEVSE (ESP32 WiFi gateway, firmware v4.x and later) over its HTTP API.

Docs: OpenEVSE/openevse_esp32_firmware `api.yml` and `models/Properties.yaml`, summarised in
docs/devices/openevse.md. The fields, states and the pure mapping are in openevse_api.py.

Theory
------
Each read is one `GET /status` (current in mA, energy register in kWh, the EVSE state). Every command
is a *claim*: `POST /claims/<client_id>` with the properties the bridge wants (`state`
active/disabled, `charge_current` and `max_current` in whole amperes). A claim over HTTP has priority
500: a manual override in the box's web page (1000), its RFID (1030), its own OCPP client (1050) or a
limit (1100) win over it. So after each claim the driver asks `GET /claims/target` which client won
each property, and a command another client overrules fails with DeviceRefused naming it, rather than
pretending to have worked. The driver never uses the RAPI pass-through (`/r`): it bypasses claims.

The bridge owns the decision to charge: once it operates the box (it has set a listener; `ocpp-bridge
probe` does not, and switches nothing), the first read claims state `disabled`, so that the box's own
default state (active) does not charge a plugged car before a transaction allows it. `close()` keeps
the claim: a stopped bridge leaves the box as it was told last, and `DELETE /claims/<client_id>`
(docs/devices/openevse.md) gives the box back to its own logic.

Pacing: the ESP32's web server keeps few connections; the driver sends one request at a time per box.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from adapters.base import (
    ChargerCapabilities,
    ChargerReading,
    DeviceRefused,
)
from adapters.chargers.openevse_api import (
    CLIENT_MAX,
    STATUS_ACTIVE,
    Claim,
    answer_problem,
    claim_losers,
    current_problems,
    reading_from,
)
from adapters.chargers.openevse_claims import OpenEvseClaims
from adapters.transports.http import basic_auth, request
from adapters.transports.pool import Transports
from adapters.transports.urls import http_address_problem

log = logging.getLogger("adapters.openevse")

DEFAULT_CLIENT_ID = 0x0B1D0001  # any id no other client of the box uses; see docs/devices/openevse.md


@dataclass(frozen=True)
class OpenEvseOptions:
    """The `charger: {type: openevse, ...}` block."""

    type: str = "openevse"
    url: str | None = None  # http://HOST of the WiFi gateway
    username: str | None = None  # HTTP basic auth, when set in the gateway
    password: str | None = field(default=None, repr=False)
    client_id: int = DEFAULT_CLIENT_ID  # the claim's client id: /claims/<client_id>
    timeout_s: float = 5.0  # per HTTP request
    phases: int = 1  # phases wired to the vehicle (OpenEVSE measures one current and one voltage)
    min_current_a: float = 6.0
    max_current_a: float = 32.0  # at most the box's own configured maximum
    fixed_cable: bool = True  # OpenEVSE stations have a tethered cable
    transport: str = "http"  # the only one of this type: MQTT is `type: openevse-mqtt` (openevse_mqtt.py)

    def validate(self) -> list[tuple[str, str]]:
        """(field, problem) pairs; empty when the options make sense."""
        problems: list[tuple[str, str]] = []
        if self.transport != "http":
            problems.append(
                (
                    "transport",
                    "OpenEVSE over MQTT is its own type: type: openevse-mqtt (docs/devices/openevse.md)",
                )
            )
        if not self.url:
            problems.append(("url", "needs url: http://<address of the OpenEVSE WiFi gateway>"))
        elif (problem := http_address_problem(self.url, path_allowed=True)) is not None:
            problems.append(("url", problem))
        if (self.username is None) != (self.password is None):
            problems.append(("password", "username and password go together (HTTP basic auth)"))
        elif self.username is not None and (not self.username or ":" in self.username):
            problems.append(("username", "must not be empty nor contain ':'"))
        elif self.password == "":
            problems.append(("password", "must not be empty (leave both out when the box has none)"))
        if not 0 < self.client_id <= CLIENT_MAX:
            problems.append(("client_id", f"must be from 1 to {CLIENT_MAX} (a 32-bit claim client id)"))
        if not 0 < self.timeout_s <= 60:
            problems.append(("timeout_s", "must be above 0 and at most 60 seconds"))
        if self.phases not in (1, 3):
            problems.append(("phases", "must be 1 or 3"))
        problems += current_problems(self.min_current_a, self.max_current_a)
        return problems


class OpenEvseCharger(OpenEvseClaims):
    Options = OpenEvseOptions

    def __init__(self, options: OpenEvseOptions, transports: Transports) -> None:
        super().__init__()
        self.options = options
        self._transports = transports
        self._base = (options.url or "").rstrip("/")
        self._lock = asyncio.Lock()  # one request at a time per box
        self._authorization: str | None = None  # the basic-auth header, never logged
        if options.username is not None and options.password is not None:
            self._authorization = basic_auth(options.username, options.password)
        self._plugged = False
        self._claim_lost = False  # the box showed another state than claimed (logged once)

    @property
    def capabilities(self) -> ChargerCapabilities:
        o = self.options
        return ChargerCapabilities(
            can_sense_plug=True,
            can_unlock=False,  # no lock command in the HTTP API
            fixed_cable=o.fixed_cable,
            can_switch_phases=False,  # only RAPI $S7, which bypasses claims
            can_reset=True,  # POST /restart
            has_meter=True,
            has_rfid=False,  # the box's RFID claims the state itself; no tag reaches the API
            phases=o.phases,
            min_current_a=o.min_current_a,
            max_current_a=o.max_current_a,
            current_step_a=1.0,
        )

    @property
    def description(self) -> str:
        return f"OpenEVSE at {urllib.parse.urlsplit(self._base).hostname}"

    # -- HTTP -------------------------------------------------------------------------------------
    async def _request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """(HTTP status, decoded JSON or the text); DeviceUnreachable for no or a late answer."""
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": "application/json"} if data is not None else {}
        if self._authorization is not None:
            headers["Authorization"] = self._authorization
        async with self._lock:
            return await request(
                self._transports.http(), method, self._base + path, where=self._base,
                timeout_s=self.options.timeout_s, data=data, headers=headers,
            )  # fmt: skip

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        status, answer = await self._request(method, path, body)
        problem = answer_problem(f"{method} {path}", status, answer)
        if problem is not None:
            raise DeviceRefused(f"OpenEVSE refused {problem}")
        return answer

    async def _send_claim(self, claim: Claim, *, strict: bool = True) -> None:
        """Claims `claim` and checks that it wins every property it sets.

        The claim is the bridge's word from the moment it is sent: a request that got no answer may
        have been carried out, and a later reading that shows another state claims this one again,
        never the one before it. Only a refusal (the box answered no) leaves the previous claim."""
        client = self.options.client_id
        previous, self._claim = self._claim, claim
        try:
            await self._call("POST", f"/claims/{client}", claim.body())
        except DeviceRefused:
            self._claim = previous
            raise
        lost = claim_losers(await self._call("GET", "/claims/target"), claim, client)
        if lost and strict:
            held = ", ".join(f"{name} by client {winner}" for name, winner in lost.items())
            raise DeviceRefused(
                f"a claim of higher priority overrules the bridge's ({held}): "
                "a manual override, the box's RFID, its own OCPP client or a limit"
            )

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        status = await self._call("GET", "/status")
        if not isinstance(status, dict):
            raise DeviceRefused(f"{self._base}/status did not answer with JSON: {str(status)[:80]!r}")
        log.info("%s: EVSE state %s, %s", self.description, status.get("state"), status.get("status"))

    # -- reading ----------------------------------------------------------------------------------
    async def read(self) -> ChargerReading:
        status = await self._call("GET", "/status")
        if not isinstance(status, dict):
            raise DeviceRefused(f"/status answered with no JSON object: {str(status)[:80]!r}")
        if await self._take_over_once():
            if status.get("status") == STATUS_ACTIVE:
                status = await self._call("GET", "/status")  # read after the claim
        elif self._claim.state is not None and status.get("status") not in (self._claim.state, None):
            status = await self._reclaim(status)
        reading = reading_from(status, phases=self.options.phases, was_plugged=self._plugged)
        self._plugged = bool(reading.plugged)
        return reading

    async def _reclaim(self, status: dict[str, Any]) -> dict[str, Any]:
        """The box is not in the state the bridge claimed: a restart forgot the claim (claims live in
        its memory), or a claim of higher priority holds it. Claim again; if that changes nothing,
        the other claim wins, and the reading says what the box does."""
        if not self._claim_lost:
            log.warning(
                "%s: status %r, claimed %r: claiming again", self.description, status.get("status"),
                self._claim.state,
            )  # fmt: skip
        self._claim_lost = True
        await self._call("POST", f"/claims/{self.options.client_id}", self._claim.body())
        again = await self._call("GET", "/status")
        if isinstance(again, dict) and again.get("status") == self._claim.state:
            self._claim_lost = False
            return again
        return again if isinstance(again, dict) else status

    # -- commands ---------------------------------------------------------------------------------
    async def reset(self, hard: bool) -> None:
        # Hard: the EVSE controller itself; soft: the WiFi gateway only.
        await self._call("POST", "/restart", {"device": "evse" if hard else "gateway"})
