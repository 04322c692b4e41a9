"""The value pipeline of a generic device's source (pure): what a source gave (an HTTP body, an MQTT
payload, a register's value, a constant) to the value of one capability, and a value back to the
device's units for a write.

Order (docs/devices/generic.md, "The value pipeline"): `regex` (first group, or the whole match) ->
`jmespath` (on the JSON text) -> `map` ({raw value as text: value}) -> the capability's kind (number,
bool, text, IEC 61851 status letter) -> `scale` -> `offset` -> `unit`. A write runs the numeric part
backwards. jmespath is imported only when a source uses it.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# unit -> its size in the capability's unit (kWh is 1000 Wh)
UNITS: dict[str, dict[str, float]] = {
    "energy": {"Wh": 1.0, "kWh": 1000.0, "MWh": 1_000_000.0},
    "power": {"W": 1.0, "kW": 1000.0, "mW": 0.001},
    "current": {"A": 1.0, "mA": 0.001},
    "voltage": {"V": 1.0, "mV": 0.001},
}
STATUS_LETTERS = "ABCDEF"  # IEC 61851-1 control pilot states; E and F are faults
_STATUS = re.compile(r"[A-F][0-9]?")
TRUE_TEXTS = frozenset({"true", "1", "on", "yes"})
FALSE_TEXTS = frozenset({"false", "0", "off", "no"})
SHOWN_MAX = 60  # characters of a raw value shown in a message
JSON_CACHED_MAX = 64 * 1024  # characters of a body kept parsed: the cache must not hold big answers


class PipelineError(ValueError):
    """A value the pipeline cannot make sense of; the message says what and why."""


def as_text(value: Any) -> str:
    """A raw value as the text a `map` key is compared with: JSON's spelling of bools, whole numbers
    without '.0' (a register read as 1 and a JSON 1.0 both match "1")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if value is None:
        return "null"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def shown(value: Any) -> str:
    text = as_text(value)
    return text if len(text) <= SHOWN_MAX else text[: SHOWN_MAX - 3] + "..."


@functools.lru_cache(maxsize=64)
def compile_jmespath(expression: str) -> Any:
    """The compiled JMESPath expression; PipelineError naming it when it does not parse."""
    import jmespath
    from jmespath import exceptions

    try:
        return jmespath.compile(expression)
    except exceptions.JMESPathError as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise PipelineError(
            f"{expression!r} is not a JMESPath expression ({first_line}); see https://jmespath.org, "
            "e.g. 'car', 'nrg[11]', 'StatusSNS.ENERGY.Total'"
        ) from None


def compile_regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as error:
        raise PipelineError(f"{pattern!r} is not a regular expression ({error})") from None


@functools.lru_cache(maxsize=32)
def _cached_json(text: str) -> Any:
    return json.loads(text)


def json_of(text: str) -> Any:
    """The JSON document of a device's text; one body feeds several values in a reading, so a small one
    is parsed once. PipelineError for text that is not JSON or nested too deeply to parse."""
    try:
        return _cached_json(text) if len(text) <= JSON_CACHED_MAX else json.loads(text)
    except (ValueError, RecursionError):
        raise PipelineError(f"expected JSON for jmespath, got {shown(text)!r}") from None


