"""wss:// on the bridge's local OCPP endpoint (`charger: {type: ocpp, tls: ...}`), with a PKI made at
test time (tests/helpers/pki.py: the endpoint's certificate from an intermediate under a root, client
certificates from a client CA):

- profile 2 (TLS + HTTP Basic): a charger that trusts the root connects, boots and its session shows
  up upstream at the strict central system; a wrong password is 401; plain ws:// gets no handshake;
- profile 3 (client certificates): the charger's own certificate (CN = its identity) lets it in with
  no password; no certificate or one from a CA the endpoint does not trust fails the TLS handshake;
  a trusted certificate naming another charger is refused with 403;
- the third-party `ocpp-rpc` client over wss:// with `--ca` (and `--cert`/`--key`: profile 3);
- the options' and the start's errors: missing files, a key of another certificate, a password-less
  charger without client_ca_file, two chargers disagreeing on one endpoint's TLS; a key others can
  read is warned about; no key's contents in any message.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import ssl
from pathlib import Path
from typing import Any

import pytest
import yaml
from ocpp.v16 import call
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidHandshake, InvalidStatus

from adapters.base import DeviceRefused
from adapters.chargers.ocpp_device import OcppDeviceCharger
from adapters.chargers.ocpp_device_options import OcppDeviceOptions, OcppTlsOptions
from adapters.transports.pool import Transports
from adapters.transports.tls_server import CIPHERS_TLS12, ServerTls, endpoint_disagreements, server_context
from bridge.config import ConfigError, parse_config
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.helpers.ocpp_charger import NodeCharger, endpoint_listening, ocpp_charger
from tests.helpers.pki import TestPki, make_test_pki
from tests.processes import free_port

CP = "CP-1"
WALLBOX = "WB-1"
PASSWORD = "s3cret-for-the-wallbox"


@dataclasses.dataclass(frozen=True)
class Pkis:
    main: TestPki  # the endpoint's certificate; its client certificate names WALLBOX
    other: TestPki  # another client CA, whose client certificate names WB-2
    client_cas: Path  # both client CAs: the endpoint trusts WB-2's certificate too

    def tls(self, *, profile3: bool = False) -> dict[str, Any]:
        block: dict[str, Any] = {"cert_file": str(self.main.good.cert), "key_file": str(self.main.good.key)}
        if profile3:
            block["client_ca_file"] = str(self.client_cas)
        return block

    def charger_context(self, client: Any = None) -> ssl.SSLContext:
        """What a charger given the bridge's CA trusts; `client`: its own certificate (profile 3)."""
        context = ssl.create_default_context(cafile=str(self.main.root))
        if client is not None:
            context.load_cert_chain(str(client.cert), str(client.key))
        return context


@pytest.fixture(scope="module")
def pkis(tmp_path_factory: pytest.TempPathFactory) -> Pkis:
    directory = tmp_path_factory.mktemp("pki")
    main = make_test_pki(directory / "main", client_serial=WALLBOX)
    other = make_test_pki(directory / "other", client_serial="WB-2")
    client_cas = directory / "client_cas.pem"
    client_cas.write_bytes(main.client_ca.read_bytes() + other.client_ca.read_bytes())
    return Pkis(main, other, client_cas)


def config(csms: StrictCentralSystem, tmp_path: Path, port: int, tls: dict[str, Any], password: str) -> Any:
    charger = {
        "type": "ocpp", "listen": f"127.0.0.1:{port}", "identity": WALLBOX, "password": password,
        "card_wait_s": 5, "call_timeout_s": 3, "tls": tls,
    }  # fmt: skip
    return make_config(csms.url, tmp_path, charger=charger)


