"""Token buckets per caller: how many requests a token (or, without one, a client address) may
send per second, and how many at once.

Each caller has a bucket of ``burst`` credits that refills at ``rate`` credits per second; a
request costs its route's weight (1, or ``heavy_cost`` for the CPU-heavy routes) and is refused
when the bucket holds less. The refusal says when enough credit will be back, which the gate
sends as ``Retry-After``.

Memory is bounded: at most ``max_keys`` buckets are kept, least recently used evicted first. A
bucket left alone for ``burst / rate`` seconds is full again, exactly what a new bucket is, so
evicting it forgets nothing; only a caller rotating through more than ``max_keys`` keys within
that time can get a fresh bucket early.

The buckets live in the process: with several replicas (or ``--workers``) each keeps its own, so
a caller spread over ``n`` of them gets up to ``n`` times the rate.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable


class RateLimiter:
    """Token buckets keyed by caller.

    Parameters
    ----------
    rate
        Credits added per second (the sustained requests per second of a weight-1 route).
    burst
        Credits a bucket holds at most (and starts with).
    max_keys
        Most buckets kept; the least recently used is evicted past it.
    clock
        Seconds, monotonic (tests pass their own).

    Examples
    --------
    >>> now = [0.0]
    >>> limiter = RateLimiter(rate=2.0, burst=3, clock=lambda: now[0])
    >>> [limiter.take("a") for _ in range(4)]
    [0.0, 0.0, 0.0, 0.5]
    >>> limiter.take("b")        # another caller has its own bucket
    0.0
    >>> now[0] = 0.5             # one credit back
    >>> limiter.take("a"), limiter.take("a")
    (0.0, 0.5)
    """

    def __init__(
        self,
        rate: float,
        burst: float,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self.clock = clock
        # key -> (credits, time they were counted)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str, cost: float = 1.0) -> float:
        """Spend ``cost`` credits of ``key``'s bucket: 0.0 when they were there (the request may
        go), else the seconds until they will be (the request is refused and nothing is spent).
        """
        now = self.clock()
        with self._lock:
            credits, then = self._buckets.pop(key, (self.burst, now))
            credits = min(self.burst, credits + max(now - then, 0.0) * self.rate)
            wait = 0.0
            if credits >= cost:
                credits -= cost
            else:
                wait = (cost - credits) / self.rate
            self._buckets[key] = (credits, now)  # newest at the end
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        return wait

    @staticmethod
    def retry_after(wait: float) -> int:
        """Whole seconds for a ``Retry-After`` header (at least 1)."""
        return max(1, math.ceil(wait))
