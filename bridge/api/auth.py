"""Who may use the API: the Bearer token (tools), a login session's cookie (the page), CSRF checks.

With `api.token` set, a request needs `Authorization: Bearer <token>` or the cookie a login set; the
page itself, its files, GET /api/v1/session and POST /api/v1/login are open (the login form must
load). The cookie holds a random session id kept in memory, never the token. A state-changing
request authenticated by the cookie must carry the session's CSRF token (X-CSRF-Token) and come from
the page's own origin (Origin, else Referer); a cross-origin one is refused even without a token,
where everything is open to loopback clients but a foreign web page must not drive the charger.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from aiohttp import web

from bridge import __version__

COOKIE = "ocpp_bridge_session"
IDLE_S = 12 * 3600.0  # a session unused this long is forgotten
MAX_SESSIONS = 64  # beyond it the least recently used one goes
WRONG_TOKEN_DELAY_S = 0.2  # a guess costs time: one at a time, daemon-wide (Auth.wrong_token)
_OPEN = {("GET", "/"), ("GET", "/api/v1/session"), ("POST", "/api/v1/login"), ("HEAD", "/")}
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class _Session:
    csrf: str
    used_at: float  # monotonic


class Sessions:
    """The logged-in browsers: session id → CSRF token, bounded, expiring when idle."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._now = now

    def open(self) -> tuple[str, str]:
        """A new session: (its id for the cookie, its CSRF token)."""
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        self._sessions[sid] = _Session(csrf, self._now())
        while len(self._sessions) > MAX_SESSIONS:
            self._sessions.popitem(last=False)
        return sid, csrf

    def csrf_of(self, sid: str | None) -> str | None:
        """The CSRF token of a live session (its use noted), None for an unknown or expired one."""
        session = self._sessions.get(sid) if sid else None
        if session is None:
            return None
        now = self._now()
        if now - session.used_at > IDLE_S:
            del self._sessions[sid]  # type: ignore[arg-type]
            return None
        session.used_at = now
        self._sessions.move_to_end(sid)  # type: ignore[arg-type]
        return session.csrf

    def close(self, sid: str | None) -> None:
        if sid:
            self._sessions.pop(sid, None)

    def __len__(self) -> int:
        return len(self._sessions)


@dataclass
class Auth:
    """The API's access rules: the token (None: open to loopback clients) and the sessions."""

    token: str | None
    sessions: Sessions
    open_csrf: str  # without a token: the CSRF token the page is given (it sends it all the same)
    # Held through each wrong token's delay, login or Bearer alike: guesses sent in parallel wait in
    # line, so they cost WRONG_TOKEN_DELAY_S each, not once for the lot.
    guesses: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def wrong_token(self) -> None:
        async with self.guesses:
            await asyncio.sleep(WRONG_TOKEN_DELAY_S)

    def bearer_ok(self, request: web.Request) -> bool:
        given = request.headers.get("Authorization", "")
        return self.token is not None and hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode())

    def token_ok(self, given: str) -> bool:
        return self.token is not None and hmac.compare_digest(given.encode(), self.token.encode())


AUTH: web.AppKey[Auth] = web.AppKey("auth")


def new_auth(token: str | None) -> Auth:
    return Auth(token or None, Sessions(), secrets.token_urlsafe(32))


