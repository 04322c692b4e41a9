"""Security profiles (white paper A05, OCTT TC_083) and the AuthorizationKey (A01, TC_073, D3), over
real sockets: the strict central system checks the HTTP Basic header of every handshake, and serves
wss:// with a test PKI for the raise to profile 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call

from bridge.core.security_profile import Prerequisites, Switch, missing_for
from bridge.store import Store
from tests.conftest import make_config, running
from tests.csms import StrictCentralSystem
from tests.helpers.pki import make_test_pki
from tests.processes import free_port

OCTT_KEY = "4F43415F4F4354545F61646D696E5F74657374"  # TC_073: hex of "OCA_OCTT_admin_test"
HAVE_ALL = Prerequisites(password=True, central_system_root=True, client_certificate=True)


# -- the pure switch ------------------------------------------------------------------------------
def test_a_raise_is_tried_and_kept_only_once_a_connection_opens() -> None:
    switch = Switch(in_force=1)
    assert switch.refusal(2, HAVE_ALL) is None
    switch.try_raise(2)
    assert (switch.current, switch.in_force) == (2, 1)
    assert switch.opened() == 2
    assert (switch.current, switch.in_force, switch.trying) == (2, 2, None)
    assert switch.opened() is None  # nothing changes at the next connection


def test_a_raise_that_fails_to_connect_falls_back() -> None:
    switch = Switch(in_force=1)
    switch.try_raise(3)
    assert switch.failed() == 3
    assert (switch.current, switch.in_force) == (1, 1)
    assert switch.failed() is None  # a later failure with the profile in force is no fallback


def test_the_profile_may_only_increase_and_needs_its_prerequisites() -> None:
    switch = Switch(in_force=2)
    assert switch.refusal(2, HAVE_ALL) == "SecurityProfile may only increase (now 2)"
    assert switch.refusal(1, HAVE_ALL) is not None
    assert switch.refusal(4, HAVE_ALL) == "SecurityProfile must be 0 to 3, not 4"
    switch.try_raise(3)
    assert switch.refusal(3, HAVE_ALL) == "SecurityProfile may only increase (now 3)"  # being tried
    none = Prerequisites(password=False, central_system_root=False, client_certificate=False)
    assert "AuthorizationKey" in (missing_for(1, none) or "")
    assert "CentralSystemRootCertificate" in (
        missing_for(2, Prerequisites(password=True, central_system_root=False, client_certificate=True)) or ""
    )
    assert "charge point certificate" in (
        missing_for(3, Prerequisites(password=False, central_system_root=True, client_certificate=False))
        or ""
    )
    assert (
        missing_for(3, Prerequisites(password=False, central_system_root=True, client_certificate=True))
        is None
    )


# -- over the wire ----------------------------------------------------------------------------------
async def change(cs: StrictCentralSystem, key: str, value: str) -> str:
    answer = await cs.call("CP-1", call.ChangeConfiguration(key=key, value=value))
    return str(answer.status)


async def profile_value(cs: StrictCentralSystem) -> str | None:
    answer = await cs.call("CP-1", call.GetConfiguration(key=["SecurityProfile", "AuthorizationKey"]))
    entries = {e["key"]: e.get("value") for e in answer.configuration_key}
    assert entries.get("AuthorizationKey") is None  # write-only: never disclosed (A01)
    return entries["SecurityProfile"]


def stored(tmp_path: Path) -> dict[str, str]:
    store = Store.open(tmp_path / "state")
    try:
        return dict(store.stored_states(["CP-1"], 10)["CP-1"].config_values)
    finally:
        store.close()


def security_log(tmp_path: Path) -> str:
    path = tmp_path / "state" / "security" / "security.log"
    return path.read_text() if path.exists() else ""


async def accepted_links(cs: StrictCentralSystem, n: int) -> None:
    await cs.wait_until(lambda: sum(1 for _, status in cs.handshakes if status == 101) >= n and
                        cs.links and not cs.links[-1].closed, what=f"{n} accepted handshakes")  # fmt: skip


@pytest.mark.parametrize(
    ("password_format", "old", "old_on_wire", "new_on_wire"),
    [
        ("plain", "steve-old-password", b"steve-old-password", OCTT_KEY.encode()),  # SteVe: the text
        ("hex", "00112233445566778899AABBCCDDEEFF", bytes(range(0, 256, 17)), b"OCA_OCTT_admin_test"),
    ],
)
async def test_a_new_authorization_key_reconnects_with_it_and_is_never_shown(
    tmp_path: Path, password_format: str, old: str, old_on_wire: bytes, new_on_wire: bytes
) -> None:
    """TC_073: ChangeConfiguration(AuthorizationKey) Accepted, then a reconnect whose HTTP Basic header
    carries the new key (D3: as text, or the bytes of its hex form), without a new BootNotification;
    persisted (a restart connects with it); in the security log without its value."""
    assert old_on_wire == (bytes.fromhex(old) if password_format == "hex" else old.encode())
    async with StrictCentralSystem(password=old_on_wire) as cs:
        config = make_config(
            cs.url, tmp_path, password=old, password_format=password_format, ocpp={"SecurityProfile": 1}
        )
        async with running(config):
            await cs.wait_for_call("CP-1", "StatusNotification")
            cs.password = new_on_wire  # from now on only the new key opens the door
            assert await change(cs, "AuthorizationKey", OCTT_KEY) == "Accepted"
            await accepted_links(cs, 2)
            assert [status for _, status in cs.handshakes] == [101, 101]
            assert cs.actions("CP-1").count("BootNotification") == 1  # a reconnect, not a reboot (D4)
            assert await profile_value(cs) == "1"
        assert stored(tmp_path)["AuthorizationKey"] == OCTT_KEY
        async with running(config):
            await accepted_links(cs, 3)
        assert [status for _, status in cs.handshakes] == [101, 101, 101]
    log = security_log(tmp_path)
    assert "AuthorizationKey changed" in log
    assert OCTT_KEY not in log and old not in log


async def test_a_wrong_password_is_a_security_event_once_the_right_one_works(tmp_path: Path) -> None:
    """HTTP 401 at the handshake: FailedToAuthenticateAtCentralSystem, sent once connected (one per type,
    however many attempts failed)."""
    async with StrictCentralSystem(password=b"not-the-configured-one") as cs:
        config = make_config(cs.url, tmp_path, password="configured-password", ocpp={"SecurityProfile": 1})
        async with running(config) as daemon:
            await cs.wait_until(lambda: [s for _, s in cs.handshakes].count(401) >= 3, what="three 401s")
            link = daemon.charge_points["CP-1"].session.link
            assert link.last_error is not None and "HTTP 401" in link.last_error
            cs.password = b"configured-password"
            events = await cs.wait_for_call("CP-1", "SecurityEventNotification")
            await cs.wait_until(lambda: len(cs.calls("CP-1", "SecurityEventNotification")) >= 2)
    types = [c["type"] for c in cs.calls("CP-1", "SecurityEventNotification")]
    assert sorted(types) == ["FailedToAuthenticateAtCentralSystem", "StartupOfTheDevice"]
    failed = next(c for c in cs.calls("CP-1", "SecurityEventNotification") if c["type"].startswith("Failed"))
    assert "HTTP 401" in failed["techInfo"]
    assert events is not None


def _tls(pki: Any) -> dict[str, Any]:
    return {"ca_file": str(pki.root)}


async def test_a_raise_to_profile_2_that_cannot_connect_falls_back_to_1(tmp_path: Path) -> None:
    """TC_083's failure branch: Accepted, the link tries wss:// on the same host and port, the
    central system there speaks no TLS: back to profile 1 over ws://, nothing persisted."""
    pki = make_test_pki(tmp_path / "pki")
    async with StrictCentralSystem(password=b"a-password-16-chars") as cs:
        config = make_config(
            cs.url, tmp_path, password="a-password-16-chars", ocpp={"SecurityProfile": 1}, tls=_tls(pki)
        )
        async with running(config) as daemon:
            await cs.wait_for_call("CP-1", "StatusNotification")
            assert await change(cs, "SecurityProfile", "2") == "Accepted"
            await accepted_links(cs, 2)
            assert await profile_value(cs) == "1"
            link = daemon.charge_points["CP-1"].security.link
            assert (link.switch.in_force, link.switch.trying) == (1, None)
    assert "SecurityProfile" not in stored(tmp_path) or stored(tmp_path)["SecurityProfile"] == "1"
    log = security_log(tmp_path)
    assert "SecurityProfile raise accepted: 1 -> 2" in log
    assert "SecurityProfile fallback: security profile 2 could not connect" in log


