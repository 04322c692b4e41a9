"""The generic device's pure parts: the value pipeline, the setter templates' safe evaluator, Modbus
values by type, masked URLs, and how a reading's requests are grouped (readers that only wait)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from adapters.base import DeviceUnreachable
from adapters.generic import registers
from adapters.generic.expression import ExpressionError, Setter
from adapters.generic.pipeline import JSON_CACHED_MAX, Pipeline, PipelineError, json_of
from adapters.generic.sources import Reader, fetch_all, shown_url

GOE = '{"car": 2, "alw": true, "eto": 123456, "nrg": [230, 231, 229, 0, 16.1, 16.0, 15.9, 0, 0, 0, 0, 11040]}'


def test_steps_in_order_regex_jmespath_map_scale_offset_unit() -> None:
    assert Pipeline.build(jmespath="car", mapping={1: "A", "2": "C"}).status(GOE) == "C"
    assert Pipeline.build(jmespath="nrg[11]", unit="kW", family="power", scale=0.001).number(GOE) == 11040
    assert Pipeline.build(jmespath="eto", unit="kWh", family="energy").number('{"eto": 1.2345}') == 1234.5
    assert Pipeline.build(regex=r"E=([0-9.]+)", scale=10, offset=5).number("U=230 E=1.5") == 20
    assert Pipeline.build(regex=r"\d+").number("x 42 y") == 42  # no group: the whole match
    assert Pipeline.build(jmespath="alw").boolean(GOE) is True
    assert Pipeline.build(unit="mA", family="current").reverse(16) == 16000
    assert Pipeline.build(scale=0.1, offset=-1).reverse(9) == 100


@pytest.mark.parametrize(
    ("raw", "expected"), [("A", "A"), ("c2", "C"), ("B1", "B"), ("F", "F"), (" D ", "D")]
)
def test_status_letters(raw: str, expected: str) -> None:
    assert Pipeline.build().status(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("ON", True), ("off", False), ("1", True), ("0", False), (2, True), (0.0, False), ("yes", True)],
)
def test_bools(raw: object, expected: bool) -> None:
    assert Pipeline.build().boolean(raw) is expected


@pytest.mark.parametrize(
    ("pipeline", "raw", "words"),
    [
        (Pipeline.build(regex=r"E=(\d+)"), "nothing", "does not match 'nothing'"),
        (Pipeline.build(jmespath="car"), "<html>", "expected JSON for jmespath"),
        (Pipeline.build(jmespath="cra"), GOE, "jmespath 'cra' finds nothing"),
        (Pipeline.build(jmespath="car", mapping={"1": "A"}), GOE, "'2' is not in map (its keys: '1')"),
    ],
)
def test_a_value_that_does_not_fit_is_named(pipeline: Pipeline, raw: str, words: str) -> None:
    with pytest.raises(PipelineError, match=words.replace("(", r"\(").replace(")", r"\)")):
        pipeline.apply(raw)


def test_kinds_refuse_what_they_are_not() -> None:
    with pytest.raises(PipelineError, match=r"expected a status A\.\.F"):
        Pipeline.build().status("Charging")  # a word that starts with C is no status
    with pytest.raises(PipelineError, match="expected true/false"):
        Pipeline.build().boolean("maybe")
    with pytest.raises(PipelineError, match="expected a number, got 'nan'"):
        Pipeline.build().number("nan")
    with pytest.raises(PipelineError, match="unknown unit 'kwh'"):
        Pipeline.build(unit="kwh", family="energy")


@pytest.mark.parametrize(
    ("template", "value", "text"),
    [
        ("{{ value }}", 16.0, "16"),
        ("{{ value }}", 7.5, "7.5"),
        ("{{ value * 1000 }}", 7.5, "7500"),
        ("frc={{ 2 if value else 1 }}", True, "frc=2"),
        ("frc={{ 2 if value else 1 }}", False, "frc=1"),
        ('{"amp": {{ int(value) }}, "r": {{ round(value, 1) }}}', 7.56, '{"amp": 7, "r": 7.6}'),
        ("{{ value }}", True, "true"),
        ("{{ 'ON' if value else 'OFF' }}", False, "OFF"),
        ("{{ max(6, min(value, 32)) }}", 40, "32"),
        ("{{ value == 3 and 'three' or 'one' }}", 3, "three"),
        ("{{ -value + 2 ** 3 }}", 1, "7"),
        ("plain", 1, "plain"),
    ],
)
def test_setter_templates(template: str, value: bool | float, text: str) -> None:
    assert Setter(template).render(value) == text


@pytest.mark.parametrize(
    ("template", "words"),
    [
        ("{{ value.__class__ }}", "attribute access is not allowed"),
        ("{{ ().__class__.__bases__ }}", "attribute access is not allowed"),
        ("{{ open('x') }}", "only the calls int, float, round, abs, min, max, str, bool"),
        ("{{ __import__('os').system('true') }}", "are allowed"),
        ("{{ (lambda: 1)() }}", "only the calls"),
        ("{{ [c for c in 'ab'] }}", "ListComp is not allowed"),
        ("{{ value[0] }}", "Subscript is not allowed"),
        ("{{ x }}", "unknown name 'x'; the only variable is `value`"),
        ("{{ int }}", "int can only be called"),
        ("{{ max(int, 1) }}", "int can only be called"),
        ("{{ int(value, base=2) }}", "plain arguments only"),
        ("{{ value if }}", "is not an expression"),
        ("{{ value", "an unclosed"),
    ],
)
def test_setter_templates_refuse_everything_outside_the_whitelist(template: str, words: str) -> None:
    with pytest.raises(
        ExpressionError, match=words.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
    ):
        Setter(template)


@pytest.mark.parametrize(
    "template",
    ["{{ 10 ** 10 ** 10 }}", "{{ 9 ** 65 }}", "{{ value ** 99 }}", "{{ (10 ** 60) * (10 ** 60) }}",
     "{{ 'ab' * 1000000 }}", "{{ str(1) + str(value) * 2 }}", "{{ float(10 ** 60) ** 60 }}"],
)  # fmt: skip
def test_huge_numbers_and_texts_are_refused_when_rendered(template: str) -> None:
    with pytest.raises(ExpressionError):
        Setter(template).render(10)


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ('{"e": "x", "a": 5}', "jmespath 'length(a)' fails on"),  # JMESPathTypeError
        ('{"e": 1' + "0" * 400 + "}", "is not a finite number"),  # an integer beyond a float
        ("[" * 100_000, "expected JSON for jmespath"),  # too deep for json: RecursionError
        ('{"e": NaN}', "'nan' is not a finite number"),
        ('{"e": Infinity}', "'inf' is not a finite number"),
        ('{"e": -1e400}', "'-inf' is not a finite number"),
    ],
)
def test_device_data_that_breaks_a_step_is_a_pipeline_error(raw: str, words: str) -> None:
    expression = "length(a)" if "length" in words else "e"
    with pytest.raises(PipelineError, match=words.replace("(", r"\(").replace(")", r"\)")):
        Pipeline.build(jmespath=expression, unit="kWh", family="energy").number(raw)
    with pytest.raises(PipelineError, match=words.replace("(", r"\(").replace(")", r"\)")):
        Pipeline.build(jmespath=expression).number(raw)  # no scale: the value as it came


def test_non_finite_numbers_are_refused_whatever_their_origin() -> None:
    nan32 = registers.decode([0x7FC0, 0x0000], "float32")
    inf64 = registers.decode([0x7FF0, 0, 0, 0], "float64")
    for raw in (nan32, inf64, float("-inf"), 10**400):
        with pytest.raises(PipelineError, match="not a finite number"):
            Pipeline.build().number(raw)


def test_only_small_json_bodies_are_kept_parsed() -> None:
    small = '{"e": [1, 2]}'
    assert json_of(small) is json_of(small)  # several values of one body: parsed once
    big = '{"e": "' + "x" * JSON_CACHED_MAX + '"}'
    assert json_of(big) == json_of(big) and json_of(big) is not json_of(big)  # not kept


@contextlib.contextmanager
def shallow_stack(frames: int) -> Iterator[None]:
    """A recursion limit only `frames` above the caller's depth (an evaluation nested deeper fails)."""
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack(0)) + frames)
    try:
        yield
    finally:
        sys.setrecursionlimit(before)


