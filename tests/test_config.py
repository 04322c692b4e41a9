"""bridge.config: the YAML file to typed objects, and every problem reported with path and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.chargers.simulated import SimulatedOptions
from bridge.config import (
    ApiConfig,
    ChargePointConfig,
    ChargerConfig,
    Config,
    ConfigError,
    ConnectorConfig,
    Problem,
    ReconnectConfig,
    default_config,
    load_config,
    parse_config,
)

REPO = Path(__file__).parent.parent

CONTRACT = """\
state_dir: /srv/state
api:
  listen: 127.0.0.1:8080
charge_points:
  - id: CP-1
    csms_url: ws://127.0.0.1:9000/ocpp
    vendor: Example
    model: Retrofit-1
    ocpp:
      HeartbeatInterval: 300
      MeterValueSampleInterval: 60
    connectors:
      - id: 1
        charger: {type: simulated}
"""

HEX_PASSWORD = "4F43415F4F4354545F61646D696E5F74657374"


def parse(text: str, env: dict[str, str] | None = None) -> Config:
    return parse_config(text, "test.yaml", env={} if env is None else env)


def problems(text: str) -> list[Problem]:
    with pytest.raises(ConfigError) as info:
        parse(text)
    return info.value.problems


def line_of(text: str, needle: str) -> int:
    """The 1-based number of the only line containing `needle`."""
    found = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(found) == 1, f"{needle!r} is on lines {found}"
    return found[0]


def the_problem(text: str, path: str, needle: str) -> Problem:
    """The one problem at `path`; it must point at the line holding `needle`."""
    at_path = [p for p in problems(text) if p.path == path]
    assert len(at_path) == 1, problems(text)
    assert at_path[0].line == line_of(text, needle), at_path[0]
    return at_path[0]


def charge_point(*lines: str, connectors: str = "      - {id: 1, charger: {type: simulated}}") -> str:
    """A file with one charge point made of the contract's fields plus `lines` (indented 4)."""
    body = "\n".join(f"    {line}" for line in lines)
    return (
        "charge_points:\n"
        "  - id: CP-1\n"
        "    csms_url: ws://127.0.0.1:9000/ocpp\n"
        + (body + "\n" if body else "")
        + "    connectors:\n"
        + connectors
        + "\n"
    )


# -- the contract ---------------------------------------------------------------------


def test_the_contract_example_parses_to_the_expected_objects() -> None:
    config = parse(CONTRACT)
    assert config == Config(
        state_dir=Path("/srv/state"),
        api=ApiConfig(listen=("127.0.0.1", 8080), token=None),
        charge_points=(
            ChargePointConfig(
                id="CP-1",
                csms_url="ws://127.0.0.1:9000/ocpp",
                vendor="Example",
                model="Retrofit-1",
                ocpp={"HeartbeatInterval": "300", "MeterValueSampleInterval": "60"},
                connectors=(ConnectorConfig(1, ChargerConfig("simulated", SimulatedOptions())),),
            ),
        ),
        source="test.yaml",
    )
    cp = config.charge_points[0]
    assert cp.reconnect == ReconnectConfig(1.0, 60.0)
    assert (cp.password, cp.password_format, cp.boot_on_reconnect) == (None, "plain", False)
    assert cp.serial_number is None


def test_the_example_file_loads() -> None:
    config = load_config(REPO / "config" / "simulated.yaml")
    assert config.source.endswith("simulated.yaml")
    cp = config.charge_points[0]
    assert (cp.id, cp.csms_url) == ("CP-1", "ws://127.0.0.1:9000/ocpp")
    assert config.api.listen == ("127.0.0.1", 8080)
    assert [c.id for c in cp.connectors] == [1, 2]
    assert cp.connectors[1].charger.options.fixed_cable is True
    assert cp.ocpp  # a few OCPP values, normalised
    assert cp.ocpp["MeterValuesSampledData"].startswith("Energy.Active.Import.Register,")


