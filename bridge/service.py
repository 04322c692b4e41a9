"""`ocpp-bridge install-service`: the systemd unit, a first configuration, and the service started.

Everything is checked first; a refusal (an existing configuration that is not valid) prints why
and no step, and changes nothing. Then the steps, each printed before it is taken (with `--dry-run`
only printed):
1. write `<unit-dir>/ocpp-bridge.service` from `systemd/ocpp-bridge.service`, with
   ExecStart set to the ocpp-bridge executable of the Python environment this
   command runs from (so the service runs the installation it was installed
   from, wherever that is) and LoadCredential to `<config-dir>/config.yaml`;
2. create `<config-dir>/config.yaml` from `config/service.yaml` (mode 0600:
   it may hold passwords; the service gets a copy as a credential) only when
   there is none: a user's file is never overwritten, only checked;
3. `systemctl daemon-reload` and `systemctl enable --now ocpp-bridge.service`.

Running it again is safe, also once the service has run (then /var/lib/ocpp-bridge
is DynamicUser's symlink to /var/lib/private/ocpp-bridge): the unit is rewritten
(an upgrade takes effect at the next `systemctl restart ocpp-bridge`), the
configuration and the state directory with the database are kept.
`--no-systemctl` writes the files and runs no systemctl: for packaging (files
staged into a directory tree) and tests. The unit and the example come from
the source tree next to the `bridge` package (a clone installed with
`pip install -e .`, as `make install` does).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

UNIT_NAME = "ocpp-bridge.service"
SOURCE_ROOT = Path(__file__).resolve().parent.parent
UNIT_TEMPLATE = SOURCE_ROOT / "systemd" / UNIT_NAME
EXAMPLE_CONFIG = SOURCE_ROOT / "config" / "service.yaml"
CONFIG_NAME = "config.yaml"
# ProtectHome=yes hides these from the service: an executable there cannot be started.
HIDDEN_FROM_SERVICE = ("/home/", "/root/", "/run/user/")
SERVICE_STATE_DIR = Path("/var/lib/ocpp-bridge")  # the unit's StateDirectory


class InstallError(Exception):
    """Something the user must fix first; the message says what."""


def executable() -> Path:
    """The ocpp-bridge script of the running environment (a venv's bin/, or /usr/local/bin)."""
    return Path(sysconfig.get_path("scripts")) / "ocpp-bridge"


def _systemd_quote(word: str) -> str:
    """A word for an Exec line: specifiers (%) and variables ($) escaped, quoted when it has spaces."""
    word = word.replace("%", "%%").replace("$", "$$")
    if any(c.isspace() or c in "\"'\\;" for c in word):
        return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return word


def render_unit(template: str, exe: Path, config_file: Path) -> str:
    """The template with ExecStart's program, LoadCredential's source and Documentation set."""
    lines = []
    for line in template.splitlines():
        if line.startswith("ExecStart="):
            args = line.removeprefix("ExecStart=").split(" ", 1)[1]
            line = f"ExecStart={_systemd_quote(str(exe))} {args}"
        elif line.startswith("LoadCredential=config.yaml:"):
            line = f"LoadCredential=config.yaml:{str(config_file).replace('%', '%%')}"
        elif line.startswith("Documentation=file://"):
            line = f"Documentation=file://{(SOURCE_ROOT / 'docs' / 'service.md').as_posix()}"
        lines.append(line)
    return "\n".join(lines) + "\n"


@dataclass
class Step:
    says: str  # what is done, printed before it is done
    detail: list[str]  # indented lines under it (content summary)
    act: Callable[[], None]
    refusal: str | None = None  # why the installation must not go on: no step is printed or taken
    subject: str = ""  # what the detail is about, printed above it when the step refuses


def _write(path: Path, text: str, mode: int) -> None:
    """Atomically: a reader (or a power cut) sees the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _systemctl(*args: str) -> Callable[[], None]:
    def run() -> None:
        if shutil.which("systemctl") is None:
            raise InstallError("systemctl not found: is this a systemd system? (--no-systemctl skips it)")
        done = subprocess.run(["systemctl", *args], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            output = (done.stderr or done.stdout).strip()
            raise InstallError(f"systemctl {' '.join(args)} failed (exit {done.returncode}): {output}")

    return run


def _in_state_directory(state_dir: Path) -> bool:
    """Whether the service may write `state_dir`: the path names the StateDirectory or a directory in
    it, and no symlink of the user's leads out of it.

    With DynamicUser=yes the StateDirectory is itself a symlink once the service has started
    (/var/lib/ocpp-bridge -> private/ocpp-bridge), so the path is compared as written (with `..`
    taken away), and, resolved, against the StateDirectory resolved the same way: a check that
    resolved only one side would refuse every configuration after the first start."""
    named = Path(os.path.normpath(state_dir))
    return named.is_relative_to(SERVICE_STATE_DIR) and named.resolve().is_relative_to(
        SERVICE_STATE_DIR.resolve()
    )


def _config_summary(path: Path) -> tuple[list[str], bool]:
    """What a configuration file holds, in a line or two, and whether it is valid (with its problems
    when it is not). A file this user cannot read counts as valid: the service reads it as root."""
    from bridge.config import ConfigError, parse_config

    try:
        # Read as the service will: with systemd's $STATE_DIRECTORY (relative state_dirs go under it).
        text = path.read_text(encoding="utf-8")
        config = parse_config(text, str(path), env={"STATE_DIRECTORY": str(SERVICE_STATE_DIR)})
    except ConfigError as exc:
        return ["not valid:", *str(exc).splitlines()], False
    except UnicodeDecodeError as exc:
        return [f"not UTF-8 text: {exc}"], False
    except OSError as exc:
        return [f"cannot read it: {exc.strerror}"], True
    cps = ", ".join(
        f"{cp.id} -> {cp.csms_url or 'reporting only'}"
        f" ({len(cp.connectors)} connector{'' if len(cp.connectors) == 1 else 's'})"
        for cp in config.charge_points
    )
    api = "off" if config.api.listen is None else "{}:{}".format(*config.api.listen)
    lines = [f"charge points: {cps}", f"state_dir {config.state_dir}, local API {api}"]
    if not _in_state_directory(config.state_dir):
        # ProtectSystem=strict: the service may write only its StateDirectory.
        return [*lines, f"state_dir must be {SERVICE_STATE_DIR} (or a relative path, which goes under it) "
                        "for the service: the only directory it may write"], False  # fmt: skip
    return lines, True


def plan(exe: Path, config_dir: Path, unit_dir: Path, systemctl: bool) -> list[Step]:
    for source in (UNIT_TEMPLATE, EXAMPLE_CONFIG):
        if not source.is_file():
            raise InstallError(
                f"{source} is missing: install-service works from the source tree "
                "(git clone, then `make install`, which installs with pip install -e)"
            )
    config_file = config_dir / CONFIG_NAME
    unit_file = unit_dir / UNIT_NAME
    unit = render_unit(UNIT_TEMPLATE.read_text(encoding="utf-8"), exe, config_file)
    picked = [line for line in unit.splitlines() if line.startswith(("ExecStart=", "LoadCredential="))]
    old = unit_file.read_text(encoding="utf-8") if unit_file.is_file() else None
    verb = "write" if old is None else ("rewrite (unchanged)" if old == unit else "rewrite (changed)")
    steps = [
        Step(
            f"{verb} {unit_file} (mode 0644, {len(unit.splitlines())} lines, from {UNIT_TEMPLATE})",
            picked,
            lambda: _write(unit_file, unit, 0o644),
        )
    ]
    if config_file.exists():
        summary, valid = _config_summary(config_file)
        refusal = None if valid else f"{config_file} is not valid (see above): fix it, then run this again"
        steps.append(
            Step(
                f"keep {config_file} (it exists; never overwritten)",
                summary,
                lambda: None,
                refusal,
                subject=f"{config_file}:",
            )
        )
    else:
        example = EXAMPLE_CONFIG.read_text(encoding="utf-8")
        summary, _ = _config_summary(EXAMPLE_CONFIG)
        steps.append(
            Step(
                f"create {config_file} (mode 0600, from {EXAMPLE_CONFIG})",
                summary,
                lambda: _write(config_file, example, 0o600),
            )
        )
    if systemctl:
        steps.append(Step("run: systemctl daemon-reload", [], _systemctl("daemon-reload")))
        steps.append(
            Step(f"run: systemctl enable --now {UNIT_NAME}", [], _systemctl("enable", "--now", UNIT_NAME))
        )
    return steps


def install_service(
    *,
    dry_run: bool,
    config_dir: Path,
    unit_dir: Path,
    systemctl: bool = True,
    out: Callable[[str], None] = print,
) -> int:
    """The command; returns the exit code (0 done, 1 failed, 2 the configuration is not valid)."""
    exe = executable()
    try:
        if not dry_run and systemctl and os.geteuid() != 0:
            raise InstallError(
                "install-service needs root (it writes to /etc and runs systemctl): run it with sudo, "
                "or see every step first with --dry-run"
            )
        if not exe.is_file():
            raise InstallError(f"{exe} does not exist: install the package into this environment first")
        # The executable, the interpreter it runs (a venv's python may link into a pyenv) and the
        # sources (pip install -e) must all be visible to the service.
        for what, path in (
            ("the executable", exe),
            ("its Python interpreter", Path(sys.executable).resolve()),
            ("the sources", SOURCE_ROOT),
        ):
            if (str(path) + "/").startswith(HIDDEN_FROM_SERVICE):
                message = (
                    f"{what} ({path}) is under a home directory, which the service cannot see "
                    "(ProtectHome=yes): install under /opt (see README, 'Install on a Raspberry Pi')"
                )
                if systemctl and not dry_run:
                    raise InstallError(message)
                out(f"warning: {message}")
        steps = plan(exe, config_dir, unit_dir, systemctl)
    except InstallError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    out(f"install-service{' (dry run: nothing is changed)' if dry_run else ''}, with {shlex.quote(str(exe))}")
    # Every step is decided before the first is printed: a refused run shows why, and no step.
    refused = [step for step in steps if step.refusal is not None]
    for step in refused:
        out(step.subject)
        for line in step.detail:
            out(f"     {line}")
    if refused:
        for step in refused:
            print(f"error: {step.refusal}{'' if dry_run else '; nothing was changed'}", file=sys.stderr)
        return 2
    for n, step in enumerate(steps, 1):
        out(f"{n}. {step.says}")
        for line in step.detail:
            out(f"     {line}")
        if dry_run:
            continue
        try:
            step.act()
        except (InstallError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    if not dry_run and not systemctl:
        out(f"done; no systemctl was run: `systemctl daemon-reload` and `systemctl enable --now {UNIT_NAME}`")
        out("are left to the package (or to you)")
    elif not dry_run:
        config_file = config_dir / CONFIG_NAME
        out("")
        out(f"done. Edit {config_file} (sudoedit), check it and restart:")
        out(f"  sudo {shlex.quote(str(exe))} check --config {config_file}")
        out("  sudo systemctl restart ocpp-bridge")
        out("  journalctl -u ocpp-bridge -f      # the log")
        out("  systemctl status ocpp-bridge      # running? and the one-line summary")
    return 0
