"""The rules of a charge point's `connectors:` and of each connector's `charger:`, `meter:` and
`card_reader:` blocks.

A device block is checked against its driver's own `Options` dataclass and `validate()`.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any

from adapters.base import ID_TAG_MAX
from adapters.registry import (
    CARD_READER_TYPES,
    CHARGER_TYPES,
    METER_TYPES,
    UnknownDriver,
    card_reader_class,
    charger_class,
    meter_class,
)
from bridge.config.checker import _BAD, _Checker, _got, _optional, _text
from bridge.config.schema import (
    CardReaderConfig,
    ChargePointConfig,
    ChargerConfig,
    ConnectorConfig,
    MeterConfig,
)
from bridge.config.yaml_lines import _join


def _connectors(ck: _Checker, raw: Any, path: str) -> Any:
    if not isinstance(raw, list) or not raw:
        ck.add(path, f"expected a non-empty list of connectors, got {_got(raw)}")
        return _BAD
    connectors = []
    for index, item in enumerate(raw):
        sub = f"{path}[{index}]"
        connector = ck.build(
            ConnectorConfig,
            item,
            sub,
            {
                "charger": lambda v, p: _driver(ck, v, p, "charger"),
                "meter": lambda v, p: None if v is None else _driver(ck, v, p, "meter"),
                "card_reader": lambda v, p: None if v is None else _driver(ck, v, p, "card_reader"),
                # "" leaves the charge point's tag out at this connector.
                "free_vend_id_tag": _optional(_text(ck, lambda v: id_tag_problem(v) if v else None)),
            },
        )
        if connector is not _BAD:
            if connector.poll_interval_s is not None and not 0.1 <= connector.poll_interval_s <= 3600:
                ck.add(_join(sub, "poll_interval_s"), "must be from 0.1 to 3600 seconds")
                connector = _BAD
            elif connector.faulted_after_failed_polls < 1:
                ck.add(_join(sub, "faulted_after_failed_polls"), "must be 1 or more")
                connector = _BAD
            elif not 100 <= connector.nominal_voltage_v <= 480:
                ck.add(
                    _join(sub, "nominal_voltage_v"), "must be from 100 to 480 V (phase to neutral, e.g. 230)"
                )
                connector = _BAD
        given = item.get("id") if isinstance(item, dict) else None
        if isinstance(given, int) and not isinstance(given, bool) and given != index + 1:
            ck.add(_join(sub, "id"), f"connector ids run 1, 2, 3, ... in order: expected {index + 1} here")
            connector = _BAD
        connectors.append(connector)
    return _BAD if _BAD in connectors else tuple(connectors)


def _driver(ck: _Checker, raw: Any, path: str, kind: str) -> Any:
    """A `charger:`, `meter:` or `card_reader:` block: its type, then its options checked against the
    driver's own."""
    table, load, result = _KINDS[kind]
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
        known = ", ".join(sorted(table))
        ck.add(_join(path, "type") if isinstance(raw, dict) else path, f"needs a type (one of: {known})")
        return _BAD
    type_name = raw["type"]
    if "template" in raw:  # a generic device from a template: the block it stands for is checked
        raw = _from_template(ck, raw, path, kind)
        if raw is _BAD:
            return _BAD
    try:
        options_cls = load(type_name).Options
    except UnknownDriver as error:
        hint = difflib.get_close_matches(type_name, list(table), n=1)
        ck.add(_join(path, "type"), str(error) + (f"; did you mean {hint[0]!r}?" if hint else ""))
        return _BAD
    except ImportError as error:  # a driver whose optional dependency is not installed
        ck.add(_join(path, "type"), f"the {type_name} driver cannot be loaded: {error}")
        return _BAD
    has_type = any(f.name == "type" for f in dataclasses.fields(options_cls))
    options = ck.build(options_cls, raw, path, also=() if has_type else ("type",))
    if options is _BAD:
        return _BAD
    validate = getattr(options, "validate", None)
    problems = validate() if callable(validate) else []
    for field_name, problem in problems:
        ck.add(_join(path, field_name), problem)
    return _BAD if problems else result(type_name, options)


