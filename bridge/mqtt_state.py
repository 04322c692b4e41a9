"""The bridge's state on MQTT, with Home Assistant discovery (the `mqtt:` block of the configuration).

Theory
------
A reader, never a writer: once a second the publisher reads every charge point's snapshot and renders
it as the local API does (`bridge.runtime.snapshot.status_json`, so both always say the same thing),
turns it into topic → payload,
and publishes what changed since the last publication; every `interval_s` it publishes everything
again. Nothing in the charge points waits for it or knows of it: a broker that is down, slow or
refusing us costs a log line and a reconnect loop, never a charging session.

Topics (`<prefix>` is `topic_prefix`, `<cp>` the charge point id, `<n>` the connector id)::

    <prefix>/bridge/availability     online | offline   (retained; offline is also the Last Will)
    <prefix>/<cp>/connected          true | false       (the websocket to the central system is up)
    <prefix>/<cp>/accepted           true | false       (connected and BootNotification Accepted)
    <prefix>/<cp>/<n>/status         the OCPP status: Available, Preparing, Charging, ...
    <prefix>/<cp>/<n>/power_w        W
    <prefix>/<cp>/<n>/energy_wh      Wh, the meter register
    <prefix>/<cp>/<n>/current_limit_a  A the charger was set to (0: paused by a charging limit)
    <prefix>/<cp>/<n>/transaction    the OCPP transaction id
    <prefix>/<cp>/firmware           the UpdateFirmware job's state: Idle, Scheduled (pending), ...
    <prefix>/<cp>/diagnostics        the GetDiagnostics upload: Idle or Uploading
    <prefix>/<cp>/{firmware,diagnostics}/attributes   JSON: the status API's object of the same name
                                     (times, attempt, last error, `last`: how the last one ended and why)
    <prefix>/<cp>/local_list         the local authorization list's entries
    <prefix>/<cp>/local_list/attributes   JSON: the status API's `local_list` (version, entries)
    <prefix>/<cp>/reservations       how many connectors are reserved
    <prefix>/<cp>/reservations/attributes JSON: {"reservations": the status API's list} (id, connector,
                                     tag, group, expiry of each)
An empty payload means "not known" (no reading yet, no transaction). State topics are retained when
`retain` is true.

Home Assistant discovery (`bridge.mqtt_discovery`): one retained config per entity, one device per
charge point. When Home Assistant announces itself on `<discovery_prefix>/status` (its birth
message), the configs and the state are published again.

The connection has its own client (a Last Will needs one; the drivers' shared connection in
`adapters.transports.mqtt` has none) with a client id derived from the prefix, so a reconnect takes over a
half-dead previous connection at once instead of having its Will arrive after our "online". A stop
publishes "offline" itself (a clean DISCONNECT discards the Will). Reconnects wait 1 s, doubling up
to 60 s. An outage is one warning; a new reason during it is an INFO line, a repeated one nothing.
The broker password is never logged: addresses are shown as `mqtt://host:port`.

aiomqtt (paho) is imported in a thread when the publisher starts, so importing this module costs
nothing and the loop is never held up.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import ssl
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from bridge.config import MqttStateConfig
from bridge.mqtt_discovery import (
    OFFLINE,
    ONLINE,
    Observed,
    availability_topic,
    discovery_payloads,
    object_id,
    topic_level,
)
from bridge.runtime.snapshot import status_json

if TYPE_CHECKING:
    import aiomqtt

log = logging.getLogger("bridge.mqtt_state")

POLL_S = 1.0  # how often the charge points are read for changes
RECONNECT_MIN_S = 1.0
RECONNECT_MAX_S = 60.0
DISCOVERY_SETTLE_S = 2.0  # after re-announcing to Home Assistant, before non-retained state
WARN_EVERY_S = 60.0  # at most one warning of a failing broker this often
TIMEOUT_S = 10.0  # connect, and each publish's acknowledgement
KEEPALIVE_S = 30  # the broker sends the Will after 1.5 times this without a word from us
STOP_TIMEOUT_S = 2.0  # for the "offline" published on a stop

StatusReader = Callable[[Observed], Mapping[str, Any]]


def _status(cp: Observed) -> Mapping[str, Any]:
    return status_json(cp.snapshot())


def client_id(config: MqttStateConfig) -> str:
    return f"{object_id(config.topic_prefix)}-state"


# -- what is published ---------------------------------------------------------------------------


def _number(value: Any, digits: int = 1) -> str:
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return ""
    rounded = round(float(value), digits)
    return str(int(rounded)) if rounded.is_integer() else str(rounded)


def _flag(value: Any) -> str:
    return "true" if value else "false"


def state_payloads(config: MqttStateConfig, status: Mapping[str, Any]) -> dict[str, str]:
    """Topic → payload for one charge point, from what `charge_point_status` reports."""
    base = f"{config.topic_prefix}/{topic_level(str(status['id']))}"
    out = {
        f"{base}/connected": _flag(status.get("connected")),
        f"{base}/accepted": _flag(status.get("accepted")),
    }
    for connector in status.get("connectors", ()):
        at = f"{base}/{connector['id']}"
        tx = connector.get("transaction_id")
        out[f"{at}/status"] = str(connector.get("status") or "")
        out[f"{at}/power_w"] = _number(connector.get("power_w"))
        out[f"{at}/energy_wh"] = _number(connector.get("energy_wh"))
        out[f"{at}/current_limit_a"] = _number(connector.get("current_limit_a"))
        out[f"{at}/transaction"] = "" if tx is None else str(tx)
    for key, shown in (("firmware", "state"), ("diagnostics", "status")):
        job = status.get(key)  # None: a charge point without the job
        out[f"{base}/{key}"] = str(job[shown]) if job else ""
        out[f"{base}/{key}/attributes"] = json.dumps(job or {})
    local_list = status.get("local_list")  # {"version", "entries"}
    out[f"{base}/local_list"] = str(local_list["entries"]) if local_list else ""
    out[f"{base}/local_list/attributes"] = json.dumps(local_list or {})
    reservations = status.get("reservations")  # None: a status from before reservations
    out[f"{base}/reservations"] = "" if reservations is None else str(len(reservations))
    out[f"{base}/reservations/attributes"] = json.dumps({"reservations": reservations or []})
    return out


# -- the publisher --------------------------------------------------------------------------------


class StatePublisher:
    """Publishes the state of `charge_points` to the broker of `config` until cancelled."""

    def __init__(
        self,
        config: MqttStateConfig,
        charge_points: Mapping[str, Observed],
        *,
        poll_s: float = POLL_S,
        status: StatusReader | None = None,
    ) -> None:
        # cheap when the config has been checked (it imported it)
        from adapters.transports.mqtt import BrokerAddress

        self.config = config
        self.address = BrokerAddress.parse(config.broker)  # its repr holds the password: log str() only
        self.charge_points = charge_points
        self.poll_s = poll_s
        self._status = status
        self._published: dict[str, str] = {}  # topic → payload, on this connection
        self._announce = False  # Home Assistant came (back): publish discovery and state again
        self.connected = False  # connected, and everything published once on this connection
        self.last_error: str | None = None
        self._warned_at: float | None = None  # monotonic time of the last warning
        self._started = False
        self._pause = RECONNECT_MIN_S

    async def run(self) -> None:
        mqtt = await asyncio.to_thread(importlib.import_module, "aiomqtt")
        if self._status is None:
            self._status = _status
        tls = await asyncio.to_thread(ssl.create_default_context) if self.address.tls else None
        a = self.address
        self._pause = RECONNECT_MIN_S
        while True:
            client = mqtt.Client(
                a.host, a.port, username=a.username, password=a.password, tls_context=tls,
                identifier=client_id(self.config), timeout=TIMEOUT_S, keepalive=KEEPALIVE_S,
                will=mqtt.Will(availability_topic(self.config), OFFLINE, qos=1, retain=True),
            )  # fmt: skip
            try:
                async with client:
                    await self._serve(client)
            except mqtt.MqttError as exc:
                self._failed(f"{str(exc) or type(exc).__name__}; retrying")
            except Exception as exc:  # a bug here must never end the publisher, nor the daemon
                self._failed(f"{exc!r}; retrying", exc)
            finally:
                self.connected = False
            self._check_cancelled()  # a cancellation that an error on the way out replaced
            await asyncio.sleep(self._pause)
            self._pause = min(self._pause * 2, RECONNECT_MAX_S)

    def _failed(self, error: str, exc: BaseException | None = None) -> None:
        """One warning per outage (and at most one a minute: a broker going down can let a connection
        through for a moment); a new reason during it at INFO, a repeated one not at all."""
        now = time.monotonic()
        if self.last_error is None and (self._warned_at is None or now - self._warned_at >= WARN_EVERY_S):
            self._warned_at = now
            log.warning("MQTT state: broker %s: %s", self.address, error, exc_info=exc)
        elif error != self.last_error or self.last_error is None:
            log.info("MQTT state: broker %s still failing: %s", self.address, error, exc_info=exc)
        self.last_error = error

    def _working(self) -> None:
        """The first full publication on a connection went through."""
        self.connected = True
        if self.last_error is not None:
            log.info("MQTT state: broker %s connected again", self.address)
        elif not self._started:
            log.info("MQTT state: publishing to %s under %s/", self.address, self.config.topic_prefix)
        self._started = True
        self.last_error = None
        self._pause = RECONNECT_MIN_S

    async def _serve(self, client: aiomqtt.Client) -> None:
        """Publishes until the connection is lost (MqttError) or the task is cancelled."""
        self._published.clear()
        listener = asyncio.create_task(self._listen(client), name="mqtt state listener")
        loop = asyncio.get_running_loop()
        try:
            if self.config.discovery:
                await client.subscribe(f"{self.config.discovery_prefix}/status", qos=1)
                await self._publish_discovery(client)
                if not self.config.retain:
                    await asyncio.sleep(DISCOVERY_SETTLE_S)  # see below: Home Assistant subscribes first
            next_full = 0.0
            while True:
                self._check_cancelled()
                full = loop.time() >= next_full or self._announce
                if self._announce:
                    self._announce = False
                    await self._publish_discovery(client)
                    if not self.config.retain:
                        # Home Assistant subscribes to the state topics only once it has read the
                        # discovery configs: state sent at once, not retained, would be lost.
                        await asyncio.sleep(DISCOVERY_SETTLE_S)
                if full:
                    next_full = loop.time() + self.config.interval_s
                await self._publish_state(client, full)
                if not self.connected:
                    self._working()
                done, _ = await asyncio.wait([listener], timeout=self.poll_s)
                if done:
                    listener.result()  # raises the MqttError that ended it
                    raise RuntimeError("the message listener stopped")
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(STOP_TIMEOUT_S):
                    await client.publish(availability_topic(self.config), OFFLINE, qos=1, retain=True)
            raise
        finally:
            listener.cancel()
            await asyncio.wait([listener])

    async def _listen(self, client: aiomqtt.Client) -> None:
        """Home Assistant's birth message; ends with MqttError when the connection is lost."""
        async for message in client.messages:
            if message.payload in (b"online", "online") and not message.retain:
                self._announce = True

    async def _publish_discovery(self, client: aiomqtt.Client) -> None:
        for cp in self.charge_points.values():
            for topic, config in discovery_payloads(self.config, cp).items():
                await self._publish(client, topic, json.dumps(config), retain=True)

    async def _publish_state(self, client: aiomqtt.Client, full: bool) -> None:
        assert self._status is not None
        state: dict[str, str] = {availability_topic(self.config): ONLINE}
        for cp in self.charge_points.values():
            state.update(state_payloads(self.config, self._status(cp)))
        for topic, payload in state.items():
            if full or self._published.get(topic) != payload:
                retain = self.config.retain or topic == availability_topic(self.config)
                await self._publish(client, topic, payload, retain=retain)
                self._published[topic] = payload

    async def _publish(self, client: aiomqtt.Client, topic: str, payload: str, *, retain: bool) -> None:
        await client.publish(topic, payload, qos=1, retain=retain)
        # aiomqtt waits for the acknowledgement with asyncio.wait_for, which on Python 3.11 can drop a
        # cancellation that arrives together with it: a stopped publisher must not go on.
        self._check_cancelled()

    @staticmethod
    def _check_cancelled() -> None:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise asyncio.CancelledError


def start_mqtt_state(
    config: MqttStateConfig | None, charge_points: Mapping[str, Observed]
) -> asyncio.Task[None] | None:
    """The publisher of the `mqtt:` block as a task (cancel it to stop); None without one."""
    if config is None:
        return None
    publisher = StatePublisher(config, charge_points)
    return asyncio.get_running_loop().create_task(publisher.run(), name="mqtt state")
