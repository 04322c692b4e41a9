"""Opening the websocket to the central system, and naming why it failed.

A charge point never gives up: refused connections, TLS failures, HTTP
400/401/404 answers (SteVe answers 404 for an unknown charge point id) are
all "retry later". `describe_failure` turns each into one sentence an
installer can act on; the session logs it once per change of reason.
"""

from __future__ import annotations

import base64
import socket
import ssl
from urllib.parse import quote, urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI

from bridge import __version__
from bridge.ocpp.ports import ConnectOptions, LinkSecurity, LinkSettings

SUBPROTOCOL = "ocpp1.6"


def endpoint_url(cp_id: str, url: str) -> str:
    """OCPP-J 3.1.1: the endpoint URL, '/', and the percent-encoded identity."""
    return url.rstrip("/") + "/" + quote(cp_id, safe="")


def basic_auth_header(cp_id: str, password: str | None, password_format: str) -> str | None:
    """HTTP Basic with username = identity; password per D3 (plain, or hex of the bytes)."""
    if password is None:
        return None
    secret = bytes.fromhex(password) if password_format == "hex" else password.encode()
    token = base64.b64encode(cp_id.encode() + b":" + secret).decode("ascii")
    return f"Basic {token}"


class PlainLink:
    """The link as the configuration file has it, with no security profile of its own (tests, and
    charge points built without the runtime's link security)."""

    def __init__(self, cfg: LinkSettings) -> None:
        self._cfg = cfg

    async def options(self) -> ConnectOptions:
        cfg = self._cfg
        return ConnectOptions(cfg.csms_url, cfg.password, cfg.password_format)

    def opened(self, options: ConnectOptions) -> None:
        pass

    def failed(self, options: ConnectOptions, exc: BaseException) -> str | None:
        return None


def plain_link(cfg: LinkSettings) -> LinkSecurity:
    return PlainLink(cfg)


class SubprotocolRefused(Exception):
    pass


async def open_connection(
    cfg: LinkSettings, options: ConnectOptions, open_timeout: float
) -> ClientConnection:
    headers = {}
    auth = basic_auth_header(cfg.id, options.password, options.password_format)
    if auth is not None:
        headers["Authorization"] = auth
    secure = urlsplit(options.url).scheme.lower() == "wss"
    tls = {"ssl": options.ssl} if options.ssl is not None and secure else {}
    ws = await connect(
        endpoint_url(cfg.id, options.url),
        subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
        additional_headers=headers,
        user_agent_header=f"ocpp-bridge/{__version__}",
        open_timeout=open_timeout,
        ping_interval=None,  # our own keepalive follows WebSocketPingInterval live
        close_timeout=5,
        compression=None,  # picky central systems mishandle permessage-deflate
        proxy=None,  # a central system is reached directly, whatever the environment says
        max_size=cfg.max_frame_bytes,  # a larger frame closes the link with 1009 (docs/protocol.md)
        max_queue=16,  # frames read ahead of the handlers: at most 16 x max_size held in memory
        **tls,  # type: ignore[arg-type]
    )
    if ws.subprotocol != SUBPROTOCOL:
        await ws.close()
        raise SubprotocolRefused(ws.subprotocol)
    return ws


def describe_failure(exc: BaseException, cfg: LinkSettings, url: str | None = None) -> str:
    where = urlsplit(url or cfg.csms_url).netloc
    if isinstance(exc, InvalidStatus):
        code = exc.response.status_code
        hint = {
            400: "bad request (the central system may not accept subprotocol ocpp1.6)",
            401: "authentication failed: check the charge point's password",
            403: "forbidden: the central system refuses this charge point",
            404: f"the central system does not know charge point id {cfg.id!r}: register it there",
        }.get(code, "the central system refused the websocket upgrade")
        return f"HTTP {code} from {where}: {hint}"
    if isinstance(exc, SubprotocolRefused):
        return f"{where} did not agree to subprotocol ocpp1.6 (offered it, got {exc.args[0]!r})"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS: the central system's certificate was not accepted: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failure talking to {where}: {exc.reason or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused by {where}: is the central system running?"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the central system's host in {where}"
    if isinstance(exc, TimeoutError):
        return f"opening the connection to {where} timed out"
    if isinstance(exc, InvalidURI):
        return f"invalid central system URL: {exc}"
    if isinstance(exc, InvalidHandshake):
        return f"websocket handshake with {where} failed: {exc}"
    if isinstance(exc, OSError):
        return f"network error reaching {where}: {exc.strerror or exc}"
    return f"{type(exc).__name__}: {exc}"
