"""The rules of a charge point's `firmware:` block (what UpdateFirmware installs) and its
`diagnostics:` block (how GetDiagnostics uploads).

`install: bridge` installs code handed over by whoever controls the connection: remote code execution
by design. Over ws:// that is anyone on the path, so it is refused unless the file says the risk is
accepted (`accept_remote_code_risk: true`). wss:// (TLS) is the least it needs otherwise.
"""

from __future__ import annotations

import shlex
from typing import Any

from bridge.config.checker import _BAD, _Checker, _got
from bridge.config.schema import DiagnosticsConfig, FirmwareConfig
from bridge.config.yaml_lines import _join

MAX_TIMEOUT_S = 24 * 3600.0


def _firmware(ck: _Checker, raw: Any, path: str, csms_url: Any) -> Any:
    if raw is None:
        return FirmwareConfig()
    special = {"command": lambda v, p: _command(ck, v, p)}
    firmware = ck.build(FirmwareConfig, raw, path, special)
    if firmware is _BAD:
        return _BAD
    problems: list[tuple[str, str]] = []
    for name in ("timeout_s", "boot_timeout_s"):
        value = getattr(firmware, name)
        if not 0 < value <= MAX_TIMEOUT_S:
            problems.append((name, f"must be above 0 and at most {MAX_TIMEOUT_S:g} (seconds), not {value:g}"))
    if firmware.install == "command" and not firmware.command:
        what = "the program and its arguments; the image's path is added as the last one"
        problems.append(("command", f"required with install: command ({what})"))
    elif firmware.install != "command" and firmware.command:
        problems.append(("command", f"is used only with install: command, not {firmware.install}"))
    secure = isinstance(csms_url, str) and csms_url.lower().startswith("wss://")
    if firmware.install == "bridge" and not secure and not firmware.accept_remote_code_risk:
        risk = "bridge over ws:// lets anyone on the network path install code that runs here"
        fix = "use a wss:// csms_url, or set accept_remote_code_risk: true to accept that risk"
        problems.append(("install", f"{risk}: {fix}"))
    for name, problem in problems:
        ck.add(_join(path, name), problem)
    return _BAD if problems else firmware


def _command(ck: _Checker, raw: Any, path: str) -> Any:
    """A list of words, or one string split as a shell would (no shell runs it)."""
    if isinstance(raw, str):
        try:
            words = shlex.split(raw)
        except ValueError as error:
            ck.add(path, f"cannot be split into words: {error}")
            return _BAD
    elif isinstance(raw, list) and all(isinstance(w, str) for w in raw):
        words = list(raw)
    else:
        ck.add(path, f"expected a command (a string or a list of strings), got {_got(raw)}")
        return _BAD
    if not words or not words[0]:
        ck.add(path, "must name a program")
        return _BAD
    return tuple(words)


def _diagnostics(ck: _Checker, raw: Any, path: str) -> Any:
    if raw is None:
        return DiagnosticsConfig()
    diagnostics = ck.build(DiagnosticsConfig, raw, path)
    if diagnostics is _BAD:
        return _BAD
    ok = True
    for i, prefix in enumerate(diagnostics.post_to):
        if not prefix.lower().startswith(("http://", "https://")):
            problem = "must start with http:// or https:// (FTP has no POST)"
            ck.add(f"{path}.post_to[{i}]", f"{prefix!r} {problem}")
            ok = False
    if not diagnostics.post_field:
        ck.add(f"{path}.post_field", "must not be empty")
        ok = False
    return diagnostics if ok else _BAD
