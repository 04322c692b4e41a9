"""Transfer locations: parsing an OCPP `location` URL and masking its password for any message."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from bridge.transfer.errors import Reason, TransferError

SCHEMES = {"http": "HTTP", "https": "HTTPS", "ftp": "FTP", "ftps": "FTPS"}

# user:password@ in any URL of a text; the user part is kept so that a log still says who.
_CREDENTIALS = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^/@\s:]*):[^@\s/]*@")


def masked(text: str) -> str:
    """`text` with the password of every URL in it replaced by ***."""
    return _CREDENTIALS.sub(r"\g<head>:***@", text)


@dataclass(frozen=True)
class Location:
    """A parsed location. `password` is kept out of repr; `display` is the masked URL."""

    scheme: str  # http, https, ftp, ftps
    host: str
    port: int | None
    path: str  # percent-decoded, as sent to the server ("" for the root)
    user: str | None
    password: str | None = field(repr=False)
    display: str

    @property
    def is_ftp(self) -> bool:
        return self.scheme in ("ftp", "ftps")


def parse(url: str) -> Location:
    """A location from a URL; TransferError(UNSUPPORTED) naming what is wrong otherwise."""
    display = masked(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TransferError(
            Reason.UNSUPPORTED, f"{display} is not a valid URL ({masked(str(exc))})"
        ) from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        known = ", ".join(f"{s}://" for s in SCHEMES)
        raise TransferError(
            Reason.UNSUPPORTED, f"{display}: scheme {scheme or '(none)'!r}; supported: {known}"
        )
    if not parts.hostname:
        raise TransferError(Reason.UNSUPPORTED, f"{display} names no host")
    user = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    path = unquote(parts.path)
    # A decoded CR/LF would end an FTP command early and start another one of the URL's choosing.
    if any(ord(c) < 32 or ord(c) == 127 for c in path + (user or "") + (password or "")):
        raise TransferError(Reason.UNSUPPORTED, f"{display}: control characters in the path or the user")
    return Location(scheme, parts.hostname, port, path, user, password, display)


def scrub(text: str, location: Location) -> str:
    """`text` (a library's error message, say) with the location's password masked wherever it is."""
    text = masked(text)
    if location.password:
        text = text.replace(location.password, "***")
    return text
