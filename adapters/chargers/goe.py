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
written (the links, in goe_links.py):

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

import asyncio
import contextlib
import logging
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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
    PSM_FORCE_1,
    PSM_FORCE_3,
    RST_REBOOT,
    as_bool,
    as_int,
    car_state,
    card_name,
    key_card_name,
    new_card_slot,
    reading_from,
    tag_for_card,
)
from adapters.chargers.goe_links import GoeHttp, GoeLink, HttpV1Link, HttpV2Link, MqttLink
from adapters.transports.pool import Transports
from adapters.transports.urls import http_address_problem

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
        self._link: GoeLink
        if options.transport == "mqtt":
            assert options.broker is not None and options.serial is not None  # validate() said so
            mqtt = MqttLink(
                transports,
                options.broker,
                f"{options.topic_prefix}/{options.serial}/",
                options.timeout_s,
                options.stale_after_s,
            )
            mqtt.on_change = self._on_mqtt_change
            self._link = mqtt
        else:
            http = GoeHttp(options.url or "", transports, options.timeout_s)
            self._link = HttpV2Link(http) if options.api == "v2" else HttpV1Link(http)
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
    def link(self) -> GoeLink:
        """How this driver reads and writes the charger's keys (a raw write; on MQTT, the values heard)."""
        return self._link

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
        neutral) would charge a plugged car on its own, without a transaction. True when it did.

        This is not the coordinator's "energy only with a transaction" guard (bridge/runtime/
        coordinator.py) twice. That guard switches off energy it sees allowed; this takes the decision
        away from go-e, which in force state neutral may start energy later by itself (its own card
        reader, its own access and schedule settings), between two polls and after a first reading
        that showed nothing to switch off: the guard would let that run for UNWANTED_ENERGY_S. A relay
        has no logic of its own, so only go-e needs this. The driver's tests pin it (frc=1 at the first
        read, before the current is set)."""
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
        if isinstance(link, HttpV2Link):
            return f"HTTP API v2, filter syntax {'car,alw' if link.syntax == FILTER_CSV else '[...]'}"
        return "HTTP API v1" if isinstance(link, HttpV1Link) else "MQTT"

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
        if not isinstance(self._link, MqttLink):  # MQTT reports taps as they arrive
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
                values = self._link.values if isinstance(self._link, MqttLink) else {}
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
