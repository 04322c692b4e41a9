"""TLS on the link (bridge/security/tls.py): the contexts, the failures in an installer's words, and
the daemon against the strict central system behind TLS with a test PKI made at test time."""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from websockets.asyncio.client import connect

from bridge.runtime.snapshot import status_json
from bridge.security import tls
from bridge.security.tls import DefaultTls, client_context, explain
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.helpers.parts import eventually
from tests.helpers.pki import CIPHERS_TLS12, TestPki, make_test_pki
from tests.helpers.tls_peer import one_handshake
from tests.processes import start_daemon, stop_process

PASSWORD = "a-password-16-chars"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


# --- contexts --------------------------------------------------------------------------------------


def test_the_default_context_verifies_everything_with_the_white_papers_suites(pki: TestPki) -> None:
    context = client_context(DefaultTls(ca_file=pki.root))
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.options & ssl.OP_NO_COMPRESSION
    tls12 = {c["name"] for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"}
    assert tls12 == set(CIPHERS_TLS12.split(":"))
    assert client_context(DefaultTls(ca_file=pki.root, min_version="1.3")).minimum_version == (
        ssl.TLSVersion.TLSv1_3
    )


def test_weakened_settings_weaken_the_context_and_warn(pki: TestPki) -> None:
    off = DefaultTls(ca_file=pki.root, verify_server=False)
    assert client_context(off).verify_mode == ssl.CERT_NONE and not client_context(off).check_hostname
    (warning,) = tls.warnings(off)
    assert "verify_server is false" in warning
    no_host = DefaultTls(ca_file=pki.root, check_hostname=False)
    assert client_context(no_host).verify_mode == ssl.CERT_REQUIRED
    assert not client_context(no_host).check_hostname
    assert "check_hostname is false" in tls.warnings(no_host)[0]
    assert tls.warnings(None) == [] and tls.warnings(DefaultTls()) == []


def test_a_context_is_built_once_per_inputs_and_again_when_a_file_changes(
    tmp_path: Path, pki: TestPki
) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(pki.root.read_bytes())
    settings = DefaultTls(ca_file=ca)
    first = client_context(settings)
    assert client_context(DefaultTls(ca_file=ca)) is first  # 5,000 charge points, one context
    assert client_context(settings, extra_roots=[pki.client_ca.read_bytes()]) is not first
    ca.write_bytes(pki.root.read_bytes() + pki.intermediate.read_bytes())
    assert client_context(settings) is not first


async def handshake(url: str, context: ssl.SSLContext) -> BaseException | None:
    try:
        async with connect(url, ssl=context, open_timeout=5, subprotocols=["ocpp1.6"]):  # type: ignore[list-item]
            return None
    except Exception as exc:
        return exc


async def test_installed_roots_are_trust_anchors_beside_ca_file(pki: TestPki) -> None:
    async with StrictCentralSystem(ssl_context=pki.server_context()) as cs:
        wrong = DefaultTls(ca_file=pki.client_ca)
        assert isinstance(
            await handshake(cs.url + "/CP-1", client_context(wrong)), ssl.SSLCertVerificationError
        )
        with_root = client_context(wrong, extra_roots=[pki.root.read_bytes()])
        assert await handshake(cs.url + "/CP-1", with_root) is None


async def test_the_identity_given_wins_over_the_settings(pki: TestPki) -> None:
    rogue = DefaultTls(ca_file=pki.root, client_cert=pki.rogue_client.cert, client_key=pki.rogue_client.key)
    async with StrictCentralSystem(ssl_context=pki.server_context(require_client=True)) as cs:
        assert await handshake(cs.url + "/CP-1", client_context(rogue)) is not None
        good = client_context(rogue, identity=(pki.client.cert, pki.client.key))
        assert await handshake(cs.url + "/CP-1", good) is None


# --- failures in words, against a server that sends its alerts ------------------------------------


async def refused(pki: TestPki, server: ssl.SSLContext, settings: DefaultTls) -> tls.TlsFailure | None:
    with one_handshake(server) as url:
        exc = await handshake(url, client_context(settings))
    assert exc is not None
    return explain(exc, settings, url)


async def test_a_tls_version_refused_is_invalid_tls_version(pki: TestPki) -> None:
    server = pki.server_context(max_version=ssl.TLSVersion.TLSv1_2)
    failure = await refused(pki, server, DefaultTls(ca_file=pki.root, min_version="1.3"))
    assert failure is not None and failure.event == "InvalidTLSVersion"
    assert "share no TLS version (tls.min_version is 1.3" in failure.message


async def test_no_shared_cipher_is_invalid_tls_cipher_suite(pki: TestPki) -> None:
    server = pki.server_context(max_version=ssl.TLSVersion.TLSv1_2, ciphers="ECDHE-ECDSA-AES128-SHA256")
    settings = DefaultTls(ca_file=pki.root, client_cert=pki.client.cert, client_key=pki.client.key)
    failure = await refused(pki, server, settings)
    assert failure is not None and failure.event == "InvalidTLSCipherSuite"
    assert "shares no cipher suite" in failure.message


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
async def test_a_refused_client_certificate_names_the_file(pki: TestPki, version: ssl.TLSVersion) -> None:
    server = pki.server_context(require_client=True, max_version=version)
    rogue = DefaultTls(ca_file=pki.root, client_cert=pki.rogue_client.cert, client_key=pki.rogue_client.key)
    failure = await refused(pki, server, rogue)
    assert failure is not None and failure.event == "FailedToAuthenticateAtCentralSystem"
    assert (
        failure.file == str(pki.rogue_client.cert)
        and f"client_cert {pki.rogue_client.cert}" in failure.message
    )
    none = await refused(pki, server, DefaultTls(ca_file=pki.root))
    assert none is not None and none.event == "FailedToAuthenticateAtCentralSystem"
    assert "client certificate (security profile 3" in none.message and "set tls.client_cert" in none.message


def test_what_is_not_tls_is_not_explained() -> None:
    assert explain(ConnectionRefusedError(111, "refused"), None, "wss://h/ocpp") is None
    assert explain(ConnectionResetError(104, "reset"), None, "ws://h/ocpp") is None  # no TLS on ws://
    assert explain(TimeoutError(), None, "wss://h/ocpp") is None


# --- the daemon --------------------------------------------------------------------------------------


def profile_2(cs: StrictCentralSystem, tmp_path: Path, tls_block: dict[str, Any] | None) -> Any:
    fields: dict[str, Any] = {"password": PASSWORD, "ocpp": {"SecurityProfile": 2}}
    if tls_block is not None:
        fields["tls"] = tls_block
    return make_config(cs.url, tmp_path, **fields)


async def test_profile_2_connects_with_ca_file(tmp_path: Path, pki: TestPki) -> None:
    async with StrictCentralSystem(password=PASSWORD, ssl_context=pki.server_context()) as cs:
        async with running(profile_2(cs, tmp_path, {"ca_file": str(pki.root)})) as daemon:
            await cs.wait_for_call("CP-1", "StatusNotification")
            link = daemon.charge_points["CP-1"].session.link
            assert link.connected and link.last_error is None
        assert cs.url.startswith("wss://") and [s for _, s in cs.handshakes] == [101]
        cs.assert_clean()


async def test_profile_2_connects_with_the_ca_in_the_system_store(
    tmp_path: Path, pki: TestPki, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No ca_file: the system CA store, here a private one (SSL_CERT_FILE, as OpenSSL reads it)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.bundle()))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    async with StrictCentralSystem(password=PASSWORD, ssl_context=pki.server_context()) as cs:
        async with running(profile_2(cs, tmp_path, None)):
            await cs.wait_for_call("CP-1", "StatusNotification")
        cs.assert_clean()


