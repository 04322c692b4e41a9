"""Modbus bus addresses: the URL that names a bus, parsed into a TCP or serial address (pure, no pymodbus:
the configuration checker uses it without loading the library). See adapters/transports/modbus.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

BAUDRATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)
PARITIES = ("N", "E", "O")
STOPBITS = (1, 2)

URL_FORMS = (
    "tcp://HOST[:PORT] (Modbus TCP, port 502 by default), rtu+tcp://HOST:PORT (RTU frames over TCP) "
    "or rtu:///dev/ttyUSB0?baudrate=9600&parity=N&stopbits=1 (Modbus RTU on a serial port)"
)

# -- bus addresses ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TcpAddress:
    host: str
    port: int = 502
    rtu_framing: bool = False  # rtu+tcp://: a serial server that forwards raw RTU frames

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'rtu+tcp' if self.rtu_framing else 'tcp'}://{host}:{self.port}"


@dataclass(frozen=True)
class SerialAddress:
    device: str
    baudrate: int = 9600
    parity: str = "N"
    stopbits: int = 1
    bytesize: int = 8

    def __str__(self) -> str:
        # One spelling with every parameter in a fixed order: the key that makes meters share a bus.
        return (
            f"rtu://{self.device}?baudrate={self.baudrate}&parity={self.parity}"
            f"&stopbits={self.stopbits}&bytesize={self.bytesize}"
        )


BusAddress = TcpAddress | SerialAddress


def parse_bus_url(url: str) -> BusAddress:
    """The bus named by `url`; ValueError with a message fit for a configuration error."""
    if not isinstance(url, str) or "://" not in url:
        hint = f" (did you mean rtu://{url}?)" if isinstance(url, str) and url.startswith("/dev/") else ""
        raise ValueError(f"expected {URL_FORMS}; got {url!r}{hint}")
    parts = urlsplit(url.strip())
    if parts.scheme in ("tcp", "rtu+tcp"):
        return _parse_tcp(url, parts.scheme == "rtu+tcp")
    if parts.scheme == "rtu":
        return _parse_rtu(url)
    raise ValueError(f"unknown bus type {parts.scheme!r} in {url!r}; expected {URL_FORMS}")


def _parse_tcp(url: str, rtu_framing: bool) -> TcpAddress:
    parts = urlsplit(url.strip())
    if not parts.hostname:
        raise ValueError(f"no host in {url!r}; expected {URL_FORMS}")
    if parts.username or parts.password or parts.query or parts.fragment or parts.path not in ("", "/"):
        raise ValueError(f"{url!r}: a TCP bus is only a host and a port, like tcp://192.0.2.10:502")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"the port in {url!r} is not a number from 1 to 65535") from None
    if port is None and rtu_framing:
        # There is no standard port for tunnelled RTU; each serial server has its own.
        raise ValueError(f"{url!r} needs the port of the serial server, like rtu+tcp://192.0.2.10:8899")
    if port == 0:
        raise ValueError(f"the port in {url!r} is not a number from 1 to 65535")
    return TcpAddress(parts.hostname, port or 502, rtu_framing)


def _parse_rtu(url: str) -> SerialAddress:
    parts = urlsplit(url.strip())
    if parts.netloc:
        raise ValueError(
            f"{url!r}: the serial device must be an absolute path after three slashes, "
            f"like rtu:///dev/ttyUSB0 (rtu:// then /dev/ttyUSB0)"
        )
    device = unquote(parts.path)
    if not device.startswith("/") or device == "/" or parts.fragment:
        raise ValueError(f"{url!r}: expected rtu:///dev/ttyUSB0?baudrate=9600&parity=N&stopbits=1")
    settings: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in settings:
            raise ValueError(f"{url!r}: {key} is given twice")
        settings[key] = value
    unknown = sorted(set(settings) - {"baudrate", "parity", "stopbits", "bytesize"})
    if unknown:
        raise ValueError(
            f"{url!r}: unknown setting {unknown[0]!r} (settings: baudrate, parity, stopbits, bytesize)"
        )
    return SerialAddress(
        device,
        baudrate=_choice(url, "baudrate", settings.get("baudrate", "9600"), BAUDRATES),
        parity=_parity(url, settings.get("parity", "N")),
        stopbits=_choice(url, "stopbits", settings.get("stopbits", "1"), STOPBITS),
        bytesize=_choice(url, "bytesize", settings.get("bytesize", "8"), (8,), "Modbus RTU uses 8 data bits"),
    )


def _choice(url: str, name: str, text: str, allowed: tuple[int, ...], why: str = "") -> int:
    if text.isdigit() and int(text) in allowed:
        return int(text)
    listed = ", ".join(str(a) for a in allowed)
    raise ValueError(f"{url!r}: {name}={text} is not one of {listed}" + (f" ({why})" if why else ""))


def _parity(url: str, text: str) -> str:
    names = {"N": "N", "E": "E", "O": "O", "NONE": "N", "EVEN": "E", "ODD": "O"}
    if text.upper() in names:
        return names[text.upper()]
    raise ValueError(f"{url!r}: parity={text} is not one of N (none), E (even), O (odd)")
