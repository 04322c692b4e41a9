"""`ocpp-bridge probe`: read every configured device once and say what it sees.

The installer's first command: before any central system is involved, it
shows whether each charger and meter answers, what it reports (state,
energy, power, faults) and what the bridge will believe it can do. Devices
are probed one after the other with a time limit each, so the output reads
in the order of the file. No OCPP connection is made and nothing is
switched: `start()` and `read()` only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from adapters.base import Charger, ChargerCapabilities, ChargerReading, DeviceError
from adapters.transports.pool import Transports
from bridge.config import Config
from bridge.core.device_errors import ocpp_fault
from bridge.devices import build_charger

PROBE_TIMEOUT_S = 20.0  # per device: an MQTT device may need a moment to publish its retained state


@dataclass(frozen=True)
class Verdict:
    ok: bool
    lines: list[str]


def _num(value: float) -> str:
    """1234500 → "1234500", 230.1 → "230.1" (never the exponent form of `:g`)."""
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _fmt(values: tuple[float, ...] | None, unit: str) -> str:
    return "/".join(_num(v) for v in values) + f" {unit}" if values else "-"


def describe_reading(r: ChargerReading) -> list[str]:
    plugged = {True: "yes", False: "no", None: "cannot be sensed"}[r.plugged]
    lines = [
        f"plugged: {plugged}; vehicle asks for energy: {'yes' if r.ev_requesting else 'no'}; "
        f"energy allowed: {'yes' if r.energy_allowed else 'no'}",
        f"energy register: {_fmt((r.energy_wh,) if r.energy_wh is not None else None, 'Wh')}; "
        f"power: {_fmt((r.power_w,) if r.power_w is not None else None, 'W')}; "
        f"current: {_fmt(r.current_a, 'A')}; voltage: {_fmt(r.voltage_v, 'V')}"
        + (f"; frequency: {_num(r.frequency_hz)} Hz" if r.frequency_hz is not None else ""),
    ]
    if r.fault is not None:
        fault = ocpp_fault(r.fault)  # as the central system would see it
        detail = ", ".join(x for x in (fault.info, fault.vendor_error_code) if x)
        lines.append(f"FAULT reported by the device: {fault.error_code}" + (f" ({detail})" if detail else ""))
    return lines


def describe_capabilities(c: ChargerCapabilities) -> str:
    def yn(flag: bool) -> str:
        return "yes" if flag else "no"

    return (
        f"can: plug sensing {yn(c.can_sense_plug)}, unlock {yn(c.can_unlock)}, "
        f"fixed cable {yn(c.fixed_cable)}, phase switching {yn(c.can_switch_phases)}, "
        f"reset {yn(c.can_reset)}, meter {yn(c.has_meter)}, card reader {yn(c.has_rfid)}; "
        f"{c.phases} phase(s), current {_num(c.min_current_a)}..{_num(c.max_current_a)} A "
        f"in steps of {_num(c.current_step_a)} A"
        + ("" if c.can_switch_energy else "; report only: the device decides when energy flows")
    )


async def probe_connector(charger: Charger, timeout_s: float) -> Verdict:
    try:
        async with asyncio.timeout(timeout_s):
            await charger.start()
            reading = await charger.read()
        return verdict_of(reading, charger.capabilities, charger.probe_lines())  # before the close
    except DeviceError as exc:
        return Verdict(False, [f"FAILED: {exc}"])
    except TimeoutError:
        return Verdict(False, [f"FAILED: no answer within {timeout_s:g} s"])
    finally:
        try:
            await charger.close()
        except Exception:
            pass


FAULT_REPORTED = "the device reports a fault"


def verdict_of(
    reading: ChargerReading, capabilities: ChargerCapabilities, notes: Sequence[str] = ()
) -> Verdict:
    """What a reading says of a device: its lines (and the driver's own `notes`, `probe_lines`), and OK
    unless it reports a fault (the CLI's probe and the page's, which reads the running daemon's device)."""
    lines = [*describe_reading(reading), describe_capabilities(capabilities), *notes]
    if reading.fault is not None:
        return Verdict(False, [*lines, f"FAILED: {FAULT_REPORTED}"])
    return Verdict(True, [*lines, "OK"])


async def probe(config: Config, out: Callable[[str], None], timeout_s: float = PROBE_TIMEOUT_S) -> int:
    """Prints a block per connector; returns 0 when every device answered without a fault, else 1."""
    transports = Transports()
    failed = 0
    try:
        for cp in config.charge_points:
            for connector in cp.connectors:
                charger = build_charger(connector, transports)
                out(f"{cp.id} connector {connector.id}: {charger.description}")
                verdict = await probe_connector(charger, timeout_s)
                for line in verdict.lines:
                    out(f"  {line}")
                failed += not verdict.ok
    finally:
        await transports.close()
    total = sum(len(cp.connectors) for cp in config.charge_points)
    out(f"{total - failed} of {total} device setups answer" + ("" if not failed else f"; {failed} failed"))
    return 1 if failed else 0
