"""systemd's notify protocol (sd_notify(3)) in a few lines, without a compiled dependency.

Theory. A service of `Type=notify` tells systemd about itself by sending
datagrams of newline-separated `KEY=value` fields to the AF_UNIX socket named
by `$NOTIFY_SOCKET` (a leading `@` names a socket in the abstract namespace:
it stands for a NUL byte). The fields used here: `READY=1` (start-up done),
`STATUS=...` (one line shown by `systemctl status`), `WATCHDOG=1` (still
alive, needed at least every `$WATCHDOG_USEC` microseconds when the unit sets
`WatchdogSec=`) and `STOPPING=1` (a graceful stop has begun).

The watchdog is ours when `$WATCHDOG_USEC` is set and `$WATCHDOG_PID` is
absent or our pid; pings go out every `WATCHDOG_USEC / 2`, as sd_watchdog_enabled(3)
advises. Without `$NOTIFY_SOCKET` (a terminal, a test, a container) every call is a
no-op. Sending never blocks and never raises: a lost notification is logged at
DEBUG, and systemd's own timeouts deal with a service that cannot reach it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger("bridge.sd_notify")


class Notifier:
    def __init__(self, env: Mapping[str, str] | None = None, pid: int | None = None) -> None:
        env = os.environ if env is None else env
        address = env.get("NOTIFY_SOCKET", "")
        self.address: str | None = None
        if address.startswith("@"):
            self.address = "\0" + address[1:]
        elif address.startswith("/"):
            self.address = address
        elif address:
            log.warning("NOTIFY_SOCKET=%r is neither a path nor an abstract socket: ignored", address)
        self.watchdog_usec: int | None = None
        usec, watchdog_pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
        mine = not watchdog_pid or watchdog_pid == str(os.getpid() if pid is None else pid)
        if usec.isdigit() and int(usec) > 0 and mine:
            self.watchdog_usec = int(usec)
        self._socket: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    @property
    def watchdog_interval_s(self) -> float | None:
        """How often to send WATCHDOG=1 (half the timeout), or None when no watchdog is asked for."""
        if self.address is None or self.watchdog_usec is None:
            return None
        return self.watchdog_usec / 2_000_000

    def notify(self, *fields: str) -> bool:
        """Send `fields` (e.g. "READY=1", "STATUS=...") in one datagram; True if it left."""
        if self.address is None:
            return False
        message = "\n".join(f.replace("\n", " ") for f in fields).encode()
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._socket.setblocking(False)
            self._socket.sendto(message, self.address)
        except OSError as exc:
            log.debug("notification %r not delivered: %s", fields, exc)
            return False
        return True

    def close(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.close()
            self._socket = None
