"""The OCPP 1.6 schema check of a `type: ocpp` charger's calls and of the answers the bridge gives
them, inline and cheap: the `ocpp` library's own check runs jsonschema in a thread executor for
every message, which at 50 chargers sending a MeterValues a second was a third of the link's CPU.

The schemas are the library's 1.6 files. A compiled copy of each (fastjsonschema) decides the common
case, a valid payload, in microseconds; a payload it refuses is checked again by jsonschema, which
names the error as OCPP 1.6 codes it (the library answers with its own codes):

| JSON-schema keyword        | 1.6 error code              |
|----------------------------|-----------------------------|
| additionalProperties       | FormationViolation          |
| type, maxLength (CiString) | TypeConstraintViolation     |
| required                   | ProtocolError (incomplete)  |
| enum, minimum, format, ... | PropertyConstraintViolation |

bridge/ocpp/schema.py does the same for the bridge's upstream link; adapters may not import bridge,
so this is its small twin for the calls a charger makes (none carries a `multipleOf`, so no Decimals).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import fastjsonschema
import jsonschema
from ocpp.messages import get_validator

CALL = 2
CALLRESULT = 3

_KEYWORD_CODES = {
    "additionalProperties": "FormationViolation",
    "type": "TypeConstraintViolation",
    "maxLength": "TypeConstraintViolation",
    "required": "ProtocolError",
}


@dataclass(frozen=True)
class Violation:
    """What a payload breaks: the CALLERROR code and a description naming the field, never its value
    (it may be a secret)."""

    code: str
    description: str


class UnknownAction(LookupError):
    """No OCPP 1.6 schema names this action."""


def _date_time(value: object) -> bool:
    """An ISO 8601 date and time (an offset may be missing: taken as UTC where it is read)."""
    if not isinstance(value, str):
        return True  # the type rule reports it
    try:
        if "T" not in value.upper():
            return False
        datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return False
    return True


def _unchecked(value: object) -> bool:
    return True


_FORMATS = jsonschema.FormatChecker(formats=())
_FORMATS.checks("date-time")(_date_time)
_FAST_FORMATS: dict[str, Callable[[object], bool]] = {
    **dict.fromkeys(("email", "hostname", "ipv4", "ipv6", "uri", "idn-email", "uri-reference"), _unchecked),
    "date-time": _date_time,
}


@functools.cache
def _slow(message_type: int, action: str) -> Any:
    if not (action.isascii() and action.isalnum()):  # it names a file: never a path
        raise UnknownAction(action)
    try:
        library = get_validator(message_type, action, "1.6")
    except (OSError, ValueError) as exc:  # no schema file: an action 1.6 does not have
        raise UnknownAction(action) from exc
    return type(library)(library.schema, format_checker=_FORMATS)


@functools.cache
def _fast(message_type: int, action: str) -> Callable[[Any], Any]:
    # Compiled as draft 4, as jsonschema checks it, so that the two decide alike.
    schema = {**_slow(message_type, action).schema, "$schema": "http://json-schema.org/draft-04/schema#"}
    check: Callable[[Any], Any] = fastjsonschema.compile(schema, formats=_FAST_FORMATS)
    return check


def violation(message_type: int, action: str, payload: Any) -> Violation | None:
    """What `payload` of `action` (a CALL or a CALLRESULT) breaks of its 1.6 schema, or None.
    UnknownAction when 1.6 has no such action."""
    try:
        _fast(message_type, action)(payload)
        return None
    except Exception:  # JsonSchemaException, or a payload it cannot handle: jsonschema decides
        pass
    error = jsonschema.exceptions.best_match(_slow(message_type, action).iter_errors(payload))
    if error is None:
        return None
    rule = str(error.validator)
    where = "/".join(str(p) for p in error.absolute_path) or "payload"
    return Violation(
        _KEYWORD_CODES.get(rule, "PropertyConstraintViolation"), f"{where}: {_describe(rule, error)}"[:255]
    )


def _describe(rule: str, error: Any) -> str:
    expected = error.validator_value
    if rule == "type":
        return f"must be of type {expected}"
    if rule == "maxLength":
        return f"must be at most {expected} characters"
    if rule == "enum":
        return "must be one of " + ", ".join(map(str, expected))
    if rule == "format":
        return f"must be a valid {expected} (ISO 8601, e.g. 2030-01-31T23:59:59Z)"
    if rule in ("required", "additionalProperties"):
        return str(error.message)  # names properties, never values
    return f"violates the schema rule {rule!r}"