async def test_a_raise_to_profile_2_connects_over_tls_and_is_kept(tmp_path: Path) -> None:
    """TC_083: Accepted, reconnect over wss:// (the same host and port: the central system now serves
    TLS there), the profile in force persisted; ReconfigurationOfSecurityParameters sent."""
    pki = make_test_pki(tmp_path / "pki")
    port = free_port()
    plain = StrictCentralSystem(password=b"a-password-16-chars")
    plain.port = port
    async with plain:
        config = make_config(
            plain.url, tmp_path, password="a-password-16-chars", ocpp={"SecurityProfile": 1}, tls=_tls(pki),
            reconnect={"initial_s": 2.0, "max_s": 4.0}, security_events="on",
        )  # fmt: skip
        async with running(config) as daemon:
            await plain.wait_for_call("CP-1", "StatusNotification")
            assert await change(plain, "SecurityProfile", "2") == "Accepted"
            await plain.wait_until(lambda: plain.links[-1].closed, what="the link dropped")
            await plain.stop()
            secure = StrictCentralSystem(password=b"a-password-16-chars", ssl_context=pki.server_context())
            secure.accepted_ids = plain.accepted_ids  # the same central system, now behind TLS
            secure.port = port
            async with secure:
                await secure.wait_until(
                    lambda: any(
                        e["type"] == "ReconfigurationOfSecurityParameters"
                        for e in secure.calls("CP-1", "SecurityEventNotification")
                    ),
                    what="ReconfigurationOfSecurityParameters",
                )
                assert await profile_value(secure) == "2"
                cp = daemon.charge_points["CP-1"]
                assert cp.session.link.connected and cp.security.link.switch.in_force == 2
                events = secure.calls("CP-1", "SecurityEventNotification")
                assert "BootNotification" not in secure.actions("CP-1")
        assert stored(tmp_path)["SecurityProfile"] == "2"
        # After a restart the link goes straight to wss://.
        secure2 = StrictCentralSystem(password=b"a-password-16-chars", ssl_context=pki.server_context())
        secure2.port = port
        async with secure2, running(config):
            await secure2.wait_for_call("CP-1", "BootNotification")
            assert await profile_value(secure2) == "2"
    assert [e["type"] for e in events if e["type"] != "StartupOfTheDevice"] == [
        "ReconfigurationOfSecurityParameters"
    ]
    raised = next(e for e in events if e["type"] == "ReconfigurationOfSecurityParameters")
    assert raised["techInfo"] == "SecurityProfile 1 -> 2"


