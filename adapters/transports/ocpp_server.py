"""The bridge's local OCPP 1.6J central-system endpoint, for chargers that speak OCPP themselves
(`charger: {type: ocpp}`, adapters/chargers/ocpp_device.py).

Why one server per listening address: several OCPP chargers of one bridge are pointed at the same
port (ws://<bridge>:9100/ocpp/<identity>), and only one socket can hold it, as only one UDP socket can
hold KEBA's port 7090 (adapters/transports/udp.py). It is opened on first use and shared through
`Transports.ocpp_server(listen)`; each driver registers its charger's identity, its password and the
handler that runs the charger's connection.

The handshake is checked before the upgrade: the path must be `/<path>/<identity>` of a registered
identity (else 404), the HTTP Basic credentials that identity's own password (else 401), and the
subprotocol ocpp1.6 is the only one offered. A second connection of the same identity replaces the
first (a charger that rebooted without closing its socket), as OCPP-J expects of a central system:
the new one is served at once and the old one closed beside it (aborted when its peer does not answer
the close), so a dead socket never holds up the new BootNotification.

With `tls` (tls_server.py) the endpoint is wss://: security profile 2 (TLS, HTTP Basic) or, with a
client CA, profile 3: the handshake requires a client certificate chained to it, and one whose CN is
not the identity of the path is refused with 403 before the upgrade; a charger with no password is
then let in on its certificate alone (the white paper's profile 3 has no Basic auth). Every charger
on one endpoint shares its TLS setup and its path: `Transports.ocpp_server` hands a charger that wants
another one a server that refuses its registration, and `check` names it (tls_server.py). One path
per endpoint rather than several: a charger's URL is then ws://<listen>/<path>/<identity> whatever
the others name, and an identity cannot be two chargers on two paths.

What belongs to one charger rather than to one driver (the connection shared by the connectors of a
charger with several, adapters/chargers/ocpp_device_hub.py) hangs off the server too: `shared(identity,
kind, make)` gives one object per identity, made on first use and dropped by `forget`; the server
knows nothing of it but its lifetime, which is the server's (no module-level state).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import http
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import unquote

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from adapters.transports.tls_server import (
    ServerTls,
    TlsSetupError,
    key_warning,
    names_charger,
    server_context,
)

log = logging.getLogger("adapters.ocpp_server")

REPLACED_CLOSE_S = 2.0  # a replaced connection's peer has this long to answer the close
REFUSALS_LOGGED_EVERY_S = 60.0  # refused connections of one status: one warning a minute (a scanner)
OnConnection = Callable[[ServerConnection], Awaitable[None]]
T = TypeVar("T")


@dataclass(frozen=True)
class _Registration:
    password: str
    on_connection: OnConnection


# The largest frame a charger may send: OCPP 1.6's biggest call a charger makes is a MeterValues, and
# one with 4 samples of 22 sampled values each (every measurand per phase) is under 16 KiB. A bigger
# frame closes the connection (1009, message too big) before it is held in memory; the charger reconnects.
MAX_FRAME_BYTES = 64 * 1024


def parse_listen(listen: str) -> tuple[str, int]:
    """'0.0.0.0:9100' -> ('0.0.0.0', 9100); ValueError naming what is wrong."""
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"listen must be host:port, e.g. 0.0.0.0:9100 (got {listen!r})")
    return host.strip("[]"), int(port)


class OcppServer:
    """One websocket server on `listen` (host:port), shared by the OCPP chargers that name it."""

    def __init__(
        self, listen: str, path: str = "ocpp", tls: ServerTls | None = None, *, refusal: str | None = None
    ) -> None:
        self.host, self.port = parse_listen(listen)
        self.path = path.strip("/")
        self.tls = tls
        self._refusal = refusal  # set: a charger whose setup disagrees with the shared server's
        self._server: Server | None = None
        self._chargers: dict[str, _Registration] = {}
        self._current: dict[str, ServerConnection] = {}
        self._shared: dict[str, object] = {}  # per identity: what its drivers share (shared())
        self._opening = asyncio.Lock()  # drivers start side by side; one binds
        self._replaced: set[asyncio.Task[None]] = set()  # old connections of a reconnected charger, closing
        self._refused_at: dict[int, float] = {}  # status -> when its last warning was logged (monotonic)
        self._refused_quiet: dict[int, int] = {}  # status -> refusals since, not logged

    @property
    def bound_port(self) -> int:
        """The port listened on (the configured one, or the one the OS chose for port 0)."""
        if self._server is None:
            return self.port
        return int(next(iter(self._server.sockets)).getsockname()[1])

    def register(self, identity: str, password: str, on_connection: OnConnection) -> None:
        """The charger `identity` may connect with `password`; its connections run `on_connection`.
        ValueError when another driver registered the same identity (two connectors naming one), or
        when this charger's TLS setup is not the endpoint's."""
        if self._refusal is not None:
            raise ValueError(self._refusal)
        known = self._chargers.get(identity)
        if known is not None and known.on_connection != on_connection:
            raise ValueError(f"another connector already uses identity {identity!r} on this endpoint")
        self._chargers[identity] = _Registration(password, on_connection)

    def unregister(self, identity: str, on_connection: OnConnection) -> None:
        known = self._chargers.get(identity)
        if known is not None and known.on_connection == on_connection:
            del self._chargers[identity]

    def shared(self, identity: str, kind: type[T], make: Callable[[], T]) -> T:
        """The one `kind` object of `identity` on this endpoint, made by `make` on first use."""
        known = self._shared.get(identity)
        if not isinstance(known, kind):
            known = self._shared[identity] = make()
        return known

    def forget(self, identity: str, shared: object) -> None:
        """Drops `shared` (its last user is gone); the next `shared` makes a new one."""
        if self._shared.get(identity) is shared:
            del self._shared[identity]

    async def open(self) -> None:
        """Listens once; OSError (the port is taken, no permission) to the caller."""
        if self._refusal is not None:
            raise OSError(self._refusal)
        async with self._opening:
            if self._server is None:
                await self._listen()

    async def _listen(self) -> None:
        context = None
        if self.tls is not None:
            try:
                context = await asyncio.to_thread(server_context, self.tls)  # reads files
            except TlsSetupError as exc:
                raise OSError(str(exc)) from None  # names the field and the fix, never a key's contents
            warning = key_warning(self.tls)
            if warning is not None:
                log.warning("OCPP endpoint: %s", warning)
        self._server = await serve(
            self._serve,
            self.host,
            self.port,
            subprotocols=[Subprotocol("ocpp1.6")],
            process_request=self._check,
            ping_interval=60,  # a charger that vanished without a close is noticed
            max_size=MAX_FRAME_BYTES,
            ssl=context,
        )
        scheme = "ws" if context is None else "wss"
        log.info(
            "OCPP endpoint listening on %s://%s:%d/%s/<identity>",
            scheme,
            self.host,
            self.bound_port,
            self.path,
        )

    def _identity(self, path: str) -> str | None:
        prefix = f"/{self.path}/" if self.path else "/"
        if not path.startswith(prefix):
            return None
        identity = unquote(path[len(prefix) :].rstrip("/"))
        return identity if identity and "/" not in identity else None

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        identity = self._identity(request.path.split("?", 1)[0])
        registration = self._chargers.get(identity) if identity is not None else None
        if identity is None or registration is None:
            return self._refuse(404, f"no charger configured at {request.path!r}")
        by_certificate = self.tls is not None and self.tls.client_ca_file is not None
        if by_certificate:
            assert self.tls is not None
            # The handshake verified the chain (CERT_REQUIRED); whom it names is checked here.
            why = names_charger(self.tls, connection.transport.get_extra_info("peercert"), identity)
            if why is not None:
                return self._refuse(403, f"charger {identity!r}: {why}")
            if not registration.password:
                return None  # profile 3: the certificate is the credential
        if not _password_matches(request.headers.get("Authorization"), identity, registration.password):
            return self._refuse(401, f"charger {identity!r}: wrong or missing password")  # never logs it
        return None

    def _refuse(self, status: int, why: str) -> Response:
        # The first refusal of a status is logged at once (the installer's mistyped password); a
        # storm of them (a scanner on the charger's network) one line a minute, with its count.
        now = time.monotonic()
        last = self._refused_at.get(status)
        if last is None or now - last >= REFUSALS_LOGGED_EVERY_S:
            quiet = self._refused_quiet.pop(status, 0)
            more = f" ({quiet} more refused with {status} since the last line)" if quiet else ""
            log.warning("OCPP endpoint: connection refused (%d): %s%s", status, why, more)
            self._refused_at[status] = now
        else:
            self._refused_quiet[status] = self._refused_quiet.get(status, 0) + 1
        headers = Headers()
        if status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="ocpp-bridge"'
        return Response(status, http.HTTPStatus(status).phrase, headers, b"")

    async def _serve(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        identity = self._identity(connection.request.path.split("?", 1)[0])
        registration = self._chargers.get(identity) if identity is not None else None
        if identity is None or registration is None or connection.subprotocol != "ocpp1.6":
            await connection.close(1002, "subprotocol ocpp1.6 required")
            return
        previous = self._current.get(identity)
        self._current[identity] = connection
        if previous is not None:
            # Closed beside the new one, not before it: a charger that rebooted without closing left
            # a dead socket, whose close would wait out its timeout while the new BootNotification
            # sits unread.
            replaced = asyncio.create_task(_close_replaced(previous))
            self._replaced.add(replaced)
            replaced.add_done_callback(self._replaced.discard)
        try:
            await registration.on_connection(connection)
        finally:
            if self._current.get(identity) is connection:
                del self._current[identity]

    async def close(self) -> None:
        server, self._server = self._server, None
        for replaced in list(self._replaced):
            replaced.cancel()
        await asyncio.gather(*self._replaced, return_exceptions=True)
        if server is not None:
            server.close()
            await server.wait_closed()
        self._chargers.clear()
        self._shared.clear()


async def _close_replaced(connection: ServerConnection) -> None:
    """Closes a connection a new one of its charger replaced; one whose peer does not answer the close
    within REPLACED_CLOSE_S (a dead socket) is aborted."""
    try:
        async with asyncio.timeout(REPLACED_CLOSE_S):
            await connection.close(1000, "replaced by a new connection")
    except TimeoutError:
        connection.transport.abort()


def _password_matches(header: str | None, identity: str, password: str) -> bool:
    if header is None or not header.startswith("Basic "):
        return False
    try:
        given = base64.b64decode(header[6:].strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    expected = identity.encode() + b":" + password.encode()
    return hmac.compare_digest(given, expected)
