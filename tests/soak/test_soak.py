"""The soak test (tests/soak/soak.py) at CI size: 40 CMQ requests over 30 disks from 3
worker processes, with InternalErrors, lost replies, latency and the API rate limit.

What each run must show (see docs/at-least-once.md):

* redeliveries after the previous delivery ended, tags only (no Redis): not one
  duplicate, lost or unreported snapshot;
* redeliveries racing the first delivery, tags only: no duplicate, lost or unreported
  snapshot either — CBS refuses a second snapshot while one is CREATING, and cbsnap
  looks again before any create sent more than FRESH_LOOK_SECONDS after its look;
* the same race with Redis: the same, and no throttled call (one shared pace);
* deliveries that run out of time (MessagesNotAttempted): redelivered until every disk
  has a final answer, without duplicates or unreported snapshots (an ambiguous create
  the deadline leaves unresolved is "not attempted", so it is redelivered too).
"""

from __future__ import annotations

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
    # so messages raise and are redelivered until every disk is answered. Up to 10 redeliveries:
    # with 3 s snapshots, some disks wait for other requests' snapshots across several of them.
    report = _run(requests=30, concurrent=0.0, timeout_ms=1200, client_rate_limit=5.0, max_redeliveries=10)
    _assert_exercised(report)
    assert report.not_attempted_raised > 0
    assert report.redeliveries == report.not_attempted_raised
    assert report.redeliveries_exhausted == 0
    assert report.left_not_attempted == 0, "every redelivered disk got its final answer"
    assert report.duplicates == 0, report.duplicate_samples
    assert report.lost == 0, report.lost_samples
    assert report.unreported == 0, report.unreported_samples
