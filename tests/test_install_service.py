"""`ocpp-bridge install-service`: the dry run changes nothing and says every step; a real run into
directories under tmp (`--no-systemctl`, the packaging switch) writes a unit that systemd-analyze
accepts and a configuration it never overwrites; systemctl is called through a stand-in on PATH.
Nothing here touches /etc or the machine's systemd."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from bridge import service
from bridge.cli import main
from bridge.service import EXAMPLE_CONFIG, UNIT_NAME, UNIT_TEMPLATE, executable, render_unit
from tests.helpers.systemd import systemd_analyze
from tests.processes import child_env

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str) -> tuple[int, str, str]:
    """`python -m bridge.cli ...` to its end (killed by subprocess.run if it hangs)."""
    done = subprocess.run(
        [sys.executable, "-m", "bridge.cli", *args], cwd=ROOT, env=child_env(),
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    return done.returncode, done.stdout, done.stderr


def dirs(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    config_dir, unit_dir = tmp_path / "etc" / "ocpp-bridge", tmp_path / "systemd" / "system"
    return config_dir, unit_dir, ["--config-dir", str(config_dir), "--unit-dir", str(unit_dir)]


def test_dry_run_lists_every_step_and_changes_nothing(tmp_path: Path) -> None:
    config_dir, unit_dir, args = dirs(tmp_path)
    code, out, err = cli("install-service", "--dry-run", *args)
    assert code == 0, err
    assert "dry run: nothing is changed" in out
    assert f"write {unit_dir / UNIT_NAME} " in out
    assert f"ExecStart={executable()} run --config %d/config.yaml" in out
    assert f"LoadCredential=config.yaml:{config_dir / 'config.yaml'}" in out
    assert f"create {config_dir / 'config.yaml'} (mode 0600, from {EXAMPLE_CONFIG})" in out
    assert "charge points: CP-1 -> ws://127.0.0.1:9000/ocpp (1 connector)" in out
    assert "state_dir /var/lib/ocpp-bridge, local API 127.0.0.1:8080" in out
    assert "run: systemctl daemon-reload" in out
    assert f"run: systemctl enable --now {UNIT_NAME}" in out
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a directory


def test_dry_run_with_the_default_directories_writes_nothing_to_etc() -> None:
    unit, config = Path("/etc/systemd/system") / UNIT_NAME, Path("/etc/ocpp-bridge/config.yaml")
    before = (unit.exists(), config.exists())
    code, out, err = cli("install-service", "--dry-run")
    assert code == 0, err
    assert str(unit) in out and str(config) in out
    assert (unit.exists(), config.exists()) == before


def test_install_writes_a_unit_systemd_accepts_and_never_overwrites_the_configuration(
    tmp_path: Path,
) -> None:
    config_dir, unit_dir, args = dirs(tmp_path)
    code, out, err = cli("install-service", "--no-systemctl", *args)
    assert code == 0, err
    assert "run: systemctl" not in out and "done; no systemctl was run" in out
    unit, config = unit_dir / UNIT_NAME, config_dir / "config.yaml"
    assert stat.S_IMODE(unit.stat().st_mode) == 0o644
    assert stat.S_IMODE(config.stat().st_mode) == 0o600  # it may hold passwords
    assert config.read_text() == EXAMPLE_CONFIG.read_text()
    text = unit.read_text()
    assert f"ExecStart={executable()} run --config %d/config.yaml\n" in text
    assert f"LoadCredential=config.yaml:{config}\n" in text
    # The unit as written: its ExecStart (this environment's ocpp-bridge) exists, so no stand-in.
    done = subprocess.run(
        [systemd_analyze(), "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout + done.stderr) == (0, "")

    mine = config.read_text().replace("id: CP-1", "id: MY-BOX")  # the user's own configuration
    config.write_text(mine)
    code, out, err = cli("install-service", "--no-systemctl", *args)
    assert code == 0, err
    assert f"keep {config} (it exists; never overwritten)" in out
    assert "rewrite (unchanged)" in out
    assert config.read_text() == mine


def test_an_invalid_configuration_stops_the_installation(tmp_path: Path) -> None:
    config_dir, unit_dir, args = dirs(tmp_path)
    config_dir.mkdir(parents=True)
    (config_dir / "config.yaml").write_text("charge_points: []\nnonsense: 1\n")
    code, out, err = cli("install-service", "--no-systemctl", *args)
    assert code == 2
    assert "not valid" in out and "nonsense" in out
    assert "is not valid (see above): fix it, then run this again; nothing was changed" in err
    assert not unit_dir.exists()  # refused before any step


def fake_systemctl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exit_code: int = 0) -> Path:
    """A `systemctl` first on PATH that records its arguments: the real one is never called."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "systemctl.calls"
    bin_dir.mkdir()
    script = bin_dir / "systemctl"
    script.write_text(f'#!/bin/sh\necho "$*" >> {calls}\necho "systemctl says no" >&2\nexit {exit_code}\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    # This machine's Python may live under /root (pyenv): the check that the service can see it has
    # its own test below; here the steps after it are under test.
    monkeypatch.setattr(service, "HIDDEN_FROM_SERVICE", ("/nowhere-hidden/",))
    return calls


def test_systemctl_reloads_and_enables_the_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = fake_systemctl(tmp_path, monkeypatch)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    _, _, args = dirs(tmp_path)
    assert main(["install-service", *args]) == 0
    assert calls.read_text().splitlines() == ["daemon-reload", f"enable --now {UNIT_NAME}"]
    out = capsys.readouterr().out
    assert "journalctl -u ocpp-bridge -f" in out and "systemctl status ocpp-bridge" in out


def test_a_failing_systemctl_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_systemctl(tmp_path, monkeypatch, exit_code=1)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    _, _, args = dirs(tmp_path)
    assert main(["install-service", *args]) == 1
    assert "error: systemctl daemon-reload failed (exit 1): systemctl says no" in capsys.readouterr().err


def test_without_root_it_says_so_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = fake_systemctl(tmp_path, monkeypatch)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    config_dir, unit_dir, args = dirs(tmp_path)
    assert main(["install-service", *args]) == 1
    err = capsys.readouterr().err
    assert "install-service needs root" in err and "sudo" in err and "--dry-run" in err
    assert not calls.exists() and not config_dir.exists() and not unit_dir.exists()


def test_the_unit_quotes_what_systemd_would_read_otherwise() -> None:
    template = UNIT_TEMPLATE.read_text()
    unit = render_unit(
        template, Path("/opt/my bridge/100%/bin/ocpp-bridge"), Path("/etc/ocpp-bridge/config.yaml")
    )
    assert 'ExecStart="/opt/my bridge/100%%/bin/ocpp-bridge" run --config %d/config.yaml\n' in unit
    # Only those lines change.
    changed = {a for a, b in zip(template.splitlines(), unit.splitlines(), strict=True) if a != b}
    assert {line.split("=", 1)[0] for line in changed} <= {"ExecStart", "Documentation"}


@pytest.mark.parametrize(
    ("where", "what"),
    [("executable", "its Python interpreter"), ("sources", "the sources")],
)
def test_an_installation_under_a_home_directory_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], where: str, what: str
) -> None:
    """ProtectHome=yes hides /home and /root from the service: a venv whose python links into a pyenv
    there, or sources installed editable from there, would fail at every start."""
    calls = fake_systemctl(tmp_path, monkeypatch)
    monkeypatch.setattr(service, "HIDDEN_FROM_SERVICE", ("/home/",))
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    if where == "executable":
        monkeypatch.setattr(sys, "executable", "/home/pi/.pyenv/versions/3.11.7/bin/python3.11")
    else:
        monkeypatch.setattr(service, "SOURCE_ROOT", Path("/home/pi/ocpp-bridge"))
    _, _, args = dirs(tmp_path)
    assert main(["install-service", *args]) == 1
    assert f"error: {what} (/home/pi/" in capsys.readouterr().err
    assert not calls.exists() or calls.read_text() == ""


