"""Sign-in failures limited per client address: after `MAX_FAILURES` wrong tokens within
`WINDOW_SECONDS`, every sign-in from that address (right token or not) answers 429 with
Retry-After until the oldest of those failures is a window old. The admin token is long and
random, so this is about keeping guessing slow and visible, not about the token's strength.

The address is the one uvicorn reports: a forwarded address only from `RAPPORT_TRUSTED_PROXIES`
(api.app.proxy_options). The record is in memory, per API process: a restart forgets it."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_FAILURES = 5
WINDOW_SECONDS = 60.0
MAX_ADDRESSES = 10_000  # bounds the memory a flood of addresses can take


@dataclass
class SignInThrottle:
    max_failures: int = MAX_FAILURES
    window: float = WINDOW_SECONDS
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def _recent(self, address: str) -> deque[float]:
        failures = self._failures.get(address, deque())
        cutoff = self.clock() - self.window
        while failures and failures[0] <= cutoff:
            failures.popleft()
        if not failures:
            self._failures.pop(address, None)
        return failures

    def retry_after(self, address: str) -> int | None:
        """Whole seconds until `address` may try again, or None when it may now."""
        failures = self._recent(address)
        if len(failures) < self.max_failures:
            return None
        wait = failures[-self.max_failures] + self.window - self.clock()
        return max(1, math.ceil(wait))

    def failed(self, address: str) -> None:
        if address not in self._failures and len(self._failures) >= MAX_ADDRESSES:
            for known in list(self._failures):
                self._recent(known)
            if len(self._failures) >= MAX_ADDRESSES:
                self._failures.pop(next(iter(self._failures)))
        self._failures.setdefault(address, deque()).append(self.clock())
        while len(self._failures[address]) > self.max_failures:
            self._failures[address].popleft()
