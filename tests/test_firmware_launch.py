"""The launcher (bridge/firmware/launch.py): its decision table row by row, the roll backs it carries
out on a releases directory, the state_dir it reads, and `ocpp-bridge run` exec'ing the active release
(a fake release: a script that says how it was started)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.firmware.launch import (
    Exec,
    RollBackFirst,
    RunHere,
    decide,
    prepare,
    state_dir_of,
    top_level_scalar,
)
from bridge.firmware.releases import MAX_TRIAL_STARTS, RELEASE_ENV, Listing, Releases, Trial
from tests.processes import ROOT, child_env

NOW = 1_700_000_000.0
A, B = "1.0.0-1", "1.1.0-2"


def listing(active: str | None = B, previous: str | None = A, present: tuple[str, ...] = (A, B)) -> Listing:
    return Listing(active, previous, frozenset(present))


# -- the table, row by row -----------------------------------------------------------------------------
def test_a_release_runs_itself_whatever_the_links_say() -> None:
    assert decide(listing(), Trial(B, NOW - 1, 9), NOW, running=B) == RunHere()
    assert decide(listing(), None, NOW, running=A) == RunHere()


def test_no_active_link_runs_the_base_installation() -> None:
    assert decide(listing(active=None), None, NOW, None) == RunHere()
    assert decide(listing(active=None), Trial(B, NOW + 60, 0), NOW, None) == RunHere()


def test_an_active_release_that_is_missing_is_rolled_back() -> None:
    assert decide(listing(present=(A,)), None, NOW, None) == RollBackFirst(
        B, f"release {B} is missing or incomplete"
    )


def test_an_unreadable_trial_is_rolled_back() -> None:
    out = decide(listing(), "unreadable", NOW, None)
    assert isinstance(out, RollBackFirst) and out.failed == B and "trial.json" in out.reason


def test_an_active_release_without_a_trial_is_started() -> None:
    assert decide(listing(), None, NOW, None) == Exec(B, count_start=False)


def test_a_trial_of_another_release_is_not_this_ones() -> None:
    # A crash between trial.json and the switch: the old release stays active, uncounted.
    assert decide(listing(active=A), Trial(B, NOW - 1, 9), NOW, None) == Exec(A, count_start=False)


def test_a_trial_within_its_deadline_and_starts_is_started_and_counted() -> None:
    assert decide(listing(), Trial(B, NOW + 1, 0), NOW, None) == Exec(B, count_start=True)
    assert decide(listing(), Trial(B, NOW, MAX_TRIAL_STARTS), NOW, None) == Exec(B, count_start=True)


def test_a_trial_past_its_deadline_is_rolled_back() -> None:
    out = decide(listing(), Trial(B, NOW - 0.001, 0), NOW, None)
    assert isinstance(out, RollBackFirst) and out.failed == B and "boot timeout" in out.reason


def test_a_trial_started_too_often_is_rolled_back() -> None:
    out = decide(listing(), Trial(B, NOW + 600, MAX_TRIAL_STARTS + 1), NOW, None)
    assert out == RollBackFirst(
        B, f"the new release was started {MAX_TRIAL_STARTS + 1} times without booting to the central system"
    )


# -- carried out on a releases directory ---------------------------------------------------------------
def fake_release(releases: Releases, name: str) -> None:
    exe = releases.dir(name) / "bin" / "ocpp-bridge"
    exe.parent.mkdir(parents=True)
    exe.write_text('#!/bin/sh\necho "release $OCPP_BRIDGE_RELEASE started with: $*"\n')
    exe.chmod(0o755)


@pytest.fixture
def releases(tmp_path: Path) -> Releases:
    r = Releases(tmp_path / "state")
    r.make()
    fake_release(r, A)
    fake_release(r, B)
    r.set_link("previous", A)
    r.set_link("active", B)
    return r


def test_each_start_of_a_trial_is_counted(releases: Releases) -> None:
    releases.write_trial(Trial(B, NOW + 600, 0))
    for n in range(1, MAX_TRIAL_STARTS + 2):
        assert prepare(releases.root.parent.parent, NOW, None) == Exec(B, count_start=True)
        assert releases.read_trial() == Trial(B, NOW + 600, n)


def test_after_too_many_starts_the_previous_release_is_active_again(releases: Releases) -> None:
    releases.write_trial(Trial(B, NOW + 600, MAX_TRIAL_STARTS + 1))
    assert prepare(releases.root.parent.parent, NOW, None) == Exec(A, count_start=False)
    assert (releases.link("active"), releases.link("previous"), releases.read_trial()) == (A, None, None)
    record = json.loads(releases.rolled_back_file.read_text())
    assert record == {"target": B, "reason": f"the new release was started {MAX_TRIAL_STARTS + 1} times "
                      "without booting to the central system", "at": NOW}  # fmt: skip


def test_past_the_deadline_with_no_previous_release_the_base_installation_runs(releases: Releases) -> None:
    releases.set_link("previous", None)
    releases.write_trial(Trial(B, NOW - 1, 1))
    assert prepare(releases.root.parent.parent, NOW, None) is None
    assert (releases.link("active"), releases.read_trial()) == (None, None)
    assert json.loads(releases.rolled_back_file.read_text())["target"] == B
    assert releases.dir(B).is_dir()  # kept until the next install or confirm cleans up


def test_a_missing_previous_release_is_not_started_either(releases: Releases) -> None:
    (releases.dir(A) / "bin" / "ocpp-bridge").unlink()
    releases.write_trial(Trial(B, NOW - 1, 1))
    assert prepare(releases.root.parent.parent, NOW, None) is None
    assert releases.link("active") is None


# -- state_dir, as the configuration resolves it --------------------------------------------------------
def test_state_dir_is_read_without_validating_the_configuration(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("state_dir: /var/lib/x\nsomething_a_newer_release_knows: 1\n")
    assert state_dir_of(str(config), {}) == Path("/var/lib/x")
    config.write_text("state_dir: rel\n")
    assert state_dir_of(str(config), {"STATE_DIRECTORY": "/var/lib/ocpp-bridge"}) == Path(
        "/var/lib/ocpp-bridge/rel"
    )
    config.write_text("charge_points: []\n")
    assert state_dir_of(str(config), {"STATE_DIRECTORY": "/srv/a:/srv/b"}) == Path("/srv/a")
    config.write_text("state_dir: [1\n")
    assert state_dir_of(str(config), {}) is None
    assert state_dir_of(str(tmp_path / "missing.yaml"), {}) is None


@pytest.mark.parametrize(
    "text, value",
    [
        ("state_dir: /a\ncharge_points: []\n", "/a"),
        (
            "charge_points:\n  - id: x\n    state_dir: /nested\n"
            "    list: [1, {state_dir: /deeper}]\nstate_dir: '/b c'\n",
            "/b c",
        ),
        ("api: {state_dir: /nested}\n", None),
        ("state_dir:\n", None),
        ("state_dir: ~\n", None),
        ("state_dir: 'null'\n", "null"),
        ("state_dir: [/a]\n", False),
        ("state_dir: {a: 1}\n", False),
        ("- state_dir: /in-a-list\n", None),
        ("just text\n", None),
    ],
)
def test_state_dir_is_read_from_the_top_level_mapping_only(text: str, value: object) -> None:
    assert top_level_scalar(io.StringIO(text), "state_dir") == value


def test_reading_state_dir_stops_there(tmp_path: Path) -> None:
    # What follows it is never parsed: here it is not even YAML.
    assert top_level_scalar(io.StringIO("state_dir: /a\ncharge_points: [\n  {\n"), "state_dir") == "/a"


# -- ocpp-bridge run, as the service starts it ----------------------------------------------------------
def run_bridge(config: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge.cli", "run", "--config", str(config), "--log-level", "WARNING"],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_run_execs_the_active_release_with_the_same_arguments(releases: Releases, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"state_dir: {releases.root.parent.parent}\n")  # not valid for this version
    releases.write_trial(Trial(B, 4e9, 0))
    done = run_bridge(config, child_env())
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"release {B} started with: run --config {config} --log-level WARNING\n"
    assert releases.read_trial() == Trial(B, 4e9, 1)


def test_run_in_a_release_does_not_launch_again(releases: Releases, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"state_dir: {releases.root.parent.parent}\n")
    done = run_bridge(config, child_env(**{RELEASE_ENV: B}))
    assert done.returncode == 2  # this version's own check of the configuration: it runs itself
    assert "charge_points" in done.stderr


def test_a_release_that_cannot_be_executed_is_rolled_back_at_once(releases: Releases, tmp_path: Path) -> None:
    exe = releases.dir(B) / "bin" / "ocpp-bridge"
    exe.write_text("#!/nonexistent/interpreter\n")
    config = tmp_path / "config.yaml"
    config.write_text(f"state_dir: {releases.root.parent.parent}\n")
    done = run_bridge(config, child_env())
    assert done.stdout == f"release {A} started with: run --config {config} --log-level WARNING\n"
    assert releases.link("active") == A
    assert "could not be started" in json.loads(releases.rolled_back_file.read_text())["reason"]