def _refused(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def same_origin(request: web.Request) -> bool | None:
    """Whether the request's Origin (else Referer) names the host it was sent to; None when it has
    neither (a tool, not a browser). Behind a proxy the host may be in X-Forwarded-Host."""
    origin = request.headers.get("Origin") or request.headers.get("Referer")
    if origin is None:
        return None
    netloc = urlsplit(origin).netloc.lower() if origin != "null" else ""
    hosts = {request.host.lower(), request.headers.get("X-Forwarded-Host", "").lower()}
    return bool(netloc) and netloc in hosts


def loopback_host(request: web.Request) -> bool:
    """Whether the request was addressed to a loopback name (Host, and X-Forwarded-Host if a proxy set
    one): without a token, a page of another site whose name was made to resolve to 127.0.0.1 (DNS
    rebinding) is same-origin to itself, and only its Host header gives it away."""
    for host in (request.host, request.headers.get("X-Forwarded-Host")):
        if host is None:
            continue
        name = urlsplit(f"//{host}").hostname or ""
        if name == "localhost" or name.endswith(".localhost"):
            continue
        try:
            if not ipaddress.ip_address(name).is_loopback:
                return False
        except ValueError:
            return False
    return True


def _is_open(request: web.Request) -> bool:
    return (request.method, request.path) in _OPEN or (
        request.method in ("GET", "HEAD") and request.path.startswith("/static/")
    )


def _fetched_cross_origin(request: web.Request) -> bool:
    """A browser says where a request comes from (Sec-Fetch-Site): one from another site, or from
    another origin of this site, is refused whatever its method; only a link followed to the page
    itself (a navigation, GET /) may come from elsewhere. Older browsers send no such header: the
    Origin/Referer and CSRF checks stay."""
    site = request.headers.get("Sec-Fetch-Site", "").lower()
    if site not in ("cross-site", "same-site"):
        return False
    navigation = request.headers.get("Sec-Fetch-Mode", "").lower() == "navigate"
    return not (navigation and request.method in ("GET", "HEAD") and request.path == "/")


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    auth = request.app[AUTH]
    state_changing = request.method not in _SAFE_METHODS
    if _fetched_cross_origin(request):
        return _refused(403, "cross-site request refused (Sec-Fetch-Site)")
    if request.method == "POST" and request.body_exists and request.content_type != "application/json":
        # A form or a no-cors fetch of another page cannot send application/json without a preflight.
        return _refused(415, "the body must be JSON (Content-Type: application/json)")
    if auth.bearer_ok(request):
        return await handler(request)  # a tool's token: no CSRF (a browser never adds this header)
    if auth.token is not None and "Authorization" in request.headers:
        await auth.wrong_token()  # a wrong Bearer token is a guess like a wrong login
    if same_origin(request) is False and state_changing:
        return _refused(403, "cross-site request refused")  # a foreign page, token or not
    if auth.token is None:  # open to loopback clients (bridge.config requires loopback)
        if not loopback_host(request):
            return _refused(403, "without api.token this API answers only requests to a loopback address")
        return await handler(request)
    csrf = auth.sessions.csrf_of(request.cookies.get(COOKIE))
    if csrf is None:
        if _is_open(request):
            return await handler(request)
        return _refused(401, "missing or wrong token")
    if request.path == "/api/v1/login":
        return await handler(request)  # a new login replaces nothing: its origin was checked above
    if state_changing and not (
        same_origin(request)
        and hmac.compare_digest(request.headers.get("X-CSRF-Token", "").encode(), csrf.encode())
    ):
        return _refused(403, "cross-site request refused")
    return await handler(request)


def _cookie_path(request: web.Request) -> str:
    prefix = request.headers.get("X-Forwarded-Prefix", "").strip().rstrip("/")
    return (prefix if prefix.startswith("/") else "") + "/"


async def session(request: web.Request) -> web.Response:
    auth = request.app[AUTH]
    if auth.token is None:
        return web.json_response({"authenticated": True, "login_required": False,
                                  "csrf": auth.open_csrf, "version": __version__})  # fmt: skip
    csrf = auth.sessions.csrf_of(request.cookies.get(COOKIE))
    authenticated = csrf is not None or auth.bearer_ok(request)
    return web.json_response({"authenticated": authenticated, "login_required": True,
                              "csrf": csrf, "version": __version__})  # fmt: skip


async def login(request: web.Request) -> web.Response:
    auth = request.app[AUTH]
    try:
        body = await request.json()
    except json.JSONDecodeError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("token"), str):
        return _refused(400, 'the body must be {"token": "<api.token>"}')
    if auth.token is None:
        return web.json_response({"ok": True, "csrf": auth.open_csrf})
    if not auth.token_ok(body["token"]):
        await auth.wrong_token()
        return _refused(401, "wrong token")
    sid, csrf = auth.sessions.open()
    response = web.json_response({"ok": True, "csrf": csrf})
    secure = request.secure or request.headers.get("X-Forwarded-Proto", "") == "https"
    response.set_cookie(COOKIE, sid, path=_cookie_path(request), httponly=True, samesite="Strict",
                        secure=secure)  # fmt: skip
    return response


async def logout(request: web.Request) -> web.Response:
    request.app[AUTH].sessions.close(request.cookies.get(COOKIE))
    response = web.json_response({"ok": True})
    response.del_cookie(COOKIE, path=_cookie_path(request))
    return response
