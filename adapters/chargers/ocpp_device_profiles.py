"""The charging profiles the bridge sends an OCPP charger (`type: ocpp`), as SetChargingProfile's
csChargingProfiles (pure; the driver is ocpp_device.py).

- the set-point: a TxDefaultProfile (id DEFAULT_ID, stack level 0) on its connector, in the unit it
  takes. It holds for every transaction of the charger, so it is sent once and again after its boot.
- a pause: a TxProfile (id PAUSE_ID, stack level 0) of its running transaction with limit 0. Why a
  TxProfile rather than the TxDefaultProfile at 0: OCPP 1.6 (3.13.2) lets a TxProfile overrule the
  TxDefaultProfile for the rest of the transaction whatever their stack levels, so stack level 0 does
  (even with ChargeProfileMaxStackLevel 0); the set-point stays where it is, so a new set-point during
  the pause changes nothing until it ends; the charger drops the TxProfile when its transaction ends,
  so a pause can never outlive it and hold back the next session; and energy on is one
  ClearChargingProfile of PAUSE_ID, which gives the set-point back (a charger that refuses that gets
  the same TxProfile with the set-point instead).

A charger replaces a profile that has the id of a new one whatever its connector (OCPP 1.6, 5.16.3),
so each connector of a charger with several has its own pair: 2n-1 and 2n for connector n (1 and 2
for connector 1; `profile_ids`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

DEFAULT_ID = 1  # the one TxDefaultProfile the bridge keeps on the charger's connector (1)
PAUSE_ID = 2  # the TxProfile of a pause (connector 1)


def profile_ids(connector_id: int) -> tuple[int, int]:
    """(the set-point's id, the pause's id) on connector `connector_id`: unique across the charger."""
    return DEFAULT_ID + 2 * (connector_id - 1), PAUSE_ID + 2 * (connector_id - 1)


def _start() -> str:
    # A minute back: a charger whose clock is a little behind applies it at once all the same.
    start = (datetime.now(UTC) - timedelta(minutes=1)).isoformat(timespec="seconds")
    return start.replace("+00:00", "Z")


def _schedule(limit: float, unit: str) -> dict[str, Any]:
    return {
        "chargingRateUnit": unit,
        "startSchedule": _start(),
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}],
    }


def default_profile(limit: float, unit: str, connector_id: int = 1) -> dict[str, Any]:
    """The set-point: `limit` in `unit` (A or W) for every transaction on the connector."""
    return {
        "chargingProfileId": profile_ids(connector_id)[0],
        "stackLevel": 0,
        "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Absolute",
        "chargingSchedule": _schedule(limit, unit),
    }


def pause_profile(
    transaction_id: int, unit: str, limit: float = 0.0, connector_id: int = 1
) -> dict[str, Any]:
    """A pause: 0 for its running transaction `transaction_id` (the link's id for it); with a `limit`,
    the end of a pause for a charger that will not clear it (the same id replaces it)."""
    return {
        "chargingProfileId": profile_ids(connector_id)[1],
        "stackLevel": 0,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Absolute",
        "transactionId": transaction_id,
        "chargingSchedule": _schedule(limit, unit),
    }
