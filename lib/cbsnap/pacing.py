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

    def limit_to(self, rate: float | None, phase: float = 0.0) -> None:
        """Pace this invocation at most at ``rate`` calls/s per action (None: the configured rate),
        the first call of each action no sooner than ``phase`` seconds from now.

        A fan-out chunk runs beside its siblings in other instances and paces to its share of
        the account's limit, its phase set apart from theirs so that their first calls do not
        all come at once; a limiter shared between instances (Redis) already does that and
        ignores it.
        """
        ...


class NoRateLimit:
    """Pacing turned off (``CBSNAP_RATE_LIMIT=0``)."""

    def acquire(self, action: str, deadline: Deadline) -> bool:
        """Always grant at once while time remains."""
        return not deadline.expired

    def limit_to(self, rate: float | None, phase: float = 0.0) -> None:
        """Pacing is off: nothing to narrow."""


class LocalRateLimiter:
    """Even spacing per action inside one process (thread-safe).

    Each call reserves the next free slot, ``1/rate`` seconds after the previous
    one; the reservation is kept even when the caller then gives up, which only
    makes the pace slightly more conservative.
    """

    def __init__(self, rate: float, *, clock: Clock = time.monotonic, sleep: Sleep = time.sleep) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive; use NoRateLimit to turn pacing off")
        self._configured = 1.0 / rate
        self._interval = self._configured
        self._clock = clock
        self._sleep = sleep
        self._next: dict[str, float] = {}
        self._start = float("-inf")  # no action's first call before this (a chunk's phase)
        self._lock = threading.Lock()

    def limit_to(self, rate: float | None, phase: float = 0.0) -> None:
        """Space calls by ``1/rate`` (never faster than configured), each action's first call
        ``phase`` seconds from now at the soonest; None restores the configured rate."""
        with self._lock:
            self._interval = self._configured if rate is None else max(self._configured, 1.0 / rate)
            self._start = self._clock() + phase if rate is not None and phase > 0 else float("-inf")

    def acquire(self, action: str, deadline: Deadline) -> bool:
        """Reserve the next slot for ``action`` and sleep until it comes."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._start, self._next.get(action, now))
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
