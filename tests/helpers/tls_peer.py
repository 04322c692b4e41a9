"""A TLS server that takes one handshake in a thread, as OpenSSL servers (nginx, Java) do: it sends
its alert before it closes (an asyncio server drops the connection without one), so a test sees
the refusal a real central system gives. The listening socket is closed on exit."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def one_handshake(context: ssl.SSLContext) -> Iterator[str]:
    """Yields a wss:// URL on 127.0.0.1; the server does one TLS handshake there and closes."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(10)

    def serve() -> None:
        with contextlib.suppress(OSError):
            conn, _ = listener.accept()
            with conn, contextlib.suppress(OSError):
                conn.settimeout(10)
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"wss://127.0.0.1:{listener.getsockname()[1]}/ocpp"
    finally:
        listener.close()
        thread.join(10)
