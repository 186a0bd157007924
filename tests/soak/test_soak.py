"""The soak test (tests/soak/soak.py) at CI size: 40 CKafka records over 30 disks from 3
worker processes, with InternalErrors, lost replies, latency and the API rate limit.

What each run must show (see docs/at-least-once.md):

* redeliveries after the previous delivery ended, tags only (no Redis): not one
  duplicate, lost or unreported snapshot;
* redeliveries racing the first delivery, tags only: no duplicate, lost or unreported
  snapshot either — CBS refuses a second snapshot while one is CREATING, and cbsnap
  looks again before any create sent more than FRESH_LOOK_SECONDS after its look;
* the same race with Redis: the same, and no throttled call (one shared pace);
* deliveries that run out of time (RedeliveryRequested): redelivered until every disk
  has a final answer, without duplicates or unreported snapshots (an ambiguous create
  the deadline leaves unresolved is "not attempted", so it is redelivered too);
* Redis killed (issue 9, finding 2): worker processes SIGKILLed while they hold Redis locks,
  and the Redis server itself killed and restarted empty mid-run: every killed delivery is
  redelivered, and every disk ends with its snapshot exactly once;
* Redis hung (issue 9, finding 3): every Redis operation answered 1 s late for part of the
  run: no invocation exceeds its time limit, and every disk ends with exactly one snapshot.
"""

from __future__ import annotations

import os
import shutil

import pytest

from tests.soak.soak import Report, SoakConfig, format_report, run_soak

CI_SIZE = {"requests": 40, "disks": 30, "processes": 3, "seed": 20261128}


def _run(**overrides: object) -> Report:
    report = run_soak(SoakConfig(**{**CI_SIZE, **overrides}))  # type: ignore[arg-type]
    print(format_report(report))  # shown with -s, or when the test fails
    return report


def _assert_exercised(report: Report) -> None:
    """The run did what a soak is for: redeliveries, every fault kind, throttling, successes."""
    assert report.deliveries > report.requests
    assert report.not_attempted_raised > 0, "some deliveries asked the platform for a redelivery"
    assert report.duplicate_deliveries > 0
    assert {"InternalError", "lost_reply", "latency"} <= set(report.faults_injected), report.faults_injected
    assert report.results_by_code.get("0", 0) > 0
    assert report.handler_errors == 0, report.handler_error_samples
    assert report.unknown_keys == 0


@pytest.mark.slow
def test_sequential_redeliveries_without_redis_make_exactly_one_snapshot_each() -> None:
    report = _run(concurrent=0.0)
    _assert_exercised(report)
    assert report.concurrent_measured == 0, "no delivery may overlap another of its message"
    assert report.duplicates == 0, report.duplicate_samples
    assert report.lost == 0, report.lost_samples
    assert report.unreported == 0, report.unreported_samples
    assert report.snapshots_found == report.snapshots_expected


@pytest.mark.slow
def test_racing_redeliveries_without_redis_make_exactly_one_snapshot_each() -> None:
    report = _run(concurrent=0.5)
    _assert_exercised(report)
    assert report.concurrent_measured > 0
    assert report.duplicates == 0, report.duplicate_samples
    assert report.lost == 0, report.lost_samples
    assert report.unreported == 0, report.unreported_samples


@pytest.mark.slow
@pytest.mark.redis
def test_racing_redeliveries_with_redis_make_exactly_one_snapshot_each(redis_url: str) -> None:
    report = _run(concurrent=0.5, redis=redis_url)
    _assert_exercised(report)
    assert report.concurrent_measured > 0
    assert report.duplicates == 0, report.duplicate_samples
    assert report.lost == 0, report.lost_samples
    assert report.unreported == 0, report.unreported_samples
    assert report.throttled_calls == 0, "one shared pace keeps every instance under the API limit"


