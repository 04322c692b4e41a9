"""The launcher: the first thing `ocpp-bridge run` does, before the configuration is validated.

The service always starts the base installation (the unit's ExecStart is fixed). When a release of
the bridge is active (releases.py), the launcher replaces this process with the active release's
`ocpp-bridge` (os.execv: the same pid, so systemd's notify and watchdog carry on), with the same
arguments and OCPP_BRIDGE_RELEASE=<release> set, so that the release runs without launching again.
A release on trial is counted at each start, and rolled back first when its boot deadline has passed
or it was started more than MAX_TRIAL_STARTS times: a release that crashes at start must not loop
until systemd's StartLimitBurst gives up on the service.

It reads only `state_dir` from the configuration file: a newer release may accept a configuration
that this one rejects. `decide` is pure (the table below); `launch` does what it says.

    this process is a release (RELEASE_ENV)           -> run here
    no `active` link                                  -> run here (the base installation)
    `active` names a release that is missing          -> roll back, then run what is active
    a trial of `active` that cannot be read           -> roll back, ...
    a trial of `active` past its deadline             -> roll back, ...
    a trial of `active` started > MAX_TRIAL_STARTS    -> roll back, ...
    a trial of `active` otherwise                     -> count the start, exec `active`
    otherwise (no trial, or one of another release)   -> exec `active`
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal, NoReturn, TypeAlias

import yaml

from bridge.firmware.releases import (
    MAX_TRIAL_STARTS,
    RELEASE_ENV,
    Listing,
    Releases,
    Trial,
    Unreadable,
)

log = logging.getLogger("bridge.firmware")


@dataclass(frozen=True)
class RunHere:
    """This process runs the bridge itself."""


@dataclass(frozen=True)
class Exec:
    target: str
    count_start: bool  # on trial: its start is counted first


@dataclass(frozen=True)
class RollBackFirst:
    failed: str
    reason: str


Decision: TypeAlias = RunHere | Exec | RollBackFirst


def decide(listing: Listing, trial: Trial | Unreadable | None, now: float, running: str | None) -> Decision:
    """What to do at a start (the table in the module's docstring). After a RollBackFirst, the
    caller decides again from the new listing (with no trial)."""
    active = listing.active
    if running is not None or active is None:
        return RunHere()
    if active not in listing.present:
        return RollBackFirst(active, f"release {active} is missing or incomplete")
    if trial == "unreadable":
        return RollBackFirst(active, "its trial record (firmware/releases/trial.json) cannot be read")
    if trial is None or trial.target != active:
        return Exec(active, count_start=False)
    if now > trial.deadline:
        return RollBackFirst(active, "the new release did not boot to the central system within its "
                                     "boot timeout")  # fmt: skip
    if trial.starts > MAX_TRIAL_STARTS:
        return RollBackFirst(active, f"the new release was started {trial.starts} times without booting "
                                     "to the central system")  # fmt: skip
    return Exec(active, count_start=True)


def state_dir_of(config_file: str, env: Mapping[str, str] = os.environ) -> Path | None:
    """`state_dir` as the configuration resolves it (the default and a relative path are under
    $STATE_DIRECTORY, else the working directory); None when the file cannot say (the configuration's
    own check then reports why)."""
    try:
        with open(config_file, encoding="utf-8") as f:
            raw = top_level_scalar(f, "state_dir")
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return None
    base = env.get("STATE_DIRECTORY", "").split(":")[0]
    if raw is None:
        raw = base or "./state"
    if not isinstance(raw, str) or not raw.strip():
        return None
    path = Path(raw).expanduser()
    return path if path.is_absolute() else (Path(base) if base else Path.cwd()) / path


_NULLS = ("", "~", "null", "Null", "NULL")


def top_level_scalar(stream: IO[str], key: str) -> str | Literal[False] | None:
    """The scalar value of `key` in the top-level mapping of the first document (None: no such key,
    or null; False: not a scalar), read from YAML's event stream and stopping at it: a configuration
    of thousands of charge points is not built twice at each start (state_dir usually comes first)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    open_nodes: list[list[int]] = []  # per open collection: [is a mapping, nodes seen in it]
    wanted = False
    for event in yaml.parse(stream, Loader=loader):
        if isinstance(event, yaml.NodeEvent):
            if len(open_nodes) == 1 and open_nodes[0][0]:
                is_key = open_nodes[0][1] % 2 == 0
                open_nodes[0][1] += 1
                if is_key:
                    wanted = isinstance(event, yaml.ScalarEvent) and event.value == key
                elif wanted:
                    if not isinstance(event, yaml.ScalarEvent):
                        return False
                    plain = event.implicit[0] and not event.style
                    return None if plain and event.value in _NULLS else event.value
            if isinstance(event, yaml.CollectionStartEvent):
                open_nodes.append([isinstance(event, yaml.MappingStartEvent), 0])
        elif isinstance(event, yaml.CollectionEndEvent):
            open_nodes.pop()
            if not open_nodes:
                break  # the end of the first document
    return None


def prepare(state_dir: Path, now: float, running: str | None) -> Exec | None:
    """Carries out the roll backs the table asks for and counts a trial's start; returns what to exec
    (None: run here)."""
    releases = Releases(state_dir)
    for _ in range(3):  # a roll back to `previous` may find that one missing too
        decision = decide(releases.listing(), releases.read_trial(), now, running)
        if isinstance(decision, RunHere):
            return None
        if isinstance(decision, Exec):
            if decision.count_start:
                trial = releases.read_trial()
                assert isinstance(trial, Trial)
                releases.write_trial(Trial(trial.target, trial.deadline, trial.starts + 1))
            return decision
        back = releases.roll_back(decision.failed, decision.reason, now)
        log.warning("firmware: release %s rolled back to %s: %s",
                    decision.failed, back or "the base installation", decision.reason)  # fmt: skip
    return None


def launch(config_file: str, args: list[str]) -> None:
    """Returns when this process is to run the bridge; otherwise execs the active release."""
    running = os.environ.get(RELEASE_ENV)
    if running is not None:
        return
    state_dir = state_dir_of(config_file)
    if state_dir is None or not (state_dir / "firmware" / "releases").is_dir():
        return
    try:
        todo = prepare(state_dir, time.time(), running)
    except OSError as exc:
        log.error("firmware: cannot use the releases in %s (%s): the base installation runs",
                  state_dir / "firmware" / "releases", exc.strerror or exc)  # fmt: skip
        return
    if todo is None:
        return
    releases = Releases(state_dir)
    try:
        exec_release(releases.dir(todo.target), todo.target, args)
    except OSError as exc:  # not started: it would fail the same way at every start
        reason = f"release {todo.target} could not be started: {exc.strerror or exc}"
        back = releases.roll_back(todo.target, reason, time.time())
        log.error("firmware: %s; rolled back to %s", reason, back or "the base installation")
        if back is not None:
            launch(config_file, args)


def exec_release(release: Path, target: str, args: list[str]) -> NoReturn:
    exe = release / "bin" / "ocpp-bridge"
    log.info("firmware: starting release %s", target)
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    env = dict(os.environ)
    env[RELEASE_ENV] = target
    os.execve(exe, [str(exe), *args], env)
