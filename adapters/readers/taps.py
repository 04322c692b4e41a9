"""One tap per presentation of a card: what readers that repeat a held card have in common.

An RDM6300 sends its frame about every 65 ms while a tag stays in the field, and some keyboard-wedge
readers type the number again while a card is held. A card seen again within `hold_s` of the last
time it was seen is the same tap (the window slides, so a card held for a minute is one tap); another
card is a new tap at once. The window matters beyond comfort: a second tap of the same card stops
its transaction, so a card at the edge of the field that drops out for a moment must not count
twice. Pure: the caller passes the time (monotonic seconds).
"""

from __future__ import annotations


class Debouncer:
    def __init__(self, hold_s: float) -> None:
        self.hold_s = hold_s
        self._last_tag: str | None = None
        self._last_seen: float = 0.0

    def seen(self, id_tag: str, now: float) -> bool:
        """Record a read of `id_tag` at `now`; True when it is a new tap."""
        repeat = id_tag == self._last_tag and now - self._last_seen <= self.hold_s
        self._last_tag, self._last_seen = id_tag, now
        return not repeat
