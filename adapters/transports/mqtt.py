"""One MQTT connection per broker, shared by every driver that uses it.

Drivers subscribe to topic filters with a callback and publish; this module
owns the connection: it connects in the background, reconnects with a
growing pause after the broker goes away (aiomqtt does not), and subscribes
again to every filter after each connect. While the broker is away,
`publish` raises DeviceUnreachable at once instead of queueing commands for
later: a command that arrives minutes late (energy on, say) would be wrong.

URL form: mqtt://[user:password@]host[:port] (port 1883), mqtts:// for TLS
(port 8883, the system's CA store).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

import aiomqtt

from adapters.base import DeviceUnreachable
from adapters.transports.urls import without_password

log = logging.getLogger("adapters.mqtt")  # the name log lines have always shown

Handler = Callable[[str, bytes], None]  # (topic, payload)
RECONNECT_MIN_S = 1.0
RECONNECT_MAX_S = 30.0
CONNECT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None = field(repr=False)

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        """Raises ValueError with a message fit for a configuration error (never the password)."""
        form = "mqtt://[user:password@]host[:port] or mqtts://..."
        shown = without_password(url)
        try:
            parts = urlsplit(url)
            given_port = parts.port
        except ValueError:
            try:
                urlsplit(shown).port  # noqa: B018 - the same URL without its password: is it the port?
            except ValueError:
                raise ValueError(f"the port in {shown!r} is not a number from 1 to 65535") from None
            raise ValueError(
                f"expected {form}, got {shown!r}; percent-encode / ? # @ in the user and password"
            ) from None
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(f"expected {form}, got {shown!r}")
        if given_port == 0:
            raise ValueError(f"the port in {shown!r} is not a number from 1 to 65535")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"expected {form} without a path, query or fragment, got {shown!r}")
        port = given_port or (8883 if parts.scheme == "mqtts" else 1883)
        user = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password else None
        return cls(parts.hostname, port, parts.scheme == "mqtts", user, password)

    def __str__(self) -> str:  # never shows the password
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Made once: loading the system's CA store takes a while on a Pi, and every connection can share it.
    return ssl.create_default_context()


def library_client(address: BrokerAddress) -> aiomqtt.Client:
    """The aiomqtt client of the broker at `address`, not yet connected (TLS: the system's CA store)."""
    a = address
    tls = _tls_context() if a.tls else None
    return aiomqtt.Client(
        a.host, a.port, username=a.username, password=a.password, tls_context=tls, timeout=CONNECT_TIMEOUT_S
    )


class MqttBroker:
    def __init__(
        self, url: str, *, make_client: Callable[[BrokerAddress], aiomqtt.Client] | None = None
    ) -> None:
        """`make_client`: makes the client of one connection (one per attempt); a test may give a
        stand-in."""
        self.address = BrokerAddress.parse(url)
        self._make_client = make_client or library_client
        self._handlers: list[tuple[str, Handler]] = []
        self._client: aiomqtt.Client | None = None
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.last_error: str | None = None

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def start(self) -> None:
        """Connect in the background (idempotent)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"mqtt {self.address}")

    async def wait_connected(self, timeout: float) -> bool:
        self.start()
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for drops a cancellation that arrives as
        # the connection comes up, and the cancelled caller (a poll loop) would go on.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._connected.wait()
        return self.connected

    async def subscribe(self, topic_filter: str, handler: Handler) -> None:
        """Calls `handler(topic, payload)` for every message matching the filter, also retained ones."""
        self._handlers.append((topic_filter, handler))
        self.start()
        if self._client is not None and self.connected:
            with contextlib.suppress(aiomqtt.MqttError):  # resubscribed on the next connect anyway
                await self._client.subscribe(topic_filter, qos=1)

    def unsubscribe(self, handler: Handler) -> None:
        self._handlers = [(f, h) for f, h in self._handlers if h is not handler]

    async def publish(self, topic: str, payload: str | bytes, retain: bool = False) -> None:
        client = self._client
        if client is None or not self.connected:
            raise DeviceUnreachable(
                f"MQTT broker {self.address} not connected ({self.last_error or 'connecting'})"
            )
        task = asyncio.current_task()
        cancels_before = task.cancelling() if task is not None else 0
        try:
            await client.publish(topic, payload, qos=1, retain=retain)
        except aiomqtt.MqttError as exc:
            raise DeviceUnreachable(f"MQTT broker {self.address}: {exc}") from exc
        if task is not None and task.cancelling() > cancels_before:
            # aiomqtt waits for the PUBACK with asyncio.wait_for, which on Python 3.11 drops a
            # cancellation that arrives together with it: a cancelled caller (or an expired
            # asyncio.timeout around this call) must not go on as if nothing happened.
            raise asyncio.CancelledError

    async def close(self) -> None:
        task, self._task = self._task, None
        # Cancelled until it really ends: Python 3.11's asyncio.wait_for (inside aiomqtt's connect and
        # subscribe) swallows a cancellation that lands as the awaited future completes.
        while task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task], timeout=0.5)

    def _dispatch(self, message: aiomqtt.Message) -> None:
        payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
        for topic_filter, handler in list(self._handlers):
            if message.topic.matches(topic_filter):
                try:
                    handler(message.topic.value, payload)
                except Exception:  # one driver's bug must not end the connection for all
                    log.exception("MQTT handler for %s failed", topic_filter)

    async def _run(self) -> None:
        a = self.address
        pause = RECONNECT_MIN_S
        while True:
            client = self._make_client(a)
            try:
                async with client:
                    self._client = client
                    for topic_filter in {f for f, _ in self._handlers}:
                        await client.subscribe(topic_filter, qos=1)
                    self._connected.set()
                    if self.last_error is not None:
                        log.info("MQTT broker %s connected again", a)
                    self.last_error = None
                    pause = RECONNECT_MIN_S
                    async for message in client.messages:
                        self._dispatch(message)
            except aiomqtt.MqttError as exc:
                if str(exc) != self.last_error:
                    log.warning("MQTT broker %s: %s; retrying", a, exc)
                self.last_error = str(exc) or type(exc).__name__
            finally:
                self._connected.clear()
                self._client = None
            await asyncio.sleep(pause)
            pause = min(pause * 2, RECONNECT_MAX_S)