def test_default_config_for_the_demo(tmp_path: Path) -> None:
    config = default_config("ws://127.0.0.1:9000/ocpp/", tmp_path)
    assert config.state_dir == tmp_path
    (cp,) = config.charge_points
    assert (cp.id, cp.csms_url) == ("DEMO-1", "ws://127.0.0.1:9000/ocpp")
    assert cp.connectors == (ConnectorConfig(1, ChargerConfig("simulated", SimulatedOptions())),)
    with pytest.raises(ConfigError, match="ws://"):
        default_config("http://example.com", tmp_path)


def test_values_of_every_field_arrive_typed() -> None:
    text = charge_point(
        "vendor: V",
        "model: M",
        "serial_number: S-1",
        "firmware_version: '1.2'",
        "meter_type: SDM630",
        "meter_serial_number: '0042'",
        f"password: {HEX_PASSWORD}",
        "password_format: hex",
        "boot_on_reconnect: true",
        "reconnect: {initial_s: 0.5, max_s: 30}",
        "ocpp: {heartbeatinterval: 60, LocalPreAuthorize: TRUE, StopTxnSampledData: [Voltage.L1, Frequency]}",
    )
    cp = parse(text).charge_points[0]
    assert (cp.vendor, cp.model, cp.serial_number, cp.firmware_version) == ("V", "M", "S-1", "1.2")
    assert (cp.meter_type, cp.meter_serial_number) == ("SDM630", "0042")
    assert (cp.password, cp.password_format, cp.boot_on_reconnect) == (HEX_PASSWORD, "hex", True)
    assert cp.reconnect == ReconnectConfig(0.5, 30.0)
    assert cp.ocpp == {
        "HeartbeatInterval": "60",
        "LocalPreAuthorize": "true",
        "StopTxnSampledData": "Voltage.L1,Frequency",
    }


def test_secrets_stay_out_of_reprs() -> None:
    text = "api: {listen: '0.0.0.0:8080', token: tok-en-123}\n" + charge_point("password: s3cret-pass")
    config = parse(text)
    assert config.api.token == "tok-en-123" and config.charge_points[0].password == "s3cret-pass"
    shown = repr(config)
    assert "tok-en-123" not in shown and "s3cret-pass" not in shown


# -- state_dir -------------------------------------------------------------------------


def test_state_dir_defaults_and_relative_paths(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    assert parse(charge_point(), env={}).state_dir == tmp_path / "state"
    env = {"STATE_DIRECTORY": "/var/lib/ocpp-bridge:/var/lib/other"}
    assert parse(charge_point(), env=env).state_dir == Path("/var/lib/ocpp-bridge")
    # Relative: under systemd's StateDirectory when it gives one (the service's cwd is a read-only /).
    assert parse("state_dir: data/x\n" + charge_point(), env=env).state_dir == Path(
        "/var/lib/ocpp-bridge/data/x"
    )
    assert parse("state_dir: data/x\n" + charge_point(), env={}).state_dir == tmp_path / "data" / "x"
    assert parse("state_dir: ~/s\n" + charge_point()).state_dir == Path("~/s").expanduser()


def test_state_dir_must_be_a_path() -> None:
    text = "state_dir: [a]\n" + charge_point()
    assert "expected a directory path" in the_problem(text, "state_dir", "state_dir").message


# -- the file as a whole ---------------------------------------------------------------


def test_yaml_syntax_errors_give_line_and_column() -> None:
    text = "charge_points:\n  - id: CP-1\n    csms_url: [ws://x\n"
    (problem,) = problems(text)
    assert problem.line is not None and problem.line >= 3
    assert "YAML syntax error" in problem.message and "column" in problem.message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        ("# only a comment\n", "the file is empty"),
        ("- a\n- b\n", "the top level must be a mapping"),
        ("just text\n", "the top level must be a mapping"),
    ],
)
def test_an_empty_file_or_a_top_level_that_is_not_a_mapping(text: str, message: str) -> None:
    (problem,) = problems(text)
    assert message in problem.message and problem.path == ""


def test_unknown_top_level_key_names_allowed_keys_and_suggests() -> None:
    text = "charge_point:\n  - id: x\n"
    found = problems(text)
    unknown = next(p for p in found if p.path == "charge_point")
    assert unknown.line == 1
    assert "did you mean 'charge_points'?" in unknown.message
    assert "state_dir, api, charge_points" in unknown.message
    assert any(p.path == "charge_points" and "required" in p.message for p in found)


