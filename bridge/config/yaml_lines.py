"""YAML with line numbers: where every key and value of a document starts, by path.

Paths read like `charge_points[0].connectors[1].charger.phases`; `_line` turns one back into a line.

The lines are wanted only to place problems, so they are worked out when there are some (`lines()`),
unless a key may be given twice (a key repeated in its mapping, or one whose text holds a '.', '[' or
']', which could spell another key's path): that is itself a problem, found by the walk that marks the
lines (`duplicates`). A document of plain mappings, sequences and scalars (what a configuration is) is
built by one walk of its nodes (`_plain`, ~3x faster than PyYAML's constructor, which keeps state for
aliases and recursion); anything else (an alias, a merge key, a tag of its own) goes to PyYAML's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

from bridge.config.schema import Problem


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _parent(path: str) -> str:
    if path.endswith("]"):
        return path[: path.rindex("[")]
    return path[: max(path.rfind("."), 0)]


# libyaml's parser where PyYAML has it (Debian's and the wheels do): a configuration of 1,000 charge
# points is parsed in a tenth of the time. Its nodes carry the same marks.
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"
_VALUE = "tag:yaml.org,2002:value"
_OCTAL_LOOKING = re.compile(r"[-+]?0[0-9_]+")
_PATH_CHARACTERS = frozenset(".[]")


class _Unusual(Exception):
    """The document needs PyYAML's own constructor."""


class _MarkingLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    """A SafeLoader that records the line of every mapping key and value by path."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.key_lines: dict[str, int] = {}
        self.value_lines: dict[str, int] = {}
        self.duplicates: list[Problem] = []  # keys given twice in one mapping
        self._root: yaml.Node | None = None  # kept until the lines are marked
        self._maybe_twice = False  # a key may be given twice: mark the lines at once

    def construct_yaml_int(self, node: yaml.ScalarNode) -> Any:
        """Numbers YAML 1.1 reads as octal (010 = 8) or base 60 (1:30 = 90) stay text, as meant."""
        text = str(self.construct_scalar(node))
        if _OCTAL_LOOKING.fullmatch(text) or ":" in text:
            return text
        return super().construct_yaml_int(node)

    def load_marked(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        try:
            data = self._plain(node, set())
        except (_Unusual, RecursionError):
            self._maybe_twice = True
            data = None
        if self._maybe_twice:
            self._mark(node, "", set())
        else:
            self._root = node
        return self.construct_document(node) if data is None else data

    def lines(self) -> tuple[dict[str, int], dict[str, int]]:
        """Where every key and every value starts, by path (marked now if they were not yet)."""
        if self._root is not None:
            root, self._root = self._root, None
            self._mark(root, "", set())
        return self.key_lines, self.value_lines

    def _plain(self, node: yaml.Node, seen: set[int]) -> Any:
        """What PyYAML's constructor makes of `node`, for plain mappings, sequences and scalars;
        _Unusual for anything else. `seen`: the collections met so far (one met again is an alias)."""
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _STR:
                return node.value
            construct = self.yaml_constructors.get(node.tag)
            if construct is None:
                raise _Unusual
            return construct(self, node)
        if id(node) in seen:
            raise _Unusual
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode) and node.tag == _SEQ:
            return [self._plain(item, seen) for item in node.value]
        if not isinstance(node, yaml.MappingNode) or node.tag != _MAP:
            raise _Unusual
        mapping: dict[Any, Any] = {}
        texts: set[str] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag in (_MERGE, _VALUE):
                raise _Unusual
            key = self._plain(key_node, seen)
            text = key_node.value
            if not text or text in texts or not _PATH_CHARACTERS.isdisjoint(text):
                self._maybe_twice = True
            texts.add(text)
            try:
                mapping[key] = self._plain(value_node, seen)
            except TypeError:  # an unhashable key: PyYAML's constructor says so
                raise _Unusual from None
        return mapping

    def _mark(self, node: yaml.Node, path: str, active: set[int]) -> None:
        if id(node) in active:  # a recursive alias
            return
        active = active | {id(node)}
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                sub = _join(path, str(key_node.value))
                if sub in self.key_lines:
                    message = f"given twice (first on line {self.key_lines[sub]}); keep one"
                    self.duplicates.append(Problem(sub, key_node.start_mark.line + 1, message))
                    continue
                self.key_lines[sub] = key_node.start_mark.line + 1
                self.value_lines[sub] = value_node.start_mark.line + 1
                self._mark(value_node, sub, active)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                sub = f"{path}[{index}]"
                self.value_lines[sub] = item.start_mark.line + 1
                self._mark(item, sub, active)


_MarkingLoader.add_constructor("tag:yaml.org,2002:int", _MarkingLoader.construct_yaml_int)


def _line(
    path: str, at_key: bool, key_lines: Mapping[str, int], value_lines: Mapping[str, int]
) -> int | None:
    """The line of `path`: its key's for problems with the key, else its value's or its parent's."""
    if at_key and path in key_lines:
        return key_lines[path]
    while path:
        if path in value_lines:
            return value_lines[path]
        path = _parent(path)
    return None
