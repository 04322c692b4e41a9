"""Packaging: installing the project (`pip install -e .`, as `make install` does, or a plain
`pip install .`) prints no warning.

pip prepares the metadata as it would for an install (`--dry-run`: the PEP 517 metadata hook, in an
isolated build environment with the setuptools `[build-system]` asks for) and installs nothing. It
works on a copy of what the build reads, so the shared source tree gets no egg-info or build/."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import child_env

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.parametrize("editable", [True, False], ids=["pip-install-e", "pip-install"])
def test_installing_the_project_prints_no_warning(tmp_path: Path, editable: bool) -> None:
    project = tmp_path / "ocpp-bridge"
    project.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, project / name)
    for package in ("bridge", "adapters"):
        shutil.copytree(ROOT / package, project / package, ignore=shutil.ignore_patterns("__pycache__"))
    report = tmp_path / "report.json"
    env = child_env() | {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_ROOT_USER_ACTION": "ignore"}
    env.pop("PIP_NO_BUILD_ISOLATION", None)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--report", str(report),
         *(["-e"] if editable else []), str(project)],
        cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Would install ocpp-bridge-" in output
    warnings = [line for line in output.splitlines() if any(w in line.lower() for w in ("warn", "deprecat"))]
    assert warnings == [], output
    # The license is still declared, now as PEP 639's License-Expression.
    (install,) = json.loads(report.read_text())["install"]
    assert install["metadata"]["license_expression"] == "Apache-2.0"