def test_a_kept_configuration_must_keep_its_state_where_the_service_may_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """ProtectSystem=strict: the service may write only /var/lib/ocpp-bridge. The examples' relative
    ./state goes under it ($STATE_DIRECTORY); another absolute directory is refused before anything
    is installed."""
    calls = fake_systemctl(tmp_path, monkeypatch)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    config_dir, _, args = dirs(tmp_path)
    config_dir.mkdir(parents=True)
    example = (service.SOURCE_ROOT / "config" / "simulated.yaml").read_text()
    assert "state_dir: ./state" in example
    (config_dir / "config.yaml").write_text(example.replace("state_dir: ./state", "state_dir: /srv/bridge"))
    assert main(["install-service", *args]) == 2
    assert "state_dir must be /var/lib/ocpp-bridge" in capsys.readouterr().out
    assert not calls.exists() or calls.read_text() == ""
    (config_dir / "config.yaml").write_text(example)
    assert main(["install-service", *args]) == 0
    assert "state_dir /var/lib/ocpp-bridge/state" in capsys.readouterr().out


def dynamic_user_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """The service's StateDirectory in a root under tmp, where `service.SERVICE_STATE_DIR` points,
    and an example configuration naming it as config/service.yaml names /var/lib/ocpp-bridge.
    Returns the StateDirectory and its private directory; `started()` fills them in."""
    state, private = tmp_path / "root/var/lib/ocpp-bridge", tmp_path / "root/var/lib/private/ocpp-bridge"
    monkeypatch.setattr(service, "SERVICE_STATE_DIR", state)
    default = EXAMPLE_CONFIG.read_text()
    assert "\nstate_dir: /var/lib/ocpp-bridge\n" in default
    example = tmp_path / "service.yaml"
    example.write_text(default.replace("\nstate_dir: /var/lib/ocpp-bridge\n", f"\nstate_dir: {state}\n"))
    monkeypatch.setattr(service, "EXAMPLE_CONFIG", example)
    return state, private