@pytest.mark.parametrize(
    ("template", "words"),
    [
        ("{{ ~value }}", "the operator Invert"),  # would be evaluated as +value
        ("{{ round(value, -10**7) }}", "round's digits are at most 64"),
        ("{{ " + "not " * 3000 + "value }}", "longer than 500 characters"),  # RecursionError in ast
        ("{{ " + "1+" * 2000 + "1 }}", "longer than 500 characters"),
    ],
)
def test_setter_templates_refuse_what_would_crash_or_block(template: str, words: str) -> None:
    with pytest.raises(ExpressionError, match=words.replace("(", r"\(")):
        Setter(template)


def test_rendering_is_bounded_in_digits_text_and_depth() -> None:
    started = time.monotonic()
    with pytest.raises(ExpressionError, match="round's digits are at most 64"):
        Setter("{{ round(10, value) }}").render(-(10**6))
    assert time.monotonic() - started < 0.5
    sixteen = " + ".join(["str(10 ** 64)"] * 16)  # 65 characters each: 1040
    with pytest.raises(ExpressionError, match="the text is longer than 1000 characters"):
        Setter("{{ " + sixteen + " }}").render(1)
    assert len(Setter("{{ " + " + ".join(["str(10 ** 64)"] * 15) + " }}").render(1)) == 975
    deep = Setter("{{ " + "-" * 200 + "value }}")
    with shallow_stack(100), pytest.raises(ExpressionError, match="nested too deeply"):
        deep.render(1)
    assert deep.render(1) == "1"


