"""What an OCPP charger (`type: ocpp`) honours, and how its energy is switched by it (pure).

The driver (ocpp_device.py) asks it after each BootNotification with GetConfiguration and keeps the
answer in a `Support` record; this module reads that answer and makes the choices, with no I/O, so
that they are unit-tested by passing answers in (tests/test_ocpp_device_support.py).

- SupportedFeatureProfiles: SmartCharging there means charging profiles are honoured, and a pause is
  a 0 A profile (below). A charger that answers GetConfiguration with a CALLERROR, not at all, or
  without that key, is assumed to honour Core only (`core_only`), and the note says why.
- ChargingScheduleAllowedChargingRateUnit ("Current", "Power"; some chargers say "A", "W"): a charger
  that takes only Power gets its limits in W = A x phases x volts (the mean voltage it reports, else
  230 V nominal), the phases being those drawing current in its transaction (`phases_drawing`), once
  its readings show them, else the `phases` option: a single-phase vehicle at a three-phase charger
  must not get three phases' worth on one. Unknown: A, the unit every SmartCharging charger must take
  per OCPP 1.6.
- AuthorizeRemoteTxRequests and ChargeProfileMaxStackLevel are kept for the notes: the link answers
  the Authorize a remote start brings at once, and the pause profile needs no stack level above 0.

Energy off (`energy_off`): a pause when the charger honours SmartCharging, its transaction runs and
the vehicle stays plugged while the bridge's session goes on (set_enabled(False): a pause by the
limit, an invalid card); RemoteStopTransaction otherwise, and always at the end of the bridge's session
(Charger.end_session), so the charger's transaction ends with it. A pause
the charger did not honour (it still reports energy allowed when energy off comes again, the bridge's
guard) is not tried again on this connection: RemoteStop then.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

NOMINAL_V = 230.0
PHASE_DRAWING_A = 1.0  # a phase counts for a W limit when it draws more than this
KEYS = (
    "SupportedFeatureProfiles",
    "ChargingScheduleAllowedChargingRateUnit",
    "AuthorizeRemoteTxRequests",
    "ChargeProfileMaxStackLevel",
)
SWITCH_MODES = ("auto", "remote", "profile")  # the `energy_switch` option
RateUnit = Literal["A", "W"]
_UNITS: dict[str, RateUnit] = {"current": "A", "a": "A", "power": "W", "w": "W"}


class Off(Enum):
    """How energy is switched off."""

    PAUSE = "a 0 A charging profile for its transaction (it goes on, SuspendedEVSE)"
    REMOTE_STOP = "RemoteStopTransaction"
    NOTHING = "nothing to do: no transaction of its runs"


@dataclass(frozen=True)
class Support:
    """What the charger said it honours (or what is assumed, with why in `core_only`)."""

    smart_charging: bool = False
    rate_units: tuple[RateUnit, ...] = ("A",)
    authorize_remote_tx: bool | None = None
    max_stack_level: int | None = None
    core_only: str | None = None  # why Core only is assumed; None: it named its profiles
    remote_start_refused: str | None = None  # how it refused RemoteStartTransaction on this connection
    pause_refused: str | None = None  # how a 0 A pause failed on this connection
    asked: bool = True  # False: not asked yet on this connection (nothing to say)

    @property
    def rate_unit(self) -> RateUnit:
        return "A" if "A" in self.rate_units else "W"


def assumed_core(why: str) -> Support:
    """A charger that did not say what it honours: Core only."""
    return Support(core_only=why)


def from_configuration(keys: list[dict[str, Any]]) -> Support:
    """The record from GetConfiguration's configurationKey list ({key, readonly, value})."""
    values = {str(k.get("key")): k.get("value") for k in keys if isinstance(k, dict)}
    profiles = values.get("SupportedFeatureProfiles")
    if not isinstance(profiles, str):
        return assumed_core("GetConfiguration did not name its SupportedFeatureProfiles")
    named = {p.strip().lower() for p in profiles.split(",")}
    units: tuple[RateUnit, ...] = ("A",)
    unit_text = values.get("ChargingScheduleAllowedChargingRateUnit")
    if isinstance(unit_text, str):
        said = tuple(dict.fromkeys(_UNITS[u] for u in _words(unit_text) if u in _UNITS))
        units = said or units
    return Support(
        smart_charging="smartcharging" in named,
        rate_units=units,
        authorize_remote_tx=_bool(values.get("AuthorizeRemoteTxRequests")),
        max_stack_level=_int(values.get("ChargeProfileMaxStackLevel")),
    )


def energy_off(
    mode: str, support: Support, *, in_transaction: bool, plugged: bool, session_ends: bool = False
) -> Off:
    """How energy is switched off now: a pause while its transaction runs with the vehicle plugged
    and the bridge's session goes on, unless the mode or what it honours says otherwise or a pause
    failed on this connection; its transaction stopped otherwise."""
    if not in_transaction:
        return Off.NOTHING
    pauses = mode == "profile" or (mode == "auto" and support.smart_charging)
    if pauses and plugged and not session_ends and support.pause_refused is None:
        return Off.PAUSE
    return Off.REMOTE_STOP


def limit(amps: float, unit: RateUnit, phases: int, voltages: tuple[float, ...] | None) -> float:
    """A current limit in the charger's unit: A (one decimal), or W (whole watts)."""
    if unit == "A":
        return round(amps, 1)
    volts = sum(voltages) / len(voltages) if voltages else NOMINAL_V
    if not 100 <= volts <= 300:  # a reading that is not a phase voltage: the nominal one
        volts = NOMINAL_V
    return float(round(amps * phases * volts))


def phases_drawing(currents: tuple[float, ...] | None) -> int:
    """How many phases draw current (more than PHASE_DRAWING_A each); 0 when unknown or none."""
    return sum(1 for amps in currents or () if amps > PHASE_DRAWING_A)


def lines(mode: str, support: Support) -> list[str]:
    """probe_lines: what it said it honours, how energy is switched; none before it was asked."""
    if not support.asked:
        return []
    said = (
        f"Core only assumed: {support.core_only}"
        if support.core_only
        else f"SmartCharging: {'yes' if support.smart_charging else 'no'}; "
        f"rate unit: {'/'.join(support.rate_units)}; "
        f"AuthorizeRemoteTxRequests: {_said(support.authorize_remote_tx)}; "
        f"ChargeProfileMaxStackLevel: {_said(support.max_stack_level)}"
    )
    on = "RemoteStartTransaction"
    if support.remote_start_refused:
        on = f"its own StartTransaction (RemoteStartTransaction refused: {support.remote_start_refused})"
    pauses = mode == "profile" or (mode == "auto" and support.smart_charging)
    off = "a 0 profile while the vehicle is plugged, else RemoteStopTransaction"
    if not pauses:
        off = "RemoteStopTransaction"
    if pauses and support.pause_refused:
        off = f"RemoteStopTransaction (a 0 A pause failed: {support.pause_refused})"
    return [f"charger says: {said}", f"energy switched on by {on}; off by {off} (energy_switch: {mode})"]


def _words(text: str) -> list[str]:
    return [w.strip().lower() for w in text.replace(";", ",").split(",") if w.strip()]


def _bool(value: Any) -> bool | None:
    text = str(value).strip().lower()
    return True if text == "true" else False if text == "false" else None


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def _said(value: object) -> str:
    return "not said" if value is None else str(value).lower()
