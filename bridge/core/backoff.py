"""Reconnect delays: exponential back-off with jitter, randomness injected.

Delay n (n = 0, 1, ...) is drawn from [base/2, base] with
base = min(max_s, initial_s * 2**n): the first retry comes within
`initial_s`, many charge points restarted together do not reconnect in
lockstep, and the delay never exceeds `max_s`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Backoff:
    initial_s: float = 1.0
    max_s: float = 60.0
    rand: Callable[[], float] = field(default=random.random, repr=False)
    failures: int = 0

    def next_delay(self) -> float:
        base = min(self.max_s, self.initial_s * 2.0 ** min(self.failures, 32))
        self.failures += 1
        return base / 2.0 + (base / 2.0) * self.rand()

    def reset(self) -> None:
        self.failures = 0
