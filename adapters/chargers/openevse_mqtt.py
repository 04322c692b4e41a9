"""OpenEVSE (ESP32 WiFi gateway, firmware v4.x and later) over MQTT (`type: openevse-mqtt`).

Docs: OpenEVSE/openevse_esp32_firmware `docs/mqtt.md`, summarised in ../shared/reference/devices.md
§2.2 and docs/devices/openevse.md. The fields, states, claims and the pure mapping are openevse_api.py's,
shared with the HTTP driver (openevse.py).

Theory
------
The gateway publishes each `/status` field as its own topic, `<base>/<field>` (`amp` in mA,
`total_energy` in kWh, `state`, `status`, ...), when it changes; the driver keeps the latest of each
and a read maps them as the HTTP driver maps a `/status` answer. The values are retained only when
the gateway's `mqtt_retained` is on: without it, a bridge that starts after the gateway would know
nothing until a value changes, so the driver needs it, and says so when no state arrives.

A command is the MQTT service's claim: `<base>/claim/set` with the same properties as over HTTP
(priority 500; the client id is the MQTT service's, not one the bridge chooses). The gateway answers
nothing; it republishes its retained `<base>/claim`, which is the acknowledgement. It has no
`/claims/target` over MQTT, so the driver then waits (timeout_s) for the status to show the claim
(`status` as claimed, `max_current` at most the current claimed). When the retained `<base>/override`
holds a claimed property, the manual override (1000) wins, and the command fails as refused naming it;
when the status does not follow for another reason (RFID 1030, the gateway's own OCPP 1050, a limit
1100), it fails as refused too, naming what the status shows.

Presence: the gateway's retained announcement `openevse/announce/<id>` (`{"state":"connected",
"mqtt":"<base>",...}`) is also its last will (`"disconnected"`, published by the broker when the
gateway vanishes). The driver learns the topic from the connect message naming its base topic. An
outage (DeviceUnreachable): the last will there, the bridge's broker connection down, no state or no
such announcement within timeout_s (a gateway gone before the bridge came leaves only its last will,
which names no base topic, beside stale retained values), and with `stale_after_s` a silence that long
(docs/mqtt.md speaks of a publication every 30 s; the reference of none while idle).

The driver reports its changes (`reports_changes`): a change of a field a reading shows other than
those that flow with the energy, the claim forgotten, the announcement changing, and (its background
watchdog) the broker connection coming or going or the values going stale each push a StateChanged.

The bridge owns the decision to charge, as over HTTP: its first read when operated claims `disabled`;
a claim the gateway forgot (a restart: `<base>/claim` becomes `{"state":"null"}`) is made again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from adapters.base import (
    BackgroundJob,
    ChargerCapabilities,
    ChargerReading,
    DeviceRefused,
    DeviceUnreachable,
    StateChanged,
)
from adapters.chargers.openevse_api import (
    ANNOUNCE_PREFIX,
    F_STATE,
    F_STATUS,
    MQTT_DOCUMENTS,
    STATE_FIELDS,
    T_CLAIM,
    T_CLAIM_SET,
    T_OVERRIDE,
    T_RESTART,
    Claim,
    announced,
    claim_unmet,
    current_problems,
    holds_claim,
    mqtt_document,
    mqtt_value,
    override_takes,
    reading_from,
    shows_claim,
)
from adapters.chargers.openevse_claims import OpenEvseClaims
from adapters.transports.pool import Transports

if TYPE_CHECKING:
    from adapters.transports.mqtt import MqttBroker

log = logging.getLogger("adapters.openevse")

WATCHDOG_S = 1.0  # how often the background job looks at the broker connection and the silence
OVERRIDE_PRIORITY = 1000


@dataclass(frozen=True)
class OpenEvseMqttOptions:
    """The `charger: {type: openevse-mqtt, ...}` block."""

    type: str = "openevse-mqtt"
    broker: str | None = None  # mqtt://[user:password@]host[:port], the broker the gateway uses
    base_topic: str | None = None  # the gateway's MQTT base topic (its default: its hostname)
    timeout_s: float = 5.0  # for the first state, a claim's acknowledgement and the status to follow it
    stale_after_s: float | None = None  # no message for this long is an outage (None: only the last will)
    phases: int = 1
    min_current_a: float = 6.0
    max_current_a: float = 32.0
    fixed_cable: bool = True

    def validate(self) -> list[tuple[str, str]]:
        """(field, problem) pairs; empty when the options make sense."""
        from adapters.transports.mqtt import BrokerAddress  # only here: aiomqtt is loaded for MQTT setups

        problems: list[tuple[str, str]] = []
        try:
            BrokerAddress.parse(self.broker or "")
        except ValueError as error:
            shown = str(error) if self.broker else "needs broker: mqtt://host[:port] (the gateway's broker)"
            problems.append(("broker", shown))
        topic = self.base_topic
        if not topic or any(c in topic for c in "+# ") or topic.startswith("/") or topic.endswith("/"):
            why = "must be" if topic else "needs base_topic:"
            problems.append(("base_topic", f"{why} the gateway's MQTT base topic, e.g. openevse-55ad"))
        if not 0 < self.timeout_s <= 60:
            problems.append(("timeout_s", "must be above 0 and at most 60 seconds"))
        if self.stale_after_s is not None and not 2 <= self.stale_after_s <= 3600:
            problems.append(("stale_after_s", "must be from 2 to 3600 seconds (or left out)"))
        if self.phases not in (1, 3):
            problems.append(("phases", "must be 1 or 3"))
        problems += current_problems(self.min_current_a, self.max_current_a)
        return problems


class OpenEvseMqttCharger(OpenEvseClaims):
    Options = OpenEvseMqttOptions
    reports_changes: ClassVar[bool] = True

    def __init__(
        self,
        options: OpenEvseMqttOptions,
        transports: Transports,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.options = options
        self._transports = transports
        self._clock = clock
        self._base = (options.base_topic or "") + "/"
        self._broker: MqttBroker | None = None
        self.values: dict[str, Any] = {}  # the latest value of each status field heard
        self._claim_doc: dict[str, Any] | None = None  # the retained <base>/claim
        self._override_doc: dict[str, Any] | None = None  # the retained <base>/override
        self._announce_topic: str | None = None
        self._online: bool | None = None  # what the announcement last said; None: not heard
        self._heard_at: float | None = None
        self._changed = asyncio.Event()  # set at each message: the waits below look again
        self._plugged = False
        self._claim_lost = False  # logged once per loss
        self._watched: tuple[bool, bool] | None = None  # (connected, stale) the watchdog saw last

    @property
    def capabilities(self) -> ChargerCapabilities:
        o = self.options
        return ChargerCapabilities(
            can_sense_plug=True,
            can_unlock=False,  # no unlock command
            fixed_cable=o.fixed_cable,
            can_switch_phases=False,  # only RAPI $S7, which bypasses claims
            can_reset=True,  # <base>/restart
            has_meter=True,
            has_rfid=False,  # the box's RFID claims the state itself; no tag is published
            phases=o.phases,
            min_current_a=o.min_current_a,
            max_current_a=o.max_current_a,
            current_step_a=1.0,
        )

    @property
    def description(self) -> str:
        return f"OpenEVSE {self.options.base_topic} via MQTT"

    @property
    def online(self) -> bool | None:
        """What the gateway's announcement last said (None: not heard)."""
        return self._online

    # -- connection and messages ----------------------------------------------------------------
    async def _connection(self) -> MqttBroker:
        """The shared broker connection; the first use subscribes and waits (timeout_s) for it."""
        if self._broker is None:
            self._broker = self._transports.mqtt(self.options.broker or "")
            await self._broker.subscribe(self._base + "+", self._on_message)
            await self._broker.subscribe(ANNOUNCE_PREFIX + "+", self._on_message)
        broker = self._broker
        if not await broker.wait_connected(self.options.timeout_s):
            raise DeviceUnreachable(f"MQTT broker {broker.address} not reachable: {broker.last_error}")
        return broker

    def _on_message(self, topic: str, payload: bytes) -> None:
        if topic.startswith(ANNOUNCE_PREFIX):
            self._on_announce(topic, mqtt_document(payload))
            return
        name = topic[len(self._base) :]
        self._heard_at = self._clock()
        self._wake()
        if name == T_CLAIM:
            self._claim_doc = mqtt_document(payload)
            if self._claim.state is not None and not holds_claim(self._claim_doc):
                self._emit(StateChanged())  # forgotten (a restart): the next read claims again
        elif name == T_OVERRIDE:
            self._override_doc = mqtt_document(payload)
        elif name not in MQTT_DOCUMENTS:
            value = mqtt_value(payload)
            old = self.values.get(name)
            self.values[name] = value
            if name in STATE_FIELDS and old != value:
                self._emit(StateChanged())

    def _wake(self) -> None:  # every wait in `_until` looks again
        self._changed.set()
        self._changed = asyncio.Event()

    def _on_announce(self, topic: str, doc: dict[str, Any] | None) -> None:
        # The connect message names the base topic; the last will on the same topic does not.
        if doc is not None and doc.get("mqtt") == self.options.base_topic:
            self._announce_topic = topic
        elif topic != self._announce_topic:
            return
        online = announced(doc)
        if online is not None and online != self._online:
            self._online = online
            self._wake()
            self._emit(StateChanged())

    async def _until(self, done: Callable[[], bool]) -> bool:
        """Waits up to timeout_s for `done()` to hold, looking again at each message."""
        try:
            async with asyncio.timeout(self.options.timeout_s):  # never loses a cancel, unlike wait_for
                while not done():
                    await self._changed.wait()
        except TimeoutError:
            return done()
        return True

    def _outage(self, broker: MqttBroker) -> str | None:
        """Why the gateway counts as unreachable now, or None."""
        if not broker.connected:
            return f"MQTT broker {broker.address} not connected ({broker.last_error or 'connecting'})"
        if self._online is False:
            return f"the gateway's last will on {self._announce_topic} says disconnected"
        stale = self.options.stale_after_s
        if stale is not None and self._heard_at is not None and self._clock() - self._heard_at > stale:
            return f"no message on {self._base}+ for {self._clock() - self._heard_at:.0f} s"
        return None

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        await self._state_known()
        await self._settle()
        log.info("%s: EVSE state %s, %s", self.description, self.values[F_STATE], self.values.get(F_STATUS))

    async def _state_known(self) -> MqttBroker:
        """The broker connection, once the gateway's state and its announcement are known and it is
        not away. Until it has announced itself, retained values may be those of a gateway long gone."""
        broker = await self._connection()
        if not await self._until(lambda: F_STATE in self.values and self._online is not None):
            if F_STATE not in self.values:
                raise DeviceUnreachable(
                    f"no EVSE state on {self._base}{F_STATE} within {self.options.timeout_s:g} s: check the "
                    "base topic, that the gateway uses this broker, and that its MQTT values are retained "
                    "(mqtt_retained)"
                )
            raise DeviceUnreachable(
                f"no announcement on {ANNOUNCE_PREFIX}+ naming base topic {self.options.base_topic}: the "
                "gateway has not connected to this broker since it last left"
            )
        if (why := self._outage(broker)) is not None:
            raise DeviceUnreachable(why)
        return broker

    async def _settle(self, quiet_s: float = 0.1, max_s: float = 1.0) -> None:
        """Retained topics arrive in a burst, one field at a time: wait for the burst to end."""
        for _ in range(round(max_s / quiet_s)):
            seen = self._changed  # replaced at each message
            await asyncio.sleep(quiet_s)
            if self._changed is seen:
                return

    def background(self) -> tuple[BackgroundJob, ...]:
        return (self._watch,)

    async def _watch(self) -> None:
        """Pushes a StateChanged when the broker connection comes or goes, or the values go stale:
        nothing else tells the bridge to read a box that went quiet."""
        while True:
            broker = self._broker
            if broker is not None:
                stale = self.options.stale_after_s
                seen = (broker.connected, stale is not None and self._outage(broker) is not None)
                if self._watched is not None and seen != self._watched:
                    self._emit(StateChanged())
                self._watched = seen
            await asyncio.sleep(WATCHDOG_S)

    async def close(self) -> None:
        if self._broker is not None:
            self._broker.unsubscribe(self._on_message)
            self._broker = None

    # -- reading ----------------------------------------------------------------------------------
    async def read(self) -> ChargerReading:
        await self._state_known()
        taken_over = await self._take_over_once()
        if not taken_over and self._claim.state is not None and not holds_claim(self._claim_doc):
            await self._reclaim()
        reading = reading_from(self.values, phases=self.options.phases, was_plugged=self._plugged)
        self._plugged = bool(reading.plugged)
        return reading

    async def _reclaim(self) -> None:
        """The gateway forgot the claim (claims live in its memory): claim again; the reading then
        says what the box does."""
        if not self._claim_lost:
            log.warning("%s: the gateway holds no claim of the bridge's: claiming again", self.description)
        self._claim_lost = True
        async with self._claim_lock:
            await self._send_claim(self._claim, strict=False)
        self._claim_lost = False

    # -- commands ---------------------------------------------------------------------------------
    async def _send_claim(self, claim: Claim, *, strict: bool = True) -> None:
        """Claims `claim` and waits for its acknowledgement; `strict`: and for the status to show it,
        else DeviceRefused naming what holds the box. Called under the command lock.

        The claim is the bridge's word from the moment it is sent, acknowledged or not (the gateway
        may have taken it and the acknowledgement got lost): a gateway that restarts is told this
        claim again, never the one before it."""
        broker = await self._state_known()
        self._claim = claim
        await broker.publish(self._base + T_CLAIM_SET, json.dumps(claim.body()))
        if not await self._until(lambda: shows_claim(self._claim_doc, claim)):
            problem = (
                f"no acknowledgement on {self._base}{T_CLAIM} within {self.options.timeout_s:g} s "
                f"of the claim {json.dumps(claim.body())}"
            )
            if self._online:  # present, yet silent: it answers nothing to a claim it cannot make
                raise DeviceRefused(f"the gateway did not take the claim: {problem}")
            raise DeviceUnreachable(problem)
        taken = override_takes(self._override_doc, claim)
        if taken:
            if not strict:
                return  # the reading says what the box does
            held = ", ".join(f"{name}={(self._override_doc or {}).get(name)}" for name in taken)
            raise DeviceRefused(
                f"the manual override (priority {OVERRIDE_PRIORITY}) overrules the bridge's claim ({held})"
            )
        if not await self._until(lambda: not claim_unmet(self.values, claim)) and strict:
            raise DeviceRefused(
                f"the box shows {', '.join(claim_unmet(self.values, claim))} after the bridge's claim "
                f"{json.dumps(claim.body())}: a claim of higher priority holds it (its RFID, its own "
                "OCPP client, a limit)"
            )

    async def reset(self, hard: bool) -> None:
        # Hard: the EVSE controller itself; soft: the WiFi gateway only. Nothing acknowledges it.
        broker = await self._state_known()
        await broker.publish(self._base + T_RESTART, json.dumps({"device": "evse" if hard else "gateway"}))
