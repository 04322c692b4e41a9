"""Shelly Gen2+ switch over its HTTP RPC API (`type: shelly`): a relay retrofit (relay.py's theory).

Docs: https://shelly-api-docs.shelly.cloud/gen2/ComponentsAndServices/Switch (GET /rpc/<method>?<params>),
summarised in docs/devices/relay.md. The driver asks `Switch.GetStatus` for the relay's state, power and
energy at each read and switches with `Switch.Set`; a device with a password takes HTTP digest auth.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from adapters.base import DeviceRefused, DeviceUnreachable, Fault, FaultKind
from adapters.chargers.relay import Clock, RelayCharger, RelayOptions, RelayStatus, as_number
from adapters.transports.pool import Transports
from adapters.transports.urls import http_address_problem

SHELLY_GET_STATUS = "Switch.GetStatus"  # id=<switch>: the switch's status, fields below
SHELLY_SET = "Switch.Set"  # id=<switch>&on=true|false; answers {"was_on": bool}
SHELLY_OUTPUT = "output"  # bool: the relay is closed
SHELLY_APOWER = "apower"  # W: active power through the switch
SHELLY_VOLTAGE = "voltage"  # V
SHELLY_CURRENT = "current"  # A
SHELLY_FREQ = "freq"  # Hz
SHELLY_AENERGY = "aenergy"  # the active energy counters: {"total": Wh, ...}
SHELLY_AENERGY_TOTAL = "total"  # Wh since the device was made (a reset only by hand)
SHELLY_PROTECTIONS = "errors"  # [str]: the protections that tripped, present only while one has
SHELLY_WAS_ON = "was_on"  # bool, Switch.Set's answer: the state before the command

# Switch status `errors` (Shelly Gen2 API, Switch component): the protection that tripped, by kind.
SHELLY_ERRORS = {
    "overtemp": FaultKind.OVER_TEMPERATURE,
    "overpower": FaultKind.OVER_CURRENT,  # its power limit: too much current at the line's voltage
    "overcurrent": FaultKind.OVER_CURRENT,
    "overvoltage": FaultKind.OVER_VOLTAGE,
    "undervoltage": FaultKind.UNDER_VOLTAGE,
}


@dataclass(frozen=True, kw_only=True)
class ShellyOptions(RelayOptions):
    """The `charger: {type: shelly, ...}` block."""

    type: str = "shelly"
    url: str  # http://HOST or http://HOST:PORT
    switch_id: int = 0
    timeout_s: float = 5.0
    username: str = "admin"  # Gen2+ devices know only the user "admin"
    password: str | None = field(default=None, repr=False)  # HTTP digest auth, when set on the device

    def validate(self) -> list[tuple[str, str]]:
        problems = self._relay_problems()
        url_problem = http_address_problem(self.url)
        if url_problem is not None:
            problems.append(("url", url_problem))
        if self.switch_id < 0:
            problems.append(("switch_id", "must be 0 or more (0 is the first switch)"))
        if not 0 < self.timeout_s <= 60:
            problems.append(("timeout_s", "must be above 0 and at most 60"))
        if not self.username or ":" in self.username:
            problems.append(("username", "must not be empty nor contain ':' (Shelly Gen2+ uses admin)"))
        if self.password is not None and self.password == "":
            problems.append(("password", "must not be empty (leave it out when the device has none)"))
        elif self.password is not None and not _has_digest_auth():
            problems.append(("password", "needs aiohttp 3.12 or later (HTTP digest auth); upgrade aiohttp"))
        return problems


def _has_digest_auth() -> bool:
    import aiohttp

    return hasattr(aiohttp, "DigestAuthMiddleware")


def shelly_status(answer: Any) -> RelayStatus:
    """A Switch.GetStatus answer (apower W, voltage V, current A, aenergy.total Wh) as a RelayStatus."""
    if not isinstance(answer, dict) or not isinstance(answer.get(SHELLY_OUTPUT), bool):
        raise DeviceRefused(f"unexpected Switch.GetStatus answer: {str(answer)[:120]}")
    energy = answer.get(SHELLY_AENERGY)
    listed = answer.get(SHELLY_PROTECTIONS)  # only present while a protection tripped
    errors = [e for e in listed if isinstance(e, str)] if isinstance(listed, list) else []
    fault = None
    if errors:
        fault = Fault(
            kind=SHELLY_ERRORS.get(errors[0], FaultKind.OTHER),
            info=f"Shelly switch protection: {', '.join(errors)}",
            vendor_code=errors[0],
        )
    return RelayStatus(
        on=answer[SHELLY_OUTPUT],
        power_w=as_number(answer.get(SHELLY_APOWER)),
        energy_wh=as_number(energy.get(SHELLY_AENERGY_TOTAL)) if isinstance(energy, dict) else None,
        voltage_v=as_number(answer.get(SHELLY_VOLTAGE)),
        current_a=as_number(answer.get(SHELLY_CURRENT)),
        frequency_hz=as_number(answer.get(SHELLY_FREQ)),
        fault=fault,
    )


def shelly_answer(method: str, status: int, body: bytes) -> Any:
    """An RPC answer's JSON; DeviceRefused for an error object, an HTTP error or a text that is not JSON."""
    try:
        answer = json.loads(body) if body else None
    except ValueError:
        answer = None
        if status < 400:
            raise DeviceRefused(f"{method}: the answer is not JSON: {body[:80]!r}") from None
    if status == 401:
        raise DeviceRefused(f"{method}: authentication failed (HTTP 401): check username and password")
    # An error is an object {"code": ..., "message": ...}, with an HTTP error status.
    if status >= 400 or (isinstance(answer, dict) and set(answer) == {"code", "message"}):
        if isinstance(answer, dict) and "message" in answer:
            raise DeviceRefused(f"{method}: {answer['message']} (code {answer.get('code')})")
        raise DeviceRefused(f"{method}: HTTP {status}")
    return answer