async def test_raises_without_their_prerequisites_are_rejected(tmp_path: Path) -> None:
    """A05: lower or equal, 2 without any way to check the central system, 3 without a certificate."""
    async with StrictCentralSystem(password=b"a-password-16-chars") as cs:
        config = make_config(cs.url, tmp_path, password="a-password-16-chars", ocpp={"SecurityProfile": 1})
        async with running(config):
            await cs.wait_for_call("CP-1", "StatusNotification")
            assert await change(cs, "SecurityProfile", "1") == "Rejected"
            assert await change(cs, "SecurityProfile", "0") == "Rejected"
            assert await change(cs, "SecurityProfile", "2") == "Rejected"  # no tls:, no root installed
            assert await change(cs, "SecurityProfile", "3") == "Rejected"
            assert await profile_value(cs) == "1"
            assert [status for _, status in cs.handshakes] == [101]  # no reconnect for a refusal


async def test_a_raised_profile_is_tls_whatever_the_case_of_the_files_scheme(tmp_path: Path) -> None:
    """`WS://` in the file: profile 2 still connects over wss:// with the tls: block's context (the
    scheme was compared in lower case only, and a raise went over plain ws:// with the password)."""
    pki = make_test_pki(tmp_path / "pki")
    port = free_port()
    config = make_config(
        f"WS://127.0.0.1:{port}/ocpp", tmp_path, password="a-password-16-chars", ocpp={"SecurityProfile": 1},
        tls=_tls(pki),
    )  # fmt: skip
    async with running(config) as daemon:
        link = daemon.charge_points["CP-1"].security.link
        assert not link.uses_tls()
        link.switch.try_raise(2)
        options = await link.options()
    assert options.url == f"wss://127.0.0.1:{port}/ocpp" and options.ssl is not None
    assert link.uses_tls()
