"""The diagnostics archive: its members and their contents, not one secret in it, bounded memory and
time; the configuration's redaction, held to the schema's fields."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
import tarfile
import typing
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.registry import CHARGER_TYPES, METER_TYPES, charger_class, meter_class
from bridge.config import Config, parse_config
from bridge.core.config_keys import key_specs
from bridge.diagnostics import ArchiveParts, build_archive, is_secret_name, redact_value, redacted_config
from tests.helpers.logfiles import T0, minute, stamped, write_lines
from tests.processes import ROOT, child_env

CP_PASSWORD = "cp-Pa55word-1"
API_TOKEN = "api-T0ken-2"
MQTT_PASSWORD = "mqtt-Pa55-3"
SHELLY_PASSWORD = "shelly-Pa55-4"
PEM_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"
COMMENTED = "old-Pa55-5"
SECRETS = [CP_PASSWORD, API_TOKEN, MQTT_PASSWORD, SHELLY_PASSWORD, PEM_BODY, COMMENTED]

# Keys the loader does not take yet (TLS client keys): the redaction must mask them all the same.
KEY_BLOCK = f"""\
    client_key: |
      -----BEGIN PRIVATE KEY-----
      {PEM_BODY}
      -----END PRIVATE KEY-----
    client_key_file: /etc/ocpp-bridge/client.key
"""
VALID = f"""\
# Installer notes: password: {COMMENTED}
state_dir: /var/lib/ocpp-bridge
api:
  listen: "127.0.0.1:8080"
  token: {API_TOKEN}
mqtt:
  broker: mqtt://bridge:{MQTT_PASSWORD}@10.0.0.9:1883   # the house broker
charge_points:
  - id: CP-1
    csms_url: wss://csms.example.com/ocpp
    password: "{CP_PASSWORD}"
{{key_block}}    connectors:
      - id: 1
        charger: {{{{type: shelly, url: "http://10.0.0.2", username: admin, password: '{SHELLY_PASSWORD}'}}}}
