"""The OCPP-J RPC endpoint of one connection: spec-correct where the library is not.

We keep the `ocpp` library's message classes, schemas and `@on` routing, but
own the frame loop (project decision D2), because the library's loop
- answers an unknown action with NotSupported and a known one without a
  handler with NotImplemented, the reverse of OCPP-J Table 7;
- sends 2.0.1 error codes for 1.6 schema violations;
- lets an in-flight call wait its whole timeout after the socket dropped;
- cannot stay silent while BootNotification is Rejected (`may_answer`).

Theory of operation. `run()` reads frames until the connection closes.
A CALL is validated, handed to the `@on` handler of the handler objects
(`bridge.ocpp.routing`) and answered (or left unanswered while `answering`
is False); its `@after` hook then runs as a task, so a hook may itself
`call()` without the deadlock the library has when a handler calls. A CALLRESULT or CALLERROR
is parsed and resolves the single outstanding outgoing call (OCPP-J allows one per
direction; `call()` serialises with a lock). When `run()` ends for any
reason the outstanding call fails at once with `NotConnected`.

A frame that is not JSON, has the wrong shape, or is refused by
`wire.decode` (too deep, numbers out of range, not Unicode) never ends the
connection: where its message id can be recovered a CALL gets a CALLERROR
and an answer fails its call; otherwise it is logged and dropped (OCPP-J
1.6 defines no answer to a frame without an id). Whatever a handler does
wrong is answered InternalError; only the socket's own end stops `run()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from websockets.exceptions import ConnectionClosed

from bridge.log import log_frame
from bridge.ocpp import schema
from bridge.ocpp.errors import (
    CallErrorReceived,
    CallFailed,
    CallTimeout,
    ErrorCode,
    InvalidResponse,
    NotConnected,
    OcppError,
)
from bridge.ocpp.routing import KNOWN_ACTIONS, Routes
from bridge.ocpp.wire import BadFrame, RawCall, decode, encode, message_id, parse_answer, to_wire

if TYPE_CHECKING:
    from bridge.metrics import RpcMetrics
    from bridge.ocpp.ports import FrameSink

CALL, CALLRESULT, CALLERROR = 2, 3, 4
_ERROR_CODES = frozenset(str(code) for code in ErrorCode)
MAX_ID_LENGTH = 36

# (direction "out"|"in", kind "call"|"result"|"error", action, payload): sees every frame.
Observer = Callable[[str, str, str, Any], None]


@dataclass
class _Pending:
    unique_id: str
    action: str
    future: asyncio.Future[Any]
    on_result: Callable[[Any], None] | None


class Connection(Protocol):
    async def recv(self) -> str | bytes: ...
    async def send(self, message: str) -> None: ...


def _time_up(future: asyncio.Future[Any], why: str) -> None:
    if not future.done():
        future.set_exception(CallTimeout(why))


# CALLERRORs that say nothing against the CALL: a known action not supported, our own failure.
_NOT_INVALID = frozenset({ErrorCode.NOT_SUPPORTED, ErrorCode.INTERNAL_ERROR})


class Endpoint:
    """Both directions of OCPP-J RPC on one connection."""

    def __init__(
        self,
        connection: Connection,
        handlers: object,
        *,
        name: str,
        timeout: Callable[[], float],
        on_traffic: Callable[[str, str], None] | None = None,
        observer: Observer | None = None,
        may_answer: Callable[[], bool] = lambda: True,
        metrics: RpcMetrics | None = None,
        on_invalid: Callable[[str], None] | None = None,
        frame_sink: FrameSink | None = None,
    ) -> None:
        self._connection = connection
        self._frame_sink = frame_sink  # the runtime's ring of recent frames (the page's live log)
        self._on_invalid = on_invalid  # told of each CALL refused as not valid OCPP (InvalidMessages)
        self._routes = Routes(handlers)
        self._name = name
        self._timeout = timeout
        self._on_traffic = on_traffic
        self._observer = observer
        self._call_lock = asyncio.Lock()
        self._pending: _Pending | None = None
        self._closed = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._after_reply: list[Callable[[], Awaitable[Any] | None]] = []
        self._may_answer = may_answer  # False while BootNotification is Rejected: CALLs get no answer
        self._metrics = metrics

    @property
    def connection(self) -> Connection:
        """The connection this endpoint reads and writes (the websocket, or a test's stand-in)."""
        return self._connection

    # -- receiving -------------------------------------------------------
    async def run(self) -> None:
        """Serve frames until the connection closes (the exception propagates)."""
        try:
            while True:
                raw = await self._connection.recv()
                text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
                log_frame(self._name, "<-", text)
                if self._frame_sink is not None:
                    self._frame_sink("in", text)
                try:
                    await self.receive(text)
                except (ConnectionClosed, OSError):
                    raise
                except Exception:
                    # A bug of ours with one frame must not end the link: the central system
                    # would see silence, and the bridge a reconnect it did not need.
                    logging.getLogger(__name__).exception("%s: a frame could not be handled", self._name)
        finally:
            self._closed = True
            if self._pending is not None and not self._pending.future.done():
                self._pending.future.set_exception(
                    NotConnected("connection closed while waiting for the answer")
                )
                self._pending.future.exception()  # the caller may be gone (cancelled): no "never retrieved"

            for task in self._tasks:
                task.cancel()

    async def receive(self, text: str) -> None:
        """One frame read from the connection, handled: the step `run()` takes per frame."""
        try:
            decoded = decode(text)
        except BadFrame as bad:
            await self._refuse(bad)
            return
        frame = decoded.frame
        if not isinstance(frame, list) or not frame or not isinstance(frame[0], int):
            logging.getLogger(__name__).warning(
                "%s: dropping a frame that is not an array starting with a MessageTypeId", self._name
            )
            return
        kind = frame[0]
        if kind == CALL:
            await self._receive_call(frame, decoded.beyond_range)
        elif kind in (CALLRESULT, CALLERROR):
            self._receive_answer(frame, decoded.beyond_range)
        else:
            # OCPP-J 4.1.3: an unknown MessageTypeId is ignored.
            logging.getLogger(__name__).warning("%s: ignoring frame with MessageTypeId %r", self._name, kind)

    async def _refuse(self, bad: BadFrame) -> None:
        """A refused CALL gets its CALLERROR; a refused answer fails the call it answers."""
        if bad.kind == CALL and bad.unique_id is not None:
            if self._may_answer():
                await self._send_error(bad.unique_id, OcppError(bad.code, bad.why))
            return
        pending = self._pending
        if (
            bad.kind in (CALLRESULT, CALLERROR)
            and pending is not None
            and pending.unique_id == bad.unique_id
            and not pending.future.done()
        ):
            pending.future.set_exception(InvalidResponse(f"{pending.action} answer refused: {bad.why}"))
            return
        logging.getLogger(__name__).warning("%s: dropping a frame: %s", self._name, bad.why)

    async def _receive_call(self, frame: list[Any], beyond_range: str | None) -> None:
        if len(frame) < 2 or not isinstance(frame[1], str) or not frame[1]:
            logging.getLogger(__name__).warning("%s: dropping a CALL without a usable message id", self._name)
            return
        unique_id: str = frame[1]
        if not self._may_answer():
            action = frame[2] if len(frame) > 2 and isinstance(frame[2], str) else "a CALL"
            logging.getLogger(__name__).info(
                "%s: not answering %s (%s) while BootNotification is Rejected",
                self._name,
                action[:40],
                unique_id,
            )
            return
        if len(unique_id) > MAX_ID_LENGTH:
            await self._send_error(
                unique_id, OcppError(ErrorCode.PROTOCOL_ERROR, f"message id longer than {MAX_ID_LENGTH}")
            )
            return
        if len(frame) != 4 or not isinstance(frame[2], str) or not isinstance(frame[3], dict):
            await self._send_error(
                unique_id,
                OcppError(ErrorCode.FORMATION_VIOLATION, "a CALL is [2, id, action, {payload}]"),
            )
            return
        action, payload = frame[2], frame[3]
        self._after_reply = []
        try:
            response = await self._routes.dispatch(action, payload, beyond_range)
        except OcppError as error:
            self._answered(action, str(error.code))
            await self._send_error(unique_id, error)
            return
        except Exception:
            logging.getLogger(__name__).exception("%s: handler for %s failed", self._name, action)
            self._answered(action, str(ErrorCode.INTERNAL_ERROR))
            await self._send_error(
                unique_id, OcppError(ErrorCode.INTERNAL_ERROR, f"{action} could not be processed")
            )
            return
        self._answered(action, "CALLRESULT")
        await self._send([CALLRESULT, unique_id, response])
        if self._observer:
            self._observer("in", "call", action, payload)
            self._observer("out", "result", action, response)
        if self._on_traffic:
            self._on_traffic("received", action)
        followups, self._after_reply = self._after_reply, []
        for followup in followups:
            result = followup()
            if inspect.isawaitable(result):
                self.spawn(result, f"follow-up of {action}")
        after = self._routes.after(action, payload)
        if after is not None:
            self.spawn(after, f"after {action}")

    def _answered(self, action: str, result: str) -> None:
        if self._metrics is not None:
            # An unknown action is counted under one name: a peer cannot grow the label set at will.
            self._metrics.call_answered(action if action in KNOWN_ACTIONS else "(unknown)", result)

    def after_reply(self, followup: Callable[[], Awaitable[Any] | None]) -> None:
        """Run `followup` once the answer to the CALL being handled is on the wire.

        A handler decides and answers; what its answer promises (the
        StartTransaction after RemoteStartTransaction Accepted, the
        StatusNotification after ChangeAvailability) happens here, so the
        central system always sees the answer first.
        """
        self._after_reply.append(followup)

    def spawn(self, awaitable: Awaitable[Any], what: str) -> None:
        """Run a follow-up of this connection; it is cancelled when the connection ends."""

        async def guarded() -> None:
            try:
                await awaitable
            except (NotConnected, asyncio.CancelledError):
                pass
            except Exception:
                logging.getLogger(__name__).exception("%s: %s failed", self._name, what)

        task = asyncio.create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _receive_answer(self, frame: list[Any], beyond_range: str | None = None) -> None:
        unique_id = frame[1] if len(frame) > 1 else None
        pending = self._pending
        if pending is None or pending.unique_id != unique_id or pending.future.done():
            logging.getLogger(__name__).info(
                "%s: ignoring an answer to no outstanding call (id %r); a late answer after a timeout?",
                self._name,
                unique_id,
            )
            return
        if self._observer:
            self._observer(
                "in",
                "error" if frame[0] == CALLERROR else "result",
                pending.action,
                frame[2] if len(frame) > 2 else None,
            )
        try:
            result = parse_answer(pending.action, frame, beyond_range)
        except CallFailed as exc:
            pending.future.set_exception(exc)
            return
        if pending.on_result is not None:
            # Applied before the next frame is read: e.g. a Rejected boot silences
            # the very next CALL of the central system.
            pending.on_result(result)
        pending.future.set_result(result)

    # -- sending ---------------------------------------------------------
    async def _send(self, frame: list[Any]) -> None:
        text = encode(frame)
        log_frame(self._name, "->", text)
        if self._frame_sink is not None:
            self._frame_sink("out", text)
        await self._connection.send(text)

    async def _send_error(self, unique_id: str, error: OcppError) -> None:
        if self._observer:
            self._observer("out", "error", "", str(error.code))
        logging.getLogger(__name__).warning(
            "%s: answering CALL %s with %s: %s", self._name, unique_id, error.code, error.description
        )
        if self._on_invalid is not None and error.code not in _NOT_INVALID:
            self._on_invalid(f"{error.code}: {error.description}")
        await self._send([CALLERROR, unique_id, str(error.code), error.description, error.details])

    async def call(
        self, payload: Any, on_result: Callable[[Any], None] | None = None, unique_id: str | None = None
    ) -> Any:
        """Send a CALL (an `ocpp.v16.call` dataclass) and return the typed CALLRESULT.

        `on_result` runs inside the receive loop the moment the answer is
        parsed, before any later frame is handled. `unique_id` lets a resent
        message keep its id, so a central system can recognise a repeat.
        """
        if isinstance(payload, RawCall):
            action, wire = payload.action, payload.payload  # checked when it was made
        else:
            action, wire = type(payload).__name__, to_wire(payload)
            error = schema.violation(CALL, action, wire)
            if error is not None:
                raise ValueError(f"refusing to send an invalid {action}: {error.description}")
        async with self._call_lock:
            if self._closed:
                if self._metrics is not None:
                    self._metrics.call_done(action, "NotConnected", None)
                raise NotConnected("not connected")
            unique_id = unique_id or message_id()
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._pending = _Pending(unique_id, action, future, on_result)
            sent_at: float | None = None
            result = "NotConnected"
            try:
                await self._send([CALL, unique_id, action, wire])
                sent_at = time.monotonic()
                if self._observer:
                    self._observer("out", "call", action, wire)
                if self._on_traffic:
                    self._on_traffic("sent", action)
                timeout = self._timeout()
                # A timer that fails the future: lighter than asyncio.timeout (a cancellation and
                # its uncancel) or wait_for (a task); an answer after it finds the future done.
                timer = future.get_loop().call_later(
                    timeout, _time_up, future, f"no answer to {action} within {timeout:g} s"
                )
                try:
                    answer = await future
                    result = "CALLRESULT"
                    return answer
                except CallTimeout:
                    result = "Timeout"
                    raise
                except CallErrorReceived as exc:
                    result = exc.code if exc.code in _ERROR_CODES else "CALLERROR"  # bounded labels
                    raise
                except InvalidResponse:
                    result = "InvalidResponse"
                    raise
                except asyncio.CancelledError:
                    result = "Cancelled"  # the caller gave up (a stop); not the link's doing
                    raise
                finally:
                    timer.cancel()
            except (OSError, ConnectionClosed) as exc:
                self._closed = True  # later calls fail at once too
                raise NotConnected(f"sending {action} failed: {exc}") from exc
            finally:
                self._pending = None
                if not future.done():
                    future.cancel()
                elif not future.cancelled():
                    future.exception()  # a cancelled caller whose timer fired: no "never retrieved"
                if self._metrics is not None:
                    answered = sent_at is not None and result == "CALLRESULT"
                    took = time.monotonic() - sent_at if answered and sent_at is not None else None
                    self._metrics.call_done(action, result, took)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._tasks, return_exceptions=True)