def test_values_beyond_a_registers_type_are_value_errors() -> None:
    with pytest.raises(ValueError, match="does not fit a float32 register"):
        registers.encode(1e300, "float32")
    for value in (float("inf"), float("nan")):
        with pytest.raises(ValueError, match="not a finite number"):
            registers.encode(value, "int32")


@pytest.mark.parametrize(
    ("type_name", "order", "words", "value"),
    [
        ("uint16", "big", [0xFFFF], 65535),
        ("int16", "big", [0xFFFF], -1),
        ("int32", "big", [0xFFFF, 0xFFFE], -2),
        ("uint32", "little", [0x0001, 0x0002], 0x00020001),
        ("float32", "big", [0x4366, 0x199A], 230.1),
        ("float32", "little", [0x199A, 0x4366], 230.1),
        ("uint64", "big", [0, 0, 1, 0], 65536),
        ("bool", "big", [4], True),
    ],
)
def test_register_values_by_type_and_word_order(
    type_name: str, order: str, words: list[int], value: float
) -> None:
    assert registers.decode(words, type_name, order) == value  # type: ignore[arg-type]
    if type_name != "bool":
        assert registers.decode(registers.encode(value, type_name, order), type_name, order) == value  # type: ignore[arg-type]


def test_a_bitmask_and_a_value_that_does_not_fit() -> None:
    assert registers.decode([0b1010], "uint16", bitmask=0b0010) == 2
    with pytest.raises(ValueError, match="70000 does not fit a uint16"):
        registers.encode(70000, "uint16")
    assert registers.encode(7.6, "uint16") == [8]


def test_urls_in_messages_show_no_secret() -> None:
    assert (
        shown_url("http://user:pw@h/api?token=abc&filter=car") == "http://user:***@h/api?token=***&filter=car"
    )
    assert shown_url("http://h/set?amp=16&apikey=k") == "http://h/set?amp=16&apikey=***"


class Recorded(Reader):
    """A reader that records when it starts and ends; it may wait for a gate another one opens."""

    def __init__(
        self, group: str, key: str, log: list[str], *, waits: asyncio.Event | None = None,
        opens: asyncio.Event | None = None, fails: bool = False,
    ) -> None:  # fmt: skip
        self.group, self.key, self.log = group, key, log
        self.waits, self.opens, self.fails = waits, opens, fails

    async def fetch(self) -> Any:
        self.log.append(f"start {self.key}")
        if self.opens is not None:
            self.opens.set()
        if self.waits is not None:
            await self.waits.wait()
        self.log.append(f"end {self.key}")
        if self.fails:
            raise DeviceUnreachable(f"{self.key} is silent")
        return self.key


async def test_one_request_per_key_groups_at_once_and_one_after_the_other_within() -> None:
    log: list[str] = []
    gate = asyncio.Event()  # a1 ends only once b has started: groups one after the other would hang
    a1 = Recorded("host a", "a1", log, waits=gate)
    a2, b = Recorded("host a", "a2", log), Recorded("bus b", "b", log, opens=gate)
    again = Recorded("host a", "a1", log)  # the same request as a1
    async with asyncio.timeout(2):
        assert await fetch_all([a1, b, again, a2]) == ["a1", "b", "a1", "a2"]
    assert log.count("start a1") == 1
    assert log.index("end a1") < log.index("start a2")  # one host: one after the other


async def test_a_failure_is_raised_once_every_request_has_ended() -> None:
    log: list[str] = []
    gate = asyncio.Event()
    with pytest.raises(DeviceUnreachable, match="b is silent"):
        await fetch_all(
            [Recorded("a", "a", log, waits=gate), Recorded("b", "b", log, opens=gate, fails=True)]
        )
    assert "end a" in log