@pytest.mark.parametrize(
    ("value", "message"),
    [("[]", "non-empty list"), ("{id: CP-1}", "non-empty list"), ("null", "non-empty list")],
)
def test_charge_points_must_be_a_non_empty_list(value: str, message: str) -> None:
    text = f"charge_points: {value}\n"
    assert message in the_problem(text, "charge_points", "charge_points").message


def test_duplicate_yaml_keys_are_errors() -> None:
    text = charge_point("vendor: A", "vendor: B")
    problem = the_problem(text, "charge_points[0].vendor", "vendor: B")
    assert "given twice" in problem.message and str(line_of(text, "vendor: A")) in problem.message


def test_a_key_that_spells_another_keys_path_is_given_twice() -> None:
    text = "api.listen: 127.0.0.1:8080\napi: {listen: 127.0.0.1:8081}\n" + charge_point()
    assert any(p.path == "api.listen" and "given twice" in p.message for p in problems(text)), problems(text)


def test_anchors_aliases_and_merge_keys_read_as_yaml_reads_them_and_problems_keep_their_lines() -> None:
    shared = (
        "charge_points:\n"
        "  - &first\n"
        "    id: CP-1\n"
        "    csms_url: ws://127.0.0.1:9000/ocpp\n"
        "    connectors: &connectors\n"
        "      - {id: 1, charger: {type: simulated}}\n"
        "  - <<: *first\n"
        "    id: CP-2\n"
        "    connectors: *connectors\n"
    )
    config = parse(shared)
    assert [cp.id for cp in config.charge_points] == ["CP-1", "CP-2"]
    assert config.charge_points[0].connectors == config.charge_points[1].connectors
    assert config.charge_points[1].csms_url == "ws://127.0.0.1:9000/ocpp"
    text = shared + "    vendr: A\n"
    assert "unknown key 'vendr'" in the_problem(text, "charge_points[1].vendr", "vendr: A").message


def test_every_problem_is_reported_together_in_file_order() -> None:
    text = (
        "api:\n"
        "  listen: 0.0.0.0:8080\n"
        "charge_points:\n"
        "  - id: CP 1\n"
        "    csms_url: http://example.com\n"
        "    vendr: Example\n"
        "    ocpp:\n"
        "      HeartbeatInterval: -5\n"
        "    connectors:\n"
        "      - id: 1\n"
        "        charger: {type: simulated, phases: 2}\n"
    )
    with pytest.raises(ConfigError) as info:
        parse_config(text, "config.yaml", {})
    error = info.value
    assert [(p.path, p.line) for p in error.problems] == [
        ("api.listen", 2),
        ("charge_points[0].id", 4),
        ("charge_points[0].csms_url", 5),
        ("charge_points[0].vendr", 6),
        ("charge_points[0].ocpp.HeartbeatInterval", 8),
        ("charge_points[0].connectors[0].charger.phases", 11),
    ]
    lines = str(error).splitlines()
    assert len(lines) == 6
    assert lines[-1] == "config.yaml:11: charge_points[0].connectors[0].charger.phases: must be 1 or 3"


def test_problem_rendering_without_line_or_path() -> None:
    error = ConfigError([Problem("", None, "the file is empty"), Problem("a.b", None, "wrong")], "c.yaml")
    assert str(error) == "c.yaml: the file is empty\nc.yaml: a.b: wrong"


def test_unreadable_files() -> None:
    with pytest.raises(OSError):
        load_config(REPO / "config" / "does-not-exist.yaml")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"charge_points: []\n# \xe9\n")
    with pytest.raises(ConfigError, match="UTF-8"):
        load_config(path)


# -- api -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        ("localhost:9", ("localhost", 9)),
        ("'[::1]:8081'", ("::1", 8081)),
        ("null", None),
    ],
)
def test_api_listen_forms(listen: str, expected: tuple[str, int] | None) -> None:
    assert parse(f"api:\n  listen: {listen}\n" + charge_point()).api.listen == expected


