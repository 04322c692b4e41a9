"""Setter templates of a generic device: text with `{{ expression }}` parts over `value`, the value
being written (docs/devices/generic.md, "Setter templates").

No eval, no compile: the expression is parsed by Python's `ast` and walked here, node by node, over a
whitelist: constants, the one name `value`, arithmetic on numbers, comparisons, and/or/not,
`a if c else b`, and the calls in CALLS. Attribute access, subscripts, other names, lambdas,
comprehensions and every other call are refused when the configuration is checked, so nothing in a
configuration file can reach Python's objects. Numbers are bounded (an exponent and round's digits at
most 64, results at most 10**100) and an expression is at most 500 characters (its nesting with it), so
that a template can neither make the daemon compute for ever nor exhaust Python's stack.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable
from typing import Any

Value = bool | int | float | str | None

MAX_EXPONENT = 64
MAX_MAGNITUDE = 10**100
MAX_TEXT = 1000  # characters of a text an expression may build
MAX_SOURCE = 500  # characters of one expression: deep nesting exhausts Python's stack
_PART = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)


def _round(number: Any, digits: Any = None) -> Any:
    # round(x, -10**7) computes 10**10**7: the digits are bounded as an exponent is
    if _too_many_digits(digits):
        raise OverflowError(f"round's digits are at most {MAX_EXPONENT}, got {digits}")
    return round(number, digits)


def _too_many_digits(digits: Any) -> bool:
    return isinstance(digits, int) and abs(digits) > MAX_EXPONENT


CALLS: dict[str, Callable[..., Any]] = {
    "int": int,
    "float": float,
    "round": _round,
    "abs": abs,
    "min": min,
    "max": max,
    "str": str,
    "bool": bool,
}
_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


class ExpressionError(ValueError):
    """An expression that is not allowed, or that fails for the value given; the message says which."""


def _check(node: ast.AST, source: str) -> None:
    """Refuses anything outside the whitelist (at configuration time)."""
    for child in ast.walk(node):
        if isinstance(child, ast.Expression | ast.Load | ast.operator | ast.unaryop | ast.boolop | ast.cmpop):
            continue
        if isinstance(child, ast.Constant):
            if not isinstance(child.value, bool | int | float | str) and child.value is not None:
                raise ExpressionError(f"{source!r}: the constant {child.value!r} is not allowed")
        elif isinstance(child, ast.Name):
            if child.id != "value" and child.id not in CALLS:
                raise ExpressionError(f"{source!r}: unknown name {child.id!r}; the only variable is `value`")
        elif isinstance(child, ast.Call):
            if not isinstance(child.func, ast.Name) or child.func.id not in CALLS:
                raise ExpressionError(f"{source!r}: only the calls {', '.join(CALLS)} are allowed")
            if child.keywords or any(isinstance(a, ast.Starred) for a in child.args):
                raise ExpressionError(f"{source!r}: calls take plain arguments only")
        elif isinstance(child, ast.BinOp):
            if type(child.op) not in _BINARY:
                raise ExpressionError(f"{source!r}: the operator {type(child.op).__name__} is not allowed")
        elif isinstance(child, ast.UnaryOp) and isinstance(child.op, ast.Invert):
            raise ExpressionError(f"{source!r}: the operator Invert (~) is not allowed")
        elif isinstance(child, ast.Compare):
            if any(type(op) not in _COMPARE for op in child.ops):
                raise ExpressionError(f"{source!r}: only == != < <= > >= compare")
        elif not isinstance(child, ast.UnaryOp | ast.BoolOp | ast.IfExp):
            what = "attribute access" if isinstance(child, ast.Attribute) else type(child).__name__
            raise ExpressionError(f"{source!r}: {what} is not allowed in a setter template")
    # A function's name is only ever called, never a value (`max(int, 1)`).
    called = {id(c.func) for c in ast.walk(node) if isinstance(c, ast.Call)}
    for child in ast.walk(node):
        if isinstance(child, ast.Name) and child.id in CALLS and id(child) not in called:
            raise ExpressionError(f"{source!r}: {child.id} can only be called")


class Expression:
    """One `{{ ... }}` part, checked once; `evaluate(value)` as often as needed."""

    def __init__(self, source: str) -> None:
        self.source = source.strip()
        if len(self.source) > MAX_SOURCE:
            raise ExpressionError(
                f"{self.source[:40]!r}...: an expression is longer than {MAX_SOURCE} characters"
            )
        try:
            tree = ast.parse(self.source, mode="eval")
        except SyntaxError as error:
            raise ExpressionError(f"{self.source!r} is not an expression ({error.msg})") from None
        except (RecursionError, MemoryError):
            raise ExpressionError(f"{self.source!r} is nested too deeply") from None
        _check(tree, self.source)
        self._tree = tree.body
        for node in ast.walk(tree):  # round's digits given without `value` are refused now, at `check`
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "round":
                if len(node.args) == 2 and not any(isinstance(n, ast.Name) for n in ast.walk(node.args[1])):
                    digits = self._evaluated(node.args[1], None)
                    if _too_many_digits(digits):
                        raise ExpressionError(
                            f"{self.source!r}: round's digits are at most {MAX_EXPONENT}, got {digits}"
                        )

    def evaluate(self, value: Value) -> Value:
        bounded: Value = _bounded(self._evaluated(self._tree, value), self.source)
        return bounded

    def _evaluated(self, node: ast.AST, value: Value) -> Any:
        try:
            return self._eval(node, value)
        except ExpressionError:
            raise
        except (ArithmeticError, TypeError, ValueError) as error:
            raise ExpressionError(f"{self.source!r} fails for value {value!r}: {error}") from None
        except (RecursionError, MemoryError):
            raise ExpressionError(f"{self.source!r} is nested too deeply to evaluate") from None

    def _eval(self, node: ast.AST, value: Value) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return value
        if isinstance(node, ast.BinOp):
            left, right = self._eval(node.left, value), self._eval(node.right, value)
            return _binary(type(node.op), left, right, self.source)
        if isinstance(node, ast.UnaryOp):
            operand = self._eval(node.operand, value)
            if isinstance(node.op, ast.Not):
                return not operand
            _numbers(operand, operand, self.source)
            return -operand if isinstance(node.op, ast.USub) else +operand
        if isinstance(node, ast.BoolOp):
            result: Any = None
            for item in node.values:
                result = self._eval(item, value)
                if isinstance(node.op, ast.And) != bool(result):
                    return result
            return result
        if isinstance(node, ast.Compare):
            left = self._eval(node.left, value)
            for op, comparator in zip(node.ops, node.comparators, strict=True):
                right = self._eval(comparator, value)
                if not _COMPARE[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.IfExp):
            branch = node.body if self._eval(node.test, value) else node.orelse
            return self._eval(branch, value)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            args = [_bounded(self._eval(a, value), self.source) for a in node.args]
            return CALLS[node.func.id](*args)
        raise ExpressionError(f"{self.source!r}: not allowed")  # _check refused it already


def _numbers(left: Any, right: Any, source: str) -> None:
    for operand in (left, right):
        if not isinstance(operand, int | float):
            raise ExpressionError(f"{source!r}: arithmetic on {type(operand).__name__} is not allowed")


def _binary(op: type[ast.operator], left: Any, right: Any, source: str) -> Any:
    if op is ast.Add and isinstance(left, str) and isinstance(right, str):
        return left + right  # bounded by _bounded after
    _numbers(left, right, source)
    if op is ast.Pow and (abs(right) > MAX_EXPONENT or abs(left) > MAX_MAGNITUDE):
        raise ExpressionError(f"{source!r}: an exponent is at most {MAX_EXPONENT}")
    return _BINARY[op](left, right)


def _bounded(result: Any, source: str) -> Any:
    if isinstance(result, int) and not isinstance(result, bool) and abs(result) > MAX_MAGNITUDE:
        raise ExpressionError(f"{source!r}: the result is too large")
    if isinstance(result, float) and not math.isfinite(result):
        raise ExpressionError(f"{source!r}: the result is not a finite number")
    if isinstance(result, str) and len(result) > MAX_TEXT:
        raise ExpressionError(f"{source!r}: the text is longer than {MAX_TEXT} characters")
    if isinstance(result, complex):
        raise ExpressionError(f"{source!r}: the result is not a real number")
    return result


def render_value(value: Value) -> str:
    """How a value shows in the rendered text: true/false, 16 rather than 16.0."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if value is None:
        return ""
    return str(value)


class Setter:
    """A text with `{{ expression }}` parts; `render(value)` fills them in."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._parts: list[str | Expression] = []
        position = 0
        for match in _PART.finditer(text):
            self._parts.append(text[position : match.start()])
            self._parts.append(Expression(match.group(1)))
            position = match.end()
        rest = text[position:]
        if "{{" in rest or "}}" in rest:
            raise ExpressionError(f"{text!r}: an unclosed {{{{ ... }}}}")
        self._parts.append(rest)

    @property
    def uses_value(self) -> bool:
        return any(isinstance(p, Expression) for p in self._parts)

    def render(self, value: Value) -> str:
        return "".join(p if isinstance(p, str) else render_value(p.evaluate(value)) for p in self._parts)
