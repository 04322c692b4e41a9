"""Releases of this project built for the firmware tests: wheels with a version set at build time.

A copy of the source tree (bridge/, adapters/, pyproject.toml, README.md) gets the version in
pyproject.toml and bridge/__init__.py, and optional edits (a release whose `check` refuses
everything, one that crashes at start). The wheel is then written here, as PEP 427 describes it
(a zip of the packages and a .dist-info with METADATA, WHEEL, entry_points.txt and RECORD), rather
than by `pip wheel --no-build-isolation`: the project's build needs setuptools >= 77 (PEP 639's
license expression) with bdist_wheel, which the test venv does not have (65.5, no `wheel`), and an
isolated build would fetch them: these tests must run offline. pip installs the wheel as any other
(test_packaging.py checks the real build). Each release is built once per test session.
"""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import tempfile
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
PACKAGES = ("bridge", "adapters")
TOP_FILES = ("pyproject.toml", "README.md", "LICENSE")

# Edits: (file in the tree, text, replacement).
Edit = tuple[str, str, str]
CHECK_REFUSES: tuple[Edit, ...] = (
    (
        "bridge/cli.py",
        '    if args.command == "check":\n',
        '    if args.command == "check":\n'
        '        print("this release refuses every configuration", file=sys.stderr)\n'
        "        return 1\n",
    ),
)
CRASHES_AT_START: tuple[Edit, ...] = (
    (
        "bridge/cli.py",
        "        config = _load(args.config)\n        from bridge.daemon import Daemon\n",
        '        print(f"release {__version__} crashes at start", file=sys.stderr, flush=True)\n'
        "        return 1\n",
    ),
)

_built: dict[tuple[str, tuple[Edit, ...]], Path] = {}
_session_dir: list[Path] = []


def source_tree(dest: Path, version: str, edits: tuple[Edit, ...] = ()) -> Path:
    """A copy of what the build reads, with `version` set and `edits` made (each must apply)."""
    dest.mkdir(parents=True)
    for name in TOP_FILES:
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, dest / name)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, dest / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    _replace(dest / "pyproject.toml", r'(?m)^version = "[^"]*"$', f'version = "{version}"')
    _replace(dest / "bridge/__init__.py", r'(?m)^__version__ = "[^"]*"$', f'__version__ = "{version}"')
    for name, old, new in edits:
        text = (dest / name).read_text()
        if old not in text:
            raise AssertionError(f"edit of {name} no longer applies: {old!r} not found")
        (dest / name).write_text(text.replace(old, new, 1))
    return dest


def _replace(path: Path, pattern: str, new: str) -> None:
    text, n = re.subn(pattern, new, path.read_text())
    if n != 1:
        raise AssertionError(f"{path}: {pattern} matched {n} times")
    path.write_text(text)


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def write_wheel(src: Path, out_dir: Path) -> Path:
    """The wheel of the source tree at `src` (pure Python: py3-none-any)."""
    project = tomllib.loads((src / "pyproject.toml").read_text())["project"]
    version = project["version"]
    dist_info = f"ocpp_bridge-{version}.dist-info"
    meta = [
        "Metadata-Version: 2.1",
        f"Name: {project['name']}",
        f"Version: {version}",
        f"Summary: {project['description']}",
        f"Requires-Python: {project['requires-python']}",
        *(f"Requires-Dist: {req}" for req in project["dependencies"]),
    ]
    scripts = "".join(f"{k} = {v}\n" for k, v in project["scripts"].items())
    files: dict[str, bytes] = {}
    for package in PACKAGES:
        for path in sorted((src / package).rglob("*.py")):
            files[path.relative_to(src).as_posix()] = path.read_bytes()
    files[f"{dist_info}/METADATA"] = ("\n".join(meta) + "\n").encode()
    files[f"{dist_info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: tests/helpers/wheels.py\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    files[f"{dist_info}/entry_points.txt"] = f"[console_scripts]\n{scripts}".encode()
    files[f"{dist_info}/top_level.txt"] = "".join(f"{p}\n" for p in PACKAGES).encode()
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in files.items())
    files[f"{dist_info}/RECORD"] = (record + f"{dist_info}/RECORD,,\n").encode()
    out_dir.mkdir(parents=True, exist_ok=True)
    wheel = out_dir / f"ocpp_bridge-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return wheel


def build_release(version: str, edits: tuple[Edit, ...] = ()) -> Path:
    """The wheel of this project at `version` with `edits`, built once per test session."""
    key = (version, edits)
    if key not in _built:
        if not _session_dir:
            _session_dir.append(Path(tempfile.mkdtemp(prefix="ocpp-bridge-wheels-")))
        work = _session_dir[0] / f"{version}-{len(_built)}"
        src = source_tree(work / "src", version, edits)
        _built[key] = write_wheel(src, work / "dist")
    return _built[key]


def built_releases() -> dict[str, Path]:
    """Two releases of this project (9.0.1, 9.0.2) and two broken ones (9.0.3: a `check` that refuses
    every configuration; 9.0.4: a `run` that crashes at start). A test module's session fixture
    returns this and calls `remove_built()` after its yield."""
    return {
        "9.0.1": build_release("9.0.1"),
        "9.0.2": build_release("9.0.2"),
        "check-refuses": build_release("9.0.3", CHECK_REFUSES),
        "crashes": build_release("9.0.4", CRASHES_AT_START),
    }


def remove_built() -> None:
    if _session_dir:
        shutil.rmtree(_session_dir.pop(), ignore_errors=True)
        _built.clear()