@dataclass(frozen=True)
class Pipeline:
    """One source's steps, compiled; `apply` then the kind's method."""

    regex: re.Pattern[str] | None = None
    jmespath: Any = None  # a compiled jmespath expression
    mapping: Mapping[str, Any] | None = None
    scale: float = 1.0
    offset: float = 0.0
    factor: float = 1.0  # the source's unit in the capability's

    @classmethod
    def build(
        cls,
        *,
        regex: str | None = None,
        jmespath: str | None = None,
        mapping: Mapping[Any, Any] | None = None,
        scale: float = 1.0,
        offset: float = 0.0,
        unit: str | None = None,
        family: str | None = None,
    ) -> Pipeline:
        """PipelineError naming the step that is wrong."""
        factor = 1.0
        if unit is not None:
            units = UNITS.get(family or "")
            if units is None:
                raise PipelineError("this value has no unit to convert; remove `unit`")
            if unit not in units:
                raise PipelineError(f"unknown unit {unit!r}; one of {', '.join(units)}")
            factor = units[unit]
        if scale == 0:
            raise PipelineError("scale 0 would make every value 0 (and a write impossible)")
        return cls(
            regex=None if regex is None else compile_regex(regex),
            jmespath=None if jmespath is None else compile_jmespath(jmespath),
            mapping=None if mapping is None else {as_text(k): v for k, v in mapping.items()},
            scale=scale,
            offset=offset,
            factor=factor,
        )

    def apply(self, raw: Any, *, null_ok: bool = False) -> Any:
        """regex, jmespath and map applied to what the source gave; `null_ok`: a JMESPath that finds
        nothing (or null) gives None instead of an error (a text: no card, no error code)."""
        value = raw
        if self.regex is not None:
            text = value if isinstance(value, str) else as_text(value)
            match = self.regex.search(text)
            if match is None:
                raise PipelineError(f"regex {self.regex.pattern!r} does not match {shown(text)!r}")
            value = match.group(1) if self.regex.groups else match.group(0)
        if self.jmespath is not None:
            document = json_of(value) if isinstance(value, str) else value
            value = _search(self.jmespath, document)
            if value is None and null_ok:
                return None
            if value is None:
                raise PipelineError(
                    f"jmespath {self.jmespath.expression!r} finds nothing in {shown(document)!r}"
                )
        if self.mapping is not None:
            key = as_text(value)
            if key not in self.mapping:
                keys = ", ".join(repr(k) for k in self.mapping)
                raise PipelineError(f"{shown(value)!r} is not in map (its keys: {keys})")
            value = self.mapping[key]
        return value

    def number(self, raw: Any) -> float:
        value = to_number(self.apply(raw))
        if (self.scale, self.offset, self.factor) == (1.0, 0.0, 1.0):
            return value
        result = (value * self.scale + self.offset) * self.factor
        if not math.isfinite(result):
            raise PipelineError(f"{shown(raw)!r} is not a finite number")
        # 12 significant digits: 1234.567 kWh is 1234567 Wh, not 1234567.0000000002.
        return float(f"{result:.12g}")

    def boolean(self, raw: Any) -> bool:
        return to_bool(self.apply(raw))

    def text(self, raw: Any) -> str:
        value = self.apply(raw, null_ok=True)
        return "" if value is None else as_text(value).strip()

    def status(self, raw: Any) -> str:
        return to_status(self.apply(raw))

    def reverse(self, value: float) -> float:
        """A value in the capability's unit back to the device's (a write)."""
        return (value / self.factor - self.offset) / self.scale


def _search(expression: Any, document: Any) -> Any:
    """The expression's result; a function given the wrong type (`length(a)` of a number) is the
    device's data not fitting the configuration, said as a PipelineError."""
    from jmespath import exceptions

    try:
        return expression.search(document)
    except (exceptions.JMESPathError, RecursionError) as error:
        words = " ".join(str(error).split()) or type(error).__name__
        raise PipelineError(
            f"jmespath {expression.expression!r} fails on {shown(document)!r}: {words[: SHOWN_MAX * 2]}"
        ) from None


def to_number(value: Any) -> float:
    """A finite float: NaN and the infinities (JSON's NaN, Infinity, 1e400, a float register) and an
    integer beyond a float's range are refused, whatever gave them."""
    number: float | None = None
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:
            raise PipelineError(f"{shown(value)!r} is not a finite number") from None
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise PipelineError(f"expected a number, got {shown(value)!r}") from None
        if not math.isfinite(number):  # "nan" and "inf" are words, not readings
            raise PipelineError(f"expected a number, got {shown(value)!r}")
    if number is None:
        raise PipelineError(f"expected a number, got {shown(value)!r}")
    if not math.isfinite(number):
        raise PipelineError(f"{shown(number)!r} is not a finite number")
    return number


def to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        text = value.strip().lower()
        if text in TRUE_TEXTS:
            return True
        if text in FALSE_TEXTS:
            return False
    raise PipelineError(f"expected true/false, 1/0, on/off or yes/no, got {shown(value)!r} (or add a map)")


def to_status(value: Any) -> str:
    """The IEC 61851 letter: "C2" -> "C"; anything else is an error naming the value."""
    text = as_text(value).strip().upper()
    if _STATUS.fullmatch(text):  # "C" or "C2", not any word that starts with A..F
        return text[0]
    raise PipelineError(f"expected a status A..F (IEC 61851), got {shown(value)!r}; map it with `map`")
