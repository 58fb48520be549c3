"""A sliding-window attempt counter for login and token creation, per user and address.

The counters live in this process's memory: with several replicas each counts on its own,
so the effective limit is ``limit * replicas`` (docs/server.md says so). That is enough to
turn password guessing from thousands of tries a second into a handful a minute.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque

__all__ = ["RateLimiter"]

#: Keys remembered at most; the oldest are forgotten first, so memory stays bounded.
_MAX_KEYS = 100_000


class RateLimiter:
    """At most ``limit`` hits per ``window_s`` seconds for each key."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, *, now: float | None = None) -> int:
        """Count one attempt; 0 when allowed, else the seconds to wait (the hit is not counted)."""
        at = time.monotonic() if now is None else now
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                if len(self._hits) >= _MAX_KEYS:
                    self._hits.pop(next(iter(self._hits)))
                hits = self._hits[key] = deque()
            while hits and hits[0] <= at - self.window_s:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(1, math.ceil(hits[0] + self.window_s - at))
            hits.append(at)
            return 0

    def reset(self, key: str) -> None:
        """Forget ``key``'s attempts (after a successful login)."""
        with self._lock:
            self._hits.pop(key, None)