def test_no_api_block_means_loopback_8080() -> None:
    assert parse(charge_point()).api == ApiConfig()


@pytest.mark.parametrize(
    ("listen", "message"),
    [
        ("8080", 'expected "host:port"'),
        ("127.0.0.1", 'expected "host:port"'),
        ("'::1:8080'", "IPv6 addresses in brackets"),
        ("127.0.0.1:0", "port must be from 1 to 65535"),
        ("127.0.0.1:70000", "port must be from 1 to 65535"),
        ("0.0.0.0:8080", "listening beyond loopback requires api.token"),
        ("'[::]:8080'", "listening beyond loopback requires api.token"),
        ("bridge.local:8080", "listening beyond loopback requires api.token"),
    ],
)
def test_api_listen_problems(listen: str, message: str) -> None:
    text = f"api:\n  listen: {listen}\n" + charge_point()
    assert message in the_problem(text, "api.listen", "listen:").message


def test_api_beyond_loopback_with_a_token() -> None:
    config = parse("api:\n  listen: 0.0.0.0:8080\n  token: abcdefgh\n" + charge_point())
    assert config.api.listen == ("0.0.0.0", 8080) and config.api.token == "abcdefgh"


def test_api_unknown_key_and_wrong_type() -> None:
    text = "api:\n  lissen: 127.0.0.1:1\n  token: 5\n" + charge_point()
    assert "did you mean 'listen'?" in the_problem(text, "api.lissen", "lissen").message
    assert "expected a string or null" in the_problem(text, "api.token", "token").message


# -- charge points ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("''", "must not be empty"),
        ("'" + "x" * 49 + "'", "at most 48 characters"),
        ("CP/1", "must not contain '/'"),
        ("'CP 1'", "must not contain '/', spaces"),
        ("1234", "expected a string, got the number 1234; put it in quotes"),
    ],
)
def test_charge_point_id_rules(value: str, message: str) -> None:
    text = (
        "charge_points:\n"
        f"  - id: {value}\n"
        "    csms_url: ws://127.0.0.1:9000/ocpp\n"
        "    connectors: [{id: 1, charger: {type: simulated}}]\n"
    )
    assert message in the_problem(text, "charge_points[0].id", "- id:").message


def test_numbers_yaml_1_1_would_read_as_octal_or_base_60_stay_text() -> None:
    text = charge_point("ocpp: {metervaluesampleinterval: 010}").replace("id: CP-1", "id: 0001")
    cp = parse(text).charge_points[0]
    assert cp.id == "0001"
    assert cp.ocpp == {"MeterValueSampleInterval": "10"}  # not 8
    assert parse(charge_point().replace("id: CP-1", "id: 12:30")).charge_points[0].id == "12:30"


def test_charge_point_ids_are_unique_ignoring_case() -> None:
    text = charge_point() + (
        "  - id: cp-1\n"
        "    csms_url: ws://127.0.0.1:9000/ocpp\n"
        "    connectors: [{id: 1, charger: {type: simulated}}]\n"
    )
    problem = the_problem(text, "charge_points[1].id", "id: cp-1")
    assert "already used by charge_points[0]" in problem.message


def test_an_id_with_a_colon_cannot_have_a_password() -> None:
    text = (
        "charge_points:\n"
        "  - id: 'CP:1'\n"
        "    csms_url: ws://127.0.0.1:9000/ocpp\n"
        "    password: secret-pass\n"
        "    connectors: [{id: 1, charger: {type: simulated}}]\n"
    )
    assert "basic-auth" in the_problem(text, "charge_points[0].id", "- id:").message
    assert parse(text.replace("    password: secret-pass\n", "")).charge_points[0].id == "CP:1"


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("ws://127.0.0.1:9000/ocpp", "ws://127.0.0.1:9000/ocpp"),
        ("ws://127.0.0.1:9000/ocpp/", "ws://127.0.0.1:9000/ocpp"),
        ("wss://csms.example.com/steve/websocket/CentralSystemService", None),
        ("WSS://csms.example.com", None),
        ("ws://[::1]:9000/ocpp", None),
    ],
)
def test_csms_url_accepted(url: str, normalised: str | None) -> None:
    text = charge_point().replace("ws://127.0.0.1:9000/ocpp", url)
    assert parse(text).charge_points[0].csms_url == (normalised or url)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:9000/ocpp", "must start with ws:// or wss://"),
        ("127.0.0.1:9000", "must start with ws:// or wss://"),
        ("ws:///ocpp", "has no host"),
        ("ws://user:pw@host/ocpp", "must not hold credentials"),
        ("ws://host/ocpp?x=1", "query or fragment"),
        ("ws://host/ocpp//", "ends with more than one '/'"),
        ("ws://host:99999/ocpp", "not a valid URL"),
        ("'ws://host/oc pp'", "must not contain spaces"),
        ("5", "expected a ws:// or wss:// URL"),
    ],
)
def test_csms_url_problems(url: str, message: str) -> None:
    text = charge_point().replace("ws://127.0.0.1:9000/ocpp", url)
    assert message in the_problem(text, "charge_points[0].csms_url", "csms_url").message


