"""The retention janitor's rules (pure planning) and its delete executor, without I/O.

The executor is driven through a small in-memory stand-in for :class:`CbsApi`
(injected, not patched) that behaves like DeleteSnapshots: all-or-nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

import pytest

from cbsnap.cbs_time import format_cbs_time
from cbsnap.client import SnapshotInfo
from cbsnap.codes import SeedCode
from cbsnap.errors import CloudError, DeadlineReached
from cbsnap.janitor import (
    DRY_RUN_MESSAGE,
    DiskScope,
    Janitor,
    Plan,
    create_time,
    select,
)
from cbsnap.models import Retention
from cbsnap.ownership import OWNER_TAG, OWNER_VALUE
from cbsnap.scf import Deadline

NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=timezone.utc).timestamp()
DAY = 86_400
DISK = "disk-aaaaaaa1"
OWNED = {OWNER_TAG: OWNER_VALUE}


def snap(
    sid: str,
    age_days: float,
    *,
    name: str = "nightly",
    tags: dict[str, str] | None = None,
    state: str = "NORMAL",
    images: int = 0,
    disk: str = DISK,
) -> SnapshotInfo:
    created = format_cbs_time(NOW - age_days * DAY)
    return SnapshotInfo(
        snapshot_id=sid,
        disk_id=disk,
        state=state,
        percent=100,
        name=name,
        create_time=created,
        deadline_time=None,
        image_count=images,
        tags=OWNED if tags is None else tags,
    )


def scope(name: str | None = "nightly", just_made: Sequence[str] = ()) -> DiskScope:
    return DiskScope(DISK, "ap-guangzhou", name, 0, frozenset(just_made))


def deleted(snaps: list[SnapshotInfo], retention: Retention, sc: DiskScope | None = None) -> list[str]:
    return [s.snapshot_id for s in select(snaps, sc or scope(), retention, NOW).to_delete]


AGES = [0, 1, 2, 3, 9, 10]
SNAPS = [snap(f"snap-{i:08d}", age) for i, age in enumerate(AGES)]


def test_keep_last_keeps_the_newest_and_deletes_oldest_first() -> None:
    assert deleted(SNAPS, Retention(keepLast=4)) == ["snap-00000005", "snap-00000004"]


def test_max_age_days_deletes_only_older_than_d_days() -> None:
    assert deleted(SNAPS, Retention(maxAgeDays=3)) == ["snap-00000005", "snap-00000004"]
    # exactly D days old is not *older* than D days
    assert deleted([snap("snap-edge0001", 3)], Retention(maxAgeDays=3)) == []
    assert deleted([snap("snap-edge0001", 3 + 1 / DAY)], Retention(maxAgeDays=3)) == ["snap-edge0001"]


def test_both_rules_delete_only_the_intersection() -> None:
    # keepLast 5 picks only the 10-day one; maxAgeDays 7 picks 9 and 10: intersection = 10
    assert deleted(SNAPS, Retention(keepLast=5, maxAgeDays=7)) == ["snap-00000005"]
    # keepLast 1 picks 1..10; maxAgeDays 7 picks 9 and 10: intersection = 9 and 10
    assert deleted(SNAPS, Retention(keepLast=1, maxAgeDays=7)) == ["snap-00000005", "snap-00000004"]


def test_scope_is_owner_tag_and_name_foreign_ones_are_invisible() -> None:
    snaps = [
        snap("snap-own00001", 10),
        snap("snap-predep01", 10, name="pre-deploy"),
        snap("snap-foreign1", 10, tags={}),
        snap("snap-foreign2", 10, tags={OWNER_TAG: "someone-else"}),
        snap("snap-foreign3", 10, tags={"cbsnap:key": "x"}),
        snap("snap-otherdsk", 10, disk="disk-aaaaaaa2"),
    ]
    plan = select(snaps, scope(), Retention(maxAgeDays=1), NOW)
    assert [c.snapshot.snapshot_id for c in plan.candidates] == ["snap-own00001"]
    assert plan.kept == ()
    every_name = select(snaps, scope(None), Retention(maxAgeDays=1), NOW)
    assert sorted(s.snapshot_id for s in every_name.to_delete) == ["snap-own00001", "snap-predep01"]


def test_foreign_snapshots_do_not_count_for_keep_last() -> None:
    snaps = [snap("snap-old00001", 5), snap("snap-foreign1", 1, tags={}), snap("snap-foreign2", 2, tags={})]
    assert deleted(snaps, Retention(keepLast=1)) == []


def test_just_made_counts_ranks_newest_and_is_never_a_candidate() -> None:
    # the just-made snapshot is listed with an old CreateTime (an adopted one): still kept, still counted
    snaps = [snap("snap-justmade", 30, state="CREATING"), snap("snap-a0000001", 1), snap("snap-a0000002", 2)]
    plan = select(snaps, scope(just_made=["snap-justmade"]), Retention(keepLast=1), NOW)
    assert [c.snapshot.snapshot_id for c in plan.candidates] == ["snap-a0000002", "snap-a0000001"]
    aged = select(snaps, scope(just_made=["snap-justmade"]), Retention(maxAgeDays=1), NOW)
    assert "snap-justmade" not in [c.snapshot.snapshot_id for c in aged.candidates]


def test_creating_other_states_and_image_bound_candidates_are_skipped_with_reasons() -> None:
    snaps = [
        snap("snap-creating", 10, state="CREATING"),
        snap("snap-rollback", 11, state="ROLLBACKING"),
        snap("snap-imaged01", 12, images=2),
        snap("snap-normal01", 13),
    ]
    plan = select(snaps, scope(), Retention(maxAgeDays=1), NOW)
    assert [s.snapshot_id for s in plan.to_delete] == ["snap-normal01"]
    skips = {c.snapshot.snapshot_id: (c.skip, c.reason) for c in plan.skipped}
    assert skips["snap-creating"][0] == SeedCode.CBS_CREATING_SNAPSHOT
    assert "ResourceUnavailable.SnapshotCreating" in skips["snap-creating"][1]
    assert skips["snap-rollback"][0] == SeedCode.INTERNAL_ERROR and "ROLLBACKING" in skips["snap-rollback"][1]
    assert skips["snap-imaged01"][0] == SeedCode.INTERNAL_ERROR
    assert "UnsupportedOperation.SnapshotHasBindedImage" in skips["snap-imaged01"][1]


def test_skipped_snapshots_still_count_for_keep_last() -> None:
    snaps = [snap("snap-imaged01", 1, images=1), snap("snap-normal01", 2)]
    assert deleted(snaps, Retention(keepLast=1)) == ["snap-normal01"]


def test_unreadable_create_time_is_kept_and_never_old() -> None:
    odd = SnapshotInfo("snap-oddtime1", DISK, "NORMAL", 100, "nightly", "", None, 0, OWNED)
    assert deleted([odd, snap("snap-old00001", 9)], Retention(keepLast=1)) == ["snap-old00001"]
    assert deleted([odd], Retention(maxAgeDays=1)) == []


def test_create_time_is_read_as_beijing_time() -> None:
    # NOW is 12:00 UTC: CBS writes that instant as 20:00 (UTC+8)
    assert create_time("2026-11-28 20:00:00") == NOW
    assert create_time("28/11/2026") is None
    # a snapshot made 7 days minus 1 hour ago is not old enough for maxAgeDays 7; 1 hour more is
    assert deleted([snap("snap-young001", 7 - 1 / 24)], Retention(maxAgeDays=7)) == []
    assert deleted([snap("snap-old00001", 7 + 1 / 24)], Retention(maxAgeDays=7)) == ["snap-old00001"]


def test_duplicates_in_a_listing_count_once() -> None:
    one = snap("snap-a0000001", 5)
    assert deleted([one, one, snap("snap-a0000002", 1)], Retention(keepLast=1)) == ["snap-a0000001"]


# -- the executor, against an in-memory all-or-nothing DeleteSnapshots -----------------------------


class FakeApi:
    """Holds snapshot IDs; DeleteSnapshots fails as a whole on the first unknown or refused ID."""

    region = "ap-guangzhou"

    def __init__(self, ids: Sequence[str], refuse: dict[str, str] | None = None, fail_all: str = "") -> None:
        self.ids = set(ids)
        self.refuse = refuse or {}
        self.fail_all = fail_all
        self.calls: list[list[str]] = []

    def delete_snapshots(self, ids: Sequence[str], deadline: Deadline) -> str:
        if deadline.expired:  # as the real client's pacer refuses to start a call
            raise DeadlineReached("DeleteSnapshots")
        self.calls.append(list(ids))
        if self.fail_all:
            raise CloudError("DeleteSnapshots", self.fail_all, "refused", "rid-x")
        for sid in ids:
            if sid not in self.ids:
                raise CloudError(
                    "DeleteSnapshots", "InvalidSnapshotId.NotFound", f"{sid} not found", "rid-nf"
                )
            if sid in self.refuse:
                raise CloudError("DeleteSnapshots", self.refuse[sid], f"{sid} refused", "rid-r")
        self.ids -= set(ids)
        return f"rid-{len(self.calls)}"


def plan_for(count: int, *, skip_creating: int = 0) -> Plan:
    snaps = [snap(f"snap-{i:08d}", 10 + i) for i in range(count)]
    snaps += [snap(f"snap-c{i:07d}", 10 + i, state="CREATING") for i in range(skip_creating)]
    return Plan([select(snaps, scope(), Retention(maxAgeDays=1), NOW)])


def janitor(api: FakeApi, batch_size: int = 20) -> Janitor:
    return Janitor(lambda region: api, region="ap-guangzhou", wall_clock=lambda: NOW, batch_size=batch_size)  # type: ignore[arg-type,return-value]


def test_batches_of_twenty() -> None:
    plan = plan_for(45)
    api = FakeApi([s.snapshot_id for s in plan.disks[0].to_delete])
    records = janitor(api).execute(plan, Deadline.after(30))
    assert [len(c) for c in api.calls] == [20, 20, 5]
    assert api.ids == set()
    assert all(r.code == 0 and r.message == "" and r.action == "delete" for _, r in records)
    assert {r.requestId for _, r in records} == {"rid-1", "rid-2", "rid-3"}


def test_a_failed_batch_falls_back_to_one_by_one() -> None:
    plan = plan_for(5)
    ids = [s.snapshot_id for s in plan.disks[0].to_delete]
    bound = ids[2]
    api = FakeApi(ids, refuse={bound: "UnsupportedOperation.SnapshotHasBindedImage"})
    api.ids.discard(ids[0])  # gone behind the janitor's back
    records = {r.snapshotId: r for _, r in janitor(api).execute(plan, Deadline.after(30))}
    assert api.calls == [ids, *([i] for i in ids)]
    assert api.ids == {bound}
    # A snapshot that is gone is deleted (issue 9, finding 8: it used to be reported as 6000).
    assert records[ids[0]].code == 0 and records[ids[0]].message == "already deleted"
    assert records[ids[0]].requestId == "rid-nf"
    assert records[bound].code == 6000
    assert "UnsupportedOperation.SnapshotHasBindedImage" in records[bound].message
    assert "rid-r" in records[bound].message and records[bound].requestId == "rid-r"
    assert all(records[i].code == 0 and records[i].message == "" for i in (ids[1], ids[3], ids[4]))


@pytest.mark.parametrize(
    ("code", "seed"), [("AuthFailure.UnauthorizedOperation", 4100), ("RequestLimitExceeded", 4400)]
)
def test_errors_that_one_by_one_cannot_fix_fail_the_whole_batch(code: str, seed: int) -> None:
    plan = plan_for(3)
    api = FakeApi([s.snapshot_id for s in plan.disks[0].to_delete], fail_all=code)
    records = janitor(api).execute(plan, Deadline.after(30))
    assert len(api.calls) == 1
    assert [r.code for _, r in records] == [seed] * 3


def test_dry_run_calls_nothing_and_reports_the_same_plan() -> None:
    plan = plan_for(3, skip_creating=1)
    api = FakeApi([s.snapshot_id for s in plan.disks[0].to_delete])
    records = [r for _, r in janitor(api).execute(plan, Deadline.after(30), dry_run=True)]
    assert api.calls == []
    dry = [(r.code, r.message.startswith(f"{DRY_RUN_MESSAGE}: ")) for r in records if r.code == 0]
    assert dry == [(0, True)] * 3
    assert [r.code for r in records if r.code != 0] == [16027]


def test_out_of_time_candidates_get_not_attempted_records() -> None:
    plan = plan_for(3)
    api = FakeApi([s.snapshot_id for s in plan.disks[0].to_delete])
    expired = Deadline(0.0, clock=lambda: 1.0)
    records = [r for _, r in janitor(api).execute(plan, expired)]
    assert [r.code for r in records] == [6000] * 3
    assert all(r.message.startswith("not attempted") for r in records)
