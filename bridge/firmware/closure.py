"""The running environment's runtime closure, copied into a new release's venv.

A new release needs the libraries the running one has. Copying the installed files of the
distributions ocpp-bridge requires (recursively, as listed in each one's RECORD), plus pip, means
pip then finds them installed and fetches only what the new release requires beyond them: with no
new requirement, an update needs no network. ocpp-bridge itself and the test tools are not copied.

Markers other than `extra == ...` are not evaluated: a requirement is followed when its distribution
is installed here (one installed for another Python would not be; copying one too many is harmless).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

from bridge.firmware.image import DISTRIBUTION, normalise

ALSO = ("pip",)  # copied besides the requirements: the new venv installs the release with it
_REQ = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?")
_EXTRA = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")


def parse_requirement(text: str) -> tuple[str, frozenset[str], str | None] | None:
    """(name, extras asked for, the extra the requirement belongs to) of a Requires-Dist line."""
    m = _REQ.match(text)
    if m is None:
        return None
    extras = frozenset(normalise(e) for e in (m.group(2) or "").split(",") if e.strip())
    _, _, marker = text.partition(";")
    extra = _EXTRA.search(marker)
    return normalise(m.group(1)), extras, normalise(extra.group(1)) if extra else None


def installed() -> dict[str, metadata.Distribution]:
    """The distributions of the running environment by normalised name (the first one on sys.path)."""
    found: dict[str, metadata.Distribution] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found.setdefault(normalise(name), dist)
    return found


def runtime_closure(root: str = DISTRIBUTION, also: Iterable[str] = ALSO) -> list[metadata.Distribution]:
    """The installed distributions `root` requires, recursively (with the extras asked for), and
    `also`; not `root` itself."""
    dists = installed()
    wanted: dict[str, set[str]] = {}
    todo: list[tuple[str, frozenset[str]]] = [(normalise(root), frozenset())]
    todo += [(normalise(a), frozenset()) for a in also]
    while todo:
        name, extras = todo.pop()
        seen = wanted.get(name)
        if seen is not None and extras <= seen:
            continue
        wanted.setdefault(name, set()).update(extras)
        dist = dists.get(name)
        if dist is None:
            continue
        for line in dist.requires or ():
            req = parse_requirement(line)
            if req is None:
                continue
            dep, dep_extras, belongs_to = req
            if belongs_to is None or belongs_to in extras:
                todo.append((dep, dep_extras))
    return [dists[n] for n in sorted(wanted) if n in dists and n != normalise(root)]


def copy_distribution(dist: metadata.Distribution, site_packages: Path) -> tuple[int, int]:
    """The distribution's files inside its site-packages into `site_packages`; returns (files, bytes).
    Files outside it (console scripts with the old venv's shebang) are left out."""
    base = Path(str(dist.locate_file(""))).resolve()
    files = count = 0
    for f in dist.files or ():
        src = Path(str(dist.locate_file(f))).resolve()
        try:
            rel = src.relative_to(base)
        except ValueError:
            continue  # ../../../bin/...
        if not src.is_file():
            continue  # a .pyc RECORD lists that was never written
        dst = site_packages / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
        files += 1
        count += src.stat().st_size
    return files, count


def copy_closure(site_packages: Path) -> tuple[list[str], int]:
    """Copies the runtime closure into a new venv's site-packages; returns (names, bytes)."""
    names: list[str] = []
    total = 0
    for dist in runtime_closure():
        _, size = copy_distribution(dist, site_packages)
        names.append(f"{dist.metadata['Name']} {dist.version}")
        total += size
    return names, total
