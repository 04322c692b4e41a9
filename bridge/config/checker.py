"""The generic validator: plain YAML data into dataclasses by their type hints, every problem collected.

Also the small field builders the rules share (a checked string, an optional field, bounded integers).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
from collections.abc import Callable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from bridge.config.yaml_lines import _join
from bridge.log import mask_url_passwords

_HINTS: dict[type, dict[str, Any]] = {}
_FIELDS: dict[type, tuple[tuple[dataclasses.Field[Any], ...], list[str]]] = {}


def _hints(cls: type) -> dict[str, Any]:
    """The resolved annotations of a configuration dataclass (worked out once: get_type_hints is slow)."""
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = get_type_hints(cls)
    return hints


def _init_fields(cls: type) -> tuple[tuple[dataclasses.Field[Any], ...], list[str]]:
    """The fields of a configuration dataclass that its __init__ takes, and their names (worked out
    once per class: a configuration of 5,000 charge points builds 15,000 of them)."""
    known = _FIELDS.get(cls)
    if known is None:
        fields = tuple(f for f in dataclasses.fields(cls) if f.init)
        known = _FIELDS[cls] = (fields, [f.name for f in fields])
    return known


_BAD: Any = object()  # a value that failed validation; its problem is already recorded


class _Invalid(Exception):
    """A scalar does not fit a type; the message says what was expected."""


def _got(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, datetime | date):
        return f"a date ({value}); quote it to make it text"
    return type(value).__name__


def _expected(tp: Any) -> str:
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    if tp is Path:
        return "a path"
    if tp is type(None):
        return "null"
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_expected(a) for a in get_args(tp))
    if origin in (tuple, list):
        return "a list"
    if dataclasses.is_dataclass(tp) or origin in (dict, Mapping):
        return "a mapping"
    return str(tp)


def _scalar(tp: Any, value: Any) -> Any:
    """`value` as type `tp` (scalars, Literal, unions of them); _Invalid if it does not fit."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in get_args(tp):
            return None
        for option in get_args(tp):
            if option is not type(None):
                try:
                    return _scalar(option, value)
                except _Invalid:
                    pass
    elif origin is Literal:
        # `type(a) is type(value)`: YAML's true must not match a Literal 1.
        if any(value == a and type(a) is type(value) for a in get_args(tp)):
            return value
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise _Invalid("expected a finite number")
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float):  # `id: 0001` reads as the number 1
            raise _Invalid(f"expected a string, got {_got(value)}; put it in quotes")
    elif tp is Path:
        if isinstance(value, str) and value:
            return Path(value)
    else:
        raise TypeError(f"the configuration validator does not handle {tp!r}")
    raise _Invalid(f"expected {_expected(tp)}, got {_got(value)}")


Handler = Callable[[Any, str], Any]
_NO_HANDLERS: Mapping[str, Handler] = {}


class _Checker:
    """Collects problems while turning plain YAML data into dataclasses."""

    def __init__(self) -> None:
        self.problems: list[tuple[str, str, bool]] = []  # (path, message, about the key itself)

    def add(self, path: str, message: str, *, at_key: bool = False) -> None:
        # A message may quote a URL as written, and a URL pasted with its credentials holds a password:
        # masked here, once for every rule (check's output and run's stderr reach the journal).
        self.problems.append((path, mask_url_passwords(message), at_key))

    def convert(self, tp: Any, value: Any, path: str) -> Any:
        origin = get_origin(tp)
        args = get_args(tp)
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            return self.build(tp, value, path)
        if origin in (tuple, list) and (origin is list or args[1:] == (Ellipsis,)):
            if not isinstance(value, list):
                self.add(path, f"expected a list, got {_got(value)}")
                return _BAD
            items = [self.convert(args[0], item, f"{path}[{i}]") for i, item in enumerate(value)]
            if any(item is _BAD for item in items):
                return _BAD
            return tuple(items) if origin is tuple else items
        if origin in (dict, Mapping):
            if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
                self.add(path, f"expected a mapping with text keys, got {_got(value)}")
                return _BAD
            converted = {k: self.convert(args[1], v, _join(path, k)) for k, v in value.items()}
            return _BAD if _BAD in converted.values() else converted
        try:
            return _scalar(tp, value)
        except _Invalid as invalid:
            self.add(path, str(invalid))
            return _BAD

    def check_keys(self, raw: Any, allowed: list[str], path: str, what: str) -> bool:
        """True when `raw` is a mapping with only allowed keys; records what is wrong otherwise."""
        if not isinstance(raw, dict):
            self.add(path, f"expected a mapping ({what}: {', '.join(allowed)}), got {_got(raw)}")
            return False
        ok = True
        for key in raw:
            if not isinstance(key, str) or key not in allowed:
                ok = False
                hint = difflib.get_close_matches(str(key), allowed, n=1)
                text = f"unknown key {key!r}" + (f"; did you mean {hint[0]!r}?" if hint else "")
                self.add(_join(path, str(key)), f"{text} ({what}: {', '.join(allowed)})", at_key=True)
        return ok

    def build(
        self,
        cls: type[Any],
        raw: Any,
        path: str,
        special: Mapping[str, Handler] | None = None,
        also: tuple[str, ...] = (),
    ) -> Any:
        """An instance of dataclass `cls` from mapping `raw`, or _BAD; keys in `also` are allowed, unused.

        Unknown keys are recorded but do not stop the build: the instance still gets its own checks,
        so one run reports everything (the recorded problem fails the whole configuration anyway).
        """
        fields, names = _init_fields(cls)
        self.check_keys(raw, [*also, *names] if also else names, path, "allowed keys")
        if not isinstance(raw, dict):
            return _BAD
        ok = True
        hints = _hints(cls)
        handlers = special or _NO_HANDLERS
        kwargs: dict[str, Any] = {}
        for f in fields:
            name = f.name
            if name in raw:
                sub = _join(path, name)
                handler = handlers.get(name)
                raw_value = raw[name]
                value = handler(raw_value, sub) if handler else self.convert(hints[name], raw_value, sub)
                if value is _BAD:
                    ok = False
                else:
                    kwargs[name] = value
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                self.add(_join(path, name), "required")
                ok = False
        if not ok:
            return _BAD
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as error:
            self.add(path, str(error))
            return _BAD


def _text(ck: _Checker, problem: Callable[[str], str | None]) -> Handler:
    """A handler for a string field with a check of its own (None: fine)."""

    def handle(raw: Any, path: str) -> Any:
        value = ck.convert(str, raw, path)
        message = None if value is _BAD else problem(value)
        if message is not None:
            ck.add(path, message)
        return _BAD if message is not None else value

    return handle


def _optional(handler: Handler) -> Handler:
    """null is as good as leaving an optional field out."""
    return lambda raw, path: None if raw is None else handler(raw, path)


def _at_least(ck: _Checker, raw: Any, path: str, minimum: int) -> Any:
    if isinstance(raw, bool) or not isinstance(raw, int):
        ck.add(path, f"expected a whole number, got {_got(raw)}")
        return _BAD
    if raw < minimum:
        ck.add(path, f"must be at least {minimum}")
        return _BAD
    return raw


def _between(ck: _Checker, raw: Any, path: str, minimum: int, maximum: int) -> Any:
    value = _at_least(ck, raw, path, minimum)
    if value is not _BAD and value > maximum:
        ck.add(path, f"must be at most {maximum}")
        return _BAD
    return value
