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


def test_a_phase_delays_each_actions_first_call_and_ends_with_the_share() -> None:
    clock = FakeClock()
    limiter = LocalRateLimiter(20, clock=clock, sleep=clock.sleep)
    deadline = Deadline.after(60, clock)
    assert limiter.acquire("A", deadline)  # a warm instance's earlier call: no phase then
    clock.now += 10
    limiter.limit_to(4.0, 0.15)
    start = clock.now
    assert limiter.acquire("A", deadline) and clock.now == start + 0.15
    assert limiter.acquire("A", deadline) and abs(clock.now - (start + 0.40)) < 1e-9  # then every 1/4 s
    assert limiter.acquire("B", deadline) and clock.now == start + 0.40  # B's phase has passed already
    limiter.limit_to(None)  # the next invocation: no share, no phase
    before = clock.now
    assert limiter.acquire("C", deadline) and clock.now == before


def test_chunks_with_staggered_phases_together_keep_to_the_limit_from_the_first_call() -> None:
    # Five chunks of one region, each paced to 20/5 per second with phase i/20: their calls,
    # merged, are exactly 1/20 s apart — the account's bucket never sees a burst.
    limit, chunks, calls = 20.0, 5, 6
    merged: list[float] = []
    for i in range(chunks):
        clock = FakeClock()
        limiter = LocalRateLimiter(limit, clock=clock, sleep=clock.sleep)
        limiter.limit_to(limit / chunks, i / limit)
        deadline = Deadline.after(60, clock)
        for _ in range(calls):
            assert limiter.acquire("CreateSnapshot", deadline)
            merged.append(clock.now - 1000.0)
    merged.sort()
    assert len(merged) == chunks * calls
    assert all(abs((b - a) - 1 / limit) < 1e-9 for a, b in itertools.pairwise(merged))


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
