"""The RDM6300 frame parser, the idTag forms and the debounce of a held card (pure: bytes and times in,
results out)."""

from __future__ import annotations

import pytest

from adapters.readers.rdm6300_frames import (
    ETX,
    STX,
    Dropped,
    Frame,
    FrameParser,
    IdFormat,
    checksum,
    encode,
    id_tag,
)
from adapters.readers.taps import Debouncer

# The python-rdm6300 test's frame (devices.md §11.1): data 67003B51C6, checksum CB, id 0x003B51C6.
GOOD = bytes([STX]) + b"67003B51C6CB" + bytes([ETX])


def test_the_published_frame_checks_and_reads() -> None:
    assert checksum("67003B51C6") == 0xCB
    assert encode("67003b51c6") == GOOD
    assert FrameParser().feed(GOOD) == [Frame("67003B51C6")]


def test_id_tag_forms() -> None:
    assert id_tag("67003B51C6", "hex") == "67003B51C6"
    assert id_tag("67003b51c6", "hex") == "67003B51C6"  # one spelling whatever the module sends
    assert id_tag("67003B51C6", "decimal") == "0003887558"  # the number printed on the fob
    assert id_tag("FFFFFFFFFF", "decimal") == "4294967295"  # the largest: still 10 digits
    forms: tuple[IdFormat, ...] = ("hex", "decimal")
    assert all(len(id_tag(d, f)) <= 20 for d in ("0000000000", "FFFFFFFFFF") for f in forms)  # CiString20


def test_lower_case_hex_is_taken() -> None:
    frame = bytes([STX]) + b"67003b51c6cb" + bytes([ETX])
    assert FrameParser().feed(frame) == [Frame("67003B51C6")]


def test_a_bad_checksum_is_dropped_and_named() -> None:
    bad = encode("67003B51C6", check=0xCA)
    [result] = FrameParser().feed(bad)
    assert isinstance(result, Dropped)
    assert result.reason == "checksum CA sent, CB computed"
    assert result.raw == bad


def test_non_hex_and_a_missing_etx_are_dropped() -> None:
    parser = FrameParser()
    [not_hex] = parser.feed(bytes([STX]) + b"67003G51C6CB" + bytes([ETX]))
    assert isinstance(not_hex, Dropped) and not_hex.reason == "a char that is not hex"
    [no_etx] = parser.feed(bytes([STX]) + b"67003B51C6CB" + b"\x04")
    assert isinstance(no_etx, Dropped) and "no ETX" in no_etx.reason
    # The parser is hunting again: the next good frame reads.
    assert parser.feed(GOOD) == [Frame("67003B51C6")]


def test_a_torn_frame_resynchronises_at_the_next_stx() -> None:
    parser = FrameParser()
    torn = GOOD[:7]  # the line dropped out mid-frame
    results = parser.feed(torn + GOOD)
    assert results == [Dropped("cut short after 6 of 13 bytes", torn), Frame("67003B51C6")]


def test_noise_between_frames_is_skipped() -> None:
    noise = b"\x00\xff\x03garbage\x03"
    assert FrameParser().feed(noise + GOOD + noise + GOOD) == [Frame("67003B51C6")] * 2


@pytest.mark.parametrize("size", [1, 2, 5, 13, 14, 15])
def test_frames_split_across_reads(size: int) -> None:
    other = encode("0A1B2C3D4E")
    stream = GOOD + b"\x00" + other + GOOD
    parser = FrameParser()
    results = []
    for i in range(0, len(stream), size):
        results += parser.feed(stream[i : i + size])
    assert results == [Frame("67003B51C6"), Frame("0A1B2C3D4E"), Frame("67003B51C6")]


def test_a_held_card_is_one_tap() -> None:
    taps = Debouncer(hold_s=2.0)
    # Frames every 65 ms for 5 s: the window slides with each frame, so it stays one tap.
    assert [taps.seen("A", i * 0.065) for i in range(77)].count(True) == 1
    last = 76 * 0.065
    assert taps.seen("A", last + 1.9) is False  # out of the field for a moment: still the same tap
    assert taps.seen("A", last + 1.9 + 2.1) is True  # away longer than hold_s: a new tap (a stop)


def test_another_card_is_a_new_tap_at_once() -> None:
    taps = Debouncer(hold_s=2.0)
    assert taps.seen("A", 0.0) is True
    assert taps.seen("B", 0.1) is True
    assert taps.seen("A", 0.2) is True  # A again after B: a new presentation
