"""`ocpp-bridge check` on generic devices: every problem names its field, the fix, and its line."""

from __future__ import annotations

import pytest

from adapters.generic.options import NO_SOURCE, GenericChargerOptions
from bridge.config import ConfigError, parse_config
from bridge.config.schema import Problem

HEAD = """\
charge_points:
  - id: CP-1
    csms_url: ws://127.0.0.1:9000/ocpp
    connectors:
      - id: 1
        charger:
          type: generic
"""
BASE = "charge_points[0].connectors[0].charger"
W = "\nwrite: {enable: {http: {url: 'http://h/'}}}"  # the one write every charger needs
R = "read:\n  status: {const: A}\n"

GOOD = """\
          read:
            status: {http: {url: "http://192.0.2.7/api/status?filter=car"}, jmespath: car,
                     map: {"1": A, "2": C}}
            energy_wh: {modbus: {url: "tcp://192.0.2.8:502", unit: 1, register: 0x0156, function: input,
                                 type: float32}, unit: kWh}
            currents:
              - {const: 6}
          write:
            enable: {http: {url: "http://192.0.2.7/api/set?frc={{ 2 if value else 1 }}"}}
            current: {mqtt: {broker: "mqtt://192.0.2.9", topic: "box/amp/set"}, unit: mA}
"""


def problems(text: str) -> list[Problem]:
    try:
        parse_config(text, "test.yaml")
    except ConfigError as error:
        return error.problems
    return []


def line_of(text: str, needle: str) -> int:
    (line,) = [n for n, t in enumerate(text.splitlines(), start=1) if needle in t]
    return line


def the_problem(text: str, path: str, needle: str) -> str:
    """The one problem at `path`, on the line holding `needle`; its message."""
    found = [p for p in problems(text) if p.path == f"{BASE}.{path}"]
    assert len(found) == 1, problems(text)
    assert found[0].line == line_of(text, needle), found[0]
    return found[0].message


def test_a_good_block_builds_the_options() -> None:
    config = parse_config(HEAD + GOOD, "test.yaml")
    options = config.charge_points[0].connectors[0].charger.options
    assert isinstance(options, GenericChargerOptions)
    assert (
        options.read.status.http.url.endswith("filter=car")
        and options.read.energy_wh.modbus.register == 0x156
    )
    assert options.read.plugged is NO_SOURCE and len(options.read.currents) == 1


@pytest.mark.parametrize(
    ("block", "path", "needle", "words"),
    [
        # exactly one source kind
        ("read:\n  status: {const: A, http: {url: 'http://h/'}}" + W,
         "read.status", "status:", "exactly one of http, mqtt, modbus or const (got http, const)"),
        ("read:\n  status: {jmespath: car}" + W,
         "read.status", "status:", "(got none)"),
        # a status or plugged source
        ("read:\n  power_w: {const: 1}" + W,
         "read", "power_w:", "needs read.status or read.plugged"),  # a mapping's line: its first key
        # report only (no write.enable): a limit it could not back by switching off is refused
        (R + "write:\n  current: {http: {url: 'http://h/'}}",
         "write.current", "current:", "needs write.enable: without it the device is report only"),
        # lists of 1 or 3
        (R + "  currents: [{const: 1}, {const: 2}]" + W,
         "read.currents", "currents:", "exactly 1 or 3 sources"),
        # a bad jmespath, regex, map, unit, template
        ("read:\n  status: {const: A, jmespath: 'car['}" + W,
         "read.status.jmespath", "status:", "'car[' is not a JMESPath expression"),
        ("read:\n  status: {const: A, regex: 'st(atus'}" + W,
         "read.status.regex", "status:", "'st(atus' is not a regular expression"),
        (R + "  energy_wh: {const: 1, unit: kwh}" + W,
         "read.energy_wh.unit", "energy_wh:", "unknown unit 'kwh'; one of Wh, kWh, MWh"),
        (R + "write:\n  enable: {http: {url: 'http://h/?frc={{ value.__class__ }}'}}",
         "write.enable.http.url", "enable:", "attribute access is not allowed"),
        (R + "write:\n  enable: {mqtt: {broker: 'mqtt://h', topic: t, payload: '{{ open(1) }}'}}",
         "write.enable.mqtt.payload", "enable:", "only the calls int, float"),
        ("read:\n  status: {http: {url: 'http://h/?a={{ value }}'}}" + W,
         "read.status.http.url", "status:", "a read has no value"),
        # transports' own checks, credentials
        ("read:\n  status: {http: {url: 'http://u:secret@h/'}}" + W,
         "read.status.http.url", "status:", "use auth: {user, password}"),
        ("read:\n  status: {modbus: {url: 'tcp://h', register: 70000}}" + W,
         "read.status.modbus.register", "status:", "0 to 65535"),
        ("read:\n  status: {modbus: {url: 'tcp://h', register: 1, function: coil}}" + W,
         "read.status.modbus.type", "status:", "a coil holds one bit: type: bool"),
        (R + "write:\n  enable: {modbus: {url: 'tcp://h', register: 1, function: input}}",
         "write.enable.modbus.function", "enable:", "holding registers or a coil"),
        ("read:\n  status: {mqtt: {broker: 'http://h', topic: t}}" + W,
         "read.status.mqtt.broker", "status:", "expected mqtt://"),
        (R + "write:\n  enable: {const: 1}",
         "write.enable.const", "enable:", "a write needs a device"),
        (R + "write:\n  enable: {http: {url: 'http://h/'}, jmespath: a}",
         "write.enable.jmespath", "enable:", "jmespath is for reads"),
    ],
)  # fmt: skip
def test_each_problem_names_the_field_and_the_fix_at_its_line(
    block: str, path: str, needle: str, words: str
) -> None:
    text = HEAD + "".join(f"          {line}\n" for line in block.splitlines())
    assert words in the_problem(text, path, needle)


