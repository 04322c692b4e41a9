"""What a USB keyboard-wedge card reader types, decoded from kernel key codes (pure: no I/O, no clock).

Such a reader is a USB keyboard: per card it "types" the card number (usually decimal digits) and
then Enter (devices.md §11.3; suitik collects KEY_1..KEY_0 until KEY_ENTER, afra_door ends on any
non-digit). The codes are the kernel's (linux/input-event-codes.h), not characters: no keyboard
layout is involved. Models differ, so what makes up a number and what ends it are options:
- `chars`: "digits" (the row's and the keypad's 0-9) or "hex" (those and A-F, for readers that type
  the UID in hex; Shift is ignored, so upper and lower case read alike);
- `ends_with`: "enter" (Enter or the keypad's Enter; any other key throws the number away) or "any"
  (any key that is not part of a number ends it).
A number's keys come within milliseconds of each other; a gap longer than KEY_GAP_S means the
number before it was cut off (a lost Enter), so it is thrown away rather than glued to the next one.
`WedgeTaps` makes taps of the numbers: at most an idTag's 20 characters, a repeat of a held card merged.
"""

from __future__ import annotations

from typing import Literal

from adapters.base import ID_TAG_MAX as ID_TAG_MAX  # re-exported: evdev_reader.py names it
from adapters.readers.taps import Debouncer

Chars = Literal["digits", "hex"]
EndsWith = Literal["enter", "any"]

KEY_DOWN = 1  # an EV_KEY event's value: 0 up, 1 down, 2 auto-repeat
KEY_GAP_S = 1.0

DIGIT_KEYS: dict[int, str] = {
    2: "1", 3: "2", 4: "3", 5: "4", 6: "5", 7: "6", 8: "7", 9: "8", 10: "9", 11: "0",  # KEY_1..KEY_0
    79: "1", 80: "2", 81: "3", 75: "4", 76: "5", 77: "6", 71: "7", 72: "8", 73: "9", 82: "0",  # KEY_KP1..
}  # fmt: skip
HEX_LETTER_KEYS: dict[int, str] = {30: "A", 48: "B", 46: "C", 32: "D", 18: "E", 33: "F"}  # KEY_A..KEY_F
ENTER_KEYS = frozenset({28, 96})  # KEY_ENTER, KEY_KPENTER
MODIFIER_KEYS = frozenset({42, 54, 29, 97, 56, 100, 58})  # shifts, ctrls, alts, caps lock: ignored


class WedgeDecoder:
    """Feed it every key event; it returns the number a key ended, else None."""

    def __init__(self, chars: Chars = "digits", ends_with: EndsWith = "enter") -> None:
        self._keys = DIGIT_KEYS if chars == "digits" else {**DIGIT_KEYS, **HEX_LETTER_KEYS}
        self._ends_with = ends_with
        self._typed: list[str] = []
        self._last_key_at: float | None = None

    def key(self, code: int, value: int, now: float) -> str | None:
        """One EV_KEY event: its code, its value (only key-down counts) and when (monotonic s)."""
        if value != KEY_DOWN or code in MODIFIER_KEYS:
            return None
        if self._last_key_at is not None and now - self._last_key_at > KEY_GAP_S:
            self._typed.clear()  # a number cut off before its end
        self._last_key_at = now
        char = self._keys.get(code)
        if char is not None:
            self._typed.append(char)
            return None
        typed, self._typed = "".join(self._typed), []
        if code in ENTER_KEYS or self._ends_with == "any":
            return typed or None
        return None  # a stray key: the number so far is not trusted


def decode(
    events: list[tuple[int, int, float]], chars: Chars = "digits", ends_with: EndsWith = "enter"
) -> list[str]:
    """The numbers a sequence of (code, value, time) key events types."""
    decoder = WedgeDecoder(chars, ends_with)
    return [n for code, value, at in events if (n := decoder.key(code, value, at)) is not None]


class WedgeTaps:
    """Key events in, taps out: the numbers typed (`WedgeDecoder`), those longer than an idTag thrown
    away (counted in `overlong`), the same number again within `hold_s` merged (`taps.Debouncer`)."""

    def __init__(self, chars: Chars = "digits", ends_with: EndsWith = "enter", hold_s: float = 2.0) -> None:
        self._decoder = WedgeDecoder(chars, ends_with)
        self._debouncer = Debouncer(hold_s)
        self.overlong = 0

    def key(self, code: int, value: int, now: float) -> str | None:
        """One EV_KEY event; the idTag of a new tap when the key ended one."""
        number = self._decoder.key(code, value, now)
        if number is None:
            return None
        if len(number) > ID_TAG_MAX:
            self.overlong += 1
            return None
        return number if self._debouncer.seen(number, now) else None
