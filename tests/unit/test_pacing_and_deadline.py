"""Pacing to the rate limit and the invocation deadline, on a fake clock."""

import itertools

from cbsnap.pacing import LocalRateLimiter, NoRateLimit
from cbsnap.scf import Deadline, InvocationContext


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_pacer_spaces_calls_evenly_per_action() -> None:
    clock = FakeClock()
    limiter = LocalRateLimiter(20, clock=clock, sleep=clock.sleep)
    deadline = Deadline.after(60, clock)
    starts = []
    for _ in range(41):
        assert limiter.acquire("CreateSnapshot", deadline)
        starts.append(clock.now)
    assert abs((starts[-1] - starts[0]) - 2.0) < 1e-9  # 40 gaps of 50 ms
    assert all(abs((b - a) - 0.05) < 1e-9 for a, b in itertools.pairwise(starts))
    # another action has its own budget and starts at once
    assert limiter.acquire("DescribeSnapshots", deadline)
    assert clock.now == starts[-1]


def test_pacer_refuses_a_slot_past_the_deadline() -> None:
    clock = FakeClock()
    limiter = LocalRateLimiter(1, clock=clock, sleep=clock.sleep)
    deadline = Deadline.after(1.5, clock)
    assert limiter.acquire("A", deadline)
    assert limiter.acquire("A", deadline)  # starts at +1 s
    assert not limiter.acquire("A", deadline)  # would start at +2 s, after the deadline


def test_no_rate_limit_only_checks_time() -> None:
    clock = FakeClock()
    deadline = Deadline.after(1, clock)
    assert NoRateLimit().acquire("A", deadline)
    clock.now += 2
    assert not NoRateLimit().acquire("A", deadline)


def test_context_from_scf_dict_and_deadline_margin() -> None:
    ctx = InvocationContext.from_scf(
        {"time_limit_in_ms": 60000, "request_id": "r-1", "function_name": "f", "memory_limit_in_mb": 128}
    )
    assert (ctx.request_id, ctx.function_name, ctx.time_limit_ms) == ("r-1", "f", 60000)
    clock = FakeClock()
    deadline = Deadline.for_invocation(ctx, 3000, clock)
    assert deadline.remaining() == 57.0
    clock.now += 57
    assert deadline.expired


def test_margin_is_capped_for_short_functions() -> None:
    clock = FakeClock()
    ctx = InvocationContext.from_scf({"time_limit_in_ms": 3000})
    assert Deadline.for_invocation(ctx, 6000, clock).remaining() == 2.0


def test_context_from_object_or_nothing() -> None:
    class LambdaStyle:
        function_name = "fn"
        aws_request_id = "aws-1"

        def get_remaining_time_in_millis(self) -> int:
            return 1234

    ctx = InvocationContext.from_scf(LambdaStyle())
    assert (ctx.function_name, ctx.request_id, ctx.time_limit_ms) == ("fn", "aws-1", 1234)
    assert InvocationContext.from_scf(None).time_limit_ms == 3000
    assert InvocationContext.from_scf({"time_limit_in_ms": "junk"}).time_limit_ms == 3000
