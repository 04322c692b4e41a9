"""FTP and FTPS (explicit TLS, AUTH TLS + PROT P) with the standard library's ftplib in a thread.

Why ftplib and not aioftp: it is in the standard library (no new runtime dependency on a small
charge-point controller), D6 names it for uploads, and it has FTPS built in (aioftp's explicit TLS
upgrade of the control and data channels is less complete). It blocks, so every session runs in a
worker thread; the event loop only awaits it. Cancelling the awaiting task shuts the thread's
sockets down, so the thread ends at once instead of at its socket timeout.

Passive mode always (ftplib's default; a charge point behind NAT cannot take active connections).
The data address is the control connection's host, not the one PASV announces (ftplib's default).
"""

from __future__ import annotations

import asyncio
import contextlib
import ftplib
import socket
import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from bridge.transfer.errors import Reason, TransferError
from bridge.transfer.files import PartFile
from bridge.transfer.urls import Location, scrub

BLOCK = 256 * 1024
T = TypeVar("T")


class _Sockets:
    """The sockets a thread is using, so that the loop can shut them down on cancellation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self.aborted = False

    def track(self, sock: socket.socket) -> None:
        with self._lock:
            if self.aborted:
                raise TransferError(Reason.TIMEOUT, "cancelled")
            self._open.append(sock)

    def abort(self) -> None:
        with self._lock:
            self.aborted = True
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


class _Tracked:
    """ftplib's FTP whose control socket is tracked the moment it is set, before `connect()` reads
    the greeting: a cancel while a server takes the connection and keeps silent shuts it at once
    (else the thread waited for its socket timeout). FTP_TLS's wrapped socket is tracked the same way."""

    tracker: _Sockets

    @property
    def sock(self) -> socket.socket | None:
        sock: socket.socket | None = self.__dict__.get("_sock")
        return sock

    @sock.setter
    def sock(self, value: socket.socket | None) -> None:
        self.__dict__["_sock"] = value
        if value is not None:
            try:
                self.tracker.track(value)
            except TransferError:
                value.close()  # cancelled before it was tracked: it goes at once
                raise


class _FTP(_Tracked, ftplib.FTP):
    pass


class _FTPS(_Tracked, ftplib.FTP_TLS):
    pass


async def _in_thread(location: Location, job: Callable[[_Sockets], T]) -> T:
    sockets = _Sockets()
    task = asyncio.ensure_future(asyncio.to_thread(_mapped, location, job, sockets))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        sockets.abort()
        # The thread must let go of the file before the caller removes it.
        await asyncio.wait([task])
        if not task.cancelled():
            # Retrieved: the shield let go of it, and an error nobody retrieved is logged from the
            # task's finaliser, with a traceback whose formatting parses source (ast) inside the
            # garbage collector: CPython 3.11 then fails an unrelated ast.parse running at that
            # moment with "AST constructor recursion depth mismatch" (gh-106905).
            task.exception()
        raise


def _mapped(location: Location, job: Callable[[_Sockets], T], sockets: _Sockets) -> T:
    """Runs `job`, turning ftplib's and the socket layer's exceptions into TransferError."""
    where = location.display
    try:
        return job(sockets)
    except TransferError:
        raise
    except ftplib.error_perm as exc:
        code = str(exc)[:3]
        reason = {"530": Reason.LOGIN_REFUSED, "550": Reason.NOT_FOUND}.get(code, Reason.SERVER_ERROR)
        raise TransferError(reason, f"{where}: the server answered {scrub(str(exc), location)}") from None
    except (ftplib.error_temp, ftplib.error_reply, ftplib.error_proto) as exc:
        raise TransferError(Reason.SERVER_ERROR, f"{where}: {scrub(str(exc), location)}") from None
    except ssl.SSLError as exc:
        raise TransferError(Reason.TLS, f"{where}: {scrub(str(exc), location)}") from None
    except ConnectionRefusedError:
        raise TransferError(Reason.REFUSED, f"{where}: connection refused") from None
    except TimeoutError:
        raise TransferError(Reason.TIMEOUT, f"{where}: no answer or data within the time limit") from None
    except (ConnectionResetError, BrokenPipeError, EOFError) as exc:
        if sockets.aborted:
            raise TransferError(Reason.TIMEOUT, f"{where}: cancelled") from None
        raise TransferError(Reason.CUT_OFF, f"{where}: connection lost ({type(exc).__name__})") from None
    except OSError as exc:
        raise TransferError(Reason.REFUSED, f"{where}: {scrub(str(exc), location)}") from None


def _login(
    location: Location, timeout_s: float, context: ssl.SSLContext | None, sockets: _Sockets
) -> ftplib.FTP:
    ftp: _FTP | _FTPS
    if location.scheme == "ftps":
        # FTP_TLS's own default context verifies nothing: the system's CA store unless one is given.
        ftp = _FTPS(context=context or ssl.create_default_context(), timeout=timeout_s)
    else:
        ftp = _FTP(timeout=timeout_s)
    ftp.tracker = sockets  # its control socket is tracked as soon as it is made (and when wrapped)
    ftp.connect(location.host, location.port or 21)
    ftp.login(location.user or "anonymous", location.password or "anonymous@")  # FTP_TLS: AUTH TLS first
    if isinstance(ftp, ftplib.FTP_TLS):
        ftp.prot_p()
    ftp.set_pasv(True)
    ftp.voidcmd("TYPE I")
    return ftp


def _end_data(conn: socket.socket) -> None:
    # As ftplib's retrbinary/storbinary: a TLS data channel ends with a close_notify.
    if isinstance(conn, ssl.SSLSocket):
        conn.unwrap()


async def retrieve(
    location: Location, part: PartFile, *, timeout_s: float, context: ssl.SSLContext | None
) -> None:
    """RETR of the URL's path into `part` (not committed)."""

    def job(sockets: _Sockets) -> None:
        ftp = _login(location, timeout_s, context, sockets)
        try:
            path = location.path.lstrip("/")  # relative to the login directory (RFC 1738)
            try:
                announced: int | None = ftp.size(path)
            except ftplib.error_perm as exc:
                if str(exc).startswith("550"):
                    raise
                announced = None  # SIZE not supported: only the limit while reading guards
            if announced is not None:
                part.check_limit(announced)
            with ftp.transfercmd(f"RETR {path}") as conn:
                sockets.track(conn)
                while data := conn.recv(BLOCK):
                    part.write(data)
                _end_data(conn)
            ftp.voidresp()
            if announced is not None and part.size != announced:
                raise TransferError(
                    Reason.CUT_OFF, f"{location.display}: {part.size} of the {announced} bytes announced"
                )
        finally:
            ftp.close()

    await _in_thread(location, job)


async def store(
    location: Location, path: Path, name: str, *, timeout_s: float, context: ssl.SSLContext | None
) -> None:
    """STOR of the file at `path` as `name` into the URL's directory."""

    def job(sockets: _Sockets) -> None:
        ftp = _login(location, timeout_s, context, sockets)
        try:
            directory = location.path.strip("/")
            if directory:
                ftp.cwd(directory)
            with path.open("rb") as source, ftp.transfercmd(f"STOR {name}") as conn:
                sockets.track(conn)
                while data := source.read(BLOCK):
                    conn.sendall(data)
                _end_data(conn)
            ftp.voidresp()
        finally:
            ftp.close()

    await _in_thread(location, job)