_KINDS: dict[str, tuple[dict[str, str], Any, Any]] = {
    "charger": (CHARGER_TYPES, charger_class, ChargerConfig),
    "meter": (METER_TYPES, meter_class, MeterConfig),
    "card_reader": (CARD_READER_TYPES, card_reader_class, CardReaderConfig),
}


def id_tag_problem(id_tag: str) -> str | None:
    """What is wrong with a configured idTag, or None."""
    if not 0 < len(id_tag) <= ID_TAG_MAX:
        return f"an idTag is 1 to {ID_TAG_MAX} characters (OCPP CiString20), not {len(id_tag)}"
    if id_tag != id_tag.strip() or not id_tag.isprintable():
        return "an idTag must not start or end with a space or hold control characters"
    return None


def free_vend_problems(cp: ChargePointConfig) -> list[tuple[str, str]]:
    """Charging without a card starts at plug-in: refused for a device that cannot sense the plug
    (a relay wallbox), where there is no plug-in to start at (docs/protocol.md, "Charging without a
    card"); and required of a report-only device, which takes no remote start (`report_only_problems`).
    (field, problem) for the field that set the tag, its path within the charge point."""
    problems = report_only_problems(cp)
    for index, connector in enumerate(cp.connectors):
        if cp.free_vend_tag(connector.id) is None or _senses_plug(connector.charger):
            continue
        own = connector.free_vend_id_tag is not None
        where = f"connectors[{index}].free_vend_id_tag" if own else "free_vend_id_tag"
        fix = "remove it" if own else f'set free_vend_id_tag: "" on connector {connector.id}'
        problems.append((where, (
            f"connector {connector.id}'s {connector.charger.type} relay cannot sense the plug, so there is no"
            f" plug-in to start a session at; {fix} and start its sessions from the central system"
            " (RemoteStartTransaction)"
        )))  # fmt: skip
    return problems


def report_only_problems(cp: ChargePointConfig) -> list[tuple[str, str]]:
    """A report-only connector (its device decides when energy flows) starts its transactions only at
    a plug-in with the free-vend tag or at a tag the device or a card reader presents: with neither it
    could never start one (docs/protocol.md, "Report-only chargers"). Whether the device is report only
    and reads tags is asked of the driver, as the run asks it (`capabilities`, read before any start),
    so any driver that declares `can_switch_energy` False is checked, not only the generic device."""
    from adapters.registry import new_charger  # only for a connector without a tag source
    from adapters.transports.pool import Transports

    problems = []
    for index, connector in enumerate(cp.connectors):
        if connector.card_reader is not None or cp.free_vend_tag(connector.id) is not None:
            continue
        # Built as the daemon builds it (bridge/devices.py): a driver opens nothing until its start.
        charger = connector.charger
        capabilities = new_charger(charger.type, charger.options, Transports()).capabilities
        if capabilities.can_switch_energy or capabilities.has_rfid:
            continue
        problems.append((f"connectors[{index}].charger", (
            f"connector {connector.id}'s {charger.type} charger is report only (the device decides when"
            " energy flows) and takes no RemoteStartTransaction, so nothing could start a transaction;"
            " set free_vend_id_tag (a car connecting starts one), give it a card_reader: (or, a generic"
            " device, a read.id_tag source), or give a generic device write.enable"
        )))  # fmt: skip
    return problems


def _senses_plug(charger: ChargerConfig) -> bool:
    from adapters.chargers.relay import RelayOptions  # only when a free tag is set

    says = getattr(charger.options, "senses_plug", None)  # a generic device: from its sources
    return not isinstance(charger.options, RelayOptions) if says is None else bool(says)


def _from_template(ck: _Checker, raw: dict[str, Any], path: str, kind: str) -> Any:
    """A block with `template:` and `params:` as the generic block the template renders
    (adapters/generic/templates.py); _BAD with the problem at its key otherwise."""
    from adapters.generic.templates import TemplateError, expand  # only when a template is named

    if raw["type"] != "generic":
        ck.add(_join(path, "template"), "templates describe generic devices: set type: generic")
        return _BAD
    try:
        return expand(raw, kind)
    except TemplateError as error:
        ck.add(_join(path, error.field), str(error))
        return _BAD
