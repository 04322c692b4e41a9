"""How the go-e driver (goe.py) reads and writes the charger's API keys: one link per transport.

Every link answers in v2 keys, types and units, whatever its wire: HTTP API v2 (`/api/status` with a
filter, `/api/set` answered per key), HTTP API v1 (the legacy `/status`, every value a string, and
`/mqtt?payload=` answered with the full status) or MQTT (retained topics, writes answered on
`<key>/result`). The wire formats themselves are pure functions in goe_api.py; goe.py's theory says
what each transport's answers mean.
"""

from __future__ import annotations

import abc
import asyncio
import json
import time
import urllib.parse
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from adapters.base import DeviceRefused, DeviceUnreachable
from adapters.chargers.goe_api import (
    FILTER_CSV,
    FILTER_JSON,
    KEY_AMP,
    KEY_AMX,
    KEY_CAR,
    KEY_FWV,
    KEY_OCPPE,
    POLL_KEYS,
    PROBE_KEYS,
    filter_query,
    result_problem,
    set_answer_problem,
    set_query,
    v1_to_v2,
)
from adapters.transports.http import request
from adapters.transports.pool import Transports

if TYPE_CHECKING:
    from adapters.transports.mqtt import MqttBroker


class GoeLink(abc.ABC):
    """How keys are read and written; one subclass per transport. Values come back as v2 keys."""

    legacy_errors = False  # True: `err` uses the API v1 numbering

    @abc.abstractmethod
    async def probe(self) -> dict[str, Any]:
        """Find out how to talk to the box; returns the probe keys it answered with."""

    @abc.abstractmethod
    async def read(self) -> dict[str, Any]: ...

    @abc.abstractmethod
    async def read_keys(self, keys: Iterable[str]) -> dict[str, Any]: ...

    @abc.abstractmethod
    async def write(self, key: str, value: Any) -> None: ...

    async def close(self) -> None:  # noqa: B027 - only MQTT has something to release
        pass


class GoeHttp:
    """GET requests to one charger over the shared HTTP session, each within `timeout_s`."""

    def __init__(self, url: str, transports: Transports, timeout_s: float) -> None:
        self.base = url.rstrip("/")
        self._transports = transports
        self._timeout_s = timeout_s

    async def get(self, path_and_query: str) -> tuple[int, Any]:
        """(HTTP status, decoded JSON or the text); DeviceUnreachable for no or a late answer."""
        import yarl

        url = yarl.URL(self.base + path_and_query, encoded=True)
        return await request(self._transports.http(), "GET", url, where=self.base, timeout_s=self._timeout_s)


class HttpV2Link(GoeLink):
    """HTTP API v2: `/api/status?filter=...` in the syntax the probe found, `/api/set?key=<JSON>`."""

    def __init__(self, http: GoeHttp) -> None:
        self.http = http
        self.syntax: str | None = None

    async def probe(self) -> dict[str, Any]:
        answer: Any = None
        for syntax in (FILTER_CSV, FILTER_JSON):  # newer firmware first
            status, answer = await self.http.get("/api/status?" + filter_query(PROBE_KEYS, syntax))
            if status == 200 and isinstance(answer, dict) and KEY_CAR in answer:
                self.syntax = syntax
                return answer
        raise DeviceRefused(
            f"{self.http.base}/api/status did not answer with the charger's values ({str(answer)[:80]!r}); "
            "enable the HTTP API v2 in the go-e app (hai), or set api: v1 for old firmware"
        )

    async def read(self) -> dict[str, Any]:
        return await self.read_keys(POLL_KEYS)

    async def read_keys(self, keys: Iterable[str]) -> dict[str, Any]:
        assert self.syntax is not None, "probe first"
        status, answer = await self.http.get("/api/status?" + filter_query(keys, self.syntax))
        if status != 200 or not isinstance(answer, dict):
            raise DeviceRefused(f"/api/status answered HTTP {status}: {str(answer)[:100]}")
        return answer

    async def write(self, key: str, value: Any) -> None:
        status, answer = await self.http.get("/api/set?" + set_query(key, value))
        problem = set_answer_problem(key, status, answer)
        if problem is not None:
            raise DeviceRefused(f"go-e refused {key}={json.dumps(value)}: {problem}")


class HttpV1Link(GoeLink):
    """HTTP API v1: `/status` and `/mqtt?payload=key=value`; a refusal shows only as an unchanged value."""

    legacy_errors = True
    _ECHO = {KEY_AMX: KEY_AMP}  # amx (volatile current) shows in the status as amp

    def __init__(self, http: GoeHttp) -> None:
        self.http = http

    async def _status(self, path_and_query: str) -> dict[str, Any]:
        status, answer = await self.http.get(path_and_query)
        if status != 200 or not isinstance(answer, dict) or KEY_CAR not in answer:
            raise DeviceRefused(
                f"{self.http.base}{path_and_query.split('?')[0]} answered HTTP {status}: {str(answer)[:80]}; "
                "enable the legacy HTTP API in the go-e app (hla), or use api: v2"
            )
        return answer

    async def probe(self) -> dict[str, Any]:
        raw = await self._status("/status")
        return {**v1_to_v2(raw), KEY_FWV: raw.get(KEY_FWV), KEY_OCPPE: raw.get(KEY_OCPPE)}

    async def read(self) -> dict[str, Any]:
        return v1_to_v2(await self._status("/status"))

    async def read_keys(self, keys: Iterable[str]) -> dict[str, Any]:
        return {}  # v1 exposes no card names this driver knows of

    async def write(self, key: str, value: Any) -> None:
        wire = str(int(value)) if isinstance(value, bool | int) else str(value)
        answer = await self._status("/mqtt?payload=" + urllib.parse.quote(f"{key}={wire}", safe="="))
        echo = self._ECHO.get(key, key)
        if str(answer.get(echo)) != wire:  # v1 refuses by leaving the value as it was
            raise DeviceRefused(
                f"go-e did not take {key}={wire}: it still reports {echo}={answer.get(echo)!r}"
            )


