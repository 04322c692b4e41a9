"""The shape of the test suite, read from its source (no test here runs the bridge).

Two rules of the test suite, checked here so that they stay kept:

- A test module never imports another test module. What two modules share lives in tests/helpers/
  (one small module per topic) or, when it is a fixture, in tests/conftest.py; a test module that
  imports another also runs the other's module-level code and ties their changes together.
- Tests drive the bridge and its simulated devices through their public interfaces (the simulated
  charger's methods and `state()`, the store's API, the status API, what the central system saw on
  the wire), never through a private attribute (`charger._current_a`): a private name may change
  with any refactoring, and a test that reads one pins the implementation, not the behaviour.

What counts as a private attribute of ours: a `_name` (one leading underscore) that bridge/ or
adapters/ defines (a function, a class, an attribute it assigns, a module-level name), reached in
test code as `something._name`, through setattr/getattr/monkeypatch with the name as a string, or
imported by name from bridge or adapters. `self._name` in the tests' own classes is theirs, unless
the class derives from one of ours. An access reached through another private attribute that is not
ours (`csms._cps[cp]._connection`: the test central system's own table, then the `ocpp` library's
connection) is into someone else's object, not ours.

`WAITING` lists the accesses that could not be removed yet, each with the public accessor it waits
for. It may only shrink: the check fails when a file reaches into a private attribute the list does
not hold, or holds fewer of (a new reach), and also when it holds more than the file does (an entry
to lower or remove). `WAITING_AT_MOST` caps the total; lower it as entries go, never raise it.
"""

from __future__ import annotations

import ast
import functools
import gc
from collections import Counter
from collections.abc import Iterator
from pathlib import Path


