"""The USB keyboard-wedge reader (adapters/readers/evdev_reader.py): the decoding of what it types, as a
pure function of kernel key codes, and its options and configuration.

The reader itself is not run against a device here: that needs a real input device, and this
machine has no /dev/uinput to make one (a test that mocked the kernel would prove nothing). What is
left to the device (open, grab, async_read_loop) is python-evdev's own API, used as documented.
"""

from __future__ import annotations

import importlib.util

import pytest

from adapters.readers.evdev_reader import EvdevOptions, EvdevReader, evdev_missing
from adapters.readers.wedge_keys import WedgeDecoder, WedgeTaps, decode
from bridge.config import ConfigError, parse_config

# linux/input-event-codes.h
KEY = {**{str(d): 1 + d for d in range(1, 10)}, "0": 11}
KP = {"7": 71, "8": 72, "9": 73, "4": 75, "5": 76, "6": 77, "1": 79, "2": 80, "3": 81, "0": 82}
ENTER, KPENTER, TAB, LEFTSHIFT, KEY_A, KEY_F, KEY_Q = 28, 96, 15, 42, 30, 33, 16
DOWN, UP, REPEAT = 1, 0, 2


def typed(
    text: str, end: int = ENTER, at: float = 0.0, keys: dict[str, int] = KEY
) -> list[tuple[int, int, float]]:
    """The events a reader sends for `text` then `end`: each key down and up, a millisecond apart."""
    events: list[tuple[int, int, float]] = []
    for code in [keys[c] for c in text] + [end]:
        events += [(code, DOWN, at), (code, UP, at + 0.0005)]
        at += 0.001
    return events


def test_digits_until_enter_are_one_number() -> None:
    assert decode(typed("0003887558")) == ["0003887558"]
    assert decode(typed("0003887558") + typed("12", at=5.0)) == ["0003887558", "12"]


def test_the_keypad_reads_as_the_row() -> None:
    assert decode(typed("4711", end=KPENTER, keys=KP)) == ["4711"]


def test_key_up_and_auto_repeat_are_not_keys() -> None:
    events = [(KEY["4"], DOWN, 0.0), (KEY["4"], REPEAT, 0.01), (KEY["4"], UP, 0.02), (ENTER, DOWN, 0.03)]
    assert decode(events) == ["4"]


def test_a_stray_key_throws_the_number_away_unless_any_key_ends_it() -> None:
    events = typed("123", end=TAB)
    assert decode(events) == []
    assert decode(events, ends_with="any") == ["123"]
    assert decode(typed("", end=ENTER)) == []  # Enter alone is no number


def test_hex_readers_and_shift() -> None:
    events = [(LEFTSHIFT, DOWN, 0.0), (KEY_A, DOWN, 0.001), (KEY["1"], DOWN, 0.002), (KEY_F, DOWN, 0.003)]
    events.append((ENTER, DOWN, 0.004))
    assert decode(events, chars="hex") == ["A1F"]
    assert decode(events) == []  # with digits only, A is a stray key


def test_a_number_cut_off_is_not_glued_to_the_next() -> None:
    lost_enter = typed("999")[:-2]  # the Enter never came
    assert decode(lost_enter + typed("0001", at=3.0)) == ["0001"]


def test_the_decoder_does_not_merge_repeats() -> None:
    decoder = WedgeDecoder()
    results = [decoder.key(code, value, at) for code, value, at in typed("42") + typed("42", at=1.5)]
    assert [r for r in results if r] == ["42", "42"]  # the debounce, not the decoder, merges repeats


def test_taps_are_idtags_and_a_held_card_is_one() -> None:
    taps = WedgeTaps(hold_s=2.0)
    events = typed("1" * 21) + typed("0003887558", at=1.0) + typed("0003887558", at=2.5)
    events += typed("0003887558", at=5.0) + typed("42", at=5.1)
    tags = [t for code, value, at in events if (t := taps.key(code, value, at)) is not None]
    # 21 digits are no idTag; the repeat 1.5 s later is the card still held; 2.5 s later a new tap.
    assert tags == ["0003887558", "0003887558", "42"]
    assert taps.overlong == 1


def test_the_reader_names_its_device() -> None:
    reader = EvdevReader(EvdevOptions(device="/dev/input/by-id/usb-x-event-kbd"))
    assert reader.description == "card reader /dev/input/by-id/usb-x-event-kbd"
    assert len(reader.background()) == 1


def test_options_are_checked() -> None:
    missing = evdev_missing()
    fields = [f for f, _ in EvdevOptions(device="/dev/input/by-id/usb-x-event-kbd").validate()]
    assert fields == ([] if missing is None else ["type"])
    assert "device" in [f for f, _ in EvdevOptions().validate()]
    assert "device" in [f for f, _ in EvdevOptions(device="event3").validate()]
    assert "hold_s" in [f for f, _ in EvdevOptions(device="/dev/input/event3", hold_s=-1).validate()]


CONFIG = """\
state_dir: /tmp/x
charge_points:
  - id: CP-1
    csms_url: ws://127.0.0.1:9/ocpp
    connectors:
      - id: 1
        charger: {type: simulated}
        card_reader:
          type: evdev
          device: /dev/input/by-id/usb-Reader-event-kbd
          chars: decimal
"""


def test_configuration_errors_name_the_line() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(CONFIG, "wedge.yaml")
    text = str(caught.value)
    assert (
        "wedge.yaml:11: charge_points[0].connectors[0].card_reader.chars: expected one of 'digits', 'hex',"
        " got the string 'decimal'"
    ) in text


@pytest.mark.skipif(importlib.util.find_spec("evdev") is not None, reason="evdev is installed here")
def test_without_evdev_check_says_what_to_install() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(CONFIG.replace("chars: decimal", "chars: digits"), "wedge.yaml")
    assert str(caught.value) == (
        "wedge.yaml:9: charge_points[0].connectors[0].card_reader.type: the evdev card reader needs the"
        " evdev package: install ocpp-bridge[readers] (pip install 'ocpp-bridge[readers]', which builds"
        " python-evdev)"
    )