"""
CONFIG = VALID.format(key_block=KEY_BLOCK)


def test_the_configuration_keeps_its_shape_and_lines_without_one_secret() -> None:
    text = redacted_config(CONFIG)
    assert not [s for s in SECRETS if s in text]
    assert len(text.splitlines()) == len(CONFIG.splitlines())  # an error's file:line still points right
    data = yaml.safe_load(text)
    assert data["api"] == {"listen": "127.0.0.1:8080", "token": "***"}
    assert data["mqtt"]["broker"] == "mqtt://bridge:***@10.0.0.9:1883"
    cp = data["charge_points"][0]
    assert (cp["password"], cp["client_key"]) == ("***", "***")
    assert cp["client_key_file"] == "/etc/ocpp-bridge/client.key"  # a path to a key is no key
    assert cp["connectors"][0]["charger"] == {
        "type": "shelly", "url": "http://10.0.0.2", "username": "admin", "password": "***",
    }  # fmt: skip
    assert "# the house broker" in text and "# Installer notes: password: '***'" in text


def test_a_described_device_keeps_its_http_credentials_out_of_the_archive() -> None:
    """A generic device (docs/devices/generic.md) may carry credentials in its headers and auth: block."""
    text = redacted_config(
        "charger:\n  type: generic\n  read:\n    status:\n      http:\n"
        "        url: http://10.0.0.7/status\n"
        "        headers: {Authorization: Bearer hdr-T0ken-6, Cookie: sid=ck-7, Accept: application/json}\n"
        "        auth: {user: admin, password: gen-Pa55-8}\n"
    )
    assert not [s for s in ("hdr-T0ken-6", "ck-7", "gen-Pa55-8") if s in text]
    http = yaml.safe_load(text)["charger"]["read"]["status"]["http"]
    assert http["headers"]["Accept"] == "application/json" and http["auth"]["user"] == "admin"


def test_a_file_that_is_not_yaml_is_masked_line_by_line() -> None:
    broken = CONFIG.replace("api:\n", "api: [\n")
    with pytest.raises(yaml.YAMLError):
        yaml.safe_load(broken)
    text = redacted_config(broken)
    assert text.startswith("# not valid YAML")
    assert not [s for s in SECRETS if s in text]
    assert "csms_url: wss://csms.example.com/ocpp" in text and "username: admin" in text


def _field_names(cls: type, seen: set[type]) -> set[str]:
    """Every field name of a configuration dataclass and of the dataclasses inside it."""
    if cls in seen:
        return set()
    seen.add(cls)
    names: set[str] = set()
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        names.add(f.name)
        stack = [hints[f.name]]
        while stack:
            tp = stack.pop()
            if dataclasses.is_dataclass(tp) and isinstance(tp, type):
                names |= _field_names(tp, seen)
            stack.extend(typing.get_args(tp))
    return names


# Names that look like they might hold a secret, and the ones checked by hand and found not to.
LOOKS_SECRET = re.compile(r"pass|pwd|auth|cred|key|token|secret|cert|sign|pin|private|user|login|api|psk|tls")
REVIEWED_PUBLIC = {
    "api",  # the api: block (its token is a field of its own), or go-e's API version
    "password_format",  # plain | hex
    "username",  # a device's user name: needed to diagnose a refused login, not a secret
    "card_tags",  # id tags: sent in clear in every Authorize
    "tls",  # the tls: block: its fields are paths and switches; the key file's path is not the key
    "client_cert",  # a certificate's path (certificates are public)
    "security_events",  # auto | on | off
    "auth",  # a generic device's auth: block; its password and token are masked by their own names
    "user",  # a generic device's HTTP user name, as `username`
    "cert_file",  # a type: ocpp endpoint's certificate chain: a path (certificates are public)
    "key_file",  # a type: ocpp endpoint's private key: its path, never its contents (never read)
}


def test_every_secret_looking_field_of_the_schema_is_masked_or_reviewed() -> None:
    """Fails when a field is added that could hold a secret and neither the redaction rules
    (bridge/diagnostics/redact.py) mask it nor a review says it holds none (REVIEWED_PUBLIC)."""
    seen: set[type] = set()
    names = _field_names(Config, seen)
    for load, table in ((charger_class, CHARGER_TYPES), (meter_class, METER_TYPES)):
        for type_name in table:
            names |= _field_names(load(type_name).Options, seen)
    unmasked = {n for n in names if LOOKS_SECRET.search(n.lower()) and not is_secret_name(n)}
    assert unmasked <= REVIEWED_PUBLIC, (
        f"mask these in redact.py or review them: {unmasked - REVIEWED_PUBLIC}"
    )
    assert {"password", "token"} <= {n for n in names if is_secret_name(n)}
    assert {"state_dir", "connectors", "broker", "phases"} <= names  # the walk reached the devices


def test_every_write_only_ocpp_key_is_masked() -> None:
    """The `ocpp:` block names standard keys; a key the central system may write but never read back
    (AuthorizationKey) is a secret, the others are plain settings."""
    write_only = {spec.name for spec in key_specs.KEYS if spec.access == "W"}
    assert "AuthorizationKey" in write_only
    assert all(is_secret_name(name) for name in write_only)
    assert not [spec.name for spec in key_specs.KEYS if spec.access != "W" and is_secret_name(spec.name)]


def test_the_secrets_masked_are_where_the_loader_reads_them() -> None:
    """Without the keys it does not take yet, the test configuration is a valid one."""
    config = parse_config(VALID.format(key_block=""), "test.yaml")
    assert config.charge_points[0].password == CP_PASSWORD and config.api.token == API_TOKEN
    assert config.charge_points[0].connectors[0].charger.options.password == SHELLY_PASSWORD
    assert config.mqtt is not None and MQTT_PASSWORD in config.mqtt.broker


def test_json_parts_lose_their_secrets_and_keep_the_rest() -> None:
    value = {
        "charge_points": [
            {"id": "CP-1", "password": CP_PASSWORD, "connected": True, "password_format": "hex"}
        ],
        "mqtt": {"broker": f"mqtt://bridge:{MQTT_PASSWORD}@host", "api_token": None, "auth_key": 12345},
        "note": f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----",
    }
    assert redact_value(value) == {
        "charge_points": [{"id": "CP-1", "password": "***", "connected": True, "password_format": "hex"}],
        "mqtt": {"broker": "mqtt://bridge:***@host", "api_token": None, "auth_key": "***"},
        "note": "***\n\n",
    }


def _parts(tmp_path: Path) -> ArchiveParts:
    logs = tmp_path / "state" / "logs"
    write_lines(logs / "bridge.log.1", [stamped(minute(n), f"line {n}") for n in range(0, 10)])
    write_lines(
        logs / "bridge.log",
        [stamped(minute(10), "failed", "ERROR"), "Traceback (most recent call last):\n"]
        + [stamped(minute(n), f"line {n}") for n in range(11, 20)],
    )
    frame = f'[2,"1","GetDiagnostics",{{"location":"ftp://u:{MQTT_PASSWORD}@h/"}}]'
    write_lines(
        logs / "frames.log", [stamped(minute(n), f"CP-1 <- {frame}", "DEBUG", "ocpp.frames") for n in (4, 9)]
    )
    return ArchiveParts(
        logs_dir=logs,
        start=minute(5),
        stop=minute(12),
        config_text=CONFIG,
        status={"charge_points": [{"id": "CP-1", "csms_url": f"wss://cp:{CP_PASSWORD}@csms/"}], "at": T0},
        store={"schema_version": 9, "counts": {"outbox": 3}, "oldest_queued": None},
        devices={"CP-1/1": {"type": "shelly", "model": "Plus 1PM", "password": SHELLY_PASSWORD}},
    )


def test_the_archive_holds_each_part_and_the_lines_of_its_window(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    dest = build_archive(tmp_path / "out" / "diagnostics.tar.gz", _parts(tmp_path))
    assert dest == tmp_path / "out" / "diagnostics.tar.gz"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["diagnostics.tar.gz"]  # no partial, no spool
    with tarfile.open(dest, "r:gz") as tar:
        assert tar.getnames() == [
            "status.json", "versions.json", "config.yaml", "store.json", "devices.json",
            "bridge.log", "frames.log",
        ]  # fmt: skip
        read = {m.name: tar.extractfile(m).read().decode() for m in tar.getmembers()}  # type: ignore[union-attr]
    assert read["bridge.log"] == "".join(
        [stamped(minute(n), f"line {n}") for n in range(5, 10)]
        + [stamped(minute(10), "failed", "ERROR"), "Traceback (most recent call last):\n"]
        + [stamped(minute(n), f"line {n}") for n in (11, 12)]
    )
    assert read["frames.log"].count("\n") == 1 and "ftp://u:***@h/" in read["frames.log"]
    assert json.loads(read["status.json"]) == {
        "charge_points": [{"id": "CP-1", "csms_url": "wss://cp:***@csms/"}],
        "at": "2025-01-31 02:00:00+00:00",
    }
    assert json.loads(read["store.json"]) == {
        "schema_version": 9,
        "counts": {"outbox": 3},
        "oldest_queued": None,
    }
    assert json.loads(read["devices.json"]) == {
        "CP-1/1": {"type": "shelly", "model": "Plus 1PM", "password": "***"}
    }
    assert read["config.yaml"] == redacted_config(CONFIG)
    versions = json.loads(read["versions.json"])
    assert versions["ocpp-bridge"] and versions["python"] == ".".join(map(str, sys.version_info[:3]))
    assert versions["libraries"]["websockets"].startswith("17.")
    found = {name: [s for s in SECRETS if s in text] for name, text in read.items()}
    assert found == {name: [] for name in read}, "a secret in the archive"


def test_an_archive_that_cannot_be_written_leaves_nothing(tmp_path: Path) -> None:
    parts = _parts(tmp_path)
    with pytest.raises(FileNotFoundError):
        build_archive(tmp_path / "missing" / "diagnostics.tar.gz", parts)
    bad = dataclasses.replace(parts, start=minute(20), stop=minute(10))
    with pytest.raises(ValueError, match="after it stops"):
        build_archive(tmp_path / "diagnostics.tar.gz", bad)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("diagnostics")]


MEASURE = """
import json, sys, time
from pathlib import Path
from bridge.diagnostics import ArchiveParts, build_archive
from tests.processes import vmrss_mib

