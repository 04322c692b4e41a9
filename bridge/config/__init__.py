"""The configuration file: YAML in, frozen and validated dataclasses out.

Theory
------
A configuration error should be fixed in one round: the loader never stops at the first problem but
collects every one as a `Problem(path, line, message)` and raises them together in a `ConfigError`,
rendered one per line as `<file>:<line>: <path>: <message>`.

Line numbers come from the YAML node tree. `_MarkingLoader` composes the document and constructs plain
Python objects from it; where every mapping key and every value starts, by path (`charge_points[0]
.connectors[1].charger.phases`), is recorded by a walk of the same nodes when there are problems to
place (at once when a key may be given twice, itself a problem). Validation works on the plain objects
and names paths; a path is turned into a line at the end, falling back to the nearest enclosing entry
for things that are missing.

One small validator (`_Checker`) turns mappings into dataclasses by their type hints: unknown keys are
errors (with the allowed ones and the closest match), wrong types name the expected type, missing
fields are named. It builds our own dataclasses and every driver's `Options`, so a driver declares
its configuration block as a dataclass and gets the same messages for free; its `validate()` adds
the checks a type cannot express. (No pydantic: it is a compiled dependency without armv6 wheels.)

The `ocpp:` block holds initial values of standard configuration keys; `bridge.core.config_keys`
knows them. Values the central system sets later win over the file after a restart (the store keeps
them); the file says where a charge point starts.

Where things are
----------------
`schema.py` the dataclasses and `ConfigError`; `yaml_lines.py` the loader that keeps line numbers;
`checker.py` the generic validator; `rules_top_level.py`, `rules_charge_point.py`, `rules_devices.py`,
`rules_firmware.py` and `rules_tls.py` the checks of each part; `load.py` the entry points. Only the
names below are public: import them from `bridge.config`.
"""

from bridge.config.load import default_config, load_config, parse_config
from bridge.config.schema import (
    MAX_FRAME_BYTES,
    MIN_FRAME_BYTES,
    ApiConfig,
    ChargePointConfig,
    ChargerConfig,
    Config,
    ConfigError,
    ConnectorConfig,
    DiagnosticsConfig,
    FirmwareConfig,
    MeterConfig,
    MqttStateConfig,
    Problem,
    ReconnectConfig,
    ReportTarget,
    TlsConfig,
)

__all__ = [
    "MAX_FRAME_BYTES",
    "MIN_FRAME_BYTES",
    "ApiConfig",
    "ChargePointConfig",
    "ChargerConfig",
    "Config",
    "ConfigError",
    "ConnectorConfig",
    "DiagnosticsConfig",
    "FirmwareConfig",
    "MeterConfig",
    "MqttStateConfig",
    "Problem",
    "ReconnectConfig",
    "ReportTarget",
    "TlsConfig",
    "default_config",
    "load_config",
    "parse_config",
]
