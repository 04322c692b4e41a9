"""The connector lifecycle's diagram for docs/protocol.md, drawn from the transition tables.

`render()` turns `connector_states`' tables into Mermaid `stateDiagram-v2` text, one diagram per
machine; an edge is labelled with its event and, in brackets, its guard. docs/protocol.md carries that
text between two marker comments, and a test fails when the two differ. To draw it again:

    .venv/bin/python -m bridge.core.connector_diagram --write   # rewrites the block in docs/protocol.md
    .venv/bin/python -m bridge.core.connector_diagram           # prints it
"""

from __future__ import annotations

import argparse
import sys
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

from bridge.core.connector_states import (
    AVAILABILITY_TABLE,
    INITIAL_AVAILABILITY,
    INITIAL_STATE,
    SESSION_TABLE,
    Row,
)

BEGIN = (
    "<!-- connector-lifecycle: drawn by `python -m bridge.core.connector_diagram --write`; do not edit -->"
)
END = "<!-- /connector-lifecycle -->"
DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
S = TypeVar("S", bound=StrEnum)
E = TypeVar("E")


def _machine(title: str, initial: S, table: tuple[Row[S, E], ...]) -> list[str]:
    lines = [f"{title}:", "", "```mermaid", "stateDiagram-v2", "    direction LR", f"    [*] --> {initial}"]
    for row in table:
        guard = f" [{row.guard}]" if row.guard is not None else ""
        lines.append(f"    {row.source} --> {row.target}: {row.event.__name__}{guard}")
    return [*lines, "```"]


def render() -> str:
    """The text between the markers (without them)."""
    session = _machine("The session", INITIAL_STATE, SESSION_TABLE)
    availability = _machine("The availability", INITIAL_AVAILABILITY, AVAILABILITY_TABLE)
    return "\n".join([*session, "", *availability])


def block(doc: str) -> str | None:
    """The text between the markers in `doc`, or None when they are missing."""
    start, end = doc.find(BEGIN), doc.find(END)
    if start < 0 or end < start:
        return None
    return doc[start + len(BEGIN) : end].strip("\n")


def rewrite(doc: str) -> str:
    """`doc` with the text between the markers drawn again."""
    start, end = doc.find(BEGIN), doc.find(END)
    if start < 0 or end < start:
        raise ValueError(f"the markers are missing: {BEGIN} ... {END}")
    return f"{doc[: start + len(BEGIN)]}\n{render()}\n{doc[end:]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--write", action="store_true", help=f"rewrite the block in {DOC}")
    args = parser.parse_args(argv)
    if not args.write:
        print(render())
        return 0
    DOC.write_text(rewrite(DOC.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"{DOC}: the connector lifecycle drawn again", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