def peak_mib():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

state = Path(sys.argv[1])
try:
    Path("/proc/self/clear_refs").write_text("5")  # the peak starts again from here
except OSError:
    pass
before = vmrss_mib()
started = time.perf_counter()
build_archive(state / "diagnostics.tar.gz", ArchiveParts(logs_dir=state / "logs", config_text="a: 1\\n"))
print(json.dumps({"seconds": time.perf_counter() - started, "growth_mib": peak_mib() - before}))
"""


# Message bodies whose numbers vary, so the lines compress like a real log (they repeat only far
# beyond gzip's 32 KiB window).
BODIES = [
    f" INFO    bridge.test: CP-{i % 997}/1: MeterValues {i * 7919 % 100003} Wh, {i * 13 % 32} A, "
    f"id {i * 2654435761 % 2**32:08x}\n"
    for i in range(4099)
]


def _fill(path: Path, mib: int, second: int) -> int:
    """`mib` of log lines, a thousand a second from `second` after T0; the next second."""
    with path.open("w", encoding="utf-8") as out:
        while out.tell() < mib * 1024 * 1024:
            prefix = f"{T0 + timedelta(seconds=second):%Y-%m-%dT%H:%M:%S}."
            out.writelines([f"{prefix}{ms:03d}Z{BODIES[(second * 1000 + ms) % 4099]}" for ms in range(1000)])
            second += 1
    return second


def test_an_archive_of_50_mib_of_logs_takes_little_memory_and_time(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    n = 0
    for name in ("bridge.log", "frames.log"):  # the default bounds: 5 files of 5 MiB each
        for suffix in (".4", ".3", ".2", ".1", ""):
            n = _fill(logs / f"{name}{suffix}", 5, n)
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(tmp_path)],
        cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    measured: dict[str, Any] = json.loads(done.stdout)
    assert measured["growth_mib"] < 20, measured
    assert measured["seconds"] < 5, measured
    with tarfile.open(tmp_path / "diagnostics.tar.gz") as tar:
        sizes = {m.name: m.size for m in tar.getmembers()}
    assert sizes["bridge.log"] >= 25 * 1024 * 1024 and sizes["frames.log"] >= 25 * 1024 * 1024
