"""What the protocol layer needs of the charge point, declared here as small Protocols.

`bridge.ocpp` never imports the runtime (bridge/chargepoint.py, bridge/runtime/), the configuration
file's types (bridge/config/) or the API: the handlers are given objects that have these methods,
and the runtime provides them. Each Protocol is what one feature profile's handlers use.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from ocpp.v16 import call

from bridge.core.config_keys import ChangeOutcome, KeyEntry

FollowUp = Callable[[], Awaitable[Any] | None]


class FrameSink(Protocol):
    """Told of every frame as it crosses the wire (the runtime's ring of recent frames for the API):
    `direction` "out" (sent) or "in" (received), `text` unmasked (the sink masks). Called on the
    event loop for each frame: it must be quick and must not raise."""

    def __call__(self, direction: str, text: str) -> None: ...


class ReconnectSettings(Protocol):
    @property
    def initial_s(self) -> float: ...
    @property
    def max_s(self) -> float: ...


class LinkSettings(Protocol):
    """One charge point's link to its central system, as configured (bridge.config's
    ChargePointConfig has these fields; the link needs no more of the file)."""

    @property
    def id(self) -> str: ...
    @property
    def csms_url(self) -> str: ...
    @property
    def password(self) -> str | None: ...
    @property
    def password_format(self) -> str: ...  # "plain" or "hex" (D3)
    @property
    def boot_on_reconnect(self) -> bool: ...
    @property
    def reconnect(self) -> ReconnectSettings: ...
    @property
    def max_frame_bytes(self) -> int: ...


@dataclass(frozen=True)
class ConnectOptions:
    """How to open one connection: what the security profile in force makes of the configuration."""

    url: str  # the central system's endpoint, without the identity (ws:// or wss://)
    password: str | None = None  # HTTP Basic (profiles 1 and 2; 0 and 3 send none)
    password_format: str = "plain"  # "plain" or "hex" (D3)
    ssl: ssl.SSLContext | None = None  # for wss://; None: the system's default context
    profile: int = 0  # the security profile these options are for (for messages)


class LinkSecurity(Protocol):
    """Who decides how the link connects (the runtime's link security; a plain default otherwise)."""

    async def options(self) -> ConnectOptions:
        """The options for the next attempt (may differ from the last: a profile being raised); a
        coroutine, as building a TLS context reads files (in a thread)."""
        ...

    def opened(self, options: ConnectOptions) -> None:
        """The websocket is open with these options (TLS and HTTP authentication passed)."""

    def failed(self, options: ConnectOptions, exc: BaseException) -> str | None:
        """An attempt with these options failed; returns the installer's description of the failure
        when it has a better one than `describe_failure` (a TLS failure, with the file to look at and
        a fallback made), or None."""
        ...


class Replies(Protocol):
    """The link, as a handler sees it."""

    @property
    def accepted(self) -> bool:
        """BootNotification was Accepted in this run."""
        ...

    def after_reply(self, followup: FollowUp) -> None:
        """Run `followup` once the answer to the CALL being handled is on the wire."""

    def boot_now(self) -> None:
        """TriggerMessage(BootNotification) while not Accepted: boot again at once."""


class ConfigurationStore(Protocol):
    def get_configuration(self, keys: list[str] | None = None) -> tuple[list[KeyEntry], list[str]]: ...
    def change(self, key: str, value: str) -> ChangeOutcome: ...


class RemoteControl(Protocol):
    """Core profile commands that act on connectors and devices."""

    def remote_start_target(self, connector_id: int | None, id_tag: str | None = None) -> int | None: ...
    async def remote_start(self, cid: int, id_tag: str) -> None: ...
    # None: Rejected (no such transaction, or one on a report-only connector, which cannot stop it).
    def connector_of_transaction(self, transaction_id: int) -> int | None: ...
    async def remote_stop(self, cid: int) -> None: ...
    async def reset(self, hard: bool) -> None: ...
    async def unlock(self, connector_id: int) -> str: ...
    async def change_availability(self, connector_id: int, operative: bool) -> str: ...
    def report_statuses(self) -> None: ...
    async def clear_cache(self) -> None: ...


class VendorData(Protocol):
    def answer(self, vendor_id: str, message_id: str | None, data: str | None) -> tuple[str, str | None]: ...


class SmartChargingControl(Protocol):
    def parse(self, wire: Mapping[str, Any], connector_id: int, now: int | None = None) -> object: ...
    def remote_start_profile(self, cid: int, id_tag: str, wire: Mapping[str, Any]) -> str | None: ...
    def set_profile(self, connector_id: int, wire: Mapping[str, Any]) -> str: ...
    async def flush(self) -> None: ...
    def clear(
        self, profile_id: int | None, connector_id: int | None, purpose: str | None, stack_level: int | None
    ) -> str: ...
    def composite_schedule(self, connector_id: int, duration_s: int, unit: str | None) -> dict[str, Any]: ...


class Triggers(Protocol):
    """What TriggerMessage can ask for."""

    def has_connector(self, connector_id: int) -> bool: ...
    @property
    def connector_ids(self) -> tuple[int, ...]: ...
    def status_message(self, cid: int) -> call.StatusNotification: ...
    def meter_values_message(self, cid: int) -> call.MeterValues | None: ...
    async def send_now(self, payload: Any) -> Any: ...


class DiagnosticsControl(Protocol):
    """What GetDiagnostics and its TriggerMessage need (FirmwareManagement)."""

    def request(
        self, location: str, retries: int | None, retry_interval_s: float | None,
        start_time: float | None, stop_time: float | None,
    ) -> str: ...  # fmt: skip
    def trigger_status(self) -> str: ...


class FirmwareControl(Protocol):
    """What UpdateFirmware and its TriggerMessage need (FirmwareManagement)."""

    def request(
        self, location: str, retrieve_date: float, retries: int | None, retry_interval_s: float | None
    ) -> None: ...
    def trigger_status(self) -> str: ...
    async def unsigned_refusal(self) -> str | None: ...  # why UpdateFirmware is NotSupported now (L01.FR.20)


class LocalListControl(Protocol):
    """What SendLocalList and GetLocalListVersion need (LocalAuthListManagement)."""

    def local_list_version(self) -> int: ...
    async def send_local_list(
        self, list_version: int, update_type: str, entries: Iterable[Mapping[str, Any]] | None
    ) -> str: ...


class ReservationControl(Protocol):
    """What ReserveNow and CancelReservation need (Reservation)."""

    async def reserve(
        self, connector_id: int, reservation_id: int, id_tag: str, parent_id_tag: str | None, expiry: datetime
    ) -> str: ...  # Accepted, Occupied, Faulted, Unavailable or Rejected; stored before Accepted
    async def cancel(self, reservation_id: int) -> str: ...  # Accepted or Rejected (unknown id)
    def report_statuses(self) -> None: ...


# --- certificates (security extension: A02, A03, M03-M05) ---


class CertificateSigning(Protocol):
    """What ExtendedTriggerMessage(SignChargePointCertificate) needs: start a signing request (A02)."""

    def start_signing(self) -> bool:
        """Start generating a key and sending SignCertificate; False when it cannot start (CpoName
        empty, a request already running)."""
        ...


class CertificateControl(Protocol):
    """What InstallCertificate, DeleteCertificate, GetInstalledCertificateIds and CertificateSigned
    need (M03-M05, A02). Hash data is OCPP's CertificateHashDataType with its camelCase keys."""

    async def install(self, use: str, pem: str) -> str: ...  # Accepted, Rejected or Failed
    async def delete(self, wanted: Mapping[str, str]) -> str: ...  # Accepted, Failed or NotFound
    async def installed_ids(self, use: str) -> list[dict[str, str]]: ...
    async def certificate_signed(self, chain: str) -> str: ...  # Accepted or Rejected
    def switch_when_due(self) -> None:
        """After an Accepted CertificateSigned is on the wire: the new certificate takes over at its
        notBefore, and the link reconnects with it."""


# --- logs (security extension: N01, ExtendedTriggerMessage) ---


class LogControl(Protocol):
    """What GetLog and ExtendedTriggerMessage(LogStatusNotification) need (N01)."""

    def request(
        self, log_type: str, request_id: int, location: str, oldest: float | None, latest: float | None,
        retries: int | None, retry_interval_s: float | None,
    ) -> tuple[str, str]:  # fmt: skip
        """Accepted or AcceptedCanceled (a running upload cancelled), and the filename; ValueError
        for a request refused."""
        ...

    def trigger(self) -> tuple[str, int | None]:
        """The status and requestId a triggered LogStatusNotification says (Idle, None: none runs)."""
        ...


class SignedFirmwareStatus(Protocol):
    """What ExtendedTriggerMessage(FirmwareStatusNotification) needs: SignedFirmwareStatusNotification's
    status and requestId (None: no signed update to name, and the field is left out)."""

    def trigger_signed_status(self) -> tuple[str, int | None]: ...


# --- signed firmware (security extension: L01) ---


class SignedFirmwareControl(Protocol):
    """What SignedUpdateFirmware needs."""

    async def signed_request(
        self, request_id: int, location: str, retrieve_date: float, install_date: float | None,
        certificate: str, signature: str, retries: int | None, retry_interval_s: float | None,
    ) -> str:  # fmt: skip
        """Accepted, AcceptedCanceled (it replaced an update) or InvalidCertificate (the signing
        certificate does not chain to an installed ManufacturerRootCertificate); ValueError for a
        field refused."""
        ...
