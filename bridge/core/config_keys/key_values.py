"""A key's values: parsing and normalising them to wire form, and the file's values (`validate_file_value`).

Checks that need one charge point's other values (list bounds, its connectors) are in configuration.py.
"""

from __future__ import annotations

import functools
import re

from bridge.core.config_keys.key_specs import lookup, suggest
from bridge.core.config_keys.key_types import PHASE_ROTATION_ITEMS, KeySpec

# ChangeConfiguration.req carries the value as CiString500.
MAX_VALUE_LENGTH = 500
# Integers without their own bounds still have to fit the 32-bit integers other implementations use.
INT_MIN = -(2**31)
INT_MAX = 2**31 - 1


class KeyValueError(ValueError):
    """A value a key cannot take; the message says what is allowed."""


_INT = re.compile(r"[+-]?[0-9]+")
_HEX = re.compile(r"[0-9A-Fa-f]+")


def _range_text(spec: KeySpec) -> str:
    low = INT_MIN if spec.minimum is None else spec.minimum
    high = INT_MAX if spec.maximum is None else spec.maximum
    if spec.maximum is None:
        return f"a whole number of at least {low}" if spec.minimum is not None else "a whole number"
    return f"a whole number from {low} to {high}"


def _split(value: str) -> list[str]:
    return [] if value.strip() == "" else [item.strip() for item in value.split(",")]


@functools.lru_cache(maxsize=1024)
def _normalised(spec: KeySpec, value: str) -> str:
    """The wire form of `value` for `spec`; raises KeyValueError saying what is allowed. Cached: every
    charge point of a file normalises the same values (a failure is not cached, and raises again)."""
    if len(value) > MAX_VALUE_LENGTH:
        raise KeyValueError(f"{spec.name} takes at most {MAX_VALUE_LENGTH} characters")
    if spec.kind == "bool":
        if value.lower() not in ("true", "false"):
            raise KeyValueError(f"{spec.name} must be true or false, not {value!r}")
        return value.lower()
    if spec.kind == "int":
        if not _INT.fullmatch(value):
            raise KeyValueError(f"{spec.name} must be {_range_text(spec)}, not {value!r}")
        number = int(value)
        low = INT_MIN if spec.minimum is None else spec.minimum
        high = INT_MAX if spec.maximum is None else spec.maximum
        if not low <= number <= high:
            raise KeyValueError(f"{spec.name} must be {_range_text(spec)}, not {number}")
        return str(number)
    if spec.kind == "csl":
        items = _list_items(spec, value)
        if spec.csl_item_check is PHASE_ROTATION_ITEMS:
            _rotation_connectors(items)
        return ",".join(items)
    if spec.name == "AuthorizationKey" and not (
        _HEX.fullmatch(value) and 32 <= len(value) <= 40 and len(value) % 2 == 0
    ):
        # Not echoed: the value is a secret even when it is a wrong one.
        raise KeyValueError("AuthorizationKey must be 16 to 20 bytes written as 32 to 40 hex characters")
    return value


def _list_items(spec: KeySpec, value: str) -> list[str]:
    items: list[str] = []
    for raw in _split(value):
        if raw == "":
            raise KeyValueError(f"{spec.name} has an empty item; separate items with single commas")
        item: str | None
        if spec.csl_values is not None:
            item = {v.lower(): v for v in spec.csl_values}.get(raw.lower())
            allowed = ", ".join(spec.csl_values)
        else:
            assert spec.csl_item_check is not None  # every list key has one or the other
            item = spec.csl_item_check.canonical(raw)
            allowed = spec.csl_item_check.allowed
        if item is None:
            raise KeyValueError(f"{spec.name}: {raw!r} is not allowed; allowed: {allowed}")
        if item in items:
            raise KeyValueError(f"{spec.name} lists {item} twice")
        items.append(item)
    return items


def _rotation_connectors(items: list[str]) -> list[int]:
    """The connector ids of phase-rotation items, each at most once ("RST" alone means all)."""
    seen: set[str] = set()
    for item in items:
        connector = item.partition(".")[0] if "." in item else "all"
        if connector in seen:
            which = "all connectors" if connector == "all" else f"connector {connector}"
            raise KeyValueError(f"ConnectorPhaseRotation gives {which} twice")
        seen.add(connector)
    return [int(c) for c in seen if c != "all"]


def validate_file_value(name: str, value: str | int | bool | float) -> str:
    """The wire form of a value from the configuration file (YAML scalars), or KeyValueError.

    Checks the value only; which keys a file may set at all is the loader's policy. A list is
    checked against the default of its MaxLength key, as the device is not known yet.
    """
    spec = lookup(name)
    if spec is None:
        hint = suggest(name)
        raise KeyValueError(f"unknown key {name!r}" + (f"; did you mean {hint}?" if hint else ""))
    # bool before int: YAML's true is also a Python int.
    if isinstance(value, bool):
        if spec.kind != "bool":
            raise KeyValueError(f"{spec.name} must be {_kind_text(spec)}, not a boolean")
        text = "true" if value else "false"
    elif isinstance(value, float) and spec.kind in ("int", "bool"):
        raise KeyValueError(f"{spec.name} must be {_kind_text(spec)}, not {value!r}")
    elif isinstance(value, int) and spec.kind == "bool":
        raise KeyValueError(f"{spec.name} must be true or false, not {value!r}")
    else:
        text = str(value)
    wire = _normalised(spec, text)
    if spec.kind == "csl" and spec.max_items_key is not None:
        bound = lookup(spec.max_items_key)
        if bound is not None and bound.default is not None:
            _check_count(spec, wire, int(bound.default))
    return wire


def _kind_text(spec: KeySpec) -> str:
    if spec.kind == "int":
        return _range_text(spec)
    return {"bool": "true or false", "csl": "a comma-separated list", "str": "a string"}[spec.kind]


def _check_count(spec: KeySpec, wire: str, bound: int) -> None:
    count = len(_split(wire))
    if count > bound:
        raise KeyValueError(f"{spec.name} takes at most {bound} items ({spec.max_items_key}), not {count}")
