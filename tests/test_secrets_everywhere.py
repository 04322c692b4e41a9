"""The secrets of a charge point on TLS with a client certificate, the file's password and an
AuthorizationKey the central system set: none of them appears in any place the outside can read —
log records (frames included, at DEBUG), the log files, the status API, /metrics, MQTT,
GetConfiguration, a diagnostics archive, the security log, error messages — while the link uses them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import aiomqtt
import pytest
from ocpp.v16 import call

from bridge.config import Config, parse_config
from bridge.diagnostics import install_log_files
from bridge.log import apply_levels
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.helpers.http_files import http_files
from tests.helpers.pki import make_test_pki
from tests.mosquitto import mosquitto
from tests.processes import free_port

FILE_PASSWORD = "file-password-Zq81xw"
NEW_KEY = "5365637265744b65792d4e6f7453686f776e21"  # hex of "SecretKey-NotShown!"
BAD_KEY = "0badc0de0badc0de0badc0de0badc0dezz"  # not hex: refused, and not echoed either


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    apply_levels("DEBUG", frames=True)
    yield caplog
    for name in ("websockets", "ocpp", "ocpp.frames"):
        logging.getLogger(name).setLevel(logging.NOTSET)


def key_body(key_file: Path) -> list[str]:
    """The base64 lines of a PEM private key: any of them in the open is a leak."""
    return [line for line in key_file.read_text().splitlines() if line and not line.startswith("-----")]


def with_mqtt(config: Config, broker_url: str) -> Config:
    """`config` with an `mqtt:` block (publishing every second), read by the real loader."""
    one = "charge_points: [{id: X, csms_url: 'ws://h/o', connectors: [{id: 1, charger: {type: simulated}}]}]"
    mqtt = parse_config(f"{one}\nmqtt: {{broker: '{broker_url}', interval_s: 1}}\n", "t.yaml", env={}).mqtt
    return dataclasses.replace(config, mqtt=mqtt)


def leaks(text: str, secrets: list[str]) -> list[str]:
    return [s for s in secrets if s in text]


async def test_no_secret_reaches_any_place_the_outside_reads(tmp_path: Path, all_logs: Any) -> None:
    pki = make_test_pki(tmp_path / "pki")
    secrets = [FILE_PASSWORD, NEW_KEY, bytes.fromhex(NEW_KEY).decode(), *key_body(pki.client.key)]
    api_port = free_port()
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    server = pki.server_context(require_client=True)
    mqtt_seen: list[str] = []
    async with (
        mosquitto(tmp_path) as broker,
        StrictCentralSystem(password=FILE_PASSWORD.encode(), ssl_context=server) as cs,
        http_files(tmp_path, uploads) as site,
    ):
        config = make_config(
            cs.url, tmp_path, api=f"127.0.0.1:{api_port}", password=FILE_PASSWORD,
            tls={"ca_file": str(pki.root), "client_cert": str(pki.client.cert),
                 "client_key": str(pki.client.key)},
            security_events="on",
        )  # fmt: skip
        config = with_mqtt(config, broker.url)
        files = install_log_files(config.state_dir, 1 << 20, 1, frames=True)
        try:
            async with aiomqtt.Client("127.0.0.1", broker.port) as subscriber:
                await subscriber.subscribe("#")

                async def collect() -> None:
                    async for message in subscriber.messages:
                        mqtt_seen.append(f"{message.topic} {message.payload!r}")

                collecting = asyncio.create_task(collect())
                async with running(config):
                    await cs.wait_for_call("CP-1", "StatusNotification")
                    cs.password = NEW_KEY.encode()  # SteVe-style: the key as text (D3 plain)
                    refused = await cs.call(
                        "CP-1", call.ChangeConfiguration(key="AuthorizationKey", value=BAD_KEY)
                    )
                    assert refused.status == "Rejected"
                    changed = await cs.call(
                        "CP-1", call.ChangeConfiguration(key="AuthorizationKey", value=NEW_KEY)
                    )
                    assert changed.status == "Accepted"
                    await cs.wait_until(lambda: [s for _, s in cs.handshakes].count(101) == 2)
                    await cs.wait_until(lambda: cs.links and not cs.links[-1].closed)
                    shown = await cs.call("CP-1", call.GetConfiguration())
                    answer = await cs.call("CP-1", call.GetDiagnostics(location=f"{site.base}/upload/"))
                    await cs.wait_until(
                        lambda: any(
                            c["status"] == "Uploaded"
                            for c in cs.calls("CP-1", "DiagnosticsStatusNotification")
                        ),
                        15,
                        "the archive uploaded",
                    )
                    async with aiohttp.ClientSession() as http:
                        base = f"http://127.0.0.1:{api_port}"
                        async with http.get(f"{base}/api/v1/status") as response:
                            status = await response.text()
                        async with http.get(f"{base}/metrics") as response:
                            metrics = await response.text()
                    await asyncio.sleep(1.5)  # one more MQTT round
                collecting.cancel()
        finally:
            files.remove()
    assert json.loads(status)["charge_points"][0]["connected"] is True  # the link did use them
    archive = uploads / answer.file_name
    with tarfile.open(archive) as tar:
        members = {m.name: tar.extractfile(m).read().decode(errors="replace") for m in tar if m.isfile()}  # type: ignore[union-attr]
    places = {
        "log records": "\n".join(r.getMessage() for r in all_logs.records),
        "log files": "\n".join(p.read_text(errors="replace") for p in (config.state_dir / "logs").iterdir()),
        "status API": status,
        "metrics": metrics,
        "MQTT": "\n".join(mqtt_seen),
        "GetConfiguration": json.dumps(shown.configuration_key),
        "diagnostics archive": "\n".join(members.values()),
        "security log": (config.state_dir / "security" / "security.log").read_text(),
        "frames seen by the central system, from the charge point": "\n".join(
            f.raw for link in cs.links for f in link.frames if f.direction == "in"
        ),
    }
    assert any(name.endswith("frames.log") for name in members)
    for place, text in places.items():
        assert text, f"{place} is empty: the check would prove nothing"
        assert leaks(text, secrets) == [], f"a secret in the {place}"
    assert "AuthorizationKey changed" in places["security log"]
    assert not any(e.get("key") == "AuthorizationKey" and e.get("value") for e in shown.configuration_key)
