"""The security events of the OCPP 1.6 security white paper (edition 3, chapter 8), as data.

Critical events must reach the central system: they go through the outbox, so an outage or a
restart does not lose them. The others are sent when the link is up and kept in memory meanwhile,
one per type (a TLS failure repeated at every reconnect is one event waiting, not thousands).
Every event, critical or not, is written to the charge point's security log.
"""

from __future__ import annotations

# name -> critical (white paper §8; the table spells two "FailedToAuthenticationAt...": implementations,
# the schema's examples and OCTT use the spelling below)
EVENTS: dict[str, bool] = {
    "FirmwareUpdated": True,
    "FailedToAuthenticateAtCentralSystem": False,
    "CentralSystemFailedToAuthenticate": False,
    "SettingSystemTime": True,
    "StartupOfTheDevice": True,
    "ResetOrReboot": True,
    "SecurityLogWasCleared": True,
    "ReconfigurationOfSecurityParameters": False,
    "MemoryExhaustion": True,
    "InvalidMessages": False,
    "AttemptedReplayAttacks": False,
    "TamperDetectionActivated": True,
    "InvalidFirmwareSignature": False,
    "InvalidFirmwareSigningCertificate": False,
    "InvalidCentralSystemCertificate": False,
    "InvalidChargePointCertificate": False,
    "InvalidTLSVersion": False,
    "InvalidTLSCipherSuite": False,
}

TYPE_MAX = 50  # SecurityEventNotification.req: type is a string of at most 50 characters
TECH_INFO_MAX = 255  # ... and techInfo at most 255


def is_critical(kind: str) -> bool:
    """Whether the event must be delivered whatever happens (ValueError for an unknown type)."""
    try:
        return EVENTS[kind]
    except KeyError:
        raise ValueError(f"unknown security event type {kind!r}") from None


def tech_info(text: str | None) -> str | None:
    """The free text of an event, cut to the schema's 255 characters."""
    if text is None:
        return None
    return text if len(text) <= TECH_INFO_MAX else text[: TECH_INFO_MAX - 3] + "..."