async def never_connects(cs: StrictCentralSystem, config: Any, words: str) -> str:
    """The daemon tries (and backs off), never gets past TLS; its status says `words`."""
    async with running(config) as daemon:
        link = daemon.charge_points["CP-1"].session.link

        async def described() -> bool:
            return link.last_error is not None and words in link.last_error

        try:
            await eventually(described, f"a last_error with {words!r}", timeout_s=10)
        except AssertionError:
            raise AssertionError(f"last_error is {link.last_error!r}, without {words!r}") from None
        await asyncio.sleep(0.5)  # more attempts, none through
        assert not link.connected and cs.handshakes == []  # TLS refused: no HTTP request ever came
        return link.last_error


async def test_an_unknown_ca_never_connects_and_says_where_to_add_it(tmp_path: Path, pki: TestPki) -> None:
    async with StrictCentralSystem(password=PASSWORD, ssl_context=pki.server_context()) as cs:
        config = profile_2(cs, tmp_path, {"ca_file": str(pki.client_ca)})
        message = await never_connects(cs, config, "was issued by an unknown CA")
    assert f"add its CA to ca_file {pki.client_ca}" in message


async def test_an_unknown_self_signed_certificate_names_the_system_store(
    tmp_path: Path, pki: TestPki
) -> None:
    async with StrictCentralSystem(password=PASSWORD, ssl_context=pki.server_context(pki.self_signed)) as cs:
        message = await never_connects(cs, profile_2(cs, tmp_path, {}), "is self-signed")
    assert "the system CA store" in message


async def test_an_expired_certificate_never_connects(tmp_path: Path, pki: TestPki) -> None:
    async with StrictCentralSystem(password=PASSWORD, ssl_context=pki.server_context(pki.expired)) as cs:
        config = profile_2(cs, tmp_path, {"ca_file": str(pki.root)})
        message = await never_connects(cs, config, "certificate has expired")
    assert "127.0.0.1" in message and "renew" in message