def basic(password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{WALLBOX}:{password}".encode()).decode()}


async def handshake(url: str, context: ssl.SSLContext | None, headers: dict[str, str] | None = None) -> None:
    async with connect(url, subprotocols=["ocpp1.6"], additional_headers=headers or {}, ssl=context):  # type: ignore[list-item]
        pass


# --- profile 2 ----------------------------------------------------------------------------------------


async def test_profile_2_a_session_over_wss(csms: StrictCentralSystem, tmp_path: Path, pkis: Pkis) -> None:
    port = free_port()
    async with running(config(csms, tmp_path, port, pkis.tls(), PASSWORD)):
        url = f"wss://127.0.0.1:{port}/ocpp"
        async with ocpp_charger(url, WALLBOX, PASSWORD, ssl_context=pkis.charger_context()) as wallbox:
            await wallbox.status("Preparing")
            await csms.wait_for_call(
                CP, "StatusNotification", lambda p: p["status"] == "Preparing", timeout=10
            )
            authorized = await wallbox.send(call.Authorize(id_tag="CARD-1"))
            assert authorized.id_tag_info["status"] == "Accepted"
            start = await csms.wait_for_call(CP, "StartTransaction")
            assert start["idTag"] == "CARD-1"
            local = await wallbox.begin("CARD-1")
            assert local.id_tag_info["status"] == "Accepted"
            await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Charging")


async def test_profile_2_refuses_a_wrong_password_and_plain_ws(
    csms: StrictCentralSystem, tmp_path: Path, pkis: Pkis
) -> None:
    port = free_port()
    async with running(config(csms, tmp_path, port, pkis.tls(), PASSWORD)):
        await endpoint_listening(port)
        url = f"wss://127.0.0.1:{port}/ocpp/{WALLBOX}"
        for headers in (basic("wrong"), {}):
            with pytest.raises(InvalidStatus) as refused:
                await handshake(url, pkis.charger_context(), headers)
            assert refused.value.response.status_code == 401
        # A charger that does not trust the endpoint's CA: its own handshake fails.
        with pytest.raises(ssl.SSLCertVerificationError):
            await handshake(url, ssl.create_default_context(cafile=str(pkis.other.root)), basic(PASSWORD))
        # ws:// to a TLS endpoint: no HTTP answer comes back, no upgrade.
        with pytest.raises((InvalidHandshake, OSError, EOFError)):
            await handshake(f"ws://127.0.0.1:{port}/ocpp/{WALLBOX}", None, basic(PASSWORD))
        await handshake(url, pkis.charger_context(), basic(PASSWORD))  # the endpoint still serves


# --- profile 3 ----------------------------------------------------------------------------------------


async def test_profile_3_client_certificates(csms: StrictCentralSystem, tmp_path: Path, pkis: Pkis) -> None:
    port = free_port()
    async with running(config(csms, tmp_path, port, pkis.tls(profile3=True), "")) as daemon:
        url = f"wss://127.0.0.1:{port}/ocpp"
        own = pkis.charger_context(pkis.main.client)
        async with ocpp_charger(url, WALLBOX, "", ssl_context=own):  # boots: Accepted
            connector = daemon.charge_points[CP].connectors[1]
            await csms.wait_until(lambda: connector.reading is not None, what="the charger read")
        # No client certificate: the TLS handshake fails (TLS 1.3: the alert comes at the first read).
        with pytest.raises((ssl.SSLError, InvalidHandshake, OSError, EOFError)):
            await handshake(f"{url}/{WALLBOX}", pkis.charger_context())
        # A certificate from a CA the endpoint does not trust, naming the right identity: the same.
        with pytest.raises((ssl.SSLError, InvalidHandshake, OSError, EOFError)):
            await handshake(f"{url}/{WALLBOX}", pkis.charger_context(pkis.main.rogue_client))
        # A trusted certificate of another charger (CN WB-2): 403 before the upgrade.
        with pytest.raises(InvalidStatus) as refused:
            await handshake(f"{url}/{WALLBOX}", pkis.charger_context(pkis.other.client))
        assert refused.value.response.status_code == 403


# --- the third-party client ---------------------------------------------------------------------------


@pytest.mark.parametrize("profile", [2, 3])
async def test_an_ocpp_rpc_charger_over_wss(
    csms: StrictCentralSystem, tmp_path: Path, pkis: Pkis, profile: int
) -> None:
    port = free_port()
    password = PASSWORD if profile == 2 else ""
    node = NodeCharger(f"wss://127.0.0.1:{port}/ocpp", WALLBOX, password)
    node.args += ["--ca", str(pkis.main.root)]
    if profile == 3:
        node.args += ["--cert", str(pkis.main.client.cert), "--key", str(pkis.main.client.key)]
    async with running(config(csms, tmp_path, port, pkis.tls(profile3=profile == 3), password)), node:
        connected = await node.wait_for(lambda e: e["event"] in ("connected", "refused"))
        assert connected == {"event": "connected", "protocol": "ocpp1.6"}
        boot = await node.call(
            "BootNotification", {"chargePointVendor": "ocpp-rpc", "chargePointModel": "tls"}
        )
        assert boot["status"] == "Accepted"
        await node.call(
            "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Preparing"}
        )
        await csms.wait_for_call(CP, "StatusNotification", lambda p: p["status"] == "Preparing", timeout=10)


