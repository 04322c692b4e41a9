"""Waiting for a reader's device node to appear (a USB reader plugged in late, or again).

A missing node is not an error to repeat every few seconds in the journal: the job says once that it
waits, looks again every `every_s` (a stat of a /dev path, which does not block), and goes on once the
node is there. Other failures (permissions, a port another program holds) still end the job, and the
coordinator logs them and starts it again.
"""

from __future__ import annotations

import asyncio
import logging
import os


async def appeared(path: str, what: str, hint: str, every_s: float, log: logging.Logger) -> None:
    """Return once `path` exists; `what` names the reader in the log lines, `hint` what to check."""
    waited = False
    while not _exists(path):
        if not waited:
            log.warning("%s: no device %s (%s); waiting for it", what, path, hint)
            waited = True
        await asyncio.sleep(every_s)
    if waited:
        log.info("%s: %s is there", what, path)


def _exists(path: str) -> bool:
    return os.path.exists(path)  # a stat of a device node: it does not wait on anything
