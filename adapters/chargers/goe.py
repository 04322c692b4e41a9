"""go-e Charger (V3, V4, V5, Pro) over HTTP API v2, HTTP API v1 (legacy) or MQTT.

Docs: https://github.com/goecharger/go-eCharger-API-v2 (http-en.md, mqtt-de.md, apikeys-en.md) and
https://github.com/goecharger/go-eCharger-API-v1, summarised in docs/devices/goe.md. The keys, their
units and the pure mapping of an answer to a reading are in goe_api.py.

Theory
------
The box speaks in API keys (`car`, `err`, `nrg`, `eto`, `frc`, `amp`, `trx`, ...). Whatever the
transport, the driver turns each answer into a dict of keys with v2 types and units (`v1_to_v2`
converts the legacy strings and 0.1 kWh / 0.1 A / 0.01 kW units) and one pure function,
`reading_from`, makes the ChargerReading. The three transports differ only in how keys are read and
written (the links at the end of this module):

- HTTP v2: `GET /api/status?filter=...` (two filter syntaxes, chosen at the probe: `car,alw` from
  firmware 051.4 on, `["car","alw"]` before) and `GET /api/set?key=<JSON>`, answered per key with
  `true` or an error text (HTTP 500 for read-only keys).
- HTTP v1: `GET /status` (every value a string) and `GET /mqtt?payload=key=value`, answered with the
  full status: a refused command shows only as an unchanged value.
- MQTT (v2): retained topics `<prefix>/<serial>/<key>`; a write is published to `<key>/set` and
  answered on `<key>/result` with `success` or an error text. The latest values are kept; they are
  stale when nothing arrived for `stale_after_s` (go-e republishes `rbt`, its uptime, every second).

The bridge owns the decision to charge: once the bridge operates the charger (it has set a listener;
`ocpp-bridge probe` does not, and switches nothing), the first read sets force state Off (`frc=1`), so
that go-e's own logic does not charge a plugged car before a transaction allows it; `set_enabled`
writes `frc=2`/`frc=1` (v1: `alw=1/0`).

A card tap shows as `trx` (v1: `uby`) changing to the card's slot number; the card's UID is not
exposed, so the id tag is taken from `card_tags` or the card's name (`tag_for_card`).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
import logging
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from adapters.base import (
    Charger,
    ChargerCapabilities,
    ChargerReading,
    DeviceRefused,
    DeviceUnreachable,
    Listener,
    NotSupportedByDevice,
    StateChanged,
    TagPresented,
)
from adapters.chargers.goe_api import (
    AMP_MAX_A,
    AMP_MIN_A,
    FILTER_CSV,
    FILTER_JSON,
    FRC_OFF,
    FRC_ON,
    ID_TAG_MAX,
    KEY_ALW,
    KEY_AMP,
    KEY_AMX,
    KEY_CAR,
    KEY_CARDS,
    KEY_ERR,
    KEY_FRC,
    KEY_FWV,
    KEY_OCPPE,
    KEY_PSM,
    KEY_RST,
    KEY_TRX,
    POLL_KEYS,
    PROBE_KEYS,
    PSM_FORCE_1,
    PSM_FORCE_3,
    RST_REBOOT,
    as_bool,
    as_int,
    car_state,
    card_name,
    filter_query,
    key_card_name,
    new_card_slot,
    reading_from,
    result_problem,
    set_answer_problem,
    set_query,
    tag_for_card,
    v1_to_v2,
)
from adapters.transports.pool import Transports
from adapters.transports.urls import http_address_problem

if TYPE_CHECKING:
    from adapters.transports.mqtt import MqttBroker

log = logging.getLogger("adapters.goe")  # the name log lines have always shown

V1_ALLOWED, V1_NOT_ALLOWED = 1, 0  # v1's energy command: alw=1 / alw=0

OCPPE_ON = (
    "go-e's own OCPP client is enabled (ocppe=true); two OCPP clients would fight over the charger. "
    "Switch it off in the go-e app's OCPP settings, or with GET {url}/api/set?ocppe=false"
)

# -- options ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GoeOptions:
    """The `charger: {type: goe, ...}` block."""

    type: str = "goe"
    url: str | None = None  # http://HOST of the charger (transport http)
    api: str = "v2"  # "v2" (/api/status), or "v1" for old firmware with only the legacy /status API
    transport: str = "http"  # "http" or "mqtt" (API v2 only)
    broker: str | None = None  # mqtt://[user:password@]host[:port] (transport mqtt)
    serial: str | None = None  # the charger's serial number `sse`, in quotes (transport mqtt)
    topic_prefix: str = "go-eCharger"  # older firmware publishes under "/go-eCharger"
    timeout_s: float = 5.0  # per HTTP request, and for an MQTT write's result
    stale_after_s: float = 30.0  # MQTT: no message for this long means the charger is gone
    phases: int = 3  # phases wired to the vehicle
    min_current_a: float = 6.0
    max_current_a: float = 16.0  # at most the variant's limit (11 kW: 16 A, 22 kW: 32 A)
    fixed_cable: bool = False  # a tethered cable (the bridge cannot unlock go-e's socket anyway)
    card_tags: dict[str, str] = field(default_factory=dict)  # card name or slot "1".."10" -> idTag

    def validate(self) -> list[tuple[str, str]]:
        """(field, problem) pairs; empty when the options make sense."""
        problems: list[tuple[str, str]] = []
        if self.api not in ("v1", "v2"):
            problems.append(("api", 'must be "v2" (/api/status) or "v1" (old firmware: legacy /status API)'))
        if self.transport not in ("http", "mqtt"):
            problems.append(("transport", 'must be "http" or "mqtt"'))
        elif self.transport == "http":
            problems += _http_url_problems(self.url)
        else:
            problems += self._mqtt_problems()
        if not 0 < self.timeout_s <= 60:
            problems.append(("timeout_s", "must be above 0 and at most 60 seconds"))
        if self.stale_after_s < 2:
            problems.append(
                ("stale_after_s", "must be at least 2 seconds (go-e publishes about every second)")
            )
        if self.phases not in (1, 3):
            problems.append(("phases", "must be 1 or 3"))
        if not AMP_MIN_A <= self.min_current_a <= self.max_current_a <= AMP_MAX_A:
            problems.append((
                "min_current_a",
                f"go-e takes {AMP_MIN_A} to {AMP_MAX_A} A: "
                f"need {AMP_MIN_A} <= min_current_a <= max_current_a <= {AMP_MAX_A}",
            ))  # fmt: skip
        for key, tag in self.card_tags.items():
            if not 0 < len(tag) <= ID_TAG_MAX:
                problems.append((f"card_tags.{key}", f"an id tag has 1 to {ID_TAG_MAX} characters"))
        return problems

    def _mqtt_problems(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        if self.api != "v2":
            problems.append(
                ("transport", 'MQTT is supported with api: "v2" only (the v1 MQTT interface is not)')
            )
        from adapters.transports.mqtt import BrokerAddress  # only here: aiomqtt is not loaded for HTTP setups

        try:
            BrokerAddress.parse(self.broker or "")
        except ValueError:
            problems.append(
                ("broker", "transport mqtt needs broker: mqtt://host[:port] (the broker go-e uses)")
            )
        if not self.serial:
            problems.append(
                ("serial", 'transport mqtt needs serial: the charger\'s serial number, e.g. "072246"')
            )
        elif any(c in self.serial for c in "/+# "):
            problems.append(("serial", "must not contain '/', '+', '#' or spaces"))
        if (
            any(c in self.topic_prefix for c in "+#")
            or self.topic_prefix.endswith("/")
            or not self.topic_prefix
        ):
            problems.append(
                ("topic_prefix", 'must be a topic like "go-eCharger" (no wildcards, no trailing /)')
            )
        return problems


def _http_url_problems(url: str | None) -> list[tuple[str, str]]:
    if not url:
        return [("url", "transport http needs url: http://<address of the charger>")]
    problem = http_address_problem(url, path_allowed=True)
    return [("url", problem)] if problem else []


# -- the driver -------------------------------------------------------------------------------------


class GoeCharger(Charger):
    Options = GoeOptions

    def __init__(self, options: GoeOptions, transports: Transports) -> None:
        super().__init__()
        self.options = options
        self._link: _Link
        if options.transport == "mqtt":
            mqtt = _Mqtt(options, transports)
            mqtt.on_change = self._on_mqtt_change
            self._link = mqtt
        else:
            http = _Http(options.url or "", transports, options.timeout_s)
            self._link = _HttpV2(http) if options.api == "v2" else _HttpV1(http)
        self._probed = False
        self._probe_lock = asyncio.Lock()
        self._commanded = False  # set_enabled was called
        self._take_over = False  # force energy off at the next read
        self._energy_lock = asyncio.Lock()
        self._has_psm = False
        self._plugged = False
        self._trx: Any = None  # the last transaction slot seen; a change to n >= 1 is a card tap

    @property
    def capabilities(self) -> ChargerCapabilities:
        o = self.options
        return ChargerCapabilities(
            can_sense_plug=True,
            can_unlock=False,  # no documented unlock command (ust is a mode, not an action)
            fixed_cable=o.fixed_cable,
            can_switch_phases=self._has_psm,
            can_reset=o.api == "v2",
            has_meter=True,
            has_rfid=True,
            phases=o.phases,
            min_current_a=o.min_current_a,
            max_current_a=o.max_current_a,
            current_step_a=1.0,
        )

    @property
    def description(self) -> str:
        o = self.options
        if o.transport == "mqtt":
            return f"go-e {o.serial} via MQTT"
        return f"go-e at {urllib.parse.urlsplit(o.url or '').hostname}"

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        await self._ensure_probed()

    async def _ensure_probed(self) -> None:
        """Probe once it succeeds; until then every use tries again (the box may come later)."""
        async with self._probe_lock:  # a read and a command may both find the box unprobed
            if not self._probed:
                await self._probe()

    async def _probe(self) -> None:
        values = await self._link.probe()
        if as_bool(values.get(KEY_OCPPE)):
            raise DeviceRefused(OCPPE_ON.format(url=self.options.url or "http://<charger>"))
        self._has_psm = KEY_PSM in values
        self._trx = values.get(KEY_TRX)
        log.info(
            "%s: firmware %s, %s; phase switching (psm) %s",
            self.description, values.get(KEY_FWV, "?"), self._how(),
            "available" if self._has_psm else "absent",
        )  # fmt: skip
        self._probed = True

    def set_listener(self, listener: Listener | None) -> None:
        # A listener means the bridge operates the charger (a probe sets none): take over at the next read.
        super().set_listener(listener)
        self._take_over = listener is not None and not self._commanded

    async def _hold_energy(self, values: Mapping[str, Any]) -> bool:
        """Force state Off unless the bridge has commanded already: go-e's own logic (force state
        neutral) would charge a plugged car on its own, without a transaction. True when it did."""
        async with self._energy_lock:  # a set_enabled racing this read wins: it comes after, or first
            if not self._take_over:
                return False
            if self.options.api == "v1":
                if as_bool(values.get(KEY_ALW)) is not False:
                    await self._link.write(KEY_ALW, V1_NOT_ALLOWED)
            elif as_int(values.get(KEY_FRC)) != FRC_OFF:
                await self._link.write(KEY_FRC, FRC_OFF)
            self._take_over = False
            return True

    def _how(self) -> str:
        link = self._link
        if isinstance(link, _HttpV2):
            return f"HTTP API v2, filter syntax {'car,alw' if link.syntax == FILTER_CSV else '[...]'}"
        return "HTTP API v1" if isinstance(link, _HttpV1) else "MQTT"

    async def close(self) -> None:
        await self._link.close()

    # -- reading ----------------------------------------------------------------------------------
    async def read(self) -> ChargerReading:
        await self._ensure_probed()
        values = await self._link.read()
        if self._take_over and await self._hold_energy(values):
            values = {**values, KEY_FRC: FRC_OFF, KEY_ALW: False}  # the answer was read before the force-off
        reading = reading_from(
            values,
            phases=self.options.phases,
            was_plugged=self._plugged,
            legacy_errors=self._link.legacy_errors,
        )
        self._plugged = bool(reading.plugged)
        if not isinstance(self._link, _Mqtt):  # MQTT reports taps as they arrive
            await self._check_tap(values.get(KEY_TRX))
        return reading

    async def _check_tap(self, trx: Any) -> None:
        slot = new_card_slot(self._trx, trx)
        self._trx = trx
        if slot is None:
            return
        name = None
        with contextlib.suppress(DeviceUnreachable, DeviceRefused):  # the tag falls back to the slot
            name = card_name(await self._link.read_keys((KEY_CARDS, key_card_name(slot))), slot)
        self._emit(TagPresented(tag_for_card(slot, name, self.options.card_tags)))

    def _on_mqtt_change(self, key: str, old: Any, new: Any) -> None:
        if key in (KEY_CAR, KEY_ERR):
            if key == KEY_CAR and (plugged := car_state(as_int(new)).plugged) is not None:
                self._plugged = plugged
            self._emit(StateChanged())
        elif key == KEY_TRX and self._probed:
            slot = new_card_slot(self._trx, new)
            self._trx = new
            if slot is not None:
                values = self._link.values if isinstance(self._link, _Mqtt) else {}
                self._emit(TagPresented(tag_for_card(slot, card_name(values, slot), self.options.card_tags)))

    # -- commands ---------------------------------------------------------------------------------
    async def _write(self, key: str, value: Any) -> None:
        await self._ensure_probed()
        await self._link.write(key, value)

    async def set_enabled(self, enabled: bool) -> None:
        async with self._energy_lock:
            self._commanded, self._take_over = True, False  # the bridge's word from now on
            if self.options.api == "v1":
                await self._write(KEY_ALW, V1_ALLOWED if enabled else V1_NOT_ALLOWED)
            else:
                await self._write(KEY_FRC, FRC_ON if enabled else FRC_OFF)

    async def set_current(self, amps: float) -> None:
        o = self.options
        if not o.min_current_a <= amps <= o.max_current_a:
            raise DeviceRefused(f"current {amps:g} A outside {o.min_current_a:g}..{o.max_current_a:g} A")
        whole = int(amps)  # go-e takes whole amperes; never offer more than asked
        await self._write(KEY_AMX if o.api == "v1" else KEY_AMP, whole)

    async def set_phases(self, phases: int) -> None:
        await self._ensure_probed()
        if not self._has_psm:
            raise NotSupportedByDevice("this go-e firmware has no phase switching key (psm)")
        if phases not in (1, 3):
            raise DeviceRefused(f"go-e switches between 1 and 3 phases, not {phases}")
        await self._write(KEY_PSM, PSM_FORCE_1 if phases == 1 else PSM_FORCE_3)

    async def unlock(self) -> None:
        raise NotSupportedByDevice("go-e documents no command that unlocks the cable now")

    async def reset(self, hard: bool) -> None:
        if self.options.api != "v2":
            raise NotSupportedByDevice("go-e API v1 documents no reboot command")
        await self._write(KEY_RST, RST_REBOOT)


# -- links: how keys are read and written, one per transport ----------------------------------------


class _Link(abc.ABC):
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


class _Http:
    def __init__(self, url: str, transports: Transports, timeout_s: float) -> None:
        self.base = url.rstrip("/")
        self._transports = transports
        self._timeout_s = timeout_s

    async def get(self, path_and_query: str) -> tuple[int, Any]:
        """(HTTP status, decoded JSON or the text); DeviceUnreachable for no or a late answer."""
        import aiohttp
        import yarl

        url = yarl.URL(self.base + path_and_query, encoded=True)
        try:
            async with self._transports.http().get(
                url, timeout=aiohttp.ClientTimeout(total=self._timeout_s)
            ) as response:
                body = await response.read()
                status = response.status
        except TimeoutError as exc:
            raise DeviceUnreachable(f"no answer from {self.base} within {self._timeout_s:g} s") from exc
        except aiohttp.ClientError as exc:
            raise DeviceUnreachable(f"{self.base}: {str(exc) or type(exc).__name__}") from exc
        text = body.decode("utf-8", "replace")
        try:
            return status, json.loads(text)
        except ValueError:  # the caller names what it expected; the text is kept for its message
            return status, text


class _HttpV2(_Link):
    def __init__(self, http: _Http) -> None:
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


class _HttpV1(_Link):
    legacy_errors = True
    _ECHO = {KEY_AMX: KEY_AMP}  # amx (volatile current) shows in the status as amp

    def __init__(self, http: _Http) -> None:
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


class _Mqtt(_Link):
    def __init__(self, options: GoeOptions, transports: Transports) -> None:
        assert options.broker is not None and options.serial is not None
        self._options = options
        self._transports = transports
        self.base = f"{options.topic_prefix}/{options.serial}/"
        self.values: dict[str, Any] = {}
        self.last_message_at: float | None = None
        self._broker: MqttBroker | None = None
        self._results: dict[str, asyncio.Future[str | None]] = {}
        self._write_lock = asyncio.Lock()  # results carry no correlation id: one write at a time
        self._got_car = asyncio.Event()
        self.on_change: Callable[[str, Any, Any], None] = lambda key, old, new: None

    async def _connect(self) -> MqttBroker:
        if self._broker is None:
            self._broker = self._transports.mqtt(self._options.broker or "")
            await self._broker.subscribe(self.base + "+", self._on_message)
            await self._broker.subscribe(self.base + "+/result", self._on_message)
        if not await self._broker.wait_connected(self._options.timeout_s):
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
            async with asyncio.timeout(self._options.timeout_s):  # unlike wait_for, never loses a cancel
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
        if age > self._options.stale_after_s:
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
                async with asyncio.timeout(self._options.timeout_s):
                    await broker.publish(f"{self.base}{key}/set", json.dumps(value))
                    problem = await future
            except TimeoutError:
                raise DeviceUnreachable(
                    f"no answer on {self.base}{key}/result within {self._options.timeout_s:g} s "
                    "(are MQTT writes allowed on the charger? firmware 051.5+ needs that, and mcr off)"
                ) from None
            finally:
                self._results.pop(key, None)
        if problem is not None:
            raise DeviceRefused(f"go-e refused {key}={json.dumps(value)}: {problem}")

    async def close(self) -> None:
        if self._broker is not None:
            self._broker.unsubscribe(self._on_message)
