"""The options of the KEBA UDP driver (`charger: {type: keba-udp, ...}`) and their checks (pure);
the driver is keba_udp.py, the protocol keba_udp_api.py."""

from __future__ import annotations

from dataclasses import dataclass

from adapters.chargers import keba_udp_api as api
from adapters.transports.urls import http_address_problem


@dataclass(frozen=True)
class KebaUdpOptions:
    """The `charger: {type: keba-udp, ...}` block."""

    type: str = "keba-udp"
    host: str = ""  # the box's IP address (or name)
    port: int = api.PORT  # the box's UDP port
    local_port: int = api.PORT  # the bridge's one UDP socket: KEBA answers to port 7090
    timeout_s: float = 2.0  # per command
    command_interval_s: float = 0.1  # the guide: at least 100 ms between two commands
    after_disable_s: float = 2.0  # the guide: at least 2 s after `ena 0`
    repeat_interval_s: float = 5.0  # the guide: the same command at most every 5 s (reports cached)
    keepalive_s: float = 15.0  # failsafe refresh, or a report 2 when the box was not heard this long
    phases: int = 3  # phases wired to the vehicle
    min_current_a: float = 6.0
    max_current_a: float = 16.0  # capped by what the box reports (Curr HW: DIP switches, cable)
    fixed_cable: bool = False  # a tethered cable: nothing to unlock
    meter: bool = True  # the box has an energy meter (report 3); the e-series has none
    failsafe_current_a: float = 0.0  # when the bridge falls silent: 0 stops charging, else 6..63 A
    failsafe_timeout_s: int = 30  # 0 = no failsafe, else 10..600 s
    failsafe_persist: bool = True  # keep the failsafe across a reboot of the box

    def validate(self) -> list[tuple[str, str]]:
        """(field, problem) pairs; empty when the options make sense."""
        problems: list[tuple[str, str]] = []
        if not self.host.strip():
            problems.append(("host", "the box's IP address, e.g. 192.168.1.60"))
        elif (problem := host_problem(self.host)) is not None:
            problems.append(("host", problem))
        for name in ("port", "local_port"):
            if not 1 <= getattr(self, name) <= 65535:
                problems.append((name, "must be a UDP port, 1 to 65535 (KEBA: 7090)"))
        if not 0.05 <= self.timeout_s <= 10:
            problems.append(("timeout_s", "must be from 0.05 to 10 seconds"))
        if not 0 <= self.command_interval_s <= 10:
            problems.append(("command_interval_s", "must be 0 to 10 s (the guide: 0.1)"))
        if not 0 <= self.after_disable_s <= 30:
            problems.append(("after_disable_s", "must be 0 to 30 s (the guide: 2)"))
        if not 0.1 <= self.repeat_interval_s <= 60:
            problems.append(("repeat_interval_s", "must be 0.1 to 60 s (the guide: 5)"))
        if self.phases not in (1, 3):
            problems.append(("phases", "must be 1 or 3"))
        if not 6 <= self.min_current_a <= self.max_current_a <= 63:
            problems.append(("min_current_a", "need 6 <= min_current_a <= max_current_a <= 63 A"))
        if self.failsafe_current_a != 0 and not 6 <= self.failsafe_current_a <= 63:
            problems.append(("failsafe_current_a", "must be 0 (stop charging) or 6 to 63 A"))
        low, high = api.FAILSAFE_TIMEOUT_RANGE_S
        if self.failsafe_timeout_s != 0 and not low <= self.failsafe_timeout_s <= high:
            problems.append(("failsafe_timeout_s", f"must be 0 (off) or {low} to {high} seconds"))
        if not self.repeat_interval_s <= self.keepalive_s <= 3600:
            problems.append(("keepalive_s", "must be at least repeat_interval_s and at most 3600 s"))
        elif self.failsafe_timeout_s and self.keepalive_s > self.failsafe_timeout_s / 2:
            problems.append(("keepalive_s", "must be at most half failsafe_timeout_s: it refreshes it"))
        return problems


def host_problem(host: str) -> str | None:
    """Why `host` is no IP address or host name the resolver takes (None: it is one): what
    http_address_problem finds in http://HOST (a scheme, a path, credentials), a port or a blank in
    it, and a label the resolver's IDNA encoding refuses (empty, as in "keba..local", or too long)."""
    try:
        host.encode("idna")
        bad = http_address_problem(f"http://{host}") is not None or any(c in host for c in ": \t")
    except UnicodeError:
        bad = True
    if not bad:
        return None
    return f"{host!r} is not a host name or IP address (e.g. 192.168.1.60; the port goes in `port`)"
