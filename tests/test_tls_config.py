"""The `tls:` block and the security profile in the configuration, and `ocpp-bridge check` of the TLS
files (bridge/config/rules_tls.py, bridge/security/pem_files.py)."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bridge.config import ConfigError, TlsConfig, parse_config
from bridge.config.rules_tls import tls_report
from bridge.security.pem_files import check_files
from tests.helpers.cli import run_cli
from tests.helpers.pki import TestPki, make_identity, make_test_pki

NOW = datetime.datetime.now(datetime.UTC)
DAY = datetime.timedelta(days=1)
PASSWORD = "s3cret-password-1"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


def doc(tmp_path: Path, **cp: Any) -> dict[str, Any]:
    entry = {
        "id": "CP-1",
        "csms_url": "wss://127.0.0.1:9000/ocpp",
        "connectors": [{"id": 1, "charger": {"type": "simulated"}}],
    }
    entry.update(cp)
    return {"state_dir": str(tmp_path / "state"), "charge_points": [entry]}


def load(tmp_path: Path, **cp: Any) -> Any:
    return parse_config(yaml.safe_dump(doc(tmp_path, **cp)), "test.yaml")


def problems(tmp_path: Path, **cp: Any) -> str:
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, **cp)
    return str(raised.value)


def of_the_date(tmp_path: Path, **cp: Any) -> str:
    """A problem of the date: the file loads (`run` starts), `tls_report` (and so `check`) names it."""
    date_problems, _ = tls_report(load(tmp_path, **cp))
    return "\n".join(date_problems)


def identity(pki: TestPki, **more: Any) -> dict[str, Any]:
    return {
        "ca_file": str(pki.root),
        "client_cert": str(pki.client.cert),
        "client_key": str(pki.client.key),
        **more,
    }


# --- the block ------------------------------------------------------------------------------------


def test_every_setting_loads_with_its_contract_name(tmp_path: Path, pki: TestPki) -> None:
    tls = {**identity(pki), "verify_server": True, "check_hostname": True, "min_version": "1.3"}
    cp = load(tmp_path, tls=tls).charge_points[0]
    assert cp.tls == TlsConfig(
        ca_file=pki.root,
        verify_server=True,
        check_hostname=True,
        client_cert=pki.client.cert,
        client_key=pki.client.key,
        min_version="1.3",
    )


def test_no_block_is_none_and_an_empty_one_is_the_safe_defaults(tmp_path: Path) -> None:
    assert load(tmp_path).charge_points[0].tls is None
    tls = load(tmp_path, tls={}).charge_points[0].tls
    assert tls == TlsConfig(None, True, True, None, None, "1.2")


def test_min_version_unquoted_is_taken_and_an_unknown_one_named(tmp_path: Path) -> None:
    assert load(tmp_path, tls={"min_version": 1.3}).charge_points[0].tls.min_version == "1.3"
    text = problems(tmp_path, tls={"min_version": "1.1"})
    assert "charge_points[0].tls.min_version" in text and '"1.2" or "1.3"' in text


def test_an_unknown_key_in_the_block_is_named_with_the_closest(tmp_path: Path) -> None:
    text = problems(tmp_path, tls={"verify_sever": False})
    assert "tls.verify_sever" in text and "did you mean 'verify_server'" in text


# --- the files --------------------------------------------------------------------------------------


def test_a_missing_ca_file_is_named(tmp_path: Path) -> None:
    text = problems(tmp_path, tls={"ca_file": str(tmp_path / "nope.pem")})
    assert "tls.ca_file" in text and "cannot read" in text and "nope.pem" in text


def test_a_ca_file_that_is_not_pem_says_how_to_convert(tmp_path: Path, pki: TestPki) -> None:
    der = tmp_path / "ca.der"
    der.write_bytes(b"\x30\x82\x01\x0a" + b"\x00" * 40)
    text = problems(tmp_path, tls={"ca_file": str(der)})
    assert "tls.ca_file" in text and "is not PEM" in text and "openssl x509 -inform der" in text


def test_a_ca_file_of_expired_certificates_only_is_refused(tmp_path: Path) -> None:
    old = make_identity(tmp_path, "old", not_before=NOW - 60 * DAY, not_after=NOW - DAY)
    text = of_the_date(tmp_path, tls={"ca_file": str(old.cert)})
    assert "tls.ca_file" in text and "every certificate in it has expired" in text


def test_a_good_client_identity_passes(tmp_path: Path, pki: TestPki) -> None:
    assert load(tmp_path, tls=identity(pki)).charge_points[0].tls.client_key == pki.client.key


@pytest.mark.parametrize(("given", "missing"), [("client_cert", "client_key"), ("client_key", "client_cert")])
def test_a_certificate_without_its_key_or_the_reverse_is_refused(
    tmp_path: Path, pki: TestPki, given: str, missing: str
) -> None:
    tls = {given: str(getattr(pki.client, given.removeprefix("client_")))}
    text = problems(tmp_path, tls=tls)
    assert f"tls.{missing}: required with {given}" in text


def test_a_key_readable_by_others_is_refused_with_the_fix(tmp_path: Path, pki: TestPki) -> None:
    key = tmp_path / "cp.key"
    key.write_bytes(pki.client.key.read_bytes())
    for mode, refused in ((0o644, True), (0o640, True), (0o600, False), (0o400, False)):
        os.chmod(key, mode)
        tls = identity(pki, client_key=str(key))
        if refused:
            text = problems(tmp_path, tls=tls)
            assert "tls.client_key" in text and f"(mode {mode:04o})" in text and f"chmod 600 {key}" in text
        else:
            assert load(tmp_path, tls=tls).charge_points[0].tls.client_key == key


def test_a_key_that_is_not_the_certificates_is_refused_without_showing_it(
    tmp_path: Path, pki: TestPki
) -> None:
    text = problems(tmp_path, tls=identity(pki, client_key=str(pki.rogue_client.key)))
    assert "tls.client_key" in text and "is not the key of client_cert's certificate" in text
    secret = pki.rogue_client.key.read_text()
    assert "PRIVATE KEY" not in text and secret.splitlines()[1] not in text


def test_an_encrypted_key_is_refused(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "enc.key"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pass"),
        )
    )
    os.chmod(path, 0o600)
    findings = check_files(None, None, path, NOW)
    assert [f.setting for f in findings] == ["client_cert", "client_key"]
    assert "is encrypted" in findings[1].message


def test_an_expired_client_certificate_is_refused_with_its_date(tmp_path: Path) -> None:
    end = NOW - DAY
    old = make_identity(tmp_path, "old", not_before=NOW - 60 * DAY, not_after=end)
    text = of_the_date(tmp_path, tls={"client_cert": str(old.cert), "client_key": str(old.key)})
    assert text.startswith("CP-1: tls.client_cert: ") and f"expired on {end:%Y-%m-%d}" in text
    assert "renew it" in text


def test_a_reporting_targets_expired_client_certificate_is_named_with_its_place(tmp_path: Path) -> None:
    """A report_to target's tls: block (docs/reporting.md) is checked for its dates as the primary's."""
    end = NOW - DAY
    old = make_identity(tmp_path, "old", not_before=NOW - 60 * DAY, not_after=end)
    target = {"csms_url": "wss://broker.example/ocpp", "id": "NL-1",
              "tls": {"client_cert": str(old.cert), "client_key": str(old.key)}}  # fmt: skip
    text = of_the_date(tmp_path, report_to=[target])
    assert text.startswith("CP-1: report_to[0].tls.client_cert: ") and f"expired on {end:%Y-%m-%d}" in text


def test_a_certificate_ending_within_30_days_warns_then_fails_once_past(tmp_path: Path) -> None:
    """Time is passed in: the same files, checked now, in 9 days and in 11."""
    end = NOW + 10 * DAY
    soon = make_identity(tmp_path, "soon", not_before=NOW - DAY, not_after=end)
    found = check_files(None, soon.cert, soon.key, NOW)
    assert len(found) == 1 and found[0].warning and f"expires on {end:%Y-%m-%d}" in found[0].message
    assert "(in 9 days)" in found[0].message or "(in 10 days)" in found[0].message
    later = check_files(None, soon.cert, soon.key, NOW + 11 * DAY)
    assert len(later) == 1 and later[0].dated and not later[0].warning and "expired on" in later[0].message
    assert check_files(None, soon.cert, soon.key, NOW - 30 * DAY)[0].message.endswith(
        "is this device's clock right?"
    )
    config = load(tmp_path, tls={"client_cert": str(soon.cert), "client_key": str(soon.key)})  # not an error
    assert tls_report(config, NOW) == ([], [f"CP-1: tls.client_cert: {found[0].message}"])


def test_weakened_verification_is_a_warning_of_check(tmp_path: Path, pki: TestPki) -> None:
    config = load(tmp_path, tls={"verify_server": False})
    (line,) = tls_report(config)[1]
    assert line.startswith("CP-1: tls.verify_server is false") and "NOT checked" in line
    (line,) = tls_report(load(tmp_path, tls={"check_hostname": False}))[1]
    assert "tls.check_hostname is false" in line
    assert tls_report(load(tmp_path, tls={"ca_file": str(pki.root)})) == ([], [])


# --- the security profile against the URL ----------------------------------------------------------


def with_profile(profile: int, url: str, **cp: Any) -> dict[str, Any]:
    return {"csms_url": url, "ocpp": {"SecurityProfile": profile}, **cp}


@pytest.mark.parametrize(
    ("profile", "url", "fields", "where", "message"),
    [
        (
            1,
            "wss://h/ocpp",
            {"password": PASSWORD},
            "ocpp.SecurityProfile",
            "profile 1 is HTTP Basic without TLS; use 2 for wss://",
        ),
        (1, "ws://h/ocpp", {}, "password", "required with SecurityProfile 1"),
        (2, "ws://h/ocpp", {"password": PASSWORD}, "csms_url", "SecurityProfile 2 needs TLS: a wss:// URL"),
        (2, "wss://h/ocpp", {}, "password", "required with SecurityProfile 2"),
        (3, "ws://h/ocpp", {}, "csms_url", "SecurityProfile 3 needs TLS"),
        (
            3,
            "wss://h/ocpp",
            {},
            "tls.client_cert",
            "SecurityProfile 3 needs tls.client_cert and tls.client_key",
        ),
    ],
)
def test_a_profile_the_file_cannot_meet_is_refused(
    tmp_path: Path, profile: int, url: str, fields: dict[str, Any], where: str, message: str
) -> None:
    text = problems(tmp_path, **with_profile(profile, url, **fields))
    assert f"charge_points[0].{where}: {message}" in text


def test_profiles_the_file_meets_load(tmp_path: Path, pki: TestPki) -> None:
    assert (
        load(tmp_path, **with_profile(1, "ws://h/ocpp", password=PASSWORD))
        .charge_points[0]
        .ocpp["SecurityProfile"]
        == "1"
    )
    load(tmp_path, **with_profile(2, "wss://h/ocpp", password=PASSWORD, tls={"ca_file": str(pki.root)}))
    load(tmp_path, **with_profile(3, "wss://h/ocpp", tls=identity(pki)))
    # A tls: block with ws://: used once the central system raises the profile to 2.
    load(tmp_path, **with_profile(1, "ws://h/ocpp", password=PASSWORD, tls={"ca_file": str(pki.root)}))


# --- ocpp-bridge check ------------------------------------------------------------------------------


async def test_check_refuses_a_key_others_can_read_naming_field_and_fix(tmp_path: Path, pki: TestPki) -> None:
    key = tmp_path / "cp.key"
    key.write_bytes(pki.client.key.read_bytes())
    os.chmod(key, 0o644)
    path = tmp_path / "bridge.yaml"
    path.write_text(yaml.safe_dump(doc(tmp_path, tls=identity(pki, client_key=str(key)))))
    code, out, err = await run_cli("check", "--config", str(path))
    assert code == 2, (out, err)
    assert "charge_points[0].tls.client_key" in err and f"chmod 600 {key}" in err
    assert "PRIVATE KEY" not in err
    os.chmod(key, 0o600)
    code, out, err = await run_cli("check", "--config", str(path))
    assert code == 0 and "valid (1 charge point)" in out, err


def test_cryptography_is_loaded_only_for_certificates(tmp_path: Path) -> None:
    """~16 MiB and ~50 ms: a bridge whose TLS files are fine never imports it, loading its
    configuration and building its charge points included (the files are checked with `ssl`); a file
    that fails there loads it to say what is wrong."""
    script = (
        "import sys\n"
        "from bridge.config import ConfigError, parse_config\n"
        "from bridge.daemon import Daemon\n"
        "try:\n"
        "    Daemon(parse_config(sys.argv[1], 'test.yaml')).store.close()\n"
        "except ConfigError as error:\n"
        "    print('refused:', 'tls.client_key' in str(error))\n"
        "print('cryptography' in sys.modules)\n"
    )

    def loaded(**cp: Any) -> list[str]:
        text = yaml.safe_dump(doc(tmp_path, **cp))
        run = subprocess.run([sys.executable, "-c", script, text], capture_output=True, text=True, check=True)
        return run.stdout.split()

    pki = make_test_pki(tmp_path / "pki")
    assert loaded() == ["False"]
    assert loaded(tls=identity(pki)) == ["False"]
    open_key = tmp_path / "open.key"
    open_key.write_bytes(pki.client.key.read_bytes())
    os.chmod(open_key, 0o644)
    assert loaded(tls=identity(pki, client_key=str(open_key))) == ["refused:", "True", "True"]
