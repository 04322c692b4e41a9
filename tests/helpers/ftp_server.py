"""A real FTP/FTPS server for tests (pyftpdlib, not the client's library) on 127.0.0.1, in a thread.

One user with a password and a home directory; passive mode on ports the system picks; FTPS is
explicit TLS (AUTH TLS) with the test CA's server certificate, PROT P required for data.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

with warnings.catch_warnings():
    # pyftpdlib 2 is built on asyncore/asynchat, deprecated (not yet removed) in Python 3.11.
    warnings.simplefilter("ignore", DeprecationWarning)
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler, ThrottledDTPHandler, TLS_FTPHandler
    from pyftpdlib.ioloop import IOLoop
    from pyftpdlib.servers import FTPServer

from tests.helpers.pki import Pki


@dataclass(frozen=True)
class FtpSite:
    port: int
    home: Path
    user: str
    password: str
    scheme: str  # ftp or ftps

    def url(self, path: str = "", *, password: str | None = None) -> str:
        secret = self.password if password is None else password
        return f"{self.scheme}://{self.user}:{secret}@127.0.0.1:{self.port}/{path}"


@contextmanager
def ftp_server(
    home: Path,
    *,
    user: str = "cp",
    password: str = "s3cret-ftp",
    pki: Pki | None = None,
    send_limit: int | None = None,
    port: int = 0,
) -> Iterator[FtpSite]:
    """Serves `home` (read and write) until the block ends; with `pki`, FTPS; with `send_limit`
    (plain FTP only), files are sent at that many bytes per second; on `port` (0: one the system
    picks)."""
    authorizer = DummyAuthorizer()
    authorizer.add_user(user, password, str(home), perm="elradfmwMT")
    base: type[FTPHandler] = FTPHandler if pki is None else TLS_FTPHandler
    # A subclass per server: pyftpdlib's settings are class attributes.
    handler: type[FTPHandler] = type("TestHandler", (base,), {})
    handler.authorizer = authorizer
    handler.passive_ports = None  # passive mode on a port the system picks
    if send_limit is not None:
        assert pki is None, "pyftpdlib throttles plain FTP data connections only"
        handler.dtp_handler = type("Throttled", (ThrottledDTPHandler,), {"write_limit": send_limit})
    if pki is not None:
        handler.certfile = str(pki.server_cert)  # type: ignore[attr-defined]
        handler.keyfile = str(pki.server_key)  # type: ignore[attr-defined]
        handler.tls_control_required = True  # type: ignore[attr-defined]
        handler.tls_data_required = True  # type: ignore[attr-defined]
    # Its own IO loop: pyftpdlib's default is one per process, shared by every server in it.
    server = FTPServer(("127.0.0.1", port), handler, ioloop=IOLoop())
    port = server.socket.getsockname()[1]
    stop = threading.Event()

    def run() -> None:
        # pyftpdlib's loop is not thread-safe: it runs and is closed in this one thread.
        while not stop.is_set():
            server.ioloop.loop(timeout=0.05, blocking=False)
        server.close_all()

    thread = threading.Thread(target=run, name=f"ftp-server-{port}", daemon=True)
    thread.start()
    try:
        yield FtpSite(port, home, user, password, "ftp" if pki is None else "ftps")
    finally:
        stop.set()
        thread.join(10)
        assert not thread.is_alive(), "the FTP server thread did not stop"
