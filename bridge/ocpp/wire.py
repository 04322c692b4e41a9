"""OCPP-J frames to and from text, with the limits a frame from outside must keep.

`decode` is the one door every frame from the central system comes through.
Python's `json` accepts things the rest of the bridge cannot bear, so they are
refused here, before any handler, log line or store write sees them:

- nesting deeper than MAX_DEPTH: the parser itself raises RecursionError near
  1,000 levels, and the schema checker and key conversion recurse too. The
  deepest 1.6 message (SetChargingProfile) nests 6 levels;
- integers outside the signed 64-bit range (SQLite's INTEGER; an id of
  10^400 would be Accepted and then fail every later store write), and
  numbers that are not finite (`1e999` parses as infinity; `NaN` and
  `Infinity` are not JSON at all). These are not refused at once: the
  schema is checked first (a number where text is wanted is a type error,
  whatever its size), then `Decoded.beyond_range` makes the frame a
  PropertyConstraintViolation, or an answer invalid;
- strings holding a lone surrogate (`"\\ud800"` is valid JSON escaping but
  no Unicode text: it cannot be encoded to UTF-8 for the socket, a log or
  SQLite).

A refused frame raises `BadFrame` with the OCPP-J error code to answer and,
where they could still be read, its MessageTypeId and message id, so a CALL
gets its CALLERROR and an answer fails its call instead of hanging.
"""

from __future__ import annotations

import copy
import decimal
import json
import math
import random
import re
from dataclasses import dataclass, is_dataclass
from dataclasses import fields as dataclass_fields
from typing import Any

from ocpp.charge_point import camel_to_snake_case, remove_nones, serialize_as_dict, snake_to_camel_case
from ocpp.v16 import call_result as _call_result

from bridge.ocpp import schema
from bridge.ocpp.errors import CallErrorReceived, ErrorCode, InvalidResponse

MAX_DEPTH = 32  # levels of arrays and objects, the frame's own array included
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# The id of a frame that cannot be parsed at all, where it stands in its usual place.
_ID_PATTERN = re.compile(r'^\s*\[\s*([234])\s*,\s*"([^"\\]{1,36})"')


@dataclass
class BadFrame(Exception):
    """A frame refused before it reaches a handler: `code` is the CALLERROR to answer."""

    code: ErrorCode
    why: str
    kind: int | None = None  # MessageTypeId, if it could be read
    unique_id: str | None = None  # message id, if it could be read

    def __str__(self) -> str:
        return self.why


class _Beyond(int):
    """An integer beyond 64 bits, standing in for it until the schema has been checked: the schema
    speaks first (a number where text is wanted is a TypeConstraintViolation, whatever its size),
    then the range (`Decoded.beyond_range`). Its value is only the sign-preserving nearest
    out-of-range number, so a schema minimum still sees which side it is on."""


_TOO_LARGE = _Beyond(INT64_MAX + 1)
_TOO_SMALL = _Beyond(INT64_MIN - 1)


@dataclass(frozen=True)
class Decoded:
    frame: Any
    # Why a number in the frame cannot be taken (beyond 64 bits, not finite), or None. Answered
    # PropertyConstraintViolation once the schema has nothing to say; an answer with one is invalid.
    beyond_range: str | None = None


def _constant(text: str) -> float:
    raise ValueError(f"{text} is not JSON")


def decode(text: str) -> Decoded:
    """The frame as Python values, or BadFrame."""
    beyond: list[str] = []

    def parse_int(digits: str) -> int:
        # 2**63 has 19 digits; the length test also spares int() its 4,300-digit ValueError.
        if len(digits) < 19:
            return int(digits)
        if len(digits) <= 20 and INT64_MIN <= (value := int(digits)) <= INT64_MAX:
            return value
        beyond.append("an integer outside the signed 64-bit range")
        return _TOO_SMALL if digits.startswith("-") else _TOO_LARGE

    def parse_float(number: str) -> float:
        value = float(number)
        if not math.isfinite(value):
            beyond.append("a number too large to represent")
        return value

    try:
        frame = json.loads(text, parse_int=parse_int, parse_float=parse_float, parse_constant=_constant)
    except RecursionError:
        raise _refused(
            text, ErrorCode.FORMATION_VIOLATION, f"the frame nests deeper than {MAX_DEPTH} levels"
        ) from None
    except ValueError:  # JSONDecodeError
        raise _refused(text, ErrorCode.FORMATION_VIOLATION, "the frame is not valid JSON") from None
    problem = _problem(frame, check_text="\\u" in text)
    if problem is not None:
        raise _identified(frame, ErrorCode.FORMATION_VIOLATION, problem)
    return Decoded(frame, beyond[0] if beyond else None)


