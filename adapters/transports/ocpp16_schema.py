"""The OCPP 1.6 schema check of a message's payload, with 1.6 error codes: one for the whole project.
bridge/ocpp/schema.py (the bridge's upstream link) wraps it in its OcppError; a `type: ocpp` charger's
link (adapters/chargers/ocpp_device_link.py) uses it as it is. Here, below both, since adapters may
not import bridge.

The `ocpp` library ships the 1.6 JSON schemas and caches a validator per message; we use those, but
map violations ourselves because the library answers with 2.0.1 codes (ocpp16-charge-point.md §8.3):

| JSON-schema keyword          | 1.6 error code                |
|------------------------------|-------------------------------|
| additionalProperties         | FormationViolation            |
| type, maxLength (CiString)   | TypeConstraintViolation       |
| required                     | ProtocolError (incomplete)    |
| enum (ERRATA 3.38), minimum, |                               |
| maximum, multipleOf, format  |                               |
| (date-time), others          | PropertyConstraintViolation   |

A number whose multipleOf check cannot be decided (beyond Decimal's 28 digits) is a
PropertyConstraintViolation too; numbers that are not finite or integers beyond 64 bits never reach
the bridge's check (its `wire.decode` refuses them).

Validation runs inline. A compiled copy of each schema (fastjsonschema) decides the common case, a
valid payload: a MeterValues in ~11 µs rather than ~240 µs with jsonschema, which at 5,000 charging
connectors was a tenth of a core (and the library's own check, jsonschema in a thread executor, was a
third of a `type: ocpp` link's CPU). A payload it refuses is checked again by jsonschema, which names
the error as above; the two agree (tests/test_schema.py checks it on generated payloads).
"""

from __future__ import annotations

import decimal
import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import fastjsonschema
import jsonschema
from ocpp.messages import get_validator

CALL = 2
CALLRESULT = 3

FORMATION_VIOLATION = "FormationViolation"
TYPE_CONSTRAINT_VIOLATION = "TypeConstraintViolation"
PROTOCOL_ERROR = "ProtocolError"
PROPERTY_CONSTRAINT_VIOLATION = "PropertyConstraintViolation"

# Messages whose schemas carry `multipleOf: 0.1`: floats must be Decimals for the check to be exact
# (the library does the same).
DECIMAL_MESSAGES = {
    (CALL, "SetChargingProfile"),
    (CALL, "RemoteStartTransaction"),
    (CALLRESULT, "GetCompositeSchedule"),
}

_KEYWORD_CODES = {
    "additionalProperties": FORMATION_VIOLATION,
    "type": TYPE_CONSTRAINT_VIOLATION,
    "maxLength": TYPE_CONSTRAINT_VIOLATION,
    "required": PROTOCOL_ERROR,
}


@dataclass(frozen=True)
class Violation:
    """What a payload breaks: the 1.6 CALLERROR code, a description naming the field but never its
    value (it may be a secret, and this text reaches logs), and details (the field, the rule)."""

    code: str
    description: str
    details: Mapping[str, str] = field(default_factory=dict)


class UnknownAction(LookupError):
    """No OCPP 1.6 schema names this action."""


# The 1.6 schemas mark every timestamp `"format": "date-time"`, which jsonschema checks only when
# given a checker. Without it "2024-13-45T25:61:61Z" passed the schema and failed later, each message
# its own way (a CALLERROR here, Rejected there, an exception in an answer's handling).
_FORMATS = jsonschema.FormatChecker(formats=())


def _date_time(value: object) -> bool:
    """An ISO 8601 date and time. A missing offset is tolerated here (taken as UTC where it is read);
    what must carry one (a charging profile's startSchedule) says so itself."""
    if not isinstance(value, str):
        return True  # the type rule reports it
    if "T" not in value.upper():
        raise ValueError("a date without a time")
    datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    return True


_FORMATS.checks("date-time", raises=ValueError)(_date_time)


@functools.cache
def _validator(message_type: int, action: str) -> Any:
    if not (action.isascii() and action.isalnum()):  # it names a file: never a path
        raise UnknownAction(action)
    decimals = (message_type, action) in DECIMAL_MESSAGES
    # Asked as the library itself asks (Decimals for these), so that what it caches suits its own use
    # by another part of the process.
    try:
        library = get_validator(
            message_type, action, "1.6", parse_float=decimal.Decimal if decimals else float
        )
    except (OSError, ValueError) as exc:  # no schema file: an action 1.6 does not have
        raise UnknownAction(action) from exc
    schema = library.schema
    if decimals:
        # The library caches one validator per action whatever `parse_float` asked for, so its
        # schema's multipleOf may be a float (Decimal / float: TypeError) or already a Decimal:
        # converted here, either way.
        schema = json.loads(json.dumps(schema, default=float), parse_float=decimal.Decimal)
    return type(library)(schema, format_checker=_FORMATS)


