"""A strict OCPP 1.6 central system for tests, built on the `ocpp` library.

Independent of the code under test: it uses the library's own server-side
ChargePoint class and routing, and on top of that checks *every* frame the
charge point sends, recording each problem in `violations`:
- valid JSON, a proper CALL / CALLRESULT / CALLERROR shape;
- the payload against the 1.6 JSON schema of its action (answers too);
- message ids unique per connection and at most 36 characters;
- at most one outstanding CALL from the charge point (OCPP-J 4.1.1);
- every timestamp field ISO 8601 with a time zone;
- nothing but BootNotification before the first Boot is Accepted, except
  answers to our own calls while Pending.
Tests end with `cs.assert_clean()` (the fixture does it for them).
"""

from __future__ import annotations

import asyncio
import contextlib
import decimal
import functools
import http
import json
import re
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ocpp.exceptions import InternalError
from ocpp.messages import get_validator
from ocpp.routing import on
from ocpp.v16 import ChargePoint as LibraryChargePoint
from ocpp.v16 import call_result
from ocpp.v16.enums import Action
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

TIMESTAMP_FIELDS = {"timestamp", "currentTime", "expiryDate", "startSchedule", "validFrom", "validTo"}


def now_iso(offset_s: float = 0.0) -> str:
    return (datetime.now(UTC) + timedelta(seconds=offset_s)).isoformat().replace("+00:00", "Z")


@dataclass
class Frame:
    at: float
    direction: str  # "in" = from the charge point, "out" = to it
    raw: str
    message: list[Any] | None
    action: str | None  # for answers: the action of the call they answer


@dataclass
class Link:
    """One websocket connection of one charge point."""

    cp_id: str
    frames: list[Frame] = field(default_factory=list)
    open_call_from_cp: str | None = None
    calls_to_cp: dict[str, str] = field(default_factory=dict)  # our message id -> action
    seen_ids: set[str] = field(default_factory=set)
    accepted: bool = False
    closed: bool = False


DECIMAL_MESSAGES = {(2, "SetChargingProfile"), (2, "RemoteStartTransaction"), (3, "GetCompositeSchedule")}


@functools.cache
def validator_1_6(kind: int, action: str) -> Any:
    """The `ocpp` library's 1.6 schema for a CALL (2) or CALLRESULT (3), independent of our code.

    For the messages with `multipleOf: 0.1` the schema's numbers are Decimals, as the payload's are
    made: the library caches one validator per action whatever `parse_float` asked for, so its
    cached one may carry floats (and Decimal / float raises instead of reporting)."""
    library = get_validator(kind, action, "1.6")
    if (kind, action) not in DECIMAL_MESSAGES:
        return library
    schema = json.loads(json.dumps(library.schema, default=float), parse_float=decimal.Decimal)
    return type(library)(schema)


class _Recorder:
    """Wraps the server connection: records and checks every frame both ways."""

    def __init__(self, ws: ServerConnection, link: Link, cs: StrictCentralSystem) -> None:
        self.ws = ws
        self.link = link
        self.cs = cs

    async def recv(self) -> str:
        raw = await self.ws.recv()
        text = raw if isinstance(raw, str) else raw.decode()
        self.cs._inspect_incoming(self.link, text)
        return text

    async def send(self, text: str) -> None:
        self.cs._record_outgoing(self.link, text)
        try:
            await self.ws.send(text)
        except ConnectionClosed:
            # An answer to a connection the charge point already closed (a reset) is lost, as on a
            # real server; the library's loop must go on to read the frames that arrived before
            # the close (the answer to our own call among them), so this does not raise.
            pass