# --- options, check and start errors ------------------------------------------------------------------


def test_the_tls_options_name_each_problem(pkis: Pkis, tmp_path: Path) -> None:
    cert, key = pkis.main.good.cert, pkis.main.good.key
    good = OcppDeviceOptions(identity=WALLBOX, password=PASSWORD, tls=OcppTlsOptions(cert, key))
    assert good.validate() == []
    cases: dict[str, tuple[OcppTlsOptions, str, str]] = {
        "missing cert": (
            OcppTlsOptions(cert_file=tmp_path / "nope.pem", key_file=key), "tls.cert_file", "does not exist",
        ),
        "no key": (OcppTlsOptions(cert_file=cert), "tls.key_file", "required"),
        "a cert as key": (
            OcppTlsOptions(cert_file=cert, key_file=cert), "tls.key_file", "no PRIVATE KEY----- block",
        ),
        "another key": (
            OcppTlsOptions(cert_file=cert, key_file=pkis.main.client.key), "tls.key_file", "is not the key",
        ),
        "a missing CA": (
            OcppTlsOptions(cert_file=cert, key_file=key, client_ca_file=tmp_path / "ca.pem"),
            "tls.client_ca_file", "does not exist",
        ),
        "cpo without CA": (
            OcppTlsOptions(cert_file=cert, key_file=key, cpo_name="X"), "tls.cpo_name", "client_ca_file",
        ),
    }  # fmt: skip
    key_text = key.read_text()
    for name, (tls, field, words) in cases.items():
        problems = dataclasses.replace(good, tls=tls).validate()
        assert [f for f, _ in problems] == [field], (name, problems)
        assert words in problems[0][1], (name, problems)
        assert key_text not in problems[0][1] and "BEGIN PRIVATE" not in problems[0][1]
    # No password: only with client certificates (profile 3).
    plain = dataclasses.replace(good, password="")
    assert [f for f, _ in plain.validate()] == ["password"]
    assert "client_ca_file" in plain.validate()[0][1]
    profile3 = dataclasses.replace(
        plain, tls=OcppTlsOptions(cert_file=cert, key_file=key, client_ca_file=pkis.client_cas)
    )
    assert profile3.validate() == []


