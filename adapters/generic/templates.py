"""Templates of generic devices: `adapters/templates/<name>.yaml`, each a generic device block written
once for a model and filled in with a few parameters (docs/devices/generic.md, "Templates").

`${name}` in any string of the template's `device:` block is replaced by the parameter: a string that
is only `"${unit}"` takes the parameter's value with its type (an int stays an int), inside longer text
it becomes text. Not the setter templates' `{{ }}`, so the two never collide.

`expand(block, kind)` is the configuration's hook: a `charger:`/`meter:` block with `template:` and
`params:` becomes the generic block the template describes, before its options are built.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
KINDS = ("charger", "meter")
_PLACEHOLDER = re.compile(r"\$\{(\w+)\}")
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")


class TemplateError(ValueError):
    """A template that cannot be used as given; `field` is the key of the block it is about
    ("template", "params", "params.url"), the message names the template and the fix."""

    def __init__(self, message: str, field: str = "template") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Param:
    name: str
    description: str = ""
    required: bool = False
    default: Any = None


@dataclass(frozen=True)
class Template:
    name: str
    kind: str  # charger | meter
    description: str
    params: tuple[Param, ...]
    device: Mapping[str, Any]
    path: Path

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)


def _loader() -> type[yaml.SafeLoader]:
    loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return loader


def _parse(path: Path) -> Template:
    """The template in `path`; TemplateError saying what in the file is wrong."""
    where = f"template {path.stem!r} ({path})"
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_loader())
    except (OSError, yaml.YAMLError) as error:
        raise TemplateError(f"{where} cannot be read: {error}") from None
    if not isinstance(data, dict):
        raise TemplateError(f"{where}: expected a mapping with name, kind, description, params, device")
    unknown = set(data) - {"name", "kind", "description", "params", "device"}
    if unknown:
        raise TemplateError(f"{where}: unknown keys {sorted(unknown)}")
    if data.get("name") != path.stem:
        raise TemplateError(f"{where}: its name must be its file's name, {path.stem!r}")
    if data.get("kind") not in KINDS:
        raise TemplateError(f"{where}: kind must be charger or meter")
    if not isinstance(data.get("device"), dict):
        raise TemplateError(f"{where}: device must be a generic device block (read:, write:)")
    params = []
    for item in data.get("params") or []:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise TemplateError(f"{where}: each param is {{name, description, required | default}}")
        extra = set(item) - {"name", "description", "required", "default"}
        if extra:
            raise TemplateError(f"{where}: param {item['name']!r} has unknown keys {sorted(extra)}")
        params.append(
            Param(
                item["name"],
                str(item.get("description", "")),
                bool(item.get("required")),
                item.get("default"),
            )
        )
    template = Template(
        path.stem, data["kind"], str(data.get("description", "")), tuple(params), data["device"], path
    )
    declared = {p.name for p in params}
    used = set(_placeholders(template.device))
    if used - declared:
        raise TemplateError(f"{where}: ${{{sorted(used - declared)[0]}}} is used but not a declared param")
    return template


def _placeholders(node: Any) -> list[str]:
    if isinstance(node, str):
        return _PLACEHOLDER.findall(node)
    if isinstance(node, dict):
        return [n for v in node.values() for n in _placeholders(v)]
    if isinstance(node, list):
        return [n for v in node for n in _placeholders(v)]
    return []


def available(directory: Path = TEMPLATES_DIR) -> list[Template]:
    """Every template in `directory`, by name."""
    return [_parse(path) for path in sorted(directory.glob("*.yaml"))]


def names(directory: Path = TEMPLATES_DIR) -> list[str]:
    return sorted(path.stem for path in directory.glob("*.yaml"))


def load(name: str, directory: Path = TEMPLATES_DIR) -> Template:
    """The template called `name`; TemplateError naming the known ones when there is none."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise TemplateError(f"a template's name is lower-case letters, digits, - and _, not {name!r}")
    path = directory / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(names(directory)) or "none"
        raise TemplateError(f"unknown template {name!r}; known templates: {known} (ocpp-bridge templates)")
    return _parse(path)


def _substitute(node: Any, values: Mapping[str, Any]) -> Any:
    if isinstance(node, str):
        whole = _PLACEHOLDER.fullmatch(node)
        if whole:
            return values[whole.group(1)]
        return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), node)
    if isinstance(node, dict):
        return {k: _substitute(v, values) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute(v, values) for v in node]
    return node


def render(template: Template, params: Mapping[str, Any]) -> dict[str, Any]:
    """The template's device block with `params` filled in; TemplateError naming the param."""
    values: dict[str, Any] = {}
    for key in params:
        if template.param(key) is None:
            known = ", ".join(p.name for p in template.params) or "none"
            raise TemplateError(
                f"template {template.name!r} has no param {key!r} (its params: {known})", f"params.{key}"
            )
    for param in template.params:
        if param.name in params and params[param.name] is not None:
            values[param.name] = params[param.name]
        elif param.required:
            what = f": {param.description}" if param.description else ""
            raise TemplateError(f"template {template.name!r} needs the param {param.name!r}{what}", "params")
        else:
            values[param.name] = param.default
    rendered: dict[str, Any] = _substitute(dict(template.device), values)
    return rendered


def expand(block: Mapping[str, Any], kind: str, directory: Path = TEMPLATES_DIR) -> dict[str, Any]:
    """A configuration's `charger:`/`meter:` block with `template:` (and `params:`) as the generic
    block it stands for: the template's device, then the block's own top-level keys over it."""
    name = block.get("template")
    if not isinstance(name, str):
        raise TemplateError(f"expected a template's name, one of: {', '.join(names(directory))}")
    template = load(name, directory)
    if template.kind != kind:
        raise TemplateError(f"template {template.name!r} describes a {template.kind}, not a {kind}")
    params = block.get("params") or {}
    if not isinstance(params, dict):
        raise TemplateError(f"template {template.name!r}: params is a mapping of name: value", "params")
    rendered = render(template, params)
    for key, value in block.items():
        if key in ("template", "params"):
            continue
        if key in ("read", "write"):
            raise TemplateError(f"{key}: comes from template {template.name!r}; remove it here", key)
        rendered[key] = value
    return rendered


def listing(directory: Path = TEMPLATES_DIR) -> list[str]:
    """`ocpp-bridge templates`: each template, its kind and description, then its params."""
    lines: list[str] = []
    for template in available(directory):
        lines.append(f"{template.name} ({template.kind}): {template.description}")
        width = max((len(p.name) for p in template.params), default=0)
        for p in template.params:
            need = (
                "required"
                if p.required
                else f"default {p.default!r}"
                if p.default is not None
                else "optional"
            )
            lines.append(f"  {p.name:<{width}}  {need}: {p.description}".rstrip(": "))
    lines.append("Use one as charger: or meter: {type: generic, template: NAME, params: {...}}")
    lines.append("(docs/devices/generic.md, Templates)")
    return lines
