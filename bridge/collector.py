"""When the garbage collector runs: not while big structures that are no garbage are built (the
configuration, the charge points, their connections and boots), and never again over what stays for
the daemon's life.

At 5,000 charge points the collections set off while the configuration was parsed and the charge points
built took seconds of the start (the heap only grows then), and each later full collection walked
millions of objects that live as long as the daemon.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


class Pause:
    """No collection from now until `end()` (called once or more; the previous state comes back)."""

    def __init__(self) -> None:
        self._was: bool | None = gc.isenabled()
        gc.disable()

    def end(self) -> None:
        if self._was:
            gc.enable()
        self._was = None


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """No collection inside (the previous state is restored after)."""
    pause = Pause()
    try:
        yield
    finally:
        pause.end()


def freeze_what_stays(collect: bool = True) -> None:
    """Collect (unless `collect` is False: for what is known to hold no cycle of garbage), then move
    every object left out of the collector's generations (gc.freeze): later collections look only at
    what came since. `gc.unfreeze()` gives them back."""
    if collect:
        gc.collect()
    gc.freeze()
