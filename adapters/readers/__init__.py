"""Card readers: a tap source beside any charger (`card_reader:` in a connector's configuration).

Each is a `CardReader` (adapters/base.py) that reads its device in a background job and hands each
tap on as an idTag; `adapters/chargers/with_reader.py` puts one beside a charger, whose taps then go
the way a go-e's own card does. `rdm6300` reads the RDM6300's frames on a serial port (the pure
parser in `rdm6300_frames`); `evdev_reader` a USB keyboard-wedge reader through Linux's input
devices (the optional `evdev` package; its pure key decoding in `wedge_keys`); `taps` is the
debounce both share. `CARD_READER_TYPES` registers the type names; the registry imports a module
only when a configuration names its type.
"""

from __future__ import annotations

# type name in `card_reader: {type: ...}` -> "module:Class"
CARD_READER_TYPES: dict[str, str] = {
    "rdm6300": "adapters.readers.rdm6300:Rdm6300Reader",
    "evdev": "adapters.readers.evdev_reader:EvdevReader",
}
