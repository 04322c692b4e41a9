"""The configuration as the daemon gets it: frozen dataclasses, and the errors the loader raises.

Defaults live here; the checks a type cannot express live in the rules_*.py modules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal


@dataclass(frozen=True)
class ApiConfig:
    listen: tuple[str, int] | None = ("127.0.0.1", 8080)  # None: no local HTTP API
    token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class LogsConfig:
    """The bridge's own log files in state_dir/logs (for diagnostics archives: the service's dynamic
    user cannot read the journal). Each of the two files keeps at most max_bytes x (backups + 1)."""

    max_bytes: int = 5 * 1024 * 1024
    backups: int = 4
    frames: bool = True  # keep the OCPP frames (secrets masked) in frames.log as well


@dataclass(frozen=True)
class ReconnectConfig:
    initial_s: float = 1.0  # first wait after a lost connection; the waits grow up to max_s
    max_s: float = 60.0


@dataclass(frozen=True)
class ChargerConfig:
    type: str
    options: Any  # an instance of the driver's Options dataclass


@dataclass(frozen=True)
class MeterConfig:
    type: str
    options: Any  # an instance of the meter driver's Options dataclass


@dataclass(frozen=True)
class CardReaderConfig:
    type: str
    options: Any  # an instance of the card reader's Options dataclass


@dataclass(frozen=True)
class ConnectorConfig:
    id: int
    charger: ChargerConfig
    meter: MeterConfig | None = None  # a meter of record: session energy from it, control through the charger
    # How often the devices are read; None (not set): every second, or, for a charger
    # that reports its changes (the simulated one), only when it does (bridge/runtime/coordinator.py).
    poll_interval_s: float | None = None
    faulted_after_failed_polls: int = 3  # consecutive failed reads before the connector is Faulted
    nominal_voltage_v: float = 230.0  # phase to neutral: converts W limits to A (smart charging)
    # Charging without a card: the idTag a plug-in presents (None: the charge point's; "": none here).
    free_vend_id_tag: str | None = None
    # A card reader beside the charger (an RDM6300, a USB keyboard-wedge reader): its taps are idTags.
    card_reader: CardReaderConfig | None = None


@dataclass(frozen=True)
class FirmwareConfig:
    """What UpdateFirmware installs (docs/firmware-and-diagnostics.md). `none`: nothing; the download
    is still made and the update ends InstallationFailed (D5)."""

    install: Literal["none", "command", "device", "bridge"] = "none"
    command: tuple[str, ...] = ()  # install: command; the image's path is appended as the last argument
    timeout_s: float = 600.0  # the command is killed after this long: InstallationFailed
    boot_timeout_s: float = 300.0  # install: bridge; the new version must boot to the central system
    # install: bridge over ws:// lets whoever controls the connection run code here; check refuses
    # it unless this says the risk is accepted.
    accept_remote_code_risk: bool = False


@dataclass(frozen=True)
class DiagnosticsConfig:
    """How GetDiagnostics uploads (D6): to an http(s) location by PUT of the file under its name,
    unless the location starts with one of `post_to`: then a multipart form POST to the URL itself."""

    post_to: tuple[str, ...] = ()
    post_field: str = "file"  # the form field that carries the file


@dataclass(frozen=True)
class TlsConfig:
    """The `tls:` block of a charge point (docs/security.md, "TLS settings"); the names are a contract.
    Used for wss:// (security profiles 2 and 3); allowed with ws:// for a raise to profile 2 later."""

    ca_file: Path | None = None  # trust anchors (PEM); None: the system CA store
    verify_server: bool = True  # false only with a loud warning in the log and the status
    check_hostname: bool = True  # false only with a loud warning
    client_cert: Path | None = None  # profile 3: PEM, may hold the chain after the certificate
    client_key: Path | None = None  # its private key, PEM, 0600 or stricter
    min_version: Literal["1.2", "1.3"] = "1.2"


@dataclass(frozen=True)
class ReportTarget:
    """One `report_to:` entry: a reporting-only central system (docs/reporting.md). The names are a
    contract. `id`: the identity it gave (None: the charge point's own id)."""

    csms_url: str  # without a trailing slash; the identity is appended, as for the primary
    id: str | None = None
    password: str | None = field(default=None, repr=False)
    password_format: Literal["plain", "hex"] = "plain"
    tls: TlsConfig | None = None

    def identity(self, cp_id: str) -> str:
        return self.id or cp_id