def _is_date_time(value: object) -> bool:
    try:
        return _date_time(value)
    except ValueError:
        return False


def _unchecked(value: object) -> bool:
    return True


# The formats jsonschema checks here (date-time alone); fastjsonschema's own checks of the others
# ("uri": GetDiagnostics.location) are switched off, so that the two decide alike.
_FAST_FORMATS: dict[str, Callable[[object], bool]] = {
    **dict.fromkeys(("email", "hostname", "ipv4", "ipv6", "uri", "idn-email", "uri-reference"), _unchecked),
    "date-time": _is_date_time,
}


@functools.cache
def _fast(message_type: int, action: str) -> Callable[[Any], Any] | None:
    """The schema compiled to Python (raises on a violation), with the same date-time check; None for
    the Decimal messages, whose multipleOf only jsonschema decides exactly."""
    if (message_type, action) in DECIMAL_MESSAGES:
        return None
    schema = _validator(message_type, action).schema
    # jsonschema checks every 1.6 schema with the validator the library gives (draft 4), also the
    # security extension's, which say draft-06: compiled as draft 4 too, so that the two agree (draft
    # 6 takes 0.0 for an integer, draft 4 does not; no 1.6 schema uses a keyword of draft 6 alone).
    schema = {**schema, "$schema": "http://json-schema.org/draft-04/schema#"}
    check: Callable[[Any], Any] = fastjsonschema.compile(schema, formats=_FAST_FORMATS)
    return check


def schema_of(message_type: int, action: str) -> dict[str, Any]:
    """The JSON schema both checks use (the library's, with Decimals for the Decimal messages)."""
    schema: dict[str, Any] = _validator(message_type, action).schema
    return schema


def is_valid_slow(message_type: int, action: str, payload: Any) -> bool:
    """jsonschema's verdict alone (what `violation` asks when the compiled schema refuses)."""
    return next(iter(_validator(message_type, action).iter_errors(payload)), None) is None


def is_valid_fast(message_type: int, action: str, payload: Any) -> bool | None:
    """What the compiled schema says of `payload`: True, False, or None where there is none."""
    check = _fast(message_type, action)
    if check is None:
        return None
    try:
        check(payload)
    except Exception:  # JsonSchemaException, or a payload it cannot handle: jsonschema decides
        return False
    return True


@functools.cache
def _accepts_empty(message_type: int, action: str) -> bool:
    return bool(_validator(message_type, action).is_valid({}))


def forget_validators() -> None:
    """Empties the per-action validator cache: the next check builds each validator again, from
    whichever one the library has cached by then."""
    _validator.cache_clear()
    _accepts_empty.cache_clear()
    _fast.cache_clear()


def violation(message_type: int, action: str, payload: Any) -> Violation | None:
    """What `payload` of `action` (a CALL or a CALLRESULT) breaks of its 1.6 schema, or None.
    UnknownAction when 1.6 has no such action."""
    if payload == {} and _accepts_empty(message_type, action):
        return None  # most answers a central system sends (MeterValues.conf, ...): decided once
    if is_valid_fast(message_type, action, payload):
        return None
    validator = _validator(message_type, action)
    if (message_type, action) in DECIMAL_MESSAGES:
        # Infinity (from a `1e999` on the wire) becomes Decimal("Infinity"): multipleOf then raises
        # InvalidOperation below rather than float % Decimal's TypeError.
        payload = json.loads(json.dumps(payload), parse_float=decimal.Decimal, parse_constant=decimal.Decimal)
    try:
        error = jsonschema.exceptions.best_match(validator.iter_errors(payload))
    except ArithmeticError:
        # multipleOf on a Decimal beyond 28 digits (a limit of 1e300) cannot be decided: such a
        # number is out of any range a charge point can honour.
        return Violation(PROPERTY_CONSTRAINT_VIOLATION, "a number is out of range", {"rule": "multipleOf"})
    if error is None:
        return None
    rule = str(error.validator)
    code = _KEYWORD_CODES.get(rule, PROPERTY_CONSTRAINT_VIOLATION)
    where = "/".join(str(p) for p in error.absolute_path) or "payload"
    return Violation(code, f"{where}: {_describe(rule, error)}"[:255], {"field": where, "rule": rule})


def _describe(rule: str, error: Any) -> str:
    """What is wrong, without repeating the offending value."""
    expected = error.validator_value
    if rule == "type":
        return f"must be of type {expected}"
    if rule == "maxLength":
        return f"must be at most {expected} characters"
    if rule == "enum":
        return "must be one of " + ", ".join(map(str, expected))
    if rule == "format":
        return f"must be a valid {expected} (ISO 8601, e.g. 2030-01-31T23:59:59Z)"
    if rule in ("minimum", "maximum", "multipleOf"):
        return f"violates {rule} {expected}"
    if rule in ("required", "additionalProperties"):
        return str(error.message)  # names properties, never values
    return f"violates the schema rule {rule!r}"
