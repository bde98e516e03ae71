"""A token-bucket rate limit per API key and per client address.

Buckets live in the server process: with ``--workers N`` a client may get up to N times
the configured rate. That bounds abuse of one process's CPU, which is what the limit is
for; a shared limit would need a shared store.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from guardian.errors import RateLimitedError

_MAX_BUCKETS = 100_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """``per_minute`` requests a minute after a burst of ``burst``, per bucket name."""

    def __init__(self, *, per_minute: int, burst: int) -> None:
        self._rate = per_minute / 60.0
        self._burst = float(burst)
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def charge(self, name: str) -> None:
        """Take one token from ``name``'s bucket.

        Raises:
            RateLimitedError: the bucket is empty; ``retry_after`` says when it is not.
        """
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.get(name)
            if bucket is None:
                if len(self._buckets) >= _MAX_BUCKETS:
                    self._buckets.clear()  # forget idle clients rather than grow forever
                bucket = self._buckets[name] = _Bucket(self._burst, now)
            bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
            bucket.updated = now
            if bucket.tokens < 1.0:
                wait = max(1, math.ceil((1.0 - bucket.tokens) / self._rate))
                raise RateLimitedError("too many requests; slow down", retry_after=wait)
            bucket.tokens -= 1.0


__all__ = ["RateLimiter"]