def _problem(frame: Any, check_text: bool) -> str | None:
    """Why the parsed frame cannot be taken (too deep, a lone surrogate), or None.

    Iterative, so that the check itself cannot overflow the stack. Strings are looked at only
    when the text has a \\u escape: a surrogate cannot arrive any other way (the websocket
    layer decodes frames as strict UTF-8).
    """
    stack: list[tuple[Any, int]] = [(frame, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            if depth > MAX_DEPTH:
                return f"the frame nests deeper than {MAX_DEPTH} levels"
            if check_text:
                stack.extend((key, depth) for key in value)
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            if depth > MAX_DEPTH:
                return f"the frame nests deeper than {MAX_DEPTH} levels"
            stack.extend((item, depth + 1) for item in value)
        elif check_text and isinstance(value, str) and not value.isascii() and not _is_unicode(value):
            return "a string holds a lone surrogate (\\ud800-\\udfff escape): not Unicode text"
    return None


def _is_unicode(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _refused(text: str, code: ErrorCode, why: str) -> BadFrame:
    """A frame that did not parse: its type and id are read from the text where they stand."""
    match = _ID_PATTERN.match(text)
    if match is None:
        return BadFrame(code, why)
    return BadFrame(code, why, int(match.group(1)), match.group(2))


def _identified(frame: Any, code: ErrorCode, why: str) -> BadFrame:
    kind = frame[0] if isinstance(frame, list) and frame and isinstance(frame[0], int) else None
    unique_id = frame[1] if kind is not None and len(frame) > 1 and isinstance(frame[1], str) else None
    if unique_id is not None and not _is_unicode(unique_id):
        unique_id = None  # an id that cannot be sent back cannot be answered
    return BadFrame(code, why, kind, unique_id)


def _json_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        # Limits have at most one decimal on the wire (schemas: multipleOf 0.1).
        return float(round(value, 1))
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# Its own generator, seeded from os.urandom: whoever seeds the module's shared one (hypothesis does, in
# every test) must not make two CALLs share an id.
_random_bits = random.Random().getrandbits


def message_id() -> str:
    """A new CALL's message id: a random (version 4) UUID's text. Ids need only be unique, not
    unguessable: this is ~4 us cheaper than str(uuid.uuid4()) (a getrandom syscall and a UUID object),
    which counts when 5,000 charge points boot at once."""
    bits = (_random_bits(128) & ~(0xF000 << 64) & ~(0xC000 << 48)) | (0x4000 << 64) | (0x8000 << 48)
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def encode(frame: list[Any]) -> str:
    """The frame as sent. Non-ASCII text is sent as is, unless it could not be sent at all
    (a lone surrogate from anywhere): then it goes \\u-escaped rather than breaking the link."""
    text = json.dumps(frame, separators=(",", ":"), ensure_ascii=False, default=_json_default)
    if not text.isascii() and not _is_unicode(text):
        text = json.dumps(frame, separators=(",", ":"), ensure_ascii=True, default=_json_default)
    return text


@dataclass(frozen=True)
class RawCall:
    """A CALL already in wire form and already schema-checked (see `checked_call`).

    The outbox keeps messages as wire dicts: re-building dataclasses and re-checking
    the schema on every send cost more than the round trip itself.
    """

    action: str
    payload: dict[str, Any]


def checked_call(action: str, payload: dict[str, Any]) -> RawCall:
    """A RawCall, after checking `payload` against the action's schema (ValueError if it breaks it)."""
    error = schema.violation(schema.CALL, action, payload)
    if error is not None:
        raise ValueError(f"refusing to make an invalid {action}: {error.description}")
    return RawCall(action, payload)


def to_wire(payload: Any) -> dict[str, Any]:
    """A call or call_result dataclass as the camelCase dict sent on the wire: what the `ocpp`
    library's serialize_as_dict, remove_nones and snake_to_camel_case make of it, without their
    deep copies and regular expressions (a test holds the two equal over generated payloads)."""
    wire: dict[str, Any] = _wire(payload)
    return wire


def library_to_wire(payload: Any) -> dict[str, Any]:
    """`to_wire` the `ocpp` library's way: the reference the test holds `to_wire` to."""
    wire: dict[str, Any] = snake_to_camel_case(remove_nones(serialize_as_dict(payload)))
    return wire


_FIELDS: dict[type, tuple[tuple[str, str], ...]] = {}  # dataclass -> (field, its wire name), in order


def _camel(key: str) -> str:
    """The wire name of a key, by the library's own rule (worked out once per key)."""
    wire = _CAMEL.get(key)
    if wire is None:
        wire = _CAMEL[key] = next(iter(snake_to_camel_case({key: None})))
    return wire


_CAMEL: dict[str, str] = {}


def _wire(value: Any) -> Any:
    kind = type(value)
    fields = _FIELDS.get(kind)
    if fields is None and is_dataclass(kind):
        fields = _FIELDS[kind] = tuple((f.name, _camel(f.name)) for f in dataclass_fields(kind))
    if fields is not None:
        wire = {}
        for name, key in fields:
            item = getattr(value, name)
            if item is not None:
                wire[key] = _wire(item)
        return wire
    if kind in _SCALARS:
        return value
    if isinstance(value, list):
        return [_wire(item) for item in value if item is not None]
    if isinstance(value, dict):
        return {_camel(k): _wire(v) for k, v in value.items() if v is not None}
    return copy.deepcopy(value)  # as the library's asdict: a value of its own (an enum is itself)


_SCALARS = frozenset({str, int, float, bool})


def parse_answer(action: str, frame: list[Any], beyond_range: str | None = None) -> Any:
    """The typed CALLRESULT of `action` from an answer frame; CallErrorReceived for a CALLERROR,
    InvalidResponse for an answer without a payload object, one that breaks the schema, or one that
    holds a number out of range (`Decoded.beyond_range`)."""
    if frame[0] == 4:  # CALLERROR
        code = frame[2] if len(frame) > 2 else "?"
        description = frame[3] if len(frame) > 3 else ""
        raise CallErrorReceived(action, str(code), str(description), frame[4] if len(frame) > 4 else {})
    result = frame[2] if len(frame) > 2 else None
    if not isinstance(result, dict):
        raise InvalidResponse(f"{action} answer has no payload object")
    error = schema.violation(schema.CALLRESULT, action, result)
    if error is not None:
        raise InvalidResponse(f"{action} answer breaks the schema: {error.description}")
    if beyond_range is not None:
        raise InvalidResponse(f"{action} answer holds {beyond_range}")
    return getattr(_call_result, action)(**camel_to_snake_case(result))
