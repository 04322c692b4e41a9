"""Secrets out of what a diagnostics archive holds: the configuration file's text and the JSON parts.

What counts as a secret (`is_secret_name`, names compared in snake_case, so `AuthorizationKey` is
`authorization_key`):
- passwords, tokens and secrets: `password`, `*_password`, `passwd`, `token`, `*_token`, `secret`,
  `*_secret`, `credentials`, `psk`;
- HTTP credentials a device description carries in its headers: `authorization`, `cookie`;
- keys: `key` and every `*_key` (`authorization_key`, `api_key`, `client_key`, `private_key`). A
  key's value is masked even when it looks like a path: a base64 key may start with '/' too, so the
  name decides, not the value. A field that holds the path of a key file is named `*_file` or
  `*_path` (`client_key_file`) and is kept, which is what makes it useful in a diagnosis;
- wherever it stands: the password of a URL (`mqtt://user:***@host`) and PEM private-key blocks.

The text of the file is masked in place (comments, order and line numbers kept, so a `file:line`
of an error still points at the right line): the YAML is composed into nodes, which know where their
text starts and ends, and each secret value's text is replaced by '***'. Comments are not nodes; a
comment that reads like `password: x` is masked too. Text that is not YAML is masked line by line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import yaml

from bridge.log import MASK, mask_url_passwords, redact_frame

_SECRET_NAMES = frozenset(
    {"password", "passwd", "token", "secret", "key", "credentials", "psk", "authorization", "cookie"}
)
_SECRET_SUFFIXES = ("password", "passwd", "_token", "_secret", "_key", "_credentials", "_psk")
_PUBLIC_SUFFIXES = ("_file", "_path", "_dir")  # a key file's path, not a key
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)", re.S)
# `name: value` or `name=value` in a comment or in text that is not YAML. An unquoted value runs to the
# end of the line: a password may hold spaces, commas or '#', and too much masked does no harm here.
_NAME = re.compile(r"""(["']?)([A-Za-z_][\w.-]*)\1[ \t]*[:=][ \t]*""")
_VALUE = re.compile(r""""(?:[^"\\]|\\.)*"?|'(?:[^']|'')*'?|[^\n]+""")
# `name:` alone, or `name: |` (a block scalar follows): the indented lines after it are its value.
_HEADER = re.compile(r"""\s*(?:-\s+)?(["']?)([A-Za-z_][\w.-]*)\1\s*:\s*([|>][-+0-9]*)?\s*(#.*)?""")
_QUOTED = f"'{MASK}'"
_NULL = "tag:yaml.org,2002:null"


def snake(name: str) -> str:
    return _CAMEL.sub("_", name).replace("-", "_").lower()


def is_secret_name(name: str) -> bool:
    """Whether a field called `name` holds a secret (see the module's text for the rules)."""
    n = snake(name)
    if n.endswith(_PUBLIC_SUFFIXES):
        return False
    return n in _SECRET_NAMES or n.endswith(_SECRET_SUFFIXES)


def mask_text(text: str) -> str:
    """Secrets that show whatever their place: URL passwords and PEM private keys."""
    return _PEM.sub(lambda m: MASK + "\n" * m.group(0).count("\n"), mask_url_passwords(text))


def redacted_config(raw_yaml_text: str) -> str:
    """The configuration file's text with every secret's value replaced by '***'."""
    try:
        spans = sorted(set(_secret_spans(raw_yaml_text)), reverse=True)
    except yaml.YAMLError:
        return "# not valid YAML: secrets masked line by line\n" + _by_lines(raw_yaml_text)
    text = raw_yaml_text
    for begin, end in spans:  # from the end, so earlier offsets stay valid
        breaks = "\n" * text.count("\n", begin, end)  # keeps the line numbers of what follows
        text = text[:begin] + _QUOTED + breaks + text[end:]
    return "\n".join(_mask_comment(line) for line in mask_text(text).split("\n"))


def _secret_spans(text: str) -> Iterator[tuple[int, int]]:
    for document in yaml.compose_all(text, Loader=yaml.SafeLoader):
        if document is not None:
            yield from _walk(document, secret=False)


def _walk(node: yaml.Node, secret: bool) -> Iterator[tuple[int, int]]:
    if isinstance(node, yaml.ScalarNode):
        if (secret and node.value != "" and node.tag != _NULL) or "PRIVATE KEY" in node.value:
            yield node.start_mark.index, node.end_mark.index
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else ""
            yield from _walk(value, secret or is_secret_name(name))
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _walk(item, secret)


def _mask_pairs(text: str) -> str:
    out, at = [], 0
    while (name := _NAME.search(text, at)) is not None:
        out.append(text[at : name.end()])
        at = name.end()
        if is_secret_name(name.group(2)) and (value := _VALUE.match(text, at)) is not None:
            out.append(_QUOTED)
            at = value.end()
    return "".join(out) + text[at:]


def _mask_comment(line: str) -> str:
    """A comment's `password: x`; a '#' counts when it starts the line or follows a space."""
    at = 0 if line.lstrip().startswith("#") else line.find(" #")
    return line if at < 0 else line[:at] + _mask_pairs(line[at:])


def _by_lines(text: str) -> str:
    """Masking without a YAML parse: each secret `name: value`, and the indented lines after a
    secret `name:` or `name: |` (a mapping or a block scalar)."""
    out: list[str] = []
    block_indent: int | None = None
    for line in mask_text(text).split("\n"):
        indent = len(line) - len(line.lstrip())
        if block_indent is not None and (not line.strip() or indent > block_indent):
            out.append(line[:indent] + MASK if line.strip() else line)
            continue
        header = _HEADER.fullmatch(line)
        block_indent = indent if header and is_secret_name(header.group(2)) else None
        out.append(line if header else _mask_pairs(line))
    return "\n".join(out)


def mask_line(line: bytes) -> bytes:
    """A log line as the archive takes it: a second net for what a file may hold unmasked (written by
    an older version, or a URL in a library's message). Cheap for the lines with nothing to mask."""
    if b"@" not in line and b"uthorizationkey" not in line.lower():
        return line
    text = mask_url_passwords(line.decode("utf-8", "backslashreplace"))
    frame = text.find("[")  # a frame line: `<time> DEBUG   ocpp.frames: CP-1 <- [2,...]`
    if frame >= 0 and "authorizationkey" in text.lower():
        text = text[:frame] + redact_frame(text[frame:].rstrip("\n")) + "\n"
    return text.encode()


def redact_value(value: Any) -> Any:
    """A JSON-like value (a status snapshot, a probe) with secret fields and URL passwords masked."""
    if isinstance(value, dict):
        return {
            k: MASK if is_secret_name(str(k)) and _filled(v) else redact_value(v) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    if isinstance(value, str):
        return mask_text(value)
    return value


def _filled(value: Any) -> bool:
    return value is not None and not isinstance(value, bool) and value != ""