def test_a_password_in_a_url_is_never_echoed_by_a_problem() -> None:
    """A broker's URL pasted with its credentials (primary, report_to, a device's HTTP source): the
    problem names the field and the fix, never the password."""
    text = charge_point(
        "report_to:",
        "  - {csms_url: 'wss://NL-1:S3cretBroker@broker.example/ocpp?x=1', id: NL-1}",
        connectors="      - {id: 1, charger: {type: goe, host: 'http://admin:S3cretDevice@10.0.0.9:99999'}}",
    ).replace("ws://127.0.0.1:9000/ocpp", "ws://CP-1:S3cretPrimary@127.0.0.1:9000/ocpp")
    found = problems(text)
    assert {p.path for p in found} >= {"charge_points[0].csms_url", "charge_points[0].report_to[0].csms_url"}
    shown = "\n".join(f"{p.path}: {p.message}" for p in found)
    assert "must not hold credentials" in shown and "***" in shown
    assert "S3cret" not in shown


@pytest.mark.parametrize(
    ("field", "limit"),
    [
        ("vendor", 20),
        ("model", 20),
        ("serial_number", 25),
        ("meter_type", 25),
        ("meter_serial_number", 25),
        ("firmware_version", 50),
    ],
)
def test_boot_notification_length_limits(field: str, limit: int) -> None:
    assert parse(charge_point(f"{field}: {'x' * limit}")).charge_points[0]
    text = charge_point(f"{field}: {'x' * (limit + 1)}")
    problem = the_problem(text, f"charge_points[0].{field}", f"{field}:")
    assert f"must be 1 to {limit} characters" in problem.message


def test_optional_boot_fields_may_be_null() -> None:
    assert parse(charge_point("serial_number: null")).charge_points[0].serial_number is None


def test_unknown_and_wrongly_typed_charge_point_fields() -> None:
    text = charge_point("vendr: X", "boot_on_reconnect: 'yes'", "password_format: base64")
    unknown = the_problem(text, "charge_points[0].vendr", "vendr").message
    assert "did you mean 'vendor'?" in unknown and "csms_url" in unknown
    boolean = the_problem(text, "charge_points[0].boot_on_reconnect", "boot_on_reconnect").message
    assert boolean == "expected true or false, got the string 'yes'"
    literal = the_problem(text, "charge_points[0].password_format", "password_format").message
    assert "one of 'plain', 'hex'" in literal


def test_required_fields_point_at_their_charge_point() -> None:
    text = "charge_points:\n  - id: CP-1\n"
    found = {p.path: p for p in problems(text)}
    assert found["charge_points[0].csms_url"].message == "required"
    assert found["charge_points[0].csms_url"].line == 2
    assert found["charge_points[0].connectors"].line == 2


@pytest.mark.parametrize(
    ("lines", "path", "message"),
    [
        (("password_format: hex",), "password_format", "hex needs a password"),
        (("password: abcd", "password_format: hex"), "password", "32 to 40 hex digits"),
        (("password: " + "A" * 33, "password_format: hex"), "password", "an even number"),
        (("password: " + "g" * 32, "password_format: hex"), "password", "32 to 40 hex digits"),
        (("password: ''",), "password", "must not be empty"),
    ],
)
def test_password_rules(lines: tuple[str, ...], path: str, message: str) -> None:
    text = charge_point(*lines)
    problem = the_problem(text, f"charge_points[0].{path}", f"{path}:")
    assert message in problem.message
    assert "abcd" not in problem.message  # the password is never echoed