def _parse(source: str, filename: str = "<unknown>") -> ast.Module:
    """ast.parse without the garbage collector: a finaliser run by it in the middle (an asyncio task
    of an earlier test logging its unretrieved error, whose traceback formatting parses source too)
    makes CPython 3.11's parse fail with "AST constructor recursion depth mismatch" (gh-106905)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return ast.parse(source, filename)
    finally:
        if enabled:
            gc.enable()


ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
OURS = ("bridge", "adapters")

# (test file, private name): (how many accesses, the public accessor they wait for). Shrink only.
WAITING: dict[tuple[str, str], tuple[int, str]] = {}
WAITING_AT_MOST = 0  # the sum of the counts above: lower it as they go, never raise it


def _test_code() -> list[Path]:
    """Every Python file of the test suite (not the node peers' dependencies)."""
    return sorted(p for p in TESTS.rglob("*.py") if "node_modules" not in p.parts)


def _checked_for_private_access() -> list[Path]:
    """The code that drives the bridge: the test modules, conftest and the shared helpers (the test
    central system, emulators and peers import nothing of ours)."""
    helpers = sorted((TESTS / "helpers").rglob("*.py"))
    return [*sorted(TESTS.glob("test_*.py")), TESTS / "conftest.py", *helpers]


def _is_private(name: str) -> bool:
    return len(name) > 1 and name.startswith("_") and not name.startswith("__")


@functools.cache
def _our_private_names() -> frozenset[str]:
    """Every private name bridge/ and adapters/ define: functions, classes, assigned attributes and names."""
    names: set[str] = set()
    for package in OURS:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(_parse(path.read_text(encoding="utf-8"), str(path))):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    name = node.name
                elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                    name = node.attr
                elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                    name = node.id
                else:
                    continue
                if _is_private(name):
                    names.add(name)
    return frozenset(names)


def _imported_from_ours(tree: ast.Module) -> set[str]:
    """The names a module imports from bridge or adapters (to know which of its classes derive from ours)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in OURS:
            names.update(a.asname or a.name for a in node.names)
        elif isinstance(node, ast.Import):
            roots = ((a.asname or a.name).split(".")[0] for a in node.names if a.name.split(".")[0] in OURS)
            names.update(roots)
    return names


def _reached_through_foreign_private(node: ast.expr, ours: frozenset[str]) -> bool:
    """Whether the receiver chain passes a private attribute that is not ours (someone else's object)."""
    while isinstance(node, ast.Attribute | ast.Subscript | ast.Call):
        if isinstance(node, ast.Attribute) and _is_private(node.attr) and node.attr not in ours:
            return True
        node = node.func if isinstance(node, ast.Call) else node.value
    return False


def _classes_deriving_from_ours(tree: ast.Module, imported: set[str]) -> set[ast.ClassDef]:
    def root(base: ast.expr) -> str | None:
        while isinstance(base, ast.Attribute | ast.Subscript):
            base = base.value
        return base.id if isinstance(base, ast.Name) else None

    return {
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef) and any(root(b) in imported for b in node.bases)
    }


def _private_accesses(source: str) -> Iterator[tuple[int, str, str]]:
    """(line, private name, the code) of each reach into a private attribute of ours in `source`."""
    ours = _our_private_names()
    tree = _parse(source)
    imported = _imported_from_ours(tree)
    # `self` inside a test class deriving from one of ours is one of ours.
    ours_by_inheritance: set[int] = set()
    for cls in _classes_deriving_from_ours(tree, imported):
        ours_by_inheritance.update(id(n) for n in ast.walk(cls))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in OURS:
            for alias in node.names:
                if _is_private(alias.name):
                    yield node.lineno, alias.name, f"from {node.module} import {alias.name}"
        elif isinstance(node, ast.Attribute) and _is_private(node.attr) and node.attr in ours:
            receiver = node.value
            own = isinstance(receiver, ast.Name) and receiver.id in ("self", "cls")
            if own and id(node) not in ours_by_inheritance:
                continue
            if _reached_through_foreign_private(receiver, ours):
                continue
            yield node.lineno, node.attr, ast.unparse(node)
        elif isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called not in ("setattr", "getattr", "delattr", "hasattr") or not node.args:
                continue
            constants = [a.value for a in node.args[:2] if isinstance(a, ast.Constant)]
            for text in (c for c in constants if isinstance(c, str)):
                # setattr(obj, "_name", ...) and monkeypatch.setattr("bridge.module._name", ...)
                dotted = text.split(".")
                name = dotted[-1]
                if _is_private(name) and (name in ours or (len(dotted) > 1 and dotted[0] in OURS)):
                    yield node.lineno, name, ast.unparse(node)


def _imports_of_test_modules(source: str) -> Iterator[tuple[int, str]]:
    """(line, module) of each import of a test module (`tests.test_x`, `from tests import test_x`,
    `from .test_x import ...`) in `source`."""
    for node in ast.walk(_parse(source)):
        if isinstance(node, ast.ImportFrom):
            base = ("." * node.level) + (node.module or "")
            joint = "." if node.module else ""
            targets = [base, *(f"{base}{joint}{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        for target in targets:
            if any(part.startswith("test_") for part in target.lstrip(".").split(".")):
                yield node.lineno, target


# -- the checks --------------------------------------------------------------------------------------
def test_no_test_module_imports_another_test_module() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}: imports {target}"
        for path in _test_code()
        for line, target in _imports_of_test_modules(path.read_text(encoding="utf-8"))
    ]
    assert found == [], "move what is shared to tests/helpers/ (or a conftest fixture):\n" + "\n".join(found)


def test_tests_reach_no_private_attribute_of_bridge_or_adapters_beyond_the_waiting_list() -> None:
    seen: Counter[tuple[str, str]] = Counter()
    where: dict[tuple[str, str], list[str]] = {}
    for path in _checked_for_private_access():
        for line, name, code in _private_accesses(path.read_text(encoding="utf-8")):
            key = (str(path.relative_to(TESTS)), name)
            seen[key] += 1
            where.setdefault(key, []).append(f"tests/{key[0]}:{line}: {code}")
    new = [
        f"{line}  (use a public interface; {WAITING.get(key, (0, ''))[0]} waiting for one)"
        for key, count in sorted(seen.items())
        if count > WAITING.get(key, (0, ""))[0]
        for line in where[key]
    ]
    assert new == [], "a test reaches into a private attribute of bridge or adapters:\n" + "\n".join(new)
    stale = [
        f"{file} {name}: {allowed} allowed, {seen[file, name]} left: lower or remove the entry"
        for (file, name), (allowed, _) in sorted(WAITING.items())
        if seen[file, name] < allowed
    ]
    assert stale == [], "the waiting list only shrinks; it holds more than is left:\n" + "\n".join(stale)


def test_the_waiting_list_does_not_grow() -> None:
    assert sum(count for count, _ in WAITING.values()) <= WAITING_AT_MOST
    assert all(accessor for _, accessor in WAITING.values()), "each entry names the accessor it waits for"


def test_the_private_access_check_sees_what_it_must() -> None:
    """The check itself, on a made-up module: each form it must catch, and what it must leave alone."""
    source = """
from adapters.chargers.relay import _shelly_answer, TasmotaCharger
import bridge.store as store_module

class Fake(TasmotaCharger):
    def poke(self):
        return self._online

class Own:
    def __init__(self):
        self._enabled = True

def f(sim, monkeypatch, csms, endpoint):
    sim._enabled
    monkeypatch.setattr(endpoint, "_send", None)
    monkeypatch.setattr("bridge.store._not_a_name_of_ours", None)
    csms._cps["CP-1"]._connection
    sim.state().enabled
"""
    found = sorted((line, name) for line, name, _ in _private_accesses(source))
    assert found == [
        (2, "_shelly_answer"),
        (7, "_online"),
        (14, "_enabled"),
        (15, "_send"),
        (16, "_not_a_name_of_ours"),
    ]


def test_the_import_check_sees_what_it_must() -> None:
    source = """
from tests.test_cli import run
from tests import test_cli, conftest
from .test_systemd import x
import tests.test_persistence
from tests.helpers.flow import sim_of
from tests.conftest import running
"""
    found = sorted({line for line, _ in _imports_of_test_modules(source)})
    assert found == [2, 3, 4, 5]
