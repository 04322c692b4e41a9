"""YAML with line numbers: where every key and value of a document starts, by path.

Paths read like `charge_points[0].connectors[1].charger.phases`; `_line` turns one back into a line.
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


class _MarkingLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    """A SafeLoader that records the line of every mapping key and value by path."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.key_lines: dict[str, int] = {}
        self.value_lines: dict[str, int] = {}
        self.duplicates: list[Problem] = []  # keys given twice in one mapping

    def construct_yaml_int(self, node: yaml.ScalarNode) -> Any:
        """Numbers YAML 1.1 reads as octal (010 = 8) or base 60 (1:30 = 90) stay text, as meant."""
        text = str(self.construct_scalar(node))
        if re.fullmatch(r"[-+]?0[0-9_]+", text) or ":" in text:
            return text
        return super().construct_yaml_int(node)

    def load_marked(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        self._mark(node, "", set())
        return self.construct_document(node)

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