def test_check_names_a_broken_tls_block(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        make_config(
            "ws://127.0.0.1:9/ocpp", tmp_path,
            charger={"type": "ocpp", "identity": WALLBOX, "password": "p", "tls": {"cert_file": "/no.pem"}},
        )  # fmt: skip
    assert "tls.key_file" in str(error.value)


def test_the_context_is_the_white_papers(pkis: Pkis) -> None:
    context = server_context(ServerTls(pkis.main.good.cert, pkis.main.good.key, pkis.client_cas))
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2  # A00.FR.316
    assert context.options & ssl.OP_NO_COMPRESSION
    assert context.verify_mode == ssl.CERT_REQUIRED  # profile 3
    tls12 = {c["name"] for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"}
    assert tls12 and tls12 <= set(CIPHERS_TLS12.split(":"))  # A00.FR.306/307: AES-GCM only
    plain = server_context(ServerTls(pkis.main.good.cert, pkis.main.good.key))
    assert plain.verify_mode == ssl.CERT_NONE  # profile 2: HTTP Basic, no client certificate


def test_chargers_on_one_listen_must_agree_on_tls(pkis: Pkis) -> None:
    a = ServerTls(pkis.main.good.cert, pkis.main.good.key)
    b = ServerTls(pkis.main.good.cert, pkis.main.good.key, pkis.client_cas)
    chargers = [("c[0]", "0.0.0.0:9100", a), ("c[1]", "0.0.0.0:9100", a), ("c[2]", "0.0.0.0:9100", None),
                ("c[3]", "0.0.0.0:9100", b), ("c[4]", "0.0.0.0:9101", None)]  # fmt: skip
    problems = endpoint_disagreements(chargers)
    assert [path for path, _ in problems] == ["c[2].tls", "c[3].tls"]
    assert "c[0] shares listen 0.0.0.0:9100" in problems[0][1]


async def test_start_refuses_a_disagreeing_charger_and_warns_of_an_open_key(
    pkis: Pkis, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = tmp_path / "open.key"
    key.write_bytes(pkis.main.good.key.read_bytes())
    key.chmod(0o644)
    tls = OcppTlsOptions(cert_file=pkis.main.good.cert, key_file=key)
    listen = f"127.0.0.1:{free_port()}"
    transports = Transports()
    first = OcppDeviceCharger(
        OcppDeviceOptions(listen=listen, identity="A", password="p", tls=tls), transports
    )
    plain = OcppDeviceCharger(OcppDeviceOptions(listen=listen, identity="B", password="p"), transports)
    same = OcppDeviceCharger(
        OcppDeviceOptions(listen=listen, identity="C", password="p", tls=tls), transports
    )
    try:
        with caplog.at_level(logging.INFO, logger="adapters.ocpp_server"):
            await first.start()
        with pytest.raises(
            DeviceRefused, match=r"is wss:// with cert_file .*; this charger asks for plain ws://"
        ):
            await plain.start()
        await same.start()  # the same block: the same server
        assert "chmod 600" in caplog.text and f"wss://{listen}/ocpp/<identity>" in caplog.text
        assert key.read_text() not in caplog.text
    finally:
        for driver in (first, plain, same):
            await driver.close()
        await transports.close()


async def test_start_names_a_key_of_another_certificate(pkis: Pkis) -> None:
    tls = OcppTlsOptions(cert_file=pkis.main.good.cert, key_file=pkis.main.client.key)
    transports = Transports()
    driver = OcppDeviceCharger(
        OcppDeviceOptions(listen=f"127.0.0.1:{free_port()}", identity="A", password="p", tls=tls), transports
    )
    try:
        with pytest.raises(
            DeviceRefused, match=r"tls\.key_file: .* is not the key of the certificate"
        ) as refused:
            await driver.start()
        assert "PRIVATE KEY" not in str(refused.value)
    finally:
        await driver.close()
        await transports.close()


def test_check_refuses_two_tls_setups_on_one_listen(pkis: Pkis, tmp_path: Path) -> None:
    block = {"type": "ocpp", "listen": "127.0.0.1:9100", "password": "p"}
    doc = {
        "state_dir": str(tmp_path / "state"),
        "charge_points": [
            {"id": f"CP-{n}", "csms_url": "ws://127.0.0.1:9/ocpp",
             "connectors": [{"id": 1, "charger": {**block, "identity": f"WB-{n}", **tls}}]}
            for n, tls in ((1, {"tls": pkis.tls()}), (2, {}))
        ],
    }  # fmt: skip
    with pytest.raises(ConfigError) as error:
        parse_config(yaml.safe_dump(doc), "test.yaml")
    assert (
        "charge_points[1].connectors[0].charger.tls: charge_points[0].connectors[0].charger shares listen"
        in str(error.value)
    )
