"""Checks of device addresses given in the configuration (pure)."""

from __future__ import annotations

import urllib.parse


def http_address_problem(url: str, *, path_allowed: bool = False) -> str | None:
    """Why `url` is not a device's HTTP address (http[s]://HOST[:PORT]), or None when it is one.

    Credentials never go into the URL (they would show in logs); a path is allowed only where the
    driver says so (a device behind a reverse proxy)."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a bad port
    except ValueError as error:
        return f"{url!r} is not a valid URL ({error})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"expected http://HOST or http://HOST:PORT, got {url!r}"
    if parts.username is not None or parts.password is not None:
        return "must not hold credentials (user:password@)"
    if parts.query or parts.fragment:
        return "must not have a query or fragment"
    if not path_allowed and parts.path not in ("", "/"):
        return "must be the device's address only (http://HOST), without a path"
    return None


def without_password(url: str) -> str:
    """`url` with the password of its user part (before the last '@') replaced by ***: fit for an
    error message or a log line."""
    head, at, host = url.rpartition("@")
    if not at:
        return url
    scheme, slashes, userinfo = head.partition("://")
    if not slashes:
        scheme, userinfo = "", head
    user, colon, _ = userinfo.partition(":")
    return f"{scheme}{slashes}{user}{colon}{'***' if colon else ''}@{host}"
