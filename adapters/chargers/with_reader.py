"""A charger with a card reader beside it (`card_reader:` in a connector's configuration).

Everything goes to the charger; the reader adds taps. Each tap leaves through the charger's
listener as a `TagPresented`, the same way a go-e's own card does, so the bridge cannot tell the two
apart: the same Authorize, the same start, the same stop by the same card. The capabilities say
`has_rfid`. The reader's background jobs run beside the charger's, under its coordinator; a reader
that is unplugged is the job's problem (logged, tried again), never the charger's, so the charger
stays usable from the central system. A charger with its own reader keeps it: both tap sources work.
Build one with `with_card_reader`, which keeps a charger that reports its changes read on them.
"""

from __future__ import annotations

from dataclasses import replace

from adapters.base import BackgroundJob, CardReader, Charger, ChargerCapabilities, TagPresented
from adapters.chargers.composed import ChargerBeside


class ChargerWithCardReader(ChargerBeside):
    def __init__(self, charger: Charger, reader: CardReader) -> None:
        super().__init__(charger)
        self.reader = reader
        reader.set_on_tag(self._tag_read)

    def _tag_read(self, id_tag: str) -> None:
        self._emit(TagPresented(id_tag))

    @property
    def capabilities(self) -> ChargerCapabilities:
        return replace(self.charger.capabilities, has_rfid=True)

    @property
    def description(self) -> str:
        return f"{self.charger.description} with {self.reader.description}"

    async def start(self) -> None:
        await self.charger.start()
        await self.reader.start()

    def background(self) -> tuple[BackgroundJob, ...]:
        return self.charger.background() + self.reader.background()

    async def close(self) -> None:
        try:
            await self.charger.close()
        finally:
            await self.reader.close()


class ReportingChargerWithCardReader(ChargerWithCardReader):
    """The same beside a charger that reports its changes (`Charger.reports_changes`), so that it is
    still read on its reports rather than every second; the reader's taps are reports of their own."""

    reports_changes = True


def with_card_reader(charger: Charger, reader: CardReader) -> ChargerWithCardReader:
    """`charger` with `reader` beside it, read on its reports where it makes them."""
    if charger.reports_changes:
        return ReportingChargerWithCardReader(charger, reader)
    return ChargerWithCardReader(charger, reader)
