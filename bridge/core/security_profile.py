"""The security profile in force, and a raise tried before it is kept (white paper A05).

The theory
----------
A charge point has one security profile at a time (0: as configured, 1: HTTP Basic over ws://,
2: HTTP Basic over TLS, 3: TLS with a client certificate). ChangeConfiguration(SecurityProfile) may
only raise it, and only when what the new profile needs is there (A05.FR.02-04): a password for 1
and 2, a central-system trust anchor for 2 and 3, a charge point certificate for 3. An accepted raise
is *tried*: the link reconnects with it. The first connection that opens with it makes it the
profile in force (and only then is it persisted); the first attempt that fails falls back to the
profile in force, which the next attempt uses (A05.FR.06: "fall back to the previous profile if the
connection fails"). A power cut during the try restarts with the profile in force.

`Switch` decides; the shell connects, persists and logs.
"""

from __future__ import annotations

from dataclasses import dataclass

PROFILES = (0, 1, 2, 3)


@dataclass(frozen=True)
class Prerequisites:
    """What this charge point has for the profiles (A05.FR.02-04)."""

    password: bool  # an AuthorizationKey set by the central system, or the file's password
    central_system_root: bool  # a trust anchor for the central system's certificate
    client_certificate: bool  # a charge point certificate and its key


def missing_for(profile: int, have: Prerequisites) -> str | None:
    """Why `profile` cannot be used now, or None."""
    if profile in (1, 2) and not have.password:
        return f"security profile {profile} needs an AuthorizationKey (HTTP Basic password)"
    if profile >= 2 and not have.central_system_root:
        return f"security profile {profile} needs a CentralSystemRootCertificate or tls.ca_file"
    if profile == 3 and not have.client_certificate:
        return "security profile 3 needs a charge point certificate (CertificateSigned or tls.client_cert)"
    return None


@dataclass
class Switch:
    in_force: int
    trying: int | None = None  # a raise accepted and not yet connected with

    @property
    def current(self) -> int:
        """The profile the next connection attempt uses."""
        return self.trying if self.trying is not None else self.in_force

    def refusal(self, profile: int, have: Prerequisites) -> str | None:
        """Why a raise to `profile` is Rejected, or None (Accepted)."""
        if profile not in PROFILES:
            return f"SecurityProfile must be 0 to 3, not {profile}"
        if profile <= self.current:
            return f"SecurityProfile may only increase (now {self.current})"
        return missing_for(profile, have)

    def try_raise(self, profile: int) -> None:
        self.trying = profile

    def opened(self) -> int | None:
        """A connection opened with `current`: a raise tried becomes the profile in force (returned,
        to persist); None when nothing changed."""
        if self.trying is None:
            return None
        self.in_force, self.trying = self.trying, None
        return self.in_force

    def failed(self) -> int | None:
        """An attempt with `current` failed: a raise tried is given up (returns the profile it was),
        the next attempt uses the profile in force; None when no raise was being tried."""
        tried, self.trying = self.trying, None
        return tried
