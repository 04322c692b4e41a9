"""One charge point's certificates on disk, in `state_dir/certs/<percent-quoted cp id>/`:

    CentralSystemRootCertificate/<sha256>.pem   roots installed by InstallCertificate, one file each
    ManufacturerRootCertificate/<sha256>.pem
    retiring                                    fingerprints of central-system roots replaced under
                                                AdditionalRootCertificateCheck, kept until a reconnect
    pending.key                                 the key of the signing request in flight (a
                                                CertificateSigned may come after a restart)
    next.pem, next.key                          a signed certificate waiting for its notBefore
    current.pem, current.key                    the charge point certificate in force (chain, key)
    previous.pem, previous.key                  the one before, kept about a month (A02)

Every file is written atomically (a temporary file, fsync, rename, fsync of the directory); keys are
created 0600. Nothing is read or created before the first use: 5,000 charge points cost nothing here
until one is given a certificate. All I/O is blocking: the runtime calls these methods in a thread,
one at a time per charge point.
"""

from __future__ import annotations

import contextlib
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from bridge.durable import sync_directory
from bridge.security import lazy_module

if TYPE_CHECKING:
    from cryptography import x509

    from bridge.security import certificates as certs
else:
    certs = lazy_module("bridge.security.certificates")  # cryptography, at the first certificate

USES = ("CentralSystemRootCertificate", "ManufacturerRootCertificate")
KEEP_PREVIOUS = timedelta(days=31)  # "about one month" (A02)


def folder_name(cp_id: str) -> str:
    """A charge point's folder under `state_dir/certs` (its id, percent-quoted)."""
    return quote(cp_id, safe="")


def certificates_directory(state_dir: Path, cp_id: str) -> Path:
    return state_dir / "certs" / folder_name(cp_id)


def with_certificates(state_dir: Path) -> frozenset[str]:
    """The names of the charge points' folders under `state_dir/certs` (one listing for all of them
    at the start: 5,000 charge points without certificates cost one syscall, not 5,000)."""
    try:
        return frozenset(os.listdir(state_dir / "certs"))
    except OSError:
        return frozenset()


