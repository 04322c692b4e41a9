"""The options of a charger that speaks OCPP 1.6J itself (`charger: {type: ocpp, ...}`) and their
checks (pure); the driver is ocpp_device.py, the charger's side of the link ocpp_device_link.py."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from adapters.chargers.ocpp_device_support import SWITCH_MODES
from adapters.transports.ocpp_server import parse_listen
from adapters.transports.tls_server import ServerTls, check_files, endpoint_disagreements, path_disagreements


@dataclass(frozen=True)
class OcppTlsOptions:
    """The charger's `tls:` block: the endpoint is wss:// (docs/devices/ocpp.md, "wss://")."""

    cert_file: Path | None = None  # the endpoint's certificate, then the chain above it (PEM)
    key_file: Path | None = None  # its private key (PEM, unencrypted, chmod 600)
    client_ca_file: Path | None = None  # profile 3: the CA the chargers' client certificates chain to
    cpo_name: str | None = None  # profile 3: the O a client certificate must carry

    @property
    def setup(self) -> ServerTls | None:
        """What the endpoint is built from; None without a block (plain ws://)."""
        if self.cert_file is None or self.key_file is None:
            return None
        return ServerTls(self.cert_file, self.key_file, self.client_ca_file, self.cpo_name)

    def problems(self) -> list[tuple[str, str]]:
        """(field, problem) pairs; reads the files (a context is built from them)."""
        given = (self.cert_file, self.key_file, self.client_ca_file, self.cpo_name)
        if all(v is None for v in given):
            return []
        if self.cert_file is None:
            return [("tls.cert_file", "required in a tls block: the endpoint's certificate chain (PEM)")]
        if self.key_file is None:
            return [("tls.key_file", "required in a tls block: the private key of cert_file (PEM)")]
        if self.cpo_name is not None and self.client_ca_file is None:
            return [("tls.cpo_name", "needs tls.client_ca_file (profile 3, client certificates)")]
        setup = self.setup
        assert setup is not None
        return check_files(setup)


@dataclass(frozen=True)
class OcppDeviceOptions:
    """The `charger: {type: ocpp, ...}` block."""

    type: str = "ocpp"
    listen: str = "0.0.0.0:9100"  # the bridge's local endpoint, shared by every OCPP charger naming it
    path: str = "ocpp"  # the charger connects to ws://<listen>/<path>/<identity>
    identity: str = ""  # the charge point id the charger is configured with
    password: str = ""  # HTTP Basic password the charger sends (its AuthorizationKey)
    tls: OcppTlsOptions = field(default_factory=OcppTlsOptions)  # wss://: profile 2, or 3 with client_ca_file
    connector_id: int = 1  # the charger's own connector this connector of the bridge drives
    id_tag: str = "ocpp-bridge"  # the idTag of a RemoteStartTransaction when no card was tapped
    heartbeat_interval_s: int = 300  # BootNotification's interval
    card_wait_s: float = 10.0  # how long a charger's Authorize waits for the bridge's decision
    call_timeout_s: float = 10.0  # how long the bridge waits for the charger's answer to a call
    phases: int = 3
    min_current_a: float = 6.0
    max_current_a: float = 16.0
    current_step_a: float = 0.1  # chargers take A with one decimal
    fixed_cable: bool = False  # a tethered cable: nothing to unlock
    rfid: bool = True  # the charger has a card reader (its Authorize)
    energy_switch: str = "auto"  # auto (probe what it honours) | remote (Remote Start/Stop) | profile

    def validate(self) -> list[tuple[str, str]]:
        """(field, problem) pairs; empty when the options make sense."""
        problems: list[tuple[str, str]] = []
        try:
            parse_listen(self.listen)
        except ValueError as exc:
            problems.append(("listen", str(exc)))
        if not self.identity.strip() or "/" in self.identity or len(self.identity) > 48:
            problems.append(("identity", "the charger's charge point id, 1 to 48 characters, no '/'"))
        problems += self.tls.problems()
        if not self.password and self.tls.client_ca_file is None:
            problems.append(
                (
                    "password",
                    "the charger's HTTP Basic password (its AuthorizationKey); only a charger with a "
                    "client certificate (tls.client_ca_file, security profile 3) may go without one",
                )
            )
        if not 1 <= self.connector_id <= 32:
            problems.append(("connector_id", "must be the charger's connector number, 1 to 32"))
        if not self.id_tag or len(self.id_tag) > 20:
            problems.append(("id_tag", "must be 1 to 20 characters (OCPP's idTag)"))
        if not 10 <= self.heartbeat_interval_s <= 86400:
            problems.append(("heartbeat_interval_s", "must be 10 to 86400 seconds"))
        if not 0.5 <= self.card_wait_s <= 25:
            problems.append(("card_wait_s", "must be 0.5 to 25 s (chargers give up after ~30 s)"))
        if not 1 <= self.call_timeout_s <= 60:
            problems.append(("call_timeout_s", "must be 1 to 60 s"))
        if self.phases not in (1, 3):
            problems.append(("phases", "must be 1 or 3"))
        if not 0 < self.min_current_a <= self.max_current_a <= 80:
            problems.append(("min_current_a", "need 0 < min_current_a <= max_current_a <= 80 A"))
        if self.energy_switch not in SWITCH_MODES:
            problems.append(("energy_switch", f"must be one of {', '.join(SWITCH_MODES)}"))
        if not 0.01 <= self.current_step_a <= 1:
            problems.append(("current_step_a", "must be 0.01 to 1 A"))
        return problems


# The options of the charger's one connection: every connector of the bridge naming the same identity
# on the same listen shares it (ocpp_device_hub.py), so they must agree on these.
CONNECTION_FIELDS = ("password", "tls", "path", "heartbeat_interval_s", "call_timeout_s", "card_wait_s")


def differences(a: OcppDeviceOptions, b: OcppDeviceOptions) -> list[str]:
    """The connection's options (CONNECTION_FIELDS) on which two connectors of one charger differ."""
    return [name for name in CONNECTION_FIELDS if getattr(a, name) != getattr(b, name)]


def charger_disagreements(chargers: Sequence[tuple[str, OcppDeviceOptions]]) -> list[tuple[str, str]]:
    """For `check`: (path, problem) for each `type: ocpp` charger, given as (its path, options), whose
    listen's one server another charger set up otherwise (its tls block, its URL path:
    tls_server.endpoint_disagreements and path_disagreements), or that names the identity and listen
    of an earlier one with other connection options or the same connector_id."""
    problems = endpoint_disagreements((path, o.listen, o.tls.setup) for path, o in chargers)
    problems += path_disagreements((path, o.listen, o.path) for path, o in chargers)
    first: dict[tuple[str, str], tuple[str, OcppDeviceOptions]] = {}
    driven: dict[tuple[str, str, int], str] = {}
    for path, options in chargers:
        key = (options.listen, options.identity)
        earlier_path, earlier = first.setdefault(key, (path, options))
        charger = f"the charger {options.identity!r} on {options.listen}"
        for name in differences(options, earlier):
            # tls and path: said once per listen, above; never the values (a password must not appear)
            if name not in ("tls", "path"):
                problems.append(
                    (
                        f"{path}.{name}",
                        f"{earlier_path} names {charger} with another {name}; connectors of one charger "
                        f"share its connection: give them the same {name}",
                    )
                )
        owner = driven.setdefault((*key, options.connector_id), path)
        if owner != path:
            problems.append(
                (
                    f"{path}.connector_id",
                    f"connector {options.connector_id} of {charger} is already driven by {owner}: give "
                    f"each connector of the bridge another connector_id of the charger",
                )
            )
    return problems
