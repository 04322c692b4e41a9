"""The bridge's own releases on disk, under `<state_dir>/firmware/` (the service may write only its
StateDirectory, so the venvs and the switch live there):

    releases/<version>-<job>/   one venv per installed release
    releases/active -> <dir>    the release that runs (none: the base installation runs)
    releases/previous -> <dir>  the one that ran before it (none: the base installation)
    releases/trial.json         {"target", "deadline" (epoch s), "starts"} while `active` is on trial
    rolled_back.json            {"target", "reason", "at"}: the last roll back, for the old version

Every change is atomic (a new symlink or file, then os.replace), so a power cut leaves the old or
the new state, never half of one. Used by the installer and by the launcher (no runtime imports).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeAlias

from bridge.durable import sync_directory

RELEASE_ENV = "OCPP_BRIDGE_RELEASE"  # set by the launcher in the release it execs: it never re-execs
MAX_TRIAL_STARTS = 3  # a release on trial started more often than this without booting is rolled back
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")  # a release dir's name: <version>-<job>
STAGING_PREFIX = ".staging-"


@dataclass(frozen=True)
class Trial:
    target: str
    deadline: float  # epoch seconds: booted to the central system by then, or rolled back
    starts: int  # how often the launcher started it

    def record(self) -> dict[str, Any]:
        return {"target": self.target, "deadline": self.deadline, "starts": self.starts}


Unreadable: TypeAlias = Literal["unreadable"]


@dataclass(frozen=True)
class Listing:
    """What the launcher decides from: the two links and the releases that are complete."""

    active: str | None
    previous: str | None
    present: frozenset[str]  # release dirs with an executable bin/ocpp-bridge


def is_release_name(name: str) -> bool:
    return bool(_NAME.match(name)) and name not in ("active", "previous")


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomically and durably: a temporary file, fsync, os.replace, fsync of the directory."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w") as f:
        json.dump(data, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    sync_directory(path.parent)


class Releases:
    def __init__(self, state_dir: Path) -> None:
        self.firmware = state_dir / "firmware"
        self.root = self.firmware / "releases"
        self.trial_file = self.root / "trial.json"
        self.rolled_back_file = self.firmware / "rolled_back.json"

    def dir(self, name: str) -> Path:
        return self.root / name

    def make(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    # -- the links ---------------------------------------------------------------------------------
    def link(self, which: Literal["active", "previous"]) -> str | None:
        """The release a link names (its dir may be missing), or None when there is no such link."""
        try:
            target = os.readlink(self.root / which)
        except (FileNotFoundError, NotADirectoryError):
            return None
        name = Path(target).name
        return name if is_release_name(name) else None

    def set_link(self, which: Literal["active", "previous"], name: str | None) -> None:
        link = self.root / which
        if name is None:
            with contextlib.suppress(FileNotFoundError):
                link.unlink()
        else:
            tmp = self.root / f".{which}.new"
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(name)  # relative: the state dir may be reached by another path
            os.replace(tmp, link)
        sync_directory(self.root)

    def is_complete(self, name: str) -> bool:
        return os.access(self.dir(name) / "bin" / "ocpp-bridge", os.X_OK)

    def listing(self) -> Listing:
        names = set()
        if self.root.is_dir():
            names = {p.name for p in self.root.iterdir() if is_release_name(p.name) and not p.is_symlink()}
        present = frozenset(n for n in names if self.is_complete(n))
        return Listing(self.link("active"), self.link("previous"), present)

    # -- the trial and the roll-back record ---------------------------------------------------------
    def read_trial(self) -> Trial | Unreadable | None:
        try:
            data = json.loads(self.trial_file.read_text())
            return Trial(str(data["target"]), float(data["deadline"]), int(data["starts"]))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            return "unreadable"

    def write_trial(self, trial: Trial) -> None:
        write_json(self.trial_file, trial.record())

    def clear_trial(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.trial_file.unlink()

    def read_rolled_back(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.rolled_back_file.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def clear_rolled_back(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.rolled_back_file.unlink()

    def roll_back(self, failed: str, reason: str, now: float) -> str | None:
        """`active` back to `previous` (or removed: the base installation runs), the trial ended and
        the reason kept for the old version to report; returns what is active now."""
        back = self.link("previous")
        if back is not None and (back == failed or not self.is_complete(back)):
            back = None
        self.firmware.mkdir(parents=True, exist_ok=True)
        write_json(self.rolled_back_file, {"target": failed, "reason": reason, "at": now})
        self.set_link("active", back)
        self.set_link("previous", None)
        self.clear_trial()
        return back

    # -- clean-up ----------------------------------------------------------------------------------
    def prune(self, keep: set[str | None]) -> list[str]:
        """Delete release dirs (and staging leftovers) other than `keep`; returns what went."""
        gone: list[str] = []
        if not self.root.is_dir():
            return gone
        for p in self.root.iterdir():
            if p.is_symlink() or not p.is_dir() or p.name in keep:
                continue
            if is_release_name(p.name) or p.name.startswith(STAGING_PREFIX):
                shutil.rmtree(p, ignore_errors=True)
                gone.append(p.name)
        return gone