class _LibraryCP(LibraryChargePoint):
    """The library's server-side view of one charge point; answers come from the test's script."""

    def __init__(self, cp_id: str, conn: _Recorder, cs: StrictCentralSystem) -> None:
        super().__init__(cp_id, conn, response_timeout=10)
        self.cs = cs
        self.link = conn.link

    @on(Action.boot_notification)
    async def on_boot(self, **payload: Any) -> call_result.BootNotification:
        status, interval = self.cs.next_boot_answer(self.id)
        if status == "Accepted":
            self.link.accepted = True
            self.cs.accepted_ids.add(self.id)
        current_time = now_iso(self.cs.clock_offset_s)  # read before a delay, as a slow server would
        await asyncio.sleep(self.cs.answer_delay.get("BootNotification", 0.0))
        return call_result.BootNotification(current_time=current_time, interval=interval, status=status)

    @on(Action.heartbeat)
    def on_heartbeat(self, **payload: Any) -> call_result.Heartbeat:
        return call_result.Heartbeat(current_time=now_iso(self.cs.clock_offset_s))

    @on(Action.status_notification)
    async def on_status(self, **payload: Any) -> call_result.StatusNotification:
        await asyncio.sleep(self.cs.answer_delay.get("StatusNotification", 0.0))
        return call_result.StatusNotification()

    @on(Action.authorize)
    def on_authorize(self, id_tag: str, **payload: Any) -> call_result.Authorize:
        return call_result.Authorize(id_tag_info=self.cs.id_tag_info(id_tag))

    @on(Action.start_transaction)
    async def on_start(self, id_tag: str, **payload: Any) -> call_result.StartTransaction:
        await asyncio.sleep(self.cs.answer_delay.get("StartTransaction", 0.0))
        if self.cs.refuse.get("StartTransaction", 0) > 0:
            self.cs.refuse["StartTransaction"] -= 1
            raise InternalError(description="refused by the test")
        self.cs.last_transaction_id += 1
        return call_result.StartTransaction(
            transaction_id=self.cs.last_transaction_id, id_tag_info=self.cs.id_tag_info(id_tag)
        )

    @on(Action.stop_transaction)
    def on_stop(self, **payload: Any) -> call_result.StopTransaction:
        return call_result.StopTransaction()

    @on(Action.meter_values)
    def on_meter_values(self, **payload: Any) -> call_result.MeterValues:
        return call_result.MeterValues()

    @on(Action.data_transfer)
    def on_data_transfer(self, **payload: Any) -> call_result.DataTransfer:
        return call_result.DataTransfer(status="UnknownVendorId")

    @on(Action.diagnostics_status_notification)
    def on_diagnostics_status(self, **payload: Any) -> call_result.DiagnosticsStatusNotification:
        return call_result.DiagnosticsStatusNotification()

    @on(Action.firmware_status_notification)
    def on_firmware_status(self, **payload: Any) -> call_result.FirmwareStatusNotification:
        return call_result.FirmwareStatusNotification()

    # -- the security extension (white paper, edition 3) -------------------------------------
    @on(Action.security_event_notification)
    def on_security_event(self, **payload: Any) -> call_result.SecurityEventNotification:
        return call_result.SecurityEventNotification()

    @on(Action.sign_certificate)
    async def on_sign_certificate(self, csr: str, **payload: Any) -> call_result.SignCertificate:
        return call_result.SignCertificate(status=self.cs.sign_certificate_status)

    @on(Action.log_status_notification)
    def on_log_status(self, **payload: Any) -> call_result.LogStatusNotification:
        return call_result.LogStatusNotification()

    @on(Action.signed_firmware_status_notification)
    def on_signed_firmware_status(self, **payload: Any) -> call_result.SignedFirmwareStatusNotification:
        return call_result.SignedFirmwareStatusNotification()