def started(state: Path, private: Path) -> Path:
    """What the first start leaves: systemd's DynamicUser= layout (the StateDirectory a symlink to
    private/ocpp-bridge, mode 0700) and the daemon's database in it. Returns the database."""
    private.mkdir(parents=True, mode=0o700)
    database = private / "ocpp-bridge.sqlite3"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE kept (what TEXT)")
        db.execute("INSERT INTO kept VALUES ('a transaction')")
    db.close()
    state.symlink_to(Path("private") / "ocpp-bridge")
    assert state.resolve() == private.resolve()
    return database


def test_the_upgrade_of_a_started_service_keeps_the_configuration_and_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """README's upgrade line (`make install` again) on a service that has run: systemd made
    /var/lib/ocpp-bridge a symlink to /var/lib/private/ocpp-bridge (DynamicUser=yes), and the check
    of the configuration's state_dir must not follow it out of the StateDirectory."""
    calls = fake_systemctl(tmp_path, monkeypatch)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    state, private = dynamic_user_layout(tmp_path, monkeypatch)
    config_dir, _, args = dirs(tmp_path)
    assert main(["install-service", *args]) == 0  # the first installation; the service starts
    capsys.readouterr()
    config = config_dir / "config.yaml"
    database = started(state, private)
    before = (config.read_bytes(), database.read_bytes())

    assert main(["install-service", "--dry-run", *args]) == 0
    assert main(["install-service", *args]) == 0  # the upgrade
    out, err = capsys.readouterr()
    assert err == ""
    assert f"keep {config} (it exists; never overwritten)" in out and "rewrite (unchanged)" in out
    assert f"state_dir {state}, local API 127.0.0.1:8080" in out
    assert calls.read_text().splitlines() == ["daemon-reload", f"enable --now {UNIT_NAME}"] * 2
    assert (config.read_bytes(), database.read_bytes()) == before
    assert state.is_symlink() and stat.S_IMODE(private.stat().st_mode) == 0o700
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT what FROM kept").fetchall() == [("a transaction",)]
    db.close()


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_refused_installation_prints_no_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], dry_run: bool
) -> None:
    """Everything is checked before the first step is printed: a refused run shows why, not steps it
    will not take. Also on a started service, and a state_dir that only reaches the StateDirectory's
    private directory through a symlink of its own is still refused."""
    calls = fake_systemctl(tmp_path, monkeypatch)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    state, private = dynamic_user_layout(tmp_path, monkeypatch)
    started(state, private)
    config_dir, unit_dir, args = dirs(tmp_path)
    config_dir.mkdir(parents=True)
    outside = tmp_path / "srv" / "bridge"
    outside.parent.mkdir()
    outside.symlink_to(private)  # it is the same directory, but not where the service may write
    for state_dir in ("/srv/bridge", str(outside), f"{state}/../elsewhere"):
        config = config_dir / "config.yaml"
        config.write_text(service.EXAMPLE_CONFIG.read_text().replace(str(state), state_dir))
        assert main(["install-service", *(["--dry-run"] if dry_run else []), *args]) == 2
        out, err = capsys.readouterr()
        assert f"state_dir must be {state}" in out
        assert [line for line in out.splitlines() if line[:1].isdigit() or "systemctl" in line] == []
        assert "is not valid (see above): fix it, then run this again" in err
        assert not unit_dir.exists() and not calls.exists()
        assert config.read_text().count(state_dir) == 1


def test_a_reporting_only_configuration_is_summed_up_as_such(tmp_path: Path) -> None:
    """No primary csms_url (docs/reporting.md): the summary says where the charge point goes instead."""
    config_dir, _, args = dirs(tmp_path)
    config_dir.mkdir(parents=True)
    (config_dir / "config.yaml").write_text(
        "charge_points:\n  - id: CP-1\n    report_to: [{csms_url: 'wss://broker.example/ocpp'}]\n"
        "    connectors: [{id: 1, charger: {type: simulated}}]\n"
    )
    code, out, err = cli("install-service", "--dry-run", *args)
    assert code == 0, err
    assert "charge points: CP-1 -> reporting only (1 connector)" in out