@pytest.mark.slow
def test_deliveries_that_run_out_of_time_are_redelivered_until_every_disk_is_answered() -> None:
    # A 1.2 s limit and 5 calls/s per instance: a 5-disk request rarely fits in one invocation,
    # so messages raise and are redelivered until every disk is answered. Up to 30 redeliveries:
    # with 3 s snapshots, some disks wait for other requests' snapshots across many of them (a
    # 16027 asks for a redelivery too, and a disk several requests want stays busy for a while;
    # 10 ran out now and then on a loaded machine).
    report = _run(requests=30, concurrent=0.0, timeout_ms=1200, client_rate_limit=5.0, max_redeliveries=30)
    _assert_exercised(report)
    assert report.not_attempted_raised > 0
    assert report.redeliveries_exhausted == 0, report.exhausted_samples
    assert report.redeliveries == report.not_attempted_raised + report.killed_at_limit
    assert report.left_not_attempted == 0, "every redelivered disk got its final answer"
    assert report.duplicates == 0, report.duplicate_samples
    assert report.lost == 0, report.lost_samples
    assert report.unreported == 0, report.unreported_samples


@pytest.fixture
def redis_server_binary() -> str:
    """``redis-server``, for a private Redis this test may kill or hang (never the shared one).

    Skips with a reason when it is not installed locally; under CI an absent binary fails.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("redis-server is required in CI for the Redis kill and hang soaks")
        pytest.skip("redis-server is not installed; install it to run the Redis kill and hang soaks")
    return binary


def _assert_exactly_once(report: Report) -> None:
    assert report.redeliveries_exhausted == 0, report.exhausted_samples
    assert report.left_not_attempted == 0, "every disk got its final answer"
    assert report.duplicates == 0, report.duplicate_samples
    assert report.lost == 0, report.lost_samples
    assert report.unreported == 0, report.unreported_samples
    assert report.without_snapshot == 0, "every disk of every request ends with its snapshot"
    assert report.snapshots_found == report.snapshots_expected == report.pairs


# A short function limit keeps a dead instance's lock short (it lives to the invocation's
# deadline plus a grace), so redeliveries get through within the run.
TROUBLE_LIMIT_MS = 4000
# Up to 60 redeliveries: a disk other requests keep snapshotting (3 s each) answers 16027 for
# a while, and every disk must end with its snapshot. The soak redelivers after 1 s (SCF about a
# minute), so under CI load 30 once ran out while other requests kept one disk CREATING for the
# whole 28 s run (the disk still got its snapshot through a duplicate delivery: 110/110, 0 lost).
TROUBLE = {"concurrent": 0.5, "timeout_ms": TROUBLE_LIMIT_MS, "max_redeliveries": 60, "own_redis": True}


@pytest.mark.slow
@pytest.mark.redis
def test_workers_and_redis_killed_mid_run_lose_and_duplicate_nothing(redis_server_binary: str) -> None:
    # Creates take 0.3 s, so a worker can be caught holding a disk's lock; up to 6 workers are
    # SIGKILLed then, and 6 s in the Redis server is SIGKILLed and restarted empty 2 s later.
    report = _run(
        **TROUBLE,
        create_latency=0.3,
        kill_share=0.3,
        max_kills=6,
        redis_kill_at=6.0,
        redis_down_seconds=2.0,
    )
    _assert_exercised(report)
    assert report.workers_killed >= 3, "workers were killed while holding locks"
    assert report.redis_kills == 1 and report.deliveries_during_outage > 0
    _assert_exactly_once(report)
    # every killed delivery and every one that asked for it was delivered again
    assert report.redeliveries == report.workers_killed + report.not_attempted_raised
    assert report.overran_timeout == 0, f"slowest delivery {report.slowest_delivery_seconds} s"


@pytest.mark.slow
@pytest.mark.redis
def test_a_hung_redis_neither_overruns_an_invocation_nor_loses_or_duplicates(
    redis_server_binary: str,
) -> None:
    # From 2 s to 10 s into the run every Redis operation is answered 1 s late.
    report = _run(**TROUBLE, hang_from=2.0, hang_seconds=8.0, hang_delay=1.0)
    _assert_exercised(report)
    assert report.hang_seconds >= 7.5 and report.redis_stalled_ops > 0
    assert report.deliveries_during_hang > 0
    assert report.overran_timeout == 0, f"slowest delivery {report.slowest_delivery_seconds} s"
    assert report.slowest_delivery_seconds < TROUBLE_LIMIT_MS / 1000
    _assert_exactly_once(report)
