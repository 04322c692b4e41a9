"""A strict third-party OCPP 1.6J central system for the tests, run as a Node.js child process.

``ocpp_rpc_csms.js`` (next to this file) is built on the npm library ``ocpp-rpc`` in strict mode, so
every CALL the daemon sends and every CALLRESULT it returns is checked against the OCPP 1.6 JSON
schemas by an implementation that shares no code with the daemon or the Python ``ocpp`` library.

Usage::

    async with OcppRpcPeer(boot_status="Accepted", interval=300) as peer:
        ...  # point the daemon at f"{peer.url}/<identity>"
        boot = await peer.wait_for(lambda e: e["event"] == "call" and e["method"] == "BootNotification")
        answer = await peer.call("CP-1", "RemoteStopTransaction", {"transactionId": 1})
        assert answer["result"] == {"status": "Accepted"}

Events (``peer.events``, one dict per line the process printed, in order): ``listening``,
``connect``, ``call``, ``answer`` (the peer's reply to a CALL: ``result`` for a CALLRESULT, ``code``
for a CALLERROR), ``strictValidationFailure``, ``badMessage``, ``close``, ``auth_rejected``, ``result``
and ``error``. With ``firmware_management=True`` the central system answers (and so
validates) DiagnosticsStatusNotification and FirmwareStatusNotification; with ``security=True`` the
security extension's SecurityEventNotification, SignCertificate (Accepted), LogStatusNotification and
SignedFirmwareStatusNotification; without, NotImplemented (unvalidated).
Node.js and ``npm ci`` in this folder (``make test`` does it) are required.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.processes import stop_process

__all__ = ["PEER_DIR", "OcppRpcCallError", "OcppRpcPeer"]

PEER_DIR = Path(__file__).resolve().parent
SCRIPT = "ocpp_rpc_csms.js"

Event = dict[str, Any]
Predicate = Callable[[Event], bool]


class OcppRpcCallError(Exception):
    """A central-system-initiated call that did not get a CALLRESULT.

    ``code`` is the OCPP-J error code of the CALLERROR (``NotImplemented``, ``FormationViolation``...),
    ``FormatViolation`` and friends when ocpp-rpc refused to send invalid params or rejected an
    invalid CALLRESULT, ``NotConnected`` when no charge point has that identity, ``TimeoutError``
    when the charge point did not answer in time.
    """

    def __init__(self, code: str, message: str, event: Event | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.event = event


class OcppRpcPeer:
    """Async context manager running ``node ocpp_rpc_csms.js`` on 127.0.0.1 and an OS-chosen port."""

    def __init__(
        self,
        boot_status: str = "Accepted",
        interval: int = 300,
        password: str | None = None,
        invalid_tags: Iterable[str] = (),
        firmware_management: bool = False,
        *,
        security: bool = False,
        node: str = "node",
        start_timeout: float = 10.0,
    ) -> None:
        self.boot_status = boot_status
        self.interval = interval
        self.password = password
        self.invalid_tags = tuple(invalid_tags)
        self.firmware_management = firmware_management
        self.security = security
        self.events: list[Event] = []
        self.port: int = 0
        self._node = node
        self._start_timeout = start_timeout
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._stderr_reader: asyncio.Task[None] | None = None
        self._stderr = bytearray()
        self._eof = False
        self._changed = asyncio.Condition()
        self._ids = itertools.count(1)

    # -- lifecycle ---------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The endpoint prefix; a charge point connects to ``f"{peer.url}/{identity}"``."""
        return f"ws://127.0.0.1:{self.port}/ocpp"

    @property
    def returncode(self) -> int | None:
        """The exit status of the Node.js process, None while it runs (or before start)."""
        return None if self._proc is None else self._proc.returncode

    @property
    def stderr(self) -> str:
        """What the Node.js process wrote on stderr so far."""
        return self._stderr.decode("utf-8", "replace")

    async def __aenter__(self) -> OcppRpcPeer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Spawn the central system and wait until it listens (``__aenter__`` does this)."""
        if self._proc is not None:
            raise RuntimeError("OcppRpcPeer already started")
        args = [SCRIPT, "--port", "0", "--boot-status", self.boot_status, "--interval", str(self.interval)]
        if self.password is not None:
            args += ["--password", self.password]
        if self.invalid_tags:
            args += ["--invalid-tags", ",".join(self.invalid_tags)]
        if self.firmware_management:
            args.append("--firmware-management")
        if self.security:
            args.append("--security")
        try:
            self._proc = await asyncio.create_subprocess_exec(
                self._node,
                *args,
                cwd=PEER_DIR,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                limit=16 * 1024 * 1024,  # a line holds a whole OCPP payload
            )
        except FileNotFoundError as exc:
            raise RuntimeError(f"cannot run {self._node!r}: Node.js (>= 17.3) is required") from exc
        self._reader = asyncio.create_task(self._read_stdout(), name="ocpp-rpc-peer-stdout")
        self._stderr_reader = asyncio.create_task(self._read_stderr(), name="ocpp-rpc-peer-stderr")
        try:
            listening = await self.wait_for(lambda e: e["event"] == "listening", timeout=self._start_timeout)
        except AssertionError as exc:
            await self.stop()
            hint = ""
            if "Cannot find module" in self.stderr:
                hint = f"\nocpp-rpc is not installed: run `make test`, or `npm ci` in {PEER_DIR}"
            raise RuntimeError(
                f"{SCRIPT} did not start (exit status {self.returncode}).{hint}\n"
                f"stderr:\n{self.stderr or '(empty)'}"
            ) from exc
        self.port = int(listening["port"])

    async def stop(self) -> None:
        """SIGTERM the process (SIGKILL after 3 s), reap it and stop the readers. Idempotent."""
        proc = self._proc
        if proc is not None:
            await stop_process(proc, grace_s=3.0)
        for task in (self._reader, self._stderr_reader):
            if task is not None and not task.done():
                # Let the readers drain what the process printed before it exited.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(task), timeout=1.0)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if proc is not None and proc.stdin is not None:
            proc.stdin.close()

    async def _read_stdout(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        stdout = self._proc.stdout
        try:
            while line := await stdout.readline():
                text = line.decode("utf-8", "replace").strip()
                if not text:
                    continue
                try:
                    event = json.loads(text)
                except ValueError:
                    event = {"event": "raw", "line": text}
                if not isinstance(event, dict):
                    event = {"event": "raw", "line": text}
                async with self._changed:
                    self.events.append(event)
                    self._changed.notify_all()
        finally:
            self._eof = True
            async with self._changed:
                self._changed.notify_all()

    async def _read_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        while chunk := await self._proc.stderr.read(65536):
            self._stderr += chunk

    # -- queries -----------------------------------------------------------------------------------

    @staticmethod
    def _matches(predicate: Predicate, event: Event) -> bool:
        # A predicate written for one kind of event may index keys other events lack.
        try:
            return bool(predicate(event))
        except (KeyError, IndexError, TypeError):
            return False

    # The timeout parameters are the API the daemon's tests use (hence the ASYNC109 exceptions).
    async def wait_for(self, predicate: Predicate, timeout: float = 5.0) -> Event:
        """Return the first event, already seen or still to come, for which ``predicate`` is true.

        Raises AssertionError listing every event seen when none matches within ``timeout`` seconds
        or when the process exits first. A predicate raising KeyError/IndexError/TypeError is false.
        """
        found: list[Event] = []
        checked = 0

        def ready() -> bool:
            nonlocal checked
            while checked < len(self.events):
                event = self.events[checked]
                checked += 1
                if self._matches(predicate, event):
                    found.append(event)
                    return True
            return self._eof

        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(ready), timeout)
            except TimeoutError:
                pass
        if found:
            return found[0]
        why = "the central system exited" if self._eof else f"nothing matched within {timeout} s"
        seen = "\n".join(json.dumps(e) for e in self.events) or "(no events)"
        raise AssertionError(f"OcppRpcPeer.wait_for: {why}; events seen:\n{seen}")

    def calls(self, method: str | None = None, identity: str | None = None) -> list[Event]:
        """The CALL events received so far (from every charge point), optionally filtered."""
        return [
            e
            for e in self.events
            if e.get("event") == "call"
            and (method is None or e.get("method") == method)
            and (identity is None or e.get("identity") == identity)
        ]

    def answers(self, method: str, identity: str | None = None) -> list[Event]:
        """The ``answer`` events replying to the CALLs of ``method`` received so far, in order."""
        ids = {(c["identity"], c["messageId"]) for c in self.calls(method, identity)}
        return [
            e
            for e in self.events
            if e.get("event") == "answer" and (e.get("identity"), e.get("messageId")) in ids
        ]

    # -- central-system-initiated calls ------------------------------------------------------------

    async def call(
        self,
        identity: str,
        method: str,
        params: dict[str, Any] | None = None,
        timeout: float = 5.0,
    ) -> Event:
        """Send ``method`` to the charge point ``identity`` and return the ``result`` event.

        The CALLRESULT payload is ``event["result"]``. Raises OcppRpcCallError (with ``.code``) for a
        CALLERROR, an invalid request or response (strict mode), an unknown identity or a timeout.
        """
        proc = self._proc
        if proc is None or proc.stdin is None or proc.returncode is not None:
            raise RuntimeError("OcppRpcPeer is not running")
        command_id = next(self._ids)
        command = {
            "id": command_id,
            "identity": identity,
            "method": method,
            "params": {} if params is None else params,
            "timeoutMs": int(timeout * 1000),
        }
        proc.stdin.write(json.dumps(command).encode() + b"\n")
        await proc.stdin.drain()
        try:
            # ocpp-rpc times the call out itself; the extra second leaves room for its error event.
            event = await self.wait_for(
                lambda e: e["event"] in ("result", "error") and e["id"] == command_id, timeout=timeout + 1.0
            )
        except AssertionError as exc:
            raise OcppRpcCallError("TimeoutError", f"no answer to {method} for {identity}: {exc}") from exc
        if event["event"] == "error":
            raise OcppRpcCallError(str(event.get("code")), str(event.get("message", "")), event)
        return event
