"""REGISTER floods: a token bucket per source address. A device stuck in a re-register loop
(some answer a 403 by registering again at once, forever) or a spoofed flood costs the hub one
dictionary look-up per message once its bucket is empty, instead of a digest check, a log line
and an answer each. The limit is per address, not per device: a village router or a township's
private line puts every camera behind one address, and all of them register at once after a
hub restart, so the burst is sized for that."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

MAX_ADDRESSES = 10_000  # buckets kept (spoofed UDP sources must not grow the table forever)


class TokenBuckets:
    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_ADDRESSES,
    ) -> None:
        self.rate, self.burst = rate, burst
        self.clock = clock
        self.max_keys = max_keys
        self.limited = 0  # requests refused
        # key → (tokens, when counted, refusals in a row); most recently used last
        self._buckets: OrderedDict[str, tuple[float, float, int]] = OrderedDict()

    def take(self, key: str) -> int:
        """Take one token from `key`'s bucket: 0 when there was one, else how many requests
        in a row were refused (1 on the first: log then, not on every one)."""
        now = self.clock()
        tokens, at, refused = self._buckets.pop(key, (self.burst, now, 0))
        tokens = min(self.burst, tokens + max(0.0, now - at) * self.rate)
        if tokens >= 1.0:
            tokens, refused = tokens - 1.0, 0
        else:
            refused += 1
            self.limited += 1
        self._buckets[key] = (tokens, now, refused)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return refused

    def __len__(self) -> int:
        return len(self._buckets)
