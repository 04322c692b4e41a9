"""The entry points: a configuration from text, from a file, or the demo's; every problem with its line."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import yaml

from bridge import collector
from bridge.config.checker import _Checker
from bridge.config.rules_top_level import _config
from bridge.config.schema import Config, ConfigError, Problem
from bridge.config.yaml_lines import _line, _MarkingLoader


def parse_config(text: str, source: str = "<string>", env: Mapping[str, str] | None = None) -> Config:
    """The configuration in `text`; ConfigError with every problem otherwise."""
    loader: _MarkingLoader | None = None
    try:
        loader = _MarkingLoader(text)
        data = loader.load_marked()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        what = error.problem or error.context or "invalid YAML"
        line = None if mark is None else mark.line + 1
        column = "" if mark is None else f" (column {mark.column + 1})"
        raise ConfigError([Problem("", line, f"YAML syntax error: {what}{column}")], source) from None
    except yaml.YAMLError as error:
        raise ConfigError([Problem("", None, f"YAML error: {error}")], source) from None
    finally:
        if loader is not None:
            loader.dispose()
    ck = _Checker()
    config = _config(data, ck, source, os.environ if env is None else env)
    if config is None or ck.problems or loader.duplicates:
        key_lines, value_lines = loader.lines()
        problems = loader.duplicates + [
            Problem(path, _line(path, at_key, key_lines, value_lines), message)
            for path, message, at_key in ck.problems
        ]
        problems.sort(key=lambda p: (p.line is None, p.line or 0))
        raise ConfigError(problems, source)
    return config


def load_config(path: str | Path) -> Config:
    """The configuration in the file at `path`; ConfigError with every problem otherwise.

    A file that cannot be read raises OSError as it is (the caller words "cannot read").
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError([Problem("", None, f"not UTF-8 text: {error}")], source) from None
    with collector.paused():  # its tree is garbage only once it is all built (bridge/collector.py)
        return parse_config(text, source)


def default_config(csms_url: str, state_dir: str | Path) -> Config:
    """The demo's configuration: charge point DEMO-1 with one simulated connector."""
    connector = {"id": 1, "charger": {"type": "simulated"}}
    data = {
        "state_dir": str(state_dir),
        "charge_points": [{"id": "DEMO-1", "csms_url": csms_url, "connectors": [connector]}],
    }
    ck = _Checker()
    config = _config(data, ck, "<demo>", {})
    if config is None or ck.problems:
        raise ConfigError([Problem(path, None, message) for path, message, _ in ck.problems], "<demo>")
    return config
