"""Token buckets per action, or per region and action (rate = limit per second, burst = limit)."""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    """A token bucket holding at most ``max(rate, 1)`` tokens and refilling ``rate`` per second.

    Starting full, a caller evenly paced at exactly ``rate`` requests per second is never refused: each
    request spends one token and the interval until the next refills one, so the level never drops below
    ``burst - 1``. A burst beyond ``burst`` requests within a moment is refused.
    """

    # Float slack so a refill that lands a hair under a whole token (time resolution) still counts.
    _EPSILON = 1e-9

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.capacity = max(rate, 1.0)
        self._clock = clock
        self._tokens = self.capacity
        self._stamp = clock()

    def allow(self) -> bool:
        """Spend a token if one is available."""
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens + self._EPSILON >= 1.0:
            self._tokens -= 1.0
            return True
        return False


RATE_SCOPES = ("action", "region")


class RateLimiter:
    """Token buckets; ``rate <= 0`` disables limiting. Callers hold the emulator lock.

    ``scope="action"`` keeps one bucket per action for the whole account; ``scope="region"`` one per
    region and action, for benchmarks that model a per-region limit. Limits are set per action either way.
    """

    def __init__(
        self, default_rate: float, clock: Callable[[], float] = time.monotonic, *, scope: str = "action"
    ) -> None:
        self.default_rate = default_rate
        self.overrides: dict[str, float] = {}
        self._clock = clock
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self.scope = check_scope(scope)

    def set_scope(self, scope: str) -> None:
        """Switch between per-action and per-region-and-action buckets (all buckets refill)."""
        self.scope = check_scope(scope)
        self._buckets.clear()

    def set_rate(self, rate: float, action: str | None = None) -> None:
        """Set the limit for one action, or (``action=None``) for all actions, dropping overrides."""
        if rate < 0:
            raise ValueError("rate must be >= 0 (0 disables the limit)")
        if action is None:
            self.default_rate = rate
            self.overrides.clear()
            self._buckets.clear()
        else:
            self.overrides[action] = rate
            for key in [k for k in self._buckets if k[1] == action]:
                del self._buckets[key]

    def rate_for(self, action: str) -> float:
        """The limit in force for ``action`` (requests per second, 0 = unlimited)."""
        return self.overrides.get(action, self.default_rate)

    def allow(self, action: str, region: str | None = None) -> bool:
        """Whether one more ``action`` request (to ``region``) is within the limit now."""
        rate = self.rate_for(action)
        if rate <= 0:
            return True
        key = ((region or "") if self.scope == "region" else "", action)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(rate, self._clock)
        return bucket.allow()

    def reset(self) -> None:
        """Refill every bucket."""
        self._buckets.clear()


def check_scope(scope: str) -> str:
    """Validate a rate-limit scope name."""
    if scope not in RATE_SCOPES:
        raise ValueError(f"rate scope must be one of {', '.join(RATE_SCOPES)}, got {scope!r}")
    return scope