class StrictCentralSystem:
    def __init__(
        self,
        boot: Iterable[tuple[str, int]] = (("Accepted", 300),),
        known_ids: Iterable[str] | None = None,
        password: str | bytes | None = None,  # bytes: a password that is not text (D3's hex form)
        invalid_tags: Iterable[str] = (),
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.boot_script = list(boot)  # the last entry repeats
        self.ssl_context = ssl_context  # wss:// with this server context (a test PKI); None: ws://
        self.sign_certificate_status = "Accepted"  # the answer to SignCertificate
        self.known_ids = set(known_ids) if known_ids is not None else None
        self.password = password
        self.invalid_tags = {t.lower() for t in invalid_tags}
        self.parents: dict[str, str] = {}  # idTag (lower case) -> the parentIdTag answered for it
        self.last_transaction_id = 0
        self.answer_delay: dict[str, float] = {}  # action -> seconds before answering
        self.clock_offset_s = 0.0  # the central system's clock, this far ahead of the real time
        self.refuse: dict[str, int] = {}  # action -> how many more times to answer with CALLERROR
        # A central system remembers whom it accepted: a reconnect needs no new boot (OCPP-J 5.4).
        self.accepted_ids: set[str] = set()
        self.links: list[Link] = []
        self.handshakes: list[tuple[str, int]] = []  # (path, HTTP status answered)
        self.violations: list[str] = []
        self.port = 0
        self._cps: dict[str, _LibraryCP] = {}
        self._boots: dict[str, int] = {}
        self._server: Server | None = None
        self._changed = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------
    async def start(self) -> StrictCentralSystem:
        self._server = await serve(
            self._serve,
            "127.0.0.1",
            self.port,
            subprotocols=["ocpp1.6"],  # type: ignore[list-item]
            process_request=self._process_request,
            ping_interval=None,
            ssl=self.ssl_context,
        )
        self.port = next(iter(self._server.sockets)).getsockname()[1]
        return self

    async def stop(self) -> None:
        """Stop listening and drop every connection (an outage); `start()` again restores it."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> StrictCentralSystem:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        return f"{'wss' if self.ssl_context is not None else 'ws'}://127.0.0.1:{self.port}/ocpp"

    # -- scripted answers ------------------------------------------------------
    def next_boot_answer(self, cp_id: str) -> tuple[str, int]:
        n = self._boots.get(cp_id, 0)
        self._boots[cp_id] = n + 1
        return self.boot_script[min(n, len(self.boot_script) - 1)]

    def id_tag_info(self, id_tag: str) -> dict[str, Any]:
        info: dict[str, Any] = {"status": self.tag_status(id_tag)}
        if id_tag.lower() in self.parents:
            info["parentIdTag"] = self.parents[id_tag.lower()]
        return info

    def tag_status(self, id_tag: str) -> str:
        return "Invalid" if id_tag.lower() in self.invalid_tags else "Accepted"

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        cp_id = request.path.rstrip("/").rsplit("/", 1)[-1]
        status = 101
        if not request.path.startswith("/ocpp/") or (
            self.known_ids is not None and cp_id not in self.known_ids
        ):
            status = 404
        elif self.password is not None:
            import base64

            secret = self.password if isinstance(self.password, bytes) else self.password.encode()
            expected = "Basic " + base64.b64encode(cp_id.encode() + b":" + secret).decode()
            if request.headers.get("Authorization") != expected:
                status = 401
        self.handshakes.append((request.path, status))
        self._changed.set()
        if status != 101:
            return Response(status, http.HTTPStatus(status).phrase, Headers(), b"")
        return None

    async def _serve(self, ws: ServerConnection) -> None:
        from urllib.parse import unquote

        assert ws.request is not None
        cp_id = unquote(ws.request.path.rstrip("/").rsplit("/", 1)[-1])
        if ws.subprotocol != "ocpp1.6":
            self.violations.append(f"{cp_id}: connected without subprotocol ocpp1.6")
        link = Link(cp_id, accepted=cp_id in self.accepted_ids)
        self.links.append(link)
        cp = _LibraryCP(cp_id, _Recorder(ws, link, self), self)
        self._cps[cp_id] = cp
        self._changed.set()
        try:
            await cp.start()
        except ConnectionClosed:
            pass
        except Exception as exc:  # the central system's own failure: a test must not pass over it
            self.violations.append(f"{cp_id}: the central system failed: {type(exc).__name__}: {exc}")
            raise
        finally:
            link.closed = True
            self._changed.set()

    # -- checking ----------------------------------------------------------------
    def _violation(self, link: Link, text: str) -> None:
        self.violations.append(f"{link.cp_id}: {text}")

    def _check_timestamps(self, link: Link, value: Any, where: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key in TIMESTAMP_FIELDS and isinstance(item, str):
                    try:
                        parsed = datetime.fromisoformat(item.replace("Z", "+00:00"))
                    except ValueError:
                        self._violation(link, f"{where}.{key} is not ISO 8601: {item!r}")
                        continue
                    if parsed.tzinfo is None:
                        self._violation(link, f"{where}.{key} has no time zone: {item!r}")
                self._check_timestamps(link, item, f"{where}.{key}")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                self._check_timestamps(link, item, f"{where}[{i}]")

    def _schema_check(self, link: Link, kind: int, action: str, payload: Any) -> None:
        try:
            validator = validator_1_6(kind, action)
        except OSError:
            self._violation(link, f"no 1.6 schema for action {action!r}")
            return
        if (kind, action) in DECIMAL_MESSAGES:
            payload = json.loads(json.dumps(payload), parse_float=decimal.Decimal)
        for error in validator.iter_errors(payload):
            self._violation(
                link, f"{action} {'CALL' if kind == 2 else 'CALLRESULT'} breaks schema: {error.message}"
            )

    def _inspect_incoming(self, link: Link, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            self._violation(link, f"invalid JSON: {text[:80]}")
            link.frames.append(Frame(time.monotonic(), "in", text, None, None))
            return
        action: str | None = None
        if not isinstance(message, list) or len(message) < 3 or message[0] not in (2, 3, 4):
            self._violation(link, f"not an OCPP-J frame: {text[:80]}")
        elif message[0] == 2:
            if len(message) != 4 or not isinstance(message[1], str) or not isinstance(message[3], dict):
                self._violation(link, f"malformed CALL: {text[:80]}")
            else:
                unique_id, action = message[1], message[2]
                if len(unique_id) > 36:
                    self._violation(link, f"message id longer than 36: {unique_id}")
                if unique_id in link.seen_ids:
                    self._violation(link, f"message id reused: {unique_id}")
                link.seen_ids.add(unique_id)
                if link.open_call_from_cp is not None:
                    self._violation(link, f"{action} sent while {link.open_call_from_cp} was unanswered")
                link.open_call_from_cp = unique_id
                if not link.accepted and action != "BootNotification":
                    self._violation(link, f"{action} sent before BootNotification was Accepted")
                self._schema_check(link, 2, action, message[3])
                self._check_timestamps(link, message[3], action)
        else:
            action = link.calls_to_cp.pop(message[1], None)
            if action is None:
                self._violation(link, f"answer to no call of ours: {text[:80]}")
            elif message[0] == 3 and action != "(raw)":
                self._schema_check(link, 3, action, message[2])
        link.frames.append(
            Frame(time.monotonic(), "in", text, message if isinstance(message, list) else None, action)
        )
        self._changed.set()

    def _record_outgoing(self, link: Link, text: str) -> None:
        message = json.loads(text)
        action = None
        if message[0] == 2:
            action = message[2]
            link.calls_to_cp[message[1]] = action
        elif message[1] == link.open_call_from_cp:
            link.open_call_from_cp = None
            action = next(
                (
                    f.message[2]
                    for f in reversed(link.frames)
                    if f.message and f.message[0] == 2 and f.message[1] == message[1]
                ),
                None,
            )
        link.frames.append(Frame(time.monotonic(), "out", text, message, action))
        self._changed.set()

    def assert_clean(self) -> None:
        assert not self.violations, "the charge point broke OCPP 1.6:\n" + "\n".join(self.violations)

    # -- queries -------------------------------------------------------------------
    def calls(self, cp_id: str | None = None, action: str | None = None) -> list[dict[str, Any]]:
        """Payloads of the CALLs the charge point(s) sent, in order, over all connections."""
        out = []
        for link in self.links:
            if cp_id is not None and link.cp_id != cp_id:
                continue
            for f in link.frames:
                if f.direction == "in" and f.message and f.message[0] == 2 and action in (None, f.message[2]):
                    out.append({"action": f.message[2], **f.message[3]} if action is None else f.message[3])
        return out

    def delivered(self, cp_id: str, action: str | None = None) -> list[dict[str, Any]]:
        """Like `calls`, but a CALL re-sent with the same message id (after a lost answer) counts once,
        as a central system that recognises repeats would count it."""
        seen: set[str] = set()
        out = []
        for link in self.links:
            if link.cp_id != cp_id:
                continue
            for f in link.frames:
                m = f.message
                if f.direction == "in" and m and m[0] == 2 and action in (None, m[2]) and m[1] not in seen:
                    seen.add(m[1])
                    out.append({"action": m[2], **m[3]})
        return out

    def actions(self, cp_id: str | None = None) -> list[str]:
        return [c["action"] for c in self.calls(cp_id)]

    async def wait_until(self, condition: Callable[[], Any], timeout: float = 5.0, what: str = "") -> Any:
        deadline = time.monotonic() + timeout
        while True:
            result = condition()
            if result:
                return result
            left = deadline - time.monotonic()
            if left <= 0:
                seen = "\n  ".join(
                    f"{link.cp_id} {f.direction} {f.raw[:150]}"
                    for link in self.links
                    for f in link.frames[-30:]
                )
                raise AssertionError(f"timed out waiting for {what or condition}; last frames:\n  {seen}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.1))

    async def wait_for_call(
        self,
        cp_id: str,
        action: str,
        match: Callable[[dict[str, Any]], bool] = lambda p: True,
        count: int = 1,
        timeout: float = 5.0,
    ) -> dict[str, Any]:
        def found() -> tuple[dict[str, Any]] | None:  # a tuple: an empty payload {} is a hit too
            hits = [p for p in self.calls(cp_id, action) if match(p)]
            return (hits[count - 1],) if len(hits) >= count else None

        result: tuple[dict[str, Any]] = await self.wait_until(
            found, timeout, f"{action} #{count} from {cp_id}"
        )
        return result[0]

    def link(self, cp_id: str) -> Link:
        return next(link for link in reversed(self.links) if link.cp_id == cp_id)

    async def call(self, cp_id: str, payload: Any) -> Any:
        return await self._cps[cp_id].call(payload, suppress=False)

    async def send_raw(self, cp_id: str, text: str) -> None:
        """Send any text frame, bypassing the library (malformed-frame tests)."""
        cp = self._cps[cp_id]
        conn: _Recorder = cp._connection
        conn.link.frames.append(Frame(time.monotonic(), "out", text, None, None))
        # Whatever id the frame carries is "ours": the charge point may answer it.
        match = re.match(r'^\s*\[\s*2\s*,\s*"([^"]+)"', text)
        if match:
            action = "(raw)"
            with contextlib.suppress(ValueError, TypeError, IndexError, RecursionError):
                parsed = json.loads(text)
                if isinstance(parsed[2], str) and parsed[2] in {a.value for a in Action}:
                    action = parsed[2]
            conn.link.calls_to_cp[match.group(1)] = action
        await conn.ws.send(text)

    async def answer_of(self, cp_id: str, unique_id: str, timeout: float = 5.0) -> list[Any]:
        """The charge point's answer (CALLRESULT or CALLERROR) to our message `unique_id`."""

        def found() -> list[Any] | None:
            for link in self.links:
                if link.cp_id != cp_id:
                    continue
                for f in link.frames:
                    if (
                        f.direction == "in"
                        and f.message
                        and f.message[0] in (3, 4)
                        and f.message[1] == unique_id
                    ):
                        return f.message
            return None

        answer: list[Any] = await self.wait_until(found, timeout, f"the answer to {unique_id}")
        return answer

    async def drop(self, cp_id: str) -> None:
        """Close the charge point's current connection (the charge point should reconnect)."""
        await self._cps[cp_id]._connection.ws.close()
