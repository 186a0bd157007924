"""The token bucket on a fake clock: exact pacing passes, bursts are capped (property-based)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cbsnap_emulator.ratelimit import RateLimiter, TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@given(rate=st.floats(min_value=0.1, max_value=500), calls=st.integers(min_value=1, max_value=2000))
def test_evenly_paced_callers_at_the_limit_always_pass(rate: float, calls: int) -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate, clock)
    for i in range(calls):
        clock.t = 1000.0 + i / rate
        assert bucket.allow()


@given(rate=st.integers(min_value=1, max_value=200), extra=st.integers(min_value=1, max_value=50))
def test_an_instant_burst_gets_exactly_the_burst(rate: int, extra: int) -> None:
    bucket = TokenBucket(rate, FakeClock())
    results = [bucket.allow() for _ in range(rate + extra)]
    assert results.count(True) == rate


def test_refill_and_per_action_overrides() -> None:
    clock = FakeClock()
    limiter = RateLimiter(2, clock)
    assert [limiter.allow("A") for _ in range(3)] == [True, True, False]
    assert limiter.allow("B")  # buckets are per action
    clock.t += 0.5  # one token back at 2/s
    assert [limiter.allow("A") for _ in range(2)] == [True, False]
    limiter.set_rate(0, "A")
    assert all(limiter.allow("A") for _ in range(100))
    limiter.set_rate(1)  # all actions; the override is dropped
    assert limiter.rate_for("A") == 1
