"""The `report_to:` block of a charge point: what a user pastes from a broker (URL, id, password) is
taken as the primary's link is; every mistake is named with its line (docs/reporting.md)."""

from __future__ import annotations

import textwrap

import pytest

from bridge.config import ConfigError, ReportTarget, parse_config

HEAD = """\
state_dir: /tmp/unused
charge_points:
  - id: CP-1
    csms_url: ws://csms.example/ocpp
    connectors:
      - id: 1
        charger: {type: simulated}
    report_to:
"""


def problems(block: str) -> list[tuple[int | None, str, str]]:
    with pytest.raises(ConfigError) as caught:
        parse_config(HEAD + textwrap.indent(textwrap.dedent(block), "      "), "bridge.yaml")
    return [(p.line, p.path, p.message) for p in caught.value.problems]


def test_what_a_broker_gives_is_taken_as_it_is() -> None:
    block = """\
    - csms_url: wss://broker.example/ocpp/
      id: NL-ABC-123
      password: s3cret-from-the-broker
    - csms_url: ws://billing.example/ocpp
    """
    config = parse_config(HEAD + textwrap.indent(block, "  "), "bridge.yaml")
    first, second = config.charge_points[0].report_to
    assert first == ReportTarget("wss://broker.example/ocpp", "NL-ABC-123", "s3cret-from-the-broker")
    assert second.identity("CP-1") == "CP-1" and second.password is None
    assert "s3cret" not in repr(first)


def test_a_target_without_csms_url_is_named_at_its_line() -> None:
    assert problems("""\
    - csms_url: ws://broker.example/ocpp
    - id: NL-ABC-123
      password: x
    """) == [(10, "charge_points[0].report_to[1].csms_url", "required")]


def test_a_bad_scheme_is_named_at_its_line() -> None:
    assert problems("""\
    - id: NL-ABC-123
      csms_url: https://broker.example/ocpp
    """) == [(10, "charge_points[0].report_to[0].csms_url",
              "'https://broker.example/ocpp' must start with ws:// or wss://")]  # fmt: skip


def test_a_duplicate_target_and_the_primary_itself_are_refused() -> None:
    found = problems("""\
    - csms_url: wss://broker.example/ocpp
      id: NL-ABC-123
    - csms_url: wss://broker.example/ocpp/
      id: NL-ABC-123
    - csms_url: ws://csms.example/ocpp
    """)
    assert found == [
        (11, "charge_points[0].report_to[1]",
         "reports to the same central system and id as charge_points[0].report_to[0]: list each one once"),
        (13, "charge_points[0].report_to[2]",
         "reports to the same central system and id as the primary csms_url: list each one once"),
    ]  # fmt: skip


def test_one_connection_per_central_system_and_id_across_charge_points() -> None:
    """A target of CP-1 named as CP-2 at CP-2's own central system, and two charge points reporting
    to one broker under one id: each pair would close each other's connection. The default port and a
    trailing '/' make no other server; the path's case does."""
    text = HEAD + (
        "      - {csms_url: 'wss://broker.example:443/ocpp', id: NL-ABC-123}\n"
        "      - {csms_url: 'ws://csms.example:80/ocpp/', id: CP-2}\n"
        "      - {csms_url: 'wss://broker.example/OCPP', id: NL-ABC-123}\n"
        "  - id: CP-2\n"
        "    csms_url: ws://csms.example/ocpp\n"
        "    connectors: [{id: 1, charger: {type: simulated}}]\n"
        "    report_to: [{csms_url: 'wss://broker.example/ocpp/', id: NL-ABC-123}]\n"
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "bridge.yaml")
    found = [(p.line, p.path, p.message) for p in caught.value.problems]
    assert [(path, message) for _, path, message in found] == [
        ("charge_points[1].csms_url",
         "reports to the same central system and id as charge_points[0].report_to[1]: list each one once"),
        ("charge_points[1].report_to[0]",
         "reports to the same central system and id as charge_points[0].report_to[0]: list each one once"),
    ]  # fmt: skip


def test_other_mistakes_are_named_and_no_password_is_echoed() -> None:
    found = problems("""\
    - csms_url: ws://broker.example/ocpp
      password: not-hex
      password_format: hex
      tsl: {}
    """)
    assert (10, "charge_points[0].report_to[0].password",
            "with password_format hex: 32 to 40 hex digits, an even number") in found  # fmt: skip
    assert any(path == "charge_points[0].report_to[0].tsl" for _, path, _ in found)
    assert not any("not-hex" in message for _, _, message in found)
    assert problems("{csms_url: ws://x.example/ocpp}") == [
        (9, "charge_points[0].report_to",
         "expected a list of central systems to report to (csms_url, id, ...), got a mapping"),
    ]  # fmt: skip