def test_plain_passwords_are_taken_as_they_are() -> None:
    assert parse(charge_point("password: any text")).charge_points[0].password == "any text"


@pytest.mark.parametrize(
    ("reconnect", "field", "message"),
    [
        ("{initial_s: 0}", "initial_s", "must be above 0"),
        ("{initial_s: 10, max_s: 5}", "initial_s", "at most max_s"),
        ("{max_s: 3601}", "max_s", "at most 3600"),
        ("{initial_s: fast}", "initial_s", "expected a number, got the string 'fast'"),
        ("{initial_s: .nan}", "initial_s", "finite"),
        ("{max_s: true}", "max_s", "expected a number, got true"),
    ],
)
def test_reconnect_rules(reconnect: str, field: str, message: str) -> None:
    text = charge_point(f"reconnect: {reconnect}")
    assert message in the_problem(text, f"charge_points[0].reconnect.{field}", "reconnect:").message


# -- connectors and chargers -------------------------------------------------------------


def test_connectors_must_not_be_empty() -> None:
    text = charge_point(connectors="      []")
    text = text.replace("    connectors:\n      []", "    connectors: []")
    assert "non-empty list" in the_problem(text, "charge_points[0].connectors", "connectors").message


@pytest.mark.parametrize(
    ("ids", "bad_index", "expected"),
    [((1, 3), 1, 2), ((2,), 0, 1), ((1, 1), 1, 2), ((2, 1), 0, 1)],
)
def test_connector_ids_run_from_1_in_order(ids: tuple[int, ...], bad_index: int, expected: int) -> None:
    connectors = "\n".join(
        f"      - id: {n}  # c{i}\n        charger: {{type: simulated}}" for i, n in enumerate(ids)
    )
    text = charge_point(connectors=connectors)
    problem = the_problem(text, f"charge_points[0].connectors[{bad_index}].id", f"# c{bad_index}")
    assert f"expected {expected} here" in problem.message


def test_charger_type_is_required_and_known() -> None:
    connectors = (
        "      - id: 1\n        charger: {phases: 3}\n"
        "      - id: 2\n        charger: {type: simulatd}\n"
        "      - id: 3\n        charger: simulated\n"
    )
    text = charge_point(connectors=connectors)
    base = "charge_points[0].connectors"
    assert "needs a type" in the_problem(text, f"{base}[0].charger.type", "phases: 3").message
    unknown = the_problem(text, f"{base}[1].charger.type", "simulatd").message
    assert "unknown charger type 'simulatd'" in unknown and "did you mean 'simulated'?" in unknown
    assert "needs a type" in the_problem(text, f"{base}[2].charger", "charger: simulated").message


def test_driver_options_are_typed_and_validated_at_their_field() -> None:
    connectors = (
        "      - id: 1\n"
        "        charger:\n"
        "          type: simulated\n"
        "          phases: 2\n"
        "          max_current_a: sixteen\n"
        "          fixd_cable: true\n"
        "      - id: 2\n"
        "        charger:\n"
        "          type: simulated\n"
        "          phases: 1\n"
        "          voltage_v: 0\n"
    )
    text = charge_point(connectors=connectors)
    base = "charge_points[0].connectors"
    assert "expected a number" in the_problem(text, f"{base}[0].charger.max_current_a", "sixteen").message
    unknown = the_problem(text, f"{base}[0].charger.fixd_cable", "fixd_cable").message
    assert "did you mean 'fixed_cable'?" in unknown and "type, phases" in unknown
    # validate() runs on a block whose fields have the right types
    assert the_problem(text, f"{base}[1].charger.voltage_v", "voltage_v").message == "must be above 0"
    fixed = charge_point(connectors="      - id: 1\n        charger: {type: simulated, phases: 2}")
    assert the_problem(fixed, f"{base}[0].charger.phases", "phases: 2").message == "must be 1 or 3"


