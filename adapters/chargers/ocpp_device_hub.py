"""One OCPP charger's connection, shared by every connector of the bridge that drives one of its
connectors (`type: ocpp` with the same `identity` and `listen`, e.g. a wallbox with two sockets).

Theory
------
The charger opens one websocket whatever its number of connectors, so what belongs to the charger
rather than to one connector lives here, once per identity: its registration on the endpoint (made
at the first driver's `start`, dropped at the last driver's `close`), the `ChargerLink` of its
current connection, its boot, its connector 0 and its deviations (`ChargerWide`). Each driver
(ocpp_device.py) attaches a `Seat` for its connector_id (that connector's `ChargerState`, the bridge's
`Decisions`, its callbacks) and keeps its own EnergySwitch; the link routes each message to the seat
of the connector it names (ocpp_device_link.py).

Where the hub lives: on the endpoint (`OcppServer.shared`), which is already the one object every
driver naming a `listen` gets from the shared Transports; a hub's lifetime is its registration's on
that server, and no module-level state is needed. The connectors must agree on the options of the
connection (ocpp_device_options.CONNECTION_FIELDS): the first driver's are the hub's, a later one
that differs is refused at start naming both connectors, as `check` does (bridge/config).

Per connection, each attached driver gets `on_link(link)` (and `on_link(None)` when it ends) and its
`after_boot(link)` runs as a task of that connection, cancelled when it closes or the driver leaves.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass

from ocpp.v16 import call
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from adapters.base import DeviceRefused
from adapters.chargers.ocpp_device_link import ChargerLink
from adapters.chargers.ocpp_device_options import OcppDeviceOptions, differences
from adapters.chargers.ocpp_device_state import ChargerWide, Seat
from adapters.transports.ocpp_server import OcppServer

log = logging.getLogger("adapters.ocpp_device")


@dataclass(frozen=True, eq=False)
class Attached:
    """A driver of one connector of the charger: its options, its seat and its hooks."""

    options: OcppDeviceOptions
    seat: Seat
    on_link: Callable[[ChargerLink | None], None]
    after_boot: Callable[[ChargerLink], Coroutine[None, None, None]]


@dataclass
class _Live:
    """The current connection and the drivers' tasks on it."""

    link: ChargerLink
    group: asyncio.TaskGroup
    helpers: list[tuple[int, asyncio.Task[None]]]  # (connector, its after_boot), those that left too