def test_a_misspelt_key_of_a_source_is_named_with_the_right_one() -> None:
    text = HEAD + GOOD.replace("jmespath: car", "jmespth: car")
    message = the_problem(text, "read.status.jmespth", "jmespth")
    assert "did you mean 'jmespath'?" in message


def test_a_template_is_checked_by_what_it_renders_and_its_errors_name_the_param() -> None:
    meter = (
        "        meter:\n          type: generic\n          template: sdm630\n"
        "          params: {url: 'tcp://192.0.2.8:502', unit: 300}\n"
    )
    text = HEAD + GOOD + meter
    found = [p for p in problems(text) if ".meter." in p.path]
    # a rendered value has no line of its own: the meter block's is given
    assert found and all(p.line == line_of(text, "meter:") + 1 for p in found), found
    assert "a Modbus unit id is 1 to 255 on this bus" in found[0].message
    missing = HEAD + GOOD + meter.replace("url: 'tcp://192.0.2.8:502', ", "")
    (problem,) = [p for p in problems(missing) if ".meter." in p.path]
    assert (
        problem.path.endswith("meter.params") and "template 'sdm630' needs the param 'url'" in problem.message
    )
    assert problem.line == line_of(missing, "params:")
    wrong_kind = HEAD.replace("type: generic", "type: generic\n          template: sdm630")
    (problem,) = problems(wrong_kind)
    assert "describes a meter, not a charger" in problem.message and problem.line == line_of(
        wrong_kind, "template:"
    )


def test_a_meter_block_takes_reads_only() -> None:
    meter = "        meter:\n          type: generic\n          read: {power_w: {const: 1}}\n"
    meter += "          write: {}\n"
    (problem,) = problems(HEAD + GOOD + meter)
    assert problem.path.endswith("meter.write") and "unknown key 'write'" in problem.message


def test_charging_without_a_card_is_refused_at_a_switch_that_cannot_see_the_plug() -> None:
    switch = (
        "          read: {enabled: {const: true}}\n          write: {enable: {http: {url: 'http://h/'}}}\n"
    )
    text = HEAD.replace("    connectors:", "    free_vend_id_tag: FREE\n    connectors:") + switch
    (problem,) = problems(text)
    assert problem.path == "charge_points[0].free_vend_id_tag" and "cannot sense the plug" in problem.message
    assert (
        problems(HEAD.replace("    connectors:", "    free_vend_id_tag: FREE\n    connectors:") + GOOD) == []
    )
