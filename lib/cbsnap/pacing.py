"""Pacing API calls to the rate limit instead of hammering and backing off.

Tencent documents 20 requests/s per action for the snapshot APIs. A pacer hands
out evenly spaced start times, so a caller that respects it is never throttled
by a token bucket of the same rate.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

from cbsnap.scf import Clock, Deadline

Sleep = Callable[[float], None]


class RateLimiter(Protocol):
    """Grants permission to start one call of an action."""

    def acquire(self, action: str, deadline: Deadline) -> bool:
        """Block until the call may start; False if that would be after ``deadline``."""
        ...


class NoRateLimit:
    """Pacing turned off (``CBSNAP_RATE_LIMIT=0``)."""

    def acquire(self, action: str, deadline: Deadline) -> bool:
        """Always grant at once while time remains."""
        return not deadline.expired


class LocalRateLimiter:
    """Even spacing per action inside one process (thread-safe).

    Each call reserves the next free slot, ``1/rate`` seconds after the previous
    one; the reservation is kept even when the caller then gives up, which only
    makes the pace slightly more conservative.
    """

    def __init__(self, rate: float, *, clock: Clock = time.monotonic, sleep: Sleep = time.sleep) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive; use NoRateLimit to turn pacing off")
        self._interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def acquire(self, action: str, deadline: Deadline) -> bool:
        """Reserve the next slot for ``action`` and sleep until it comes."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next.get(action, now))
            wait = slot - now
            if wait >= deadline.remaining():
                return False
            self._next[action] = slot + self._interval
        if wait > 0:
            self._sleep(wait)
        return True


def rate_limiter_for(rate: float, *, clock: Clock = time.monotonic, sleep: Sleep = time.sleep) -> RateLimiter:
    """The limiter for a configured rate: pacing at ``rate``/s, or none for 0."""
    if rate <= 0:
        return NoRateLimit()
    return LocalRateLimiter(rate, clock=clock, sleep=sleep)
