"""Two simulated years of daily runs against an in-memory CBS (tests/unit/gfs_world.py), through
the real pipeline: retention after every create, room made at the quota, 16006 when the rules keep
everything. After every run the snapshots cbsnap keeps are exactly the rules applied to everything
it ever created, no foreign snapshot was touched, and no disk ever held more than 64.

Runs start a few minutes either side of midnight UTC (so two runs can share a day, or skip one),
the function's clock is minutes off the cloud's, some days are skipped, and foreign snapshots
appear on the disk.
"""

from __future__ import annotations

import io
import random
from datetime import datetime, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cbsnap.cbs import SNAPSHOT_QUOTA
from cbsnap.gfs import zone_named
from cbsnap.idempotent import IdempotentCreator
from cbsnap.logs import Log
from cbsnap.lookup import KeyedLookup
from cbsnap.ownership import OWNER_TAG, OWNER_VALUE
from cbsnap.pipeline import Pipeline
from cbsnap.scf import Deadline
from cbsnap.sinks import Redactor, RequestMeta
from tests.unit.gfs_world import MemoryCbs, World

DISK = "disk-sim00001"
DAY = 86_400.0
START = datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp()
DAYS = 730


BUCKETS = {
    "daily": lambda t: (t.year, t.month, t.day),
    "weekly": lambda t: t.isocalendar()[:2],
    "monthly": lambda t: (t.year, t.month),
    "yearly": lambda t: t.year,
}


def oracle(created: list[tuple[str, datetime]], rules: dict[str, int]) -> set[str]:
    """restic's rules, written independently of cbsnap.gfs: for each rule, walk the snapshots
    newest first and keep the first of each new bucket until the rule's count is reached.
    ``created`` is in creation order, each with its local creation time."""
    keep: set[str] = set()
    for rule, count in rules.items():
        seen: set[object] = set()
        for sid, local in reversed(created):
            bucket = sid if rule == "keepLast" else BUCKETS[rule](local)
            if bucket in seen:
                continue
            seen.add(bucket)
            if len(seen) > count:
                break
            keep.add(sid)
    return keep


def owned_alive(world: World) -> set[str]:
    return {s.snapshot_id for s in world.snapshots.values() if s.tags.get(OWNER_TAG) == OWNER_VALUE}


def simulate(
    rules: dict[str, int], zone: str, seed: int, *, days: int = DAYS, foreign_rate: float = 0.05
) -> dict[str, int]:
    rng = random.Random(seed)
    world = World(now=START)
    world.add_disk(DISK)
    skew = [0.0]
    api = MemoryCbs(world)
    pipeline = Pipeline(
        lambda region: api,
        region="ap-guangzhou",
        sinks=[],
        logger=Log("cbsnap", Redactor([]), stream=io.StringIO()),
        lookup=KeyedLookup(wall_clock=lambda: world.now + skew[0]),
        creator=IdempotentCreator(),
        wall_clock=lambda: datetime.fromtimestamp(world.now + skew[0], timezone.utc),
    )
    tz = zone_named(zone)
    assert tz is not None
    retention = {**rules, "timezone": zone}
    document = {"disks": [DISK], "snapshotName": "nightly", "retention": retention}
    ours: list[tuple[str, datetime]] = []
    foreign: set[str] = set()
    tally = {"runs": 0, "quota_refusals": 0, "foreign": 0}
    for day in range(days):
        world.now = START + day * DAY + rng.uniform(-600, 600)  # around midnight UTC
        if rng.random() < 0.1:
            continue  # a day without a run
        if rng.random() < foreign_rate and world.count(DISK) < world.quota:
            foreign.add(world.add_snapshot(DISK, "nightly", {"owner": "someone-else"}))
            tally["foreign"] += 1
        skew[0] = rng.uniform(-300, 300)  # the function's clock, minutes off the cloud's
        outcome = pipeline.run(document, RequestMeta("timer", f"timer/nightly/{day}"), Deadline.after(60))
        tally["runs"] += 1
        [create] = [r for r in outcome.results if r.action is None]
        if create.ok:
            assert create.snapshotId is not None
            ours.append((create.snapshotId, datetime.fromtimestamp(world.created_at[create.snapshotId], tz)))
        else:
            assert create.code == 16006 and "they keep the rest" in create.message, create.message
            tally["quota_refusals"] += 1
        assert owned_alive(world) == oracle(ours, rules), f"day {day}"
        assert foreign <= set(world.snapshots), "a foreign snapshot was deleted"
        assert world.violations == []
        assert world.most_on_a_disk <= SNAPSHOT_QUOTA
    return tally


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rules=st.fixed_dictionaries(
        {"daily": st.integers(1, 40)},
        optional={
            "keepLast": st.integers(1, 10),
            "weekly": st.integers(1, 20),
            "monthly": st.integers(1, 12),
            "yearly": st.integers(1, 3),
        },
    ),
    zone=st.sampled_from(["UTC", "Asia/Shanghai", "America/New_York"]),
    seed=st.integers(0, 2**32),
)
def test_two_years_of_daily_runs_keep_exactly_what_the_rules_keep(
    rules: dict[str, int], zone: str, seed: int
) -> None:
    simulate(rules, zone, seed)


def test_rules_that_keep_more_than_the_quota_meet_16006_and_delete_nothing_extra() -> None:
    tally = simulate({"daily": 40, "weekly": 20, "monthly": 12, "yearly": 2}, "UTC", 7)
    assert tally["quota_refusals"] > 0 and tally["foreign"] > 0


def test_keep_last_64_rotates_a_full_disk() -> None:
    tally = simulate({"keepLast": 64}, "UTC", 3, days=200, foreign_rate=0.0)
    assert tally["quota_refusals"] == 0 and tally["runs"] > 64


def test_foreign_snapshots_filling_the_quota_make_16006_not_a_deletion_of_theirs() -> None:
    tally = simulate({"keepLast": 64}, "UTC", 5, days=300, foreign_rate=0.2)
    assert tally["quota_refusals"] > 0
