"""The use cases — SnapshotService, ConsistentGroups, Janitor — against the in-memory CBS.

No SDK, no HTTP, no threads, no sleeping: :class:`tests.fakes.memory_cbs.MemoryCbs` keeps
CBS's state and rules behind cbsnap's own ``CbsApi`` protocol, and a manual clock stands
in for time. What each test asserts is what a caller or the cloud would see: per-disk
results and the snapshots that exist afterwards.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from cbsnap.client import RetryPolicy
from cbsnap.codes import SeedCode
from cbsnap.groups import ConsistentGroups
from cbsnap.idempotent import IdempotentCreator
from cbsnap.janitor import ALREADY_GONE, DRY_RUN_MESSAGE, DiskScope, Janitor
from cbsnap.ledger import Ledger
from cbsnap.lookup import KeyedLookup
from cbsnap.models import Retention, SnapshotResult
from cbsnap.outcome import in_order
from cbsnap.ownership import KEY_TAG, OWNER_TAG, OWNER_VALUE, disk_key
from cbsnap.request import Request, prepare
from cbsnap.scf import Deadline
from cbsnap.selectors import DiskResolver
from cbsnap.sinks import RequestMeta
from cbsnap.snapshots import FRESH_LOOK_SECONDS, SnapshotService
from cbsnap.workers import sequential
from tests.fakes.memory_cbs import REGION, Call, ManualClock, MemoryCbs
from tests.fakes.memory_ledger import MemoryLedger

DAY = 86_400.0
KEY = "ckafka/cbsnap-requests/0/42"
A, B, C = "disk-aaaaaaa1", "disk-bbbbbbb2", "disk-ccccccc3"
OWNED = {OWNER_TAG: OWNER_VALUE}
QUICK = RetryPolicy(base_delay=0.01, max_delay=0.05)


@dataclass
class World:
    """One region of CBS in memory, a clock, and the use cases wired to them."""

    clock: ManualClock = field(default_factory=ManualClock)
    ledger: Ledger | None = None

    def __post_init__(self) -> None:
        self.cbs = MemoryCbs(clock=self.clock)

    def deadline(self, seconds: float = 60.0) -> Deadline:
        return Deadline.after(seconds, self.clock)

    def request(self, document: dict[str, Any], key: str = KEY, *, fresh: bool = False) -> Request:
        meta = RequestMeta("ckafka", key, key_is_fresh=fresh)
        return prepare(document, meta, now=self.clock.wall())

    def _parts(self) -> tuple[KeyedLookup, IdempotentCreator]:
        lookup = KeyedLookup(wall_clock=self.clock)
        creator = IdempotentCreator(QUICK, sleep=self.clock.sleep, rng=random.Random(7))
        return lookup, creator

    def snapshot(self, document: dict[str, Any], key: str = KEY, **kwargs: Any) -> list[SnapshotResult]:
        """One delivery of a snapshot request: resolve, then SnapshotService."""
        lookup, creator = self._parts()
        service = SnapshotService(
            lambda region: self.cbs, lookup=lookup, creator=creator, ledger=self.ledger, clock=self.clock
        )
        request = self.request(document, key, **kwargs)
        deadline = self.deadline()
        resolution = DiskResolver(lambda region: self.cbs, REGION, sequential).resolve(request, deadline)
        return in_order([*resolution.refused, *service.snapshot(request, resolution, deadline)])

    def groups(self, document: dict[str, Any], key: str = KEY) -> list[SnapshotResult]:
        """One delivery of a consistent request: resolve, then ConsistentGroups."""
        lookup, creator = self._parts()
        groups = ConsistentGroups(lambda region: self.cbs, lookup=lookup, creator=creator)
        request = self.request({**document, "consistent": True}, key)
        deadline = self.deadline()
        resolution = DiskResolver(lambda region: self.cbs, REGION, sequential).resolve(request, deadline)
        return in_order([*resolution.refused, *groups.snapshot(request, resolution, deadline)])

    def janitor(self, *, batch_size: int = 20) -> Janitor:
        return Janitor(lambda region: self.cbs, region=REGION, wall_clock=self.clock, batch_size=batch_size)

    def keyed(self, disk_id: str, key: str = KEY, part: str | None = None) -> list[str]:
        """IDs of the disk's snapshots carrying the per-disk key of ``key`` (``part``: a group's)."""
        tag = (KEY_TAG, disk_key(key, part or disk_id))
        return [s.snapshot_id for s in self.cbs.snapshots_of(disk_id, tag=tag)]


@pytest.fixture
def world() -> World:
    w = World()
    for disk in (A, B, C):
        w.cbs.add_disk(disk, instance_id="ins-00000001")
    return w


def codes(results: Sequence[SnapshotResult]) -> list[int]:
    return [r.code for r in results]


# -- SnapshotService -------------------------------------------------------------------------------


def test_a_redelivery_adopts_what_the_first_delivery_made(world: World) -> None:
    first = world.snapshot({"disks": [A, B], "snapshotName": "nightly"})
    assert codes(first) == [0, 0] and all(r.snapshotId for r in first)
    world.clock.advance(60)  # the snapshots are NORMAL now: CBS would accept a second one

    again = world.snapshot({"disks": [A, B], "snapshotName": "nightly"})

    assert [r.snapshotId for r in again] == [r.snapshotId for r in first]
    assert all(r.adopted for r in again)
    assert world.cbs.count("CreateSnapshot") == 2
    assert [world.keyed(A), world.keyed(B)] == [[first[0].snapshotId], [first[1].snapshotId]]


def test_a_fresh_key_is_never_looked_for(world: World) -> None:
    [result] = world.snapshot({"storageId": A}, key="webhook/fresh", fresh=True)
    assert result.ok
    assert world.cbs.count("DescribeSnapshots") == 0


def test_a_lost_create_reply_is_adopted_not_repeated(world: World) -> None:
    world.cbs.lose_reply("CreateSnapshot")

    [result] = world.snapshot({"storageId": A})

    assert result.ok and result.adopted
    assert world.keyed(A) == [result.snapshotId]
    assert world.cbs.count("CreateSnapshot") == 1, "the look found it: no second create"


def test_an_internal_error_that_committed_nothing_is_retried_once_looked(world: World) -> None:
    world.cbs.fail("CreateSnapshot", "InternalError")

    [result] = world.snapshot({"storageId": A})

    assert result.ok and not result.adopted
    assert world.keyed(A) == [result.snapshotId]
    assert world.cbs.count("CreateSnapshot") == 2


def test_a_failed_look_leaves_the_disk_not_attempted_and_creates_nothing(world: World) -> None:
    first = world.snapshot({"storageId": A})
    world.clock.advance(60)
    world.cbs.fail("DescribeSnapshots", "InternalError")

    [result] = world.snapshot({"storageId": A})

    assert not result.attempted and result.needs_redelivery
    assert "could not look" in result.message
    assert world.cbs.count("CreateSnapshot") == 1
    # the redelivery can look, and adopts
    [again] = world.snapshot({"storageId": A})
    assert again.snapshotId == first[0].snapshotId
    assert world.keyed(A) == [again.snapshotId]


def test_a_lost_reply_whose_look_then_fails_is_not_attempted(world: World) -> None:
    world.cbs.lose_reply("CreateSnapshot")
    broken: list[bool] = []

    def looks_fail_from_now_on(call: Call) -> None:
        if call.action == "DescribeSnapshots" and not broken:  # the look-before-create worked
            broken.append(True)
            world.cbs.fail("DescribeSnapshots", times=None)

    world.cbs.after_reply = looks_fail_from_now_on

    [result] = world.snapshot({"storageId": A})

    assert not result.attempted and result.needs_redelivery
    assert "outcome of an ambiguous failure is unknown" in result.message
    assert len(world.keyed(A)) == 1, "it was made: only a redelivery's look can settle it"
    world.cbs.failures.clear()
    [again] = world.snapshot({"storageId": A})
    assert again.ok and again.adopted and world.keyed(A) == [again.snapshotId]


def test_another_requests_snapshot_in_progress_is_16027_and_asks_for_a_redelivery(world: World) -> None:
    world.cbs.add_snapshot(A, state="CREATING", name="someone-else")

    [result] = world.snapshot({"storageId": A})

    assert result.code == SeedCode.CBS_CREATING_SNAPSHOT and result.attempted
    assert result.needs_redelivery, "busy may pass: the platform delivers again"
    assert world.keyed(A) == []


def test_a_create_delayed_past_the_fresh_look_window_looks_again_and_adopts(world: World) -> None:
    made: list[str] = []

    def meanwhile(call: Call) -> None:
        # Right after our look answered "nothing": another delivery of the same request
        # creates the snapshot, it finishes, and our create is held up past the window.
        if call.action == "DescribeSnapshots" and not made:
            other = world.cbs.add_snapshot(A, tags={**OWNED, KEY_TAG: disk_key(KEY, A)}, state="NORMAL")
            made.append(other)
            world.clock.advance(FRESH_LOOK_SECONDS + 1)

    world.cbs.after_reply = meanwhile

    [result] = world.snapshot({"storageId": A})

    assert result.ok and result.adopted and result.snapshotId == made[0]
    assert world.cbs.count("CreateSnapshot") == 0
    assert world.keyed(A) == made


def test_a_paced_batch_refreshes_its_look_once_per_window_not_once_per_disk() -> None:
    # A fan-out chunk paces its creates to its share of the limit (here 2/s): the ten disks of a
    # look's batch are created over 5 s, so most creates come after the look went stale. Each
    # create must still follow a look begun at most FRESH_LOOK_SECONDS before it, but one
    # DescribeSnapshots refreshes the whole batch: it had cost one per stale disk, which capped
    # a fleet at 0.91 of the limit (bench/README.md).
    world = World()
    disks = [f"disk-{i:08d}" for i in range(10)]
    for disk in disks:
        world.cbs.add_disk(disk)
    timeline: list[tuple[float, str]] = []

    def paced(call: Call) -> None:
        if call.action == "CreateSnapshot":
            timeline.append((world.clock(), "create"))
            world.clock.advance(0.5)  # the next create's slot
        elif call.action == "DescribeSnapshots":
            timeline.append((world.clock(), "look"))

    world.cbs.on_call = paced

    results = world.snapshot({"disks": [{"storageId": d} for d in disks]})

    assert all(r.ok and not r.adopted for r in results) and len(world.cbs.snapshots) == 10
    looks = [t for t, what in timeline if what == "look"]
    creates = [t for t, what in timeline if what == "create"]
    assert len(looks) <= 1 + int(5.0 / FRESH_LOOK_SECONDS), timeline
    assert all(any(0 <= t - look <= FRESH_LOOK_SECONDS for look in looks) for t in creates), timeline


def test_a_batch_refresh_finds_what_a_concurrent_delivery_made_meanwhile(world: World) -> None:
    made: list[str] = []

    def meanwhile(call: Call) -> None:
        # After our first look: another delivery makes B's snapshot, and time passes the window.
        if call.action == "CreateSnapshot" and call.disks == (A,) and not made:
            made.append(world.cbs.add_snapshot(B, tags={**OWNED, KEY_TAG: disk_key(KEY, B)}, state="NORMAL"))
            world.clock.advance(FRESH_LOOK_SECONDS + 1)

    world.cbs.on_call = meanwhile

    results = world.snapshot({"disks": [{"storageId": A}, {"storageId": B}, {"storageId": C}]})

    by_disk = {r.storageId: r for r in results}
    assert by_disk[B].adopted and by_disk[B].snapshotId == made[0]
    assert len(world.keyed(B)) == 1 and all(len(world.keyed(d)) == 1 for d in (A, C))


def test_the_look_pages_newest_first_until_it_finds_the_key(world: World) -> None:
    first = world.snapshot({"storageId": A})
    world.clock.advance(60)
    for i in range(150):  # newer snapshots of the disk push ours to the second page
        world.cbs.add_snapshot(A, name=f"other-{i}")
        world.clock.advance(1)

    [again] = world.snapshot({"storageId": A})

    assert again.snapshotId == first[0].snapshotId and again.adopted
    pages = [c.params["offset"] for c in world.cbs.calls if c.action == "DescribeSnapshots"]
    assert pages[-2:] == [0, 100]


def test_a_lock_held_by_another_delivery_leaves_the_disk_not_attempted() -> None:
    ledger = MemoryLedger()
    world = World(ledger=ledger)
    world.cbs.add_disk(A)
    world.cbs.add_disk(B)
    ledger.held_elsewhere(disk_key(KEY, A))

    results = world.snapshot({"disks": [A, B]})

    assert [(r.storageId, r.attempted) for r in results] == [(A, False), (B, True)]
    assert "holds this disk's lock" in results[0].message and results[0].needs_redelivery
    assert world.keyed(A) == [] and results[1].ok
    assert ledger.records == {disk_key(KEY, B): results[1].snapshotId}
    assert ledger.locks == {disk_key(KEY, A): "another delivery"}, "ours were released"


def test_the_ledger_answers_a_redelivery_without_looking() -> None:
    ledger = MemoryLedger()
    world = World(ledger=ledger)
    world.cbs.add_disk(A)
    [first] = world.snapshot({"storageId": A})
    looks = world.cbs.count("DescribeSnapshots")

    [again] = world.snapshot({"storageId": A})

    assert again.snapshotId == first.snapshotId and again.adopted
    assert world.cbs.count("DescribeSnapshots") == looks
    # A ledger that lost its memory (Redis restarted empty): the tags still answer.
    ledger.forget()
    world.clock.advance(60)
    [third] = world.snapshot({"storageId": A})
    assert third.snapshotId == first.snapshotId and world.keyed(A) == [first.snapshotId]


# -- ConsistentGroups ------------------------------------------------------------------------------


@pytest.fixture
def two_instances() -> World:
    w = World()
    w.cbs.add_disk(A, instance_id="ins-00000001")
    w.cbs.add_disk(B, instance_id="ins-00000001")
    w.cbs.add_disk(C, instance_id="ins-00000002")
    return w


def test_one_group_per_instance_and_every_member_carries_its_group(two_instances: World) -> None:
    world = two_instances
    results = world.groups({"disks": [A, B, C], "snapshotName": "pre"})

    assert codes(results) == [0, 0, 0] and all(r.snapshotId for r in results)
    assert results[0].groupId == results[1].groupId != results[2].groupId
    assert set(world.cbs.groups) == {r.groupId for r in results}
    assert world.cbs.count("CreateSnapshot") == 0


def test_a_redelivered_group_is_adopted(two_instances: World) -> None:
    world = two_instances
    first = world.groups({"disks": [A, B]})
    world.clock.advance(60)

    again = world.groups({"disks": [A, B]})

    assert [(r.snapshotId, r.groupId) for r in again] == [(r.snapshotId, r.groupId) for r in first]
    assert all(r.adopted for r in again)
    assert world.cbs.count("CreateSnapshotGroup") == 1


def test_a_failed_group_look_is_not_attempted_and_never_creates_blind(two_instances: World) -> None:
    world = two_instances
    first = world.groups({"disks": [A, B]})
    world.clock.advance(60)
    world.cbs.fail("DescribeSnapshots", "InternalError")

    results = world.groups({"disks": [A, B]})

    assert [r.attempted for r in results] == [False, False]
    assert all(r.needs_redelivery and "could not look" in r.message for r in results)
    assert world.cbs.count("CreateSnapshotGroup") == 1
    assert len(world.cbs.groups) == 1
    again = world.groups({"disks": [A, B]})
    assert [r.snapshotId for r in again] == [r.snapshotId for r in first]


def test_a_lost_group_reply_is_adopted(two_instances: World) -> None:
    world = two_instances
    world.cbs.lose_reply("CreateSnapshotGroup")

    results = world.groups({"disks": [A, B]})

    assert codes(results) == [0, 0] and len(world.cbs.groups) == 1
    [group_id] = world.cbs.groups
    assert {r.groupId for r in results} == {group_id}
    assert world.cbs.count("CreateSnapshotGroup") == 1


def test_a_created_group_whose_members_cannot_be_read_is_success_left_for_a_redelivery(
    two_instances: World,
) -> None:
    world = two_instances
    world.cbs.fail("DescribeSnapshotGroups", "InternalError", times=3)

    results = world.groups({"disks": [A, B]})

    [group_id] = world.cbs.groups
    assert codes(results) == [0, 0], "the group exists: never reported failed"
    assert [(r.groupId, r.snapshotId, r.attempted) for r in results] == [(group_id, None, False)] * 2
    assert all(r.needs_redelivery for r in results)
    # the redelivery fills the member snapshot IDs in, from the same group
    again = world.groups({"disks": [A, B]})
    assert [(r.groupId, r.attempted) for r in again] == [(group_id, True)] * 2
    assert [r.snapshotId for r in again] == world.cbs.groups[group_id].snapshot_ids
    assert world.cbs.count("CreateSnapshotGroup") == 1


def test_a_disk_without_an_instance_is_refused_not_snapshotted_alone(two_instances: World) -> None:
    world = two_instances
    world.cbs.add_disk("disk-unattach", instance_id=None)

    results = world.groups({"disks": ["disk-unattach", C]})

    assert codes(results) == [SeedCode.DISK_TYPE_INVALID, 0]
    assert world.cbs.snapshots_of("disk-unattach") == []


# -- Janitor ---------------------------------------------------------------------------------------


def _aged(world: World, ages_days: Sequence[float], *, name: str = "nightly", **kwargs: Any) -> list[str]:
    """Owned snapshots of disk A of the given ages, oldest first in the returned list."""
    ids = [
        world.cbs.add_snapshot(A, name=name, tags=OWNED, age_seconds=age * DAY, **kwargs)
        for age in sorted(ages_days, reverse=True)
    ]
    return ids


def _scope(name: str | None = "nightly", just_made: Sequence[str] = ()) -> list[DiskScope]:
    return [DiskScope(A, REGION, name, 0, frozenset(just_made))]


def _records(placed: Sequence[tuple[int, SnapshotResult]]) -> list[tuple[str | None, int]]:
    return [(r.snapshotId, r.code) for _, r in placed]


def test_keep_last_deletes_the_oldest_owned_snapshots_of_the_name_only(world: World) -> None:
    old = _aged(world, [5, 4, 3, 2, 1])
    foreign = world.cbs.add_snapshot(A, name="nightly", age_seconds=9 * DAY)  # not ours
    other_name = world.cbs.add_snapshot(A, name="weekly", tags=OWNED, age_seconds=9 * DAY)

    placed = world.janitor().run(_scope(), Retention(keepLast=2), world.deadline())

    assert _records(placed) == [(old[0], 0), (old[1], 0), (old[2], 0)]
    assert all(r.action == "delete" for _, r in placed)
    left = {s.snapshot_id for s in world.cbs.snapshots_of(A)}
    assert left == {old[3], old[4], foreign, other_name}


def test_with_both_rules_a_snapshot_goes_only_when_both_pick_it(world: World) -> None:
    old = _aged(world, [40, 35, 10, 3])

    placed = world.janitor().run(_scope(), Retention(keepLast=1, maxAgeDays=30), world.deadline())

    assert _records(placed) == [(old[0], 0), (old[1], 0)]
    assert {s.snapshot_id for s in world.cbs.snapshots_of(A)} == {old[2], old[3]}


def test_the_snapshot_just_made_is_never_deleted(world: World) -> None:
    [just] = _aged(world, [50])
    older = _aged(world, [60])

    placed = world.janitor().run(_scope(just_made=[just]), Retention(maxAgeDays=1), world.deadline())

    assert _records(placed) == [(older[0], 0)]
    assert [s.snapshot_id for s in world.cbs.snapshots_of(A)] == [just]


def test_candidates_cbs_would_refuse_are_skipped_with_a_reason(world: World) -> None:
    creating = world.cbs.add_snapshot(A, name="nightly", tags=OWNED, age_seconds=3 * DAY, state="CREATING")
    imaged = world.cbs.add_snapshot(A, name="nightly", tags=OWNED, age_seconds=4 * DAY, images=1)
    broken = world.cbs.add_snapshot(A, name="nightly", tags=OWNED, age_seconds=5 * DAY, state="ROLLBACKING")
    world.cbs.creation_seconds = 10 * DAY  # still CREATING when the janitor looks

    placed = world.janitor().run(_scope(), Retention(maxAgeDays=1), world.deadline())

    records = {r.snapshotId: r for _, r in placed}
    assert records[creating].code == SeedCode.CBS_CREATING_SNAPSHOT
    assert "ResourceUnavailable.SnapshotCreating" in records[creating].message
    assert "SnapshotHasBindedImage" in records[imaged].message and records[imaged].code != 0
    assert "ROLLBACKING" in records[broken].message and records[broken].code != 0
    assert world.cbs.count("DeleteSnapshots") == 0
    assert len(world.cbs.snapshots_of(A)) == 3


def test_a_snapshot_already_gone_is_deleted_not_failed(world: World) -> None:
    old = _aged(world, [9, 8])
    world.cbs.lose_reply("DeleteSnapshots")  # the batch is deleted, the reply lost

    placed = world.janitor().run(_scope(), Retention(maxAgeDays=1), world.deadline())

    assert _records(placed) == [(old[0], 0), (old[1], 0)]
    assert all(r.message == ALREADY_GONE and r.attempted for _, r in placed)
    assert world.cbs.snapshots_of(A) == []


def test_one_refused_id_does_not_keep_the_others(world: World) -> None:
    old = _aged(world, [9, 8, 7])
    world.cbs.fail("DeleteSnapshots", "InvalidSnapshot.NotSupported", snapshot_id=old[1], times=None)

    placed = world.janitor().run(_scope(), Retention(maxAgeDays=1), world.deadline())

    records = {r.snapshotId: r for _, r in placed}
    assert [records[s].code == 0 for s in old] == [True, False, True]
    assert records[old[1]].attempted and not records[old[1]].needs_redelivery
    assert [s.snapshot_id for s in world.cbs.snapshots_of(A)] == [old[1]]


def test_a_delete_that_may_pass_is_left_for_a_redelivery_which_finishes_it(world: World) -> None:
    [old] = _aged(world, [9])
    world.cbs.lose_reply("DeleteSnapshots")  # one ID: its outcome is unknown

    [(_, record)] = world.janitor().run(_scope(), Retention(maxAgeDays=1), world.deadline())

    assert not record.attempted and record.needs_redelivery
    assert world.cbs.snapshots_of(A) == [], "it was deleted after all"
    # the redelivery lists again: nothing left to delete, nothing to report
    assert world.janitor().run(_scope(), Retention(maxAgeDays=1), world.deadline()) == []
    assert old not in world.cbs.snapshots


def test_a_listing_that_may_pass_is_not_attempted(world: World) -> None:
    _aged(world, [9])
    world.cbs.fail("DescribeSnapshots", "RequestLimitExceeded")

    [(_, record)] = world.janitor().run(_scope(), Retention(maxAgeDays=1), world.deadline())

    assert not record.attempted and record.action == "delete"
    assert world.cbs.count("DeleteSnapshots") == 0


def test_a_dry_run_deletes_nothing(world: World) -> None:
    old = _aged(world, [9, 8])

    placed = world.janitor().run(_scope(), Retention(keepLast=1), world.deadline(), dry_run=True)

    # the message goes on with the snapshot's age and what would have kept it (docs/retention.md)
    assert [(r.snapshotId, r.message) for _, r in placed] == [
        (old[0], f"{DRY_RUN_MESSAGE}: 9.0 days old; keepLast ≥ 2 would have kept it")
    ]
    assert world.cbs.count("DeleteSnapshots") == 0 and len(world.cbs.snapshots_of(A)) == 2


def test_deletes_go_in_batches(world: World) -> None:
    old = _aged(world, [float(d) for d in range(10, 15)])

    placed = world.janitor(batch_size=2).run(_scope(), Retention(maxAgeDays=1), world.deadline())

    assert sorted(s for s, _ in _records(placed)) == sorted(old)
    assert [len(c.snapshots) for c in world.cbs.calls if c.action == "DeleteSnapshots"] == [2, 2, 1]
    assert world.cbs.snapshots_of(A) == []
