"""The OCPP-J frames of a `type: ocpp` charger's link (ocpp_device_link.py), pure: a frame read as a
message, payload keys between OCPP's camelCase and the library's snake_case handlers, its timestamps."""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from datetime import UTC, datetime
from typing import Any

from adapters.transports.ocpp16_schema import CALL, CALLRESULT

CALLERROR = 4


def message_of(text: str) -> list[Any] | None:
    """An OCPP-J frame: [type, unique id, ...] with a known type; None for anything else (it cannot be
    answered: no id to answer)."""
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: a frame nested deeper than Python's stack
        return None
    if not isinstance(message, list) or len(message) < 3 or not isinstance(message[1], str):
        return None
    return message if message[0] in (CALL, CALLRESULT, CALLERROR) else None


@functools.lru_cache(maxsize=512)
def snake_key(key: str) -> str:
    """chargePointVendor -> charge_point_vendor, as the library converts (its regexes, once per key)."""
    return re.sub("([a-z0-9])([A-Z])(?=\\S)", r"\1_\2", re.sub("(.)([A-Z][a-z]+)", r"\1_\2", key)).lower()


@functools.lru_cache(maxsize=512)
def camel_key(key: str) -> str:
    first, *rest = key.split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


def snake(data: Any) -> Any:
    if isinstance(data, dict):
        return {snake_key(k): snake(v) for k, v in data.items()}
    if isinstance(data, list):
        return [snake(v) for v in data]
    return data


def camel(data: Any) -> Any:
    """An answer (a call_result dataclass, its dicts) as the JSON payload: camelCase, no Nones. The 1.6
    answers the link gives have no key the library spells otherwise (SoC, URL, ...)."""
    if isinstance(data, dict):
        return {camel_key(k): camel(v) for k, v in data.items() if v is not None}
    if isinstance(data, list):
        return [camel(v) for v in data]
    if dataclasses.is_dataclass(data) and not isinstance(data, type):
        return camel({name: getattr(data, name) for name in _field_names(type(data))})
    return data


@functools.cache
def _field_names(kind: type) -> tuple[str, ...]:
    """A dataclass's field names, read once per class (dataclasses.fields walks them each call)."""
    return tuple(f.name for f in dataclasses.fields(kind))


def parse_time(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