def test_driver_options_arrive_as_the_driver_dataclass() -> None:
    # `on` is a boolean in YAML 1.1, which PyYAML speaks
    connectors = (
        "      - id: 1\n        charger: {type: simulated, phases: 1, max_current_a: 32, fixed_cable: on}"
    )
    charger = parse(charge_point(connectors=connectors)).charge_points[0].connectors[0].charger
    assert charger == ChargerConfig(
        "simulated", SimulatedOptions(phases=1, max_current_a=32.0, fixed_cable=True)
    )
    assert isinstance(charger.options.max_current_a, float)


# -- the ocpp block ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("HeartbeatIntervall: 60", "unknown OCPP configuration key 'HeartbeatIntervall'; did you mean Hea"),
        ("NumberOfConnectors: 2", "NumberOfConnectors is computed by the bridge, remove it"),
        ("GetConfigurationMaxKeys: 5", "computed by the bridge, remove it"),
        ("MeterValuesSampledDataMaxLength: 5", "computed by the bridge, remove it"),
        ("AuthorizationKey: " + HEX_PASSWORD, "set `password:` instead"),
        ("BlinkRepeat: 3", "not supported by this version"),  # a key of a feature not built (light)
        ("CertificateStoreMaxLength: 3", "computed by the bridge, remove it"),  # the security extension's
        ("HeartbeatInterval: -1", "whole number from 0 to 86400"),
        ("HeartbeatInterval: 1.5", "whole number"),
        ("HeartbeatInterval: true", "not a boolean"),
        ("LocalPreAuthorize: 1", "true or false"),
        ("LocalPreAuthorize: null", "needs a single value"),
        ("MeterValuesSampledData: Voltage.L4", "'Voltage.L4' is not allowed"),
        ("MeterValuesSampledData: {a: 1}", "needs a single value"),
        ("MessageTimeout: 0", "from 1 to 600"),
    ],
)
def test_ocpp_block_rules(entry: str, message: str) -> None:
    key = entry.split(":")[0]
    text = charge_point("ocpp:", f"  {entry}")
    assert message in the_problem(text, f"charge_points[0].ocpp.{key}", entry).message


def test_ocpp_keys_are_normalised_and_may_not_repeat_in_another_case() -> None:
    ocpp = parse(charge_point("ocpp:", "  metervaluesampleinterval: '+10'")).charge_points[0].ocpp
    assert ocpp == {"MeterValueSampleInterval": "10"}
    text = charge_point("ocpp:", "  HeartbeatInterval: 60", "  heartbeatinterval: 70")
    assert "given twice" in the_problem(text, "charge_points[0].ocpp.heartbeatinterval", "70").message


def test_ocpp_lists_as_yaml_lists_or_strings_and_empty() -> None:
    text = charge_point(
        "ocpp:",
        "  MeterValuesSampledData: [voltage.l1, Current.Import]",
        "  MeterValuesAlignedData: 'Energy.Active.Import.Register, Power.Active.Import'",
        "  StopTxnSampledData:",
    )
    assert parse(text).charge_points[0].ocpp == {
        "MeterValuesSampledData": "Voltage.L1,Current.Import",
        "MeterValuesAlignedData": "Energy.Active.Import.Register,Power.Active.Import",
        "StopTxnSampledData": "",
    }


def test_ocpp_block_must_be_a_mapping() -> None:
    text = charge_point("ocpp: [HeartbeatInterval]")
    assert "expected a mapping of OCPP" in the_problem(text, "charge_points[0].ocpp", "ocpp:").message


def test_a_duplicate_id_is_found_even_in_a_charge_point_with_other_problems() -> None:
    text = charge_point() + (
        "  - id: CP-1\n    csms_url: http://wrong\n    connectors: [{id: 1, charger: {type: simulated}}]\n"
    )
    found = {p.path: p for p in problems(text)}
    assert "already used by charge_points[0]" in found["charge_points[1].id"].message
    assert found["charge_points[1].id"].line == 6
    assert "charge_points[1].csms_url" in found