@dataclass(frozen=True, kw_only=True)
class ChargePointConfig:
    id: str
    # Without a trailing slash; the id is appended as the last path segment. "" (left out): no primary
    # central system, reporting only (`report_to:` required; authorization decided locally).
    csms_url: str = ""
    vendor: str = "ocpp-bridge"
    model: str = "ocpp-bridge"
    serial_number: str | None = None
    firmware_version: str | None = None
    meter_type: str | None = None
    meter_serial_number: str | None = None
    password: str | None = field(default=None, repr=False)
    password_format: Literal["plain", "hex"] = "plain"
    boot_on_reconnect: bool = False
    # SecurityEventNotification: "auto" sends them with SecurityProfile 1 or higher in force (a central
    # system of the security extension), "on" always, "off" never; the security log has them all.
    security_events: Literal["auto", "on", "off"] = "auto"
    reconnect: ReconnectConfig = field(default_factory=ReconnectConfig)
    max_queued_messages: int = 50_000  # outbox bound; beyond it the oldest MeterValues are dropped
    # The largest frame taken from the central system (websockets closes the link with 1009 above
    # it). 4 MiB: a SendLocalList of 10,000 entries (~1.3 MB) fits three times over.
    max_frame_bytes: int = 4 * 1024 * 1024
    ocpp: Mapping[str, str] = field(default_factory=dict)  # canonical key names, wire values
    firmware: FirmwareConfig = field(default_factory=FirmwareConfig)
    diagnostics: DiagnosticsConfig = field(default_factory=DiagnosticsConfig)
    tls: TlsConfig | None = None  # None: no `tls:` block (wss:// then verifies with the system CA store)
    free_vend_id_tag: str | None = None  # charging without a card, for every connector that sets none
    report_to: tuple[ReportTarget, ...] = ()  # reporting-only central systems (bridge/reporting)
    connectors: tuple[ConnectorConfig, ...]

    @property
    def has_primary(self) -> bool:
        """A primary central system controls it (else it only reports, docs/reporting.md)."""
        return bool(self.csms_url)

    def free_vend_tag(self, connector_id: int) -> str | None:
        """The idTag a plug-in at the connector presents when no tag waits (its own setting wins)."""
        own = next((c.free_vend_id_tag for c in self.connectors if c.id == connector_id), None)
        tag = self.free_vend_id_tag if own is None else own
        return tag or None


MIN_FRAME_BYTES = 64 * 1024  # a 96-period charging profile is ~5 KB; below this real frames would not fit
MAX_FRAME_BYTES = 64 * 1024 * 1024  # a Pi keeps up to 16 frames of this size queued


@dataclass(frozen=True)
class MqttStateConfig:
    """The `mqtt:` block: state published to an MQTT broker, with Home Assistant discovery."""

    broker: str = field(repr=False)  # mqtt://[user:password@]host[:port] or mqtts://...; holds the password
    topic_prefix: str = "ocpp-bridge"
    discovery: bool = True  # Home Assistant MQTT discovery configs under discovery_prefix
    discovery_prefix: str = "homeassistant"
    interval_s: float = 60.0  # everything is published again this often (changes go out within a second)
    retain: bool = True  # state topics retained (availability and discovery configs always are)


@dataclass(frozen=True)
class Config:
    state_dir: Path
    api: ApiConfig
    charge_points: tuple[ChargePointConfig, ...]
    source: str  # the file it came from, for messages
    mqtt: MqttStateConfig | None = None  # None: no MQTT state publishing
    logs: LogsConfig = LogsConfig()


@dataclass(frozen=True)
class Problem:
    path: str  # e.g. "charge_points[0].connectors[0].charger.phases"; "" for the whole file
    line: int | None  # 1-based
    message: str


class ConfigError(Exception):
    """Every problem found in one configuration, one per line when printed."""

    def __init__(self, problems: list[Problem], source: str = "<string>") -> None:
        self.problems = problems
        self.source = source
        super().__init__("\n".join(self._render(p) for p in problems))

    def _render(self, problem: Problem) -> str:
        where = self.source if problem.line is None else f"{self.source}:{problem.line}"
        path = f"{problem.path}: " if problem.path else ""
        return f"{where}: {path}{problem.message}"