class MqttLink(GoeLink):
    """MQTT: the latest value of each retained topic under `base` (`values`); a write is published to
    `<key>/set` and waits for `<key>/result`."""

    def __init__(
        self, transports: Transports, broker: str, base: str, timeout_s: float, stale_after_s: float
    ) -> None:
        self._transports = transports
        self._broker_url = broker
        self.base = base  # "<topic_prefix>/<serial>/"
        self._timeout_s = timeout_s
        self._stale_after_s = stale_after_s
        self.values: dict[str, Any] = {}
        self.last_message_at: float | None = None
        self._broker: MqttBroker | None = None
        self._results: dict[str, asyncio.Future[str | None]] = {}
        self._write_lock = asyncio.Lock()  # results carry no correlation id: one write at a time
        self._got_car = asyncio.Event()
        self.on_change: Callable[[str, Any, Any], None] = lambda key, old, new: None

    async def _connect(self) -> MqttBroker:
        if self._broker is None:
            self._broker = self._transports.mqtt(self._broker_url)
            await self._broker.subscribe(self.base + "+", self._on_message)
            await self._broker.subscribe(self.base + "+/result", self._on_message)
        if not await self._broker.wait_connected(self._timeout_s):
            raise DeviceUnreachable(
                f"MQTT broker {self._broker.address} not reachable: {self._broker.last_error}"
            )
        return self._broker

    def _on_message(self, topic: str, payload: bytes) -> None:
        if not topic.startswith(self.base):
            return
        key = topic[len(self.base) :]
        self.last_message_at = time.monotonic()
        if key.endswith("/result"):
            future = self._results.get(key[: -len("/result")])
            if future is not None and not future.done():
                future.set_result(result_problem(payload))
            return
        try:
            value = json.loads(payload)
        except ValueError:  # payloads are JSON; keep anything else as text
            value = payload.decode("utf-8", "replace")
        old = self.values.get(key)
        self.values[key] = value
        if key == KEY_CAR:
            self._got_car.set()
        if old != value:
            self.on_change(key, old, value)

    async def probe(self) -> dict[str, Any]:
        await self._connect()
        try:
            async with asyncio.timeout(self._timeout_s):  # unlike wait_for, never loses a cancel
                await self._got_car.wait()
        except TimeoutError:
            raise DeviceUnreachable(
                f"no go-e values on {self.base}car: check serial, topic_prefix and that MQTT is enabled "
                "on the charger (mce)"
            ) from None
        await self._settle()
        return dict(self.values)

    async def _settle(self, quiet_s: float = 0.2, max_s: float = 1.5) -> None:
        """Retained topics arrive in a burst in any order: wait for the burst to end (psm, ocppe...)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_s
        while loop.time() < deadline:
            seen = self.last_message_at or 0.0
            await asyncio.sleep(quiet_s)
            if self.last_message_at == seen:
                return

    async def read(self) -> dict[str, Any]:
        broker = self._broker
        if broker is None or not broker.connected:
            raise DeviceUnreachable(
                f"MQTT broker not connected ({broker.last_error if broker else 'not started'})"
            )
        if KEY_CAR not in self.values or self.last_message_at is None:
            raise DeviceUnreachable(f"no go-e values received on {self.base}car yet")
        age = time.monotonic() - self.last_message_at
        if age > self._stale_after_s:
            raise DeviceUnreachable(f"no message from go-e on {self.base}+ for {age:.0f} s")
        return dict(self.values)

    async def read_keys(self, keys: Iterable[str]) -> dict[str, Any]:
        return {k: self.values[k] for k in keys if k in self.values}

    async def write(self, key: str, value: Any) -> None:
        broker = await self._connect()
        async with self._write_lock:
            future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
            self._results[key] = future
            try:
                async with asyncio.timeout(self._timeout_s):
                    await broker.publish(f"{self.base}{key}/set", json.dumps(value))
                    problem = await future
            except TimeoutError:
                raise DeviceUnreachable(
                    f"no answer on {self.base}{key}/result within {self._timeout_s:g} s "
                    "(are MQTT writes allowed on the charger? firmware 051.5+ needs that, and mcr off)"
                ) from None
            finally:
                self._results.pop(key, None)
        if problem is not None:
            raise DeviceRefused(f"go-e refused {key}={json.dumps(value)}: {problem}")

    async def close(self) -> None:
        if self._broker is not None:
            self._broker.unsubscribe(self._on_message)