async def test_a_wrong_hostname_never_connects_and_names_the_host(tmp_path: Path, pki: TestPki) -> None:
    async with StrictCentralSystem(password=PASSWORD, ssl_context=pki.server_context(pki.wrong_host)) as cs:
        config = profile_2(cs, tmp_path, {"ca_file": str(pki.root)})
        message = await never_connects(cs, config, "does not name 127.0.0.1")
    assert "check_hostname" in message


@pytest.mark.parametrize(
    ("setting", "server"), [("verify_server", "self_signed"), ("check_hostname", "wrong_host")]
)
async def test_weakened_verification_connects_and_warns(
    tmp_path: Path, pki: TestPki, caplog: pytest.LogCaptureFixture, setting: str, server: str
) -> None:
    caplog.set_level(logging.WARNING, logger="bridge")
    context = pki.server_context(getattr(pki, server))
    async with StrictCentralSystem(password=PASSWORD, ssl_context=context) as cs:
        config = profile_2(cs, tmp_path, {"ca_file": str(pki.root), setting: False})
        async with running(config) as daemon:
            await cs.wait_for_call("CP-1", "StatusNotification")
            security = status_json(daemon.charge_points["CP-1"].snapshot())["security"]
            assert [w for w in security["warnings"] if f"tls.{setting} is false" in w], security
        cs.assert_clean()
    assert [r for r in caplog.records if f"tls.{setting} is false" in r.getMessage()]


async def test_profile_3_connects_with_its_client_certificate(tmp_path: Path, pki: TestPki) -> None:
    tls_block = {
        "ca_file": str(pki.root),
        "client_cert": str(pki.client.cert),
        "client_key": str(pki.client.key),
    }
    async with StrictCentralSystem(ssl_context=pki.server_context(require_client=True)) as cs:
        config = make_config(cs.url, tmp_path, ocpp={"SecurityProfile": 3}, tls=tls_block)
        async with running(config):
            await cs.wait_for_call("CP-1", "StatusNotification")
        cs.assert_clean()


async def test_without_a_client_certificate_the_server_refuses(tmp_path: Path, pki: TestPki) -> None:
    async with StrictCentralSystem(
        password=PASSWORD, ssl_context=pki.server_context(require_client=True)
    ) as cs:
        config = profile_2(cs, tmp_path, {"ca_file": str(pki.root)})
        message = await never_connects(cs, config, "client certificate")
    assert "set tls.client_cert and tls.client_key" in message


def test_a_failure_explained_keeps_its_settings_file(pki: TestPki) -> None:
    """The file named is the one configured (what an installer opens)."""
    settings = replace(DefaultTls(), ca_file=pki.client_ca)
    error = ssl.SSLCertVerificationError(1, "certificate verify failed")
    error.verify_code = 20
    error.verify_message = "unable to get local issuer certificate"
    failure = explain(error, settings, "wss://csms.example.com/ocpp")
    assert failure == tls.TlsFailure(
        f"TLS: the central system's certificate was issued by an unknown CA (csms.example.com): "
        f"add its CA to ca_file {pki.client_ca}",
        "InvalidCentralSystemCertificate",
        str(pki.client_ca),
    )


async def test_frames_larger_than_the_small_read_buffer_arrive_whole(pki: TestPki) -> None:
    """The 32 KiB TLS read buffer (asyncio's is 256 KiB per connection) only means more reads."""
    from asyncio import sslproto

    from websockets.asyncio.server import ServerConnection, serve

    async def echo(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)

    context = client_context(DefaultTls(ca_file=pki.root))
    assert sslproto.SSLProtocol.max_size == tls.SSL_READ_BUFFER
    async with serve(echo, "127.0.0.1", 0, ssl=pki.server_context()) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        async with connect(f"wss://127.0.0.1:{port}/x", ssl=context, max_size=None) as ws:
            frame = "x" * 1_000_000 + "end"
            await ws.send(frame)
            assert await ws.recv() == frame


def mapped_files(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


async def test_a_daemon_on_wss_does_not_load_cryptography(tmp_path: Path, pki: TestPki) -> None:
    """~16 MiB of a 100-charge-point daemon's ~57 (bench/tls.py): the link and its checks use `ssl`;
    the certificate store looks for files before it parses any."""
    async with StrictCentralSystem(ssl_context=pki.server_context()) as cs:
        doc = {
            "state_dir": str(tmp_path / "state"),
            "api": {"listen": None},
            "charge_points": [{
                "id": "CP-1", "csms_url": cs.url, "tls": {"ca_file": str(pki.root)},
                "connectors": [{"id": 1, "charger": {"type": "simulated"}}],
            }],
        }  # fmt: skip
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump(doc))
        proc = await start_daemon(config, tmp_path / "daemon.log")
        try:
            await cs.wait_for_call("CP-1", "StatusNotification", timeout=15)
            maps = mapped_files(proc.pid)
        finally:
            await stop_process(proc)
    assert "libssl" in maps  # the link is TLS
    assert "cryptography" not in maps