class ChargerHub:
    """The charger `options.identity` on `server`: one connection for all its driven connectors."""

    def __init__(self, server: OcppServer, options: OcppDeviceOptions) -> None:
        self.server = server
        self.options = options  # the first driver's; the others agree on the connection's fields
        self.identity = options.identity
        self.charger = ChargerWide()
        self.seats: dict[int, Seat] = {}  # the link reads it: a driver attaching is routed at once
        self.drivers: dict[int, Attached] = {}
        self.link: ChargerLink | None = None
        self._live: _Live | None = None
        # Local transaction ids, unique across its connectors: from the clock, so that a restarted
        # bridge gives no id twice.
        self._ids = itertools.count(int(time.time()) % 1_000_000_000)

    @staticmethod
    def of(server: OcppServer, options: OcppDeviceOptions) -> ChargerHub:
        """The hub of the charger `options` names on `server` (made by its first driver)."""
        return server.shared(options.identity, ChargerHub, lambda: ChargerHub(server, options))

    def attach(self, driver: Attached) -> None:
        """The driver's connector is routed to it from now on; DeviceRefused when another driver has
        its connector_id or their connection's options differ, or the endpoint refuses the charger."""
        n = driver.options.connector_id
        known = self.drivers.get(n)
        if known is driver:
            return  # its start retried
        if known is not None:
            raise DeviceRefused(
                f"connector {n} of OCPP charger {self.identity!r} is already driven by another connector "
                f"of the bridge: give each its own connector_id"
            )
        if not self.drivers:
            self.options = driver.options  # the first of its drivers (again) sets the connection's
        differ = differences(driver.options, self.options)
        if differ:
            raise DeviceRefused(
                f"connector_id {n} and connector_id {min(self.drivers)} of OCPP charger {self.identity!r} "
                f"share its connection but differ in {', '.join(differ)}: give them the same values"
            )
        if not self.drivers:
            try:
                self.server.register(self.identity, self.options.password, self._run_link)
            except ValueError as exc:
                raise DeviceRefused(str(exc)) from exc
        driver.seat.state.charger = self.charger
        if n in self.charger.undriven:
            self.charger.undriven.remove(n)  # driven now (a connector that was restarting)
        self.seats[n] = driver.seat
        self.drivers[n] = driver
        live = self._live
        if live is not None:  # connected already: this connector joins the connection
            driver.seat.state.booted = live.link.booted
            driver.on_link(live.link)
            live.helpers.append((n, live.group.create_task(_guarded(driver, live.link))))

    async def detach(self, driver: Attached) -> None:
        """The driver leaves; the last one's leaving drops the registration and the connection."""
        n = driver.options.connector_id
        if self.drivers.get(n) is not driver:
            return
        del self.drivers[n], self.seats[n]
        live = self._live
        if live is not None:
            for _, helper in (h for h in live.helpers if h[0] == n):
                helper.cancel()  # cancelled again at the connection's end, should this one be lost
        if self.drivers:
            return
        self.server.unregister(self.identity, self._run_link)
        self.server.forget(self.identity, self)
        link, self.link = self.link, None
        if link is not None:
            await link.connection.close(1001, "the bridge stops")

    async def _run_link(self, connection: ServerConnection) -> None:
        o = self.options
        link = ChargerLink(
            self.identity,
            connection,
            self.charger,
            self.seats,
            heartbeat_interval_s=o.heartbeat_interval_s,
            card_wait_s=o.card_wait_s,
            call_timeout_s=o.call_timeout_s,
            next_transaction_id=lambda: next(self._ids),
        )
        self.link = link
        log.info("OCPP charger %s connected", self.identity)
        for driver in list(self.drivers.values()):
            driver.on_link(link)
        helpers: list[tuple[int, asyncio.Task[None]]] = []
        try:
            async with asyncio.TaskGroup() as group:
                live = self._live = _Live(link, group, helpers)
                for n, driver in list(self.drivers.items()):
                    helpers.append((n, group.create_task(_guarded(driver, link))))
                helpers.append((0, group.create_task(_ask_boot(link))))  # connector 0: no driver's
                try:
                    await link.run()
                finally:
                    if self._live is live:
                        self._live = None
                    await _cancel_all([helper for _, helper in helpers])  # they live as long as it
        except* ConnectionClosed:
            pass
        finally:
            log.info("OCPP charger %s disconnected", self.identity)
            if self.link is link:
                self.link = None
                for driver in list(self.drivers.values()):
                    driver.on_link(None)


async def _ask_boot(link: ChargerLink) -> None:
    """A charger never booted in this run that calls (the bridge restarted, it did not) is asked for
    its BootNotification (TriggerMessage): until it boots it is not served as booted."""
    await link.called_unbooted.wait()
    if link.booted:
        return
    try:
        answer = await link.call(call.TriggerMessage(requested_message="BootNotification"), suppress=False)
    except ConnectionClosed:
        raise
    except Exception as exc:  # no answer, a CALLERROR, an answer that breaks its schema
        answer = exc
    if getattr(answer, "status", None) != "Accepted":
        log.warning(
            "OCPP charger %s did not accept TriggerMessage BootNotification (%s): it is served once it boots",
            link.id,
            getattr(answer, "status", type(answer).__name__),
        )


async def _guarded(driver: Attached, link: ChargerLink) -> None:
    """A driver's after-boot work: a bug in it is logged and ends that work only, never the
    connection the charger's other connectors share (the task group would cancel them all)."""
    try:
        await driver.after_boot(link)
    except ConnectionClosed:
        raise
    except Exception:
        log.exception(
            "OCPP charger %s connector %d: its after-boot work failed", link.id, driver.options.connector_id
        )


async def _cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    """Cancels the tasks until they are done: a cancel that lands as the answer to a call arrives is
    lost inside the `ocpp` library's asyncio.wait_for (Python 3.11), and the task would wait on."""
    while pending := [task for task in tasks if not task.done()]:
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=0.5)
