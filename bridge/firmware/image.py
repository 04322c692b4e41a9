"""What a firmware image for the bridge itself must be: a wheel or an sdist of `ocpp-bridge`.

The name and version are read from the file's own metadata (a wheel's `*.dist-info/METADATA`, an
sdist's `PKG-INFO`), not from the downloaded file's name, which the location chose. pip needs the
standard file name, so `standard_name` gives it.
"""

from __future__ import annotations

import re
import tarfile
import zipfile
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path

DISTRIBUTION = "ocpp-bridge"


class NotARelease(Exception):
    """The file is not an ocpp-bridge release; the message says what it is instead."""


@dataclass(frozen=True)
class Release:
    version: str
    kind: str  # "wheel" | "sdist"
    standard_name: str  # the file name pip expects, e.g. ocpp_bridge-0.2.0-py3-none-any.whl


def normalise(name: str) -> str:
    """PEP 503: ocpp_bridge, OCPP.Bridge and ocpp-bridge are one distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _headers(text: str, where: str) -> tuple[str, str]:
    msg = HeaderParser().parsestr(text)
    name, version = msg.get("Name"), msg.get("Version")
    if not name or not version:
        raise NotARelease(f"its {where} has no Name or Version")
    if normalise(name) != DISTRIBUTION:
        raise NotARelease(f"it is a release of {name!r}, not of {DISTRIBUTION}")
    if not re.fullmatch(r"[A-Za-z0-9.+!_-]+", version):
        raise NotARelease(f"its version {version!r} is not a version")
    return name, version


def _wheel(path: Path) -> Release:
    with zipfile.ZipFile(path) as z:
        metas = [n for n in z.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)]
        if len(metas) != 1:
            raise NotARelease("it is a zip file without exactly one *.dist-info/METADATA: not a wheel")
        _, version = _headers(z.read(metas[0]).decode("utf-8", "replace"), metas[0])
        wheel_file = metas[0].replace("METADATA", "WHEEL")
        try:
            wheel = HeaderParser().parsestr(z.read(wheel_file).decode("utf-8", "replace"))
        except KeyError:
            raise NotARelease(f"it has no {wheel_file}: not a wheel") from None
    tags = wheel.get_all("Tag") or []
    if not tags:
        raise NotARelease(f"its {wheel_file} names no Tag")
    # One tag, or several compressed the wheel way (py2.py3-none-any); pip checks they fit.
    parts = [t.split("-") for t in tags]
    py = ".".join(dict.fromkeys(p[0] for p in parts))
    abi = ".".join(dict.fromkeys(p[1] for p in parts))
    plat = ".".join(dict.fromkeys(p[2] for p in parts))
    safe = version.replace("-", "_")
    return Release(version, "wheel", f"ocpp_bridge-{safe}-{py}-{abi}-{plat}.whl")


def _sdist(path: Path) -> Release:
    with tarfile.open(path) as t:
        members = [m for m in t.getmembers() if re.fullmatch(r"[^/]+/PKG-INFO", m.name) and m.isfile()]
        if len(members) != 1:
            raise NotARelease("it is a tar file without exactly one <dir>/PKG-INFO: not an sdist")
        f = t.extractfile(members[0])
        assert f is not None
        _, version = _headers(f.read().decode("utf-8", "replace"), members[0].name)
    return Release(version, "sdist", f"ocpp_bridge-{version}.tar.gz")


def read_release(path: Path) -> Release:
    """The release the file holds; NotARelease naming what is wrong, OSError when unreadable."""
    if zipfile.is_zipfile(path):
        try:
            return _wheel(path)
        except zipfile.BadZipFile as exc:
            raise NotARelease(f"it is a damaged zip file: {exc}") from None
    if tarfile.is_tarfile(path):
        try:
            return _sdist(path)
        except tarfile.TarError as exc:
            raise NotARelease(f"it is a damaged tar file: {exc}") from None
    raise NotARelease("it is neither a wheel (zip) nor an sdist (tar.gz)")