class ShellyCharger(RelayCharger):
    Options = ShellyOptions
    options: ShellyOptions

    def __init__(self, options: ShellyOptions, transports: Transports, clock: Clock = time.monotonic) -> None:
        super().__init__(options, clock)
        self._transports = transports
        self._base = options.url.rstrip("/")
        self._digest: Any = None  # one DigestAuthMiddleware per device: it keeps the nonce count

    @property
    def description(self) -> str:
        return f"Shelly at {self._base} switch {self.options.switch_id}"

    async def start(self) -> None:
        answer = await self._rpc(SHELLY_GET_STATUS, id=str(self.options.switch_id))
        status = shelly_status(answer)
        if self.options.infer_from_power and status.power_w is None:
            raise DeviceRefused(
                f"switch {self.options.switch_id} reports no power (a model without metering?): "
                "set infer_from_power: false and add a meter: block"
            )

    async def _status(self) -> RelayStatus:
        return shelly_status(await self._rpc(SHELLY_GET_STATUS, id=str(self.options.switch_id)))

    async def _switch(self, on: bool) -> None:
        answer = await self._rpc(SHELLY_SET, id=str(self.options.switch_id), on="true" if on else "false")
        if not isinstance(answer, dict) or not isinstance(answer.get(SHELLY_WAS_ON), bool):
            raise DeviceRefused(f"unexpected Switch.Set answer: {str(answer)[:120]}")

    def _middlewares(self) -> tuple[Any, ...]:
        if self.options.password is None:
            return ()
        if self._digest is None:
            from aiohttp import DigestAuthMiddleware  # aiohttp 3.12 and later

            self._digest = DigestAuthMiddleware(self.options.username, self.options.password)
        return (self._digest,)

    async def _rpc(self, method: str, **params: str) -> Any:
        """GET /rpc/<method>?<params>: the answer's JSON, DeviceRefused for an error object."""
        import aiohttp

        timeout = aiohttp.ClientTimeout(total=self.options.timeout_s)
        try:
            async with self._transports.http().get(
                f"{self._base}/rpc/{method}", params=params, timeout=timeout, middlewares=self._middlewares()
            ) as response:
                status, body = response.status, await response.read()
        except TimeoutError as exc:
            raise DeviceUnreachable(f"no answer to {method} within {self.options.timeout_s:g} s") from exc
        except aiohttp.ClientError as exc:
            raise DeviceUnreachable(f"{method}: {exc or type(exc).__name__}") from exc
        return shelly_answer(method, status, body)