def write_atomically(path: Path, data: bytes, mode: int = 0o644) -> None:
    """`path` holds `data` or its old content, never a part, across a power cut; created with `mode`
    (a key 0600: never readable by others, not even for a moment)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    sync_directory(path.parent)


class CertificateStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    # -- roots -----------------------------------------------------------------------------------
    def _root_dir(self, use: str) -> Path:
        if use not in USES:
            raise ValueError(f"certificate type {use!r} is not one of {', '.join(USES)}")
        return self.directory / use

    def root_files(self, use: str) -> list[Path]:
        directory = self._root_dir(use)
        if not directory.is_dir():
            return []
        return sorted(directory.glob("*.pem"), key=lambda p: (p.stat().st_mtime_ns, p.name))

    def roots(self, use: str) -> list[bytes]:
        """The PEM of each installed root of this use, oldest first (TLS trust anchors for
        CentralSystemRootCertificate, firmware signing for ManufacturerRootCertificate)."""
        out = []
        for path in self.root_files(use):
            with contextlib.suppress(FileNotFoundError):
                out.append(path.read_bytes())
        return out

    def root_certificates(self, use: str) -> list[x509.Certificate]:
        """The installed roots parsed (a damaged file is skipped: it verifies nothing)."""
        out = []
        for pem in self.roots(use):
            with contextlib.suppress(ValueError):
                out.extend(certs.parse_chain(pem))
        return out

    def root_count(self) -> int:
        """Installed roots of both uses (what CertificateStoreMaxLength bounds)."""
        return sum(len(self.root_files(use)) for use in USES)

    def has_root(self, use: str, certificate: x509.Certificate) -> bool:
        return (self._root_dir(use) / f"{certs.fingerprint(certificate)}.pem").exists()

    def add_root(self, use: str, pem: bytes, certificate: x509.Certificate) -> None:
        write_atomically(self._root_dir(use) / f"{certs.fingerprint(certificate)}.pem", pem)

    def remove_root(self, use: str, certificate: x509.Certificate) -> bool:
        path = self._root_dir(use) / f"{certs.fingerprint(certificate)}.pem"
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        sync_directory(path.parent)
        return True

    # -- roots replaced under AdditionalRootCertificateCheck ---------------------------------------
    def retiring(self) -> set[str]:
        try:
            return set((self.directory / "retiring").read_text().split())
        except FileNotFoundError:
            return set()

    def retire(self, fingerprints: set[str]) -> None:
        """These central-system roots go once a connection succeeds with the new one."""
        text = "".join(f"{f}\n" for f in sorted(self.retiring() | fingerprints))
        write_atomically(self.directory / "retiring", text.encode())

    def drop_retiring(self) -> list[str]:
        """Remove the roots marked retiring; their fingerprints."""
        gone = sorted(self.retiring())
        for name in gone:
            path = self._root_dir(USES[0]) / f"{name}.pem"
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        if gone:
            (self.directory / "retiring").unlink()
            sync_directory(self.directory)
        return gone

    # -- the charge point certificate -----------------------------------------------------------
    def save_pending_key(self, key_pem: bytes) -> None:
        write_atomically(self.directory / "pending.key", key_pem, 0o600)

    def pending_key(self) -> bytes | None:
        try:
            return (self.directory / "pending.key").read_bytes()
        except FileNotFoundError:
            return None

    def accept_signed(self, chain_pem: bytes, key_pem: bytes) -> None:
        """A validated CertificateSigned chain and the pending key it certifies: the next identity.
        A waiting chain goes first: a power cut between the two writes must not pair the new key with
        the old chain (a key without its chain is not a next identity: `_leaf` reads the chain)."""
        with contextlib.suppress(FileNotFoundError):
            (self.directory / "next.pem").unlink()
        write_atomically(self.directory / "next.key", key_pem, 0o600)
        write_atomically(self.directory / "next.pem", chain_pem)
        with contextlib.suppress(FileNotFoundError):
            (self.directory / "pending.key").unlink()
        sync_directory(self.directory)

    def _leaf(self, name: str) -> x509.Certificate | None:
        try:
            pem = (self.directory / f"{name}.pem").read_bytes()  # first: no file, no cryptography loaded
            return certs.parse_chain(pem)[0]
        except (FileNotFoundError, ValueError):
            return None

    def waiting(self) -> x509.Certificate | None:
        """A signed certificate that waits for its notBefore, or None."""
        return self._leaf("next")

    def current(self) -> x509.Certificate | None:
        """The charge point certificate in force (after `identity` promoted a due one), or None."""
        return self._leaf("current")

    def has_identity(self) -> bool:
        """A charge point certificate is stored (in force or waiting for its notBefore): two stats,
        nothing parsed or moved."""
        d = self.directory
        return (d / "current.pem").exists() or (d / "next.pem").exists()

    def identity(self, now: datetime) -> tuple[Path, Path] | None:
        """The chain file and key file of the charge point certificate in force, or None. A signed
        one whose notBefore has passed takes over here; the one it replaces becomes `previous`."""
        upcoming = self._leaf("next")
        if upcoming is not None and upcoming.not_valid_before_utc <= now:
            self._promote(now)
        self._prune_previous(now)
        chain, key = self.directory / "current.pem", self.directory / "current.key"
        return (chain, key) if chain.exists() and key.exists() else None

    def _promote(self, now: datetime) -> None:
        d = self.directory
        if (d / "current.pem").exists():
            for suffix in ("key", "pem"):
                with contextlib.suppress(FileNotFoundError):
                    os.replace(d / f"current.{suffix}", d / f"previous.{suffix}")
            stamp = now.timestamp()
            os.utime(d / "previous.pem", (stamp, stamp))  # when it was replaced: kept a month from here
        # A switch cut short by a power cut ends at the next call: every step may have been made.
        with contextlib.suppress(FileNotFoundError):
            os.replace(d / "next.key", d / "current.key")
        os.replace(d / "next.pem", d / "current.pem")
        sync_directory(d)

    def _prune_previous(self, now: datetime) -> None:
        previous = self.directory / "previous.pem"
        try:
            replaced = datetime.fromtimestamp(previous.stat().st_mtime, tz=now.tzinfo)
        except FileNotFoundError:
            return
        if now - replaced > KEEP_PREVIOUS:
            for suffix in ("key", "pem"):
                with contextlib.suppress(FileNotFoundError):
                    (self.directory / f"previous.{suffix}").unlink()
